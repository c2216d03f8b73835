"""Model-versus-data compatibility before building (REQ-M24)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from studio.backend.core.errors import ModelError, StudioError
from studio.backend.core.requests import ModelSpec
from studio.backend.core.results import DataSummary
from studio.backend.pytorch.models.build import as_spec, build_model, resolve_hparams
from studio.backend.pytorch.models.registry import INPUT_KINDS, TASKS, get_model_info, model_names
from studio.backend.pytorch.models.shapes import input_kind_of

__all__ = ["Compatibility", "check_compatibility", "require_compatible"]


class Compatibility(NamedTuple):
    """Unpacks as ``ok, reason = check_compatibility(...)``."""

    ok: bool
    reason: str


def check_compatibility(
    spec: ModelSpec | Mapping[str, Any],
    data: DataSummary | str,
    task: str | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    num_outputs: int | None = None,
) -> Compatibility:
    """Whether the model fits the data, with a reason either way; never raises for a bad spec.

    ``data`` is a ``DataSummary`` (its input kind, task, input shape and outputs are used) or an
    input kind (``vector``, ``image``, ``sequence``) with ``task``. With an input shape the model is
    also built once, which catches size limits such as LeNet's 8x8 minimum.
    """
    if isinstance(data, DataSummary):
        kind, task = data.input_kind, data.task
        input_shape, num_outputs = data.input_shape, data.num_outputs
    else:
        kind = data
    try:
        spec = as_spec(spec)
        info = get_model_info(spec.name)
        resolve_hparams(spec)
    except StudioError as exc:
        return Compatibility(False, exc.message)
    if kind not in INPUT_KINDS:
        return Compatibility(False, f"Unknown input kind {kind!r}; the kinds are {', '.join(INPUT_KINDS)}.")
    if task not in TASKS:
        return Compatibility(False, f"Unknown task {task!r}; the tasks are {', '.join(TASKS)}.")
    if kind not in info.input_kinds:
        others = ", ".join(model_names(input_kind=kind, task=task)) or "none"
        return Compatibility(
            False,
            f"Model {spec.name!r} takes {' or '.join(info.input_kinds)} inputs but the data are {kind} inputs; "
            f"models for {kind} data: {others}.",
        )
    if task not in info.tasks:
        others = ", ".join(model_names(input_kind=kind, task=task)) or "none"
        return Compatibility(False, f"Model {spec.name!r} does not support {task}; models that do: {others}.")
    if input_shape is not None:
        try:
            if input_kind_of(input_shape) != kind:
                return Compatibility(False, f"Input shape {tuple(input_shape)} is not a {kind} shape.")
            build_model(spec, input_shape, num_outputs or 1, seed=0)
        except StudioError as exc:
            return Compatibility(False, exc.message)
    return Compatibility(True, f"Model {spec.name!r} fits {kind} data for {task}.")


def require_compatible(
    spec: ModelSpec | Mapping[str, Any], data: DataSummary | str, task: str | None = None, **kwargs: Any
) -> None:
    """:func:`check_compatibility`, raising ``model.incompatible`` with its reason when it does not fit."""
    ok, reason = check_compatibility(spec, data, task, **kwargs)
    if not ok:
        raise ModelError(reason, code="model.incompatible", field="model", hint="Pick a model that fits the data.")
