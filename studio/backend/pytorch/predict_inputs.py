"""Turn raw prediction inputs into the tensor the model was trained on (REQ-H07, REQ-T20).

Accepted: nested lists or arrays of samples (``(N, *input_shape)``, or flat rows of the right
length), a single sample, or a path: a CSV file (encoded with the stored column encoding), a
``.npy`` / ``.npz`` file (``allow_pickle=False``), one image file or a folder of images (its
sub-folders too, in the order of their relative paths).
The training preprocessing is applied by the caller.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.backend.core.errors import DataError
from studio.backend.pytorch.data.csv_table import read_csv_table
from studio.backend.pytorch.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, read_image
from studio.backend.pytorch.data.tabular import encode_features

__all__ = ["inputs_to_tensor"]


def _shape_error(received: tuple[int, ...], expected: tuple[int, ...]) -> DataError:
    return DataError(
        f"The inputs are shaped {received} but the model expects (N, {', '.join(map(str, expected))}) "
        f"or rows of {math.prod(expected)} numbers; convert them to that shape.",
        code="data.bad_shape", field="inputs", value=list(received),
    )


def _from_array(array: np.ndarray, input_shape: tuple[int, ...]) -> torch.Tensor:
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataError("The inputs must be numbers.", code="data.bad_value", field="inputs")
    shape = tuple(array.shape)
    if shape == input_shape:
        array = array[None]
    elif shape[1:] == input_shape:
        pass
    elif array.ndim == 2 and shape[1] == math.prod(input_shape):
        array = array.reshape((shape[0], *input_shape))
    elif array.ndim == 1 and shape[0] == math.prod(input_shape):
        array = array.reshape((1, *input_shape))
    else:
        raise _shape_error(shape, input_shape)
    if not np.isfinite(array).all():
        raise DataError("The inputs contain missing or infinite values; fill them in first.",
                        code="data.missing_values", field="inputs")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _images(paths: list[Path], input_shape: tuple[int, ...]) -> torch.Tensor:
    if len(input_shape) != 3:
        raise DataError(f"This model takes inputs shaped {input_shape}, not images.", code="data.bad_shape",
                        field="inputs")
    channels, h, w = input_shape
    return torch.from_numpy(np.stack([read_image(str(p), (h, w), channels, DEFAULT_MAX_PIXELS) for p in paths]))


def _folder_images(folder: Path) -> list[Path]:
    """The images in ``folder`` and its sub-folders (one per class, as for training), by relative path."""
    files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise DataError(f"The folder {folder} holds no PNG, JPEG or BMP image.", code="data.empty",
                        field="inputs", value=str(folder))
    return files


def inputs_to_tensor(inputs: Any, input_shape: tuple[int, ...], encoding: dict[str, Any]) -> tuple[torch.Tensor, list[str]]:
    """The raw inputs as float32 ``(N, *input_shape)`` and a name per sample for display: an image's path
    relative to the folder given (in the order returned), ``line N`` of a CSV file, ``row i`` otherwise."""
    input_shape = tuple(int(s) for s in input_shape)
    if isinstance(inputs, (str, Path)):
        path = Path(inputs)
        if path.is_dir():
            files = _folder_images(path)
            return _images(files, input_shape), [p.relative_to(path).as_posix() for p in files]
        if not path.is_file():
            raise DataError(f"There is no file or folder at {path}; check the path.", code="data.not_found",
                            field="inputs", value=str(path))
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return _images([path], input_shape), [path.name]
        if suffix == ".csv":
            table = read_csv_table(path)
            if encoding.get("columns"):
                x = encode_features(table, encoding)
            else:
                x = torch.from_numpy(np.column_stack([np.asarray(c, dtype=np.float32) for c in table.columns]))
            x = _from_array(x.numpy(), input_shape)
            return x, [f"line {i + 1 + int(table.has_header)}" for i in range(len(x))]
        if suffix in (".npy", ".npz"):
            try:
                loaded = np.load(path, allow_pickle=False)
                array = loaded["X"] if suffix == ".npz" else loaded
            except (ValueError, KeyError, OSError) as exc:
                raise DataError(f"{path} is not a NumPy file with numbers (an 'X' array for .npz): {exc}.",
                                code="data.bad_file", field="inputs", value=str(path)) from exc
            x = _from_array(np.asarray(array), input_shape)
            return x, [f"row {i}" for i in range(len(x))]
        raise DataError(f"Studio cannot predict from a {suffix or 'suffix-less'} file; use CSV, NumPy or images.",
                        code="data.bad_file", field="inputs", value=str(path))
    try:
        array = np.asarray(inputs, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataError(f"The inputs must be rows of numbers of equal length: {exc}.", code="data.bad_shape",
                        field="inputs") from exc
    x = _from_array(array, input_shape)
    return x, [f"row {i}" for i in range(len(x))]
