"""``load_data(spec)``: one entry point for every data source."""

from __future__ import annotations

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.core.requests import DataSpec
from studio.backend.pytorch.data.builtin import load_builtin
from studio.backend.pytorch.data.images import load_image_folder
from studio.backend.pytorch.data.numpy_files import load_numpy
from studio.backend.pytorch.data.tabular import load_csv
from studio.backend.pytorch.data.types import DataBundle

__all__ = ["SOURCES", "load_data"]

SOURCES = ("builtin", "csv", "images", "numpy")


def _path(spec: DataSpec) -> str:
    if not spec.path:
        raise ValidationError(f"A {spec.source} data source needs a path; choose a file or folder.", field="path")
    return spec.path


def load_data(spec: DataSpec) -> DataBundle:
    """Load the data ``spec`` describes; raises a :class:`DataError` or :class:`ValidationError` on bad input."""
    if spec.source == "builtin":
        return load_builtin(spec.name, spec.options, spec.seed)
    if spec.source == "csv":
        return load_csv(_path(spec), spec.target, spec.options)
    if spec.source == "images":
        return load_image_folder(_path(spec), spec.options)
    if spec.source == "numpy":
        return load_numpy(_path(spec), spec.options)
    raise DataError(f"Unknown data source {spec.source!r}; use one of {', '.join(SOURCES)}.",
                    code="data.unknown_source", field="source", value=spec.source)
