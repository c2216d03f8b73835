"""NumPy inputs (REQ-D04): an ``.npz`` archive holding ``X`` and ``y``, or a pair of ``.npy`` files.

Files are opened with ``allow_pickle=False``: an object array (which would need pickle, and so
could run code) is refused with ``data.pickle_refused``. Shapes, dtypes and lengths are checked
before anything is returned.

- ``X`` ``(N, F)`` is a vector input, ``(N, C, H, W)`` an image, ``(N, L, C)`` a sequence
  (``(N, H, W)`` with ``input_kind: image`` becomes a one-channel image; ``(N, H, W, C)`` with
  ``H > 4`` and ``C`` in 1, 3, 4, or ``channels_last: true``, is transposed). ``uint8`` images
  are scaled to 0..1.
- An integer or boolean ``y`` ``(N,)`` is a classification; a float ``y`` ``(N,)`` or ``(N, k)`` a
  regression. ``task`` overrides (``binary`` and ``multilabel`` need 0/1 values).
- A pair is found as: a folder holding ``X.npy`` and ``y.npy``; a path ending in ``X.npy`` whose
  sibling ends in ``y.npy``; or ``options["y_path"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.pytorch.data.types import TASKS, LoadedData

__all__ = ["load_numpy", "arrays_to_data"]


def _refuse_pickle(path: Path, exc: Exception) -> DataError:
    return DataError(f"{path.name} holds a Python object array, which would need pickle to load and could run code; "
                     "save plain numeric arrays instead.", code="data.pickle_refused", field="path", value=str(path))


def _load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"There is no {what} file at {path}; check the path.", code="data.not_found",
                        field="path", value=str(path))
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _refuse_pickle(path, exc) from exc
        raise DataError(f"{path.name} is not a valid .npy file ({exc}).", code="data.bad_file", field="path",
                        value=str(path)) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged header raises OSError, EOFError, BadZipFile, TokenError...
        raise DataError(f"{path.name} cannot be read as a .npy file ({type(exc).__name__}: {exc}).",
                        code="data.bad_file", field="path", value=str(path)) from exc
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path.name} is not a single .npy array.", code="data.bad_file", field="path", value=str(path))
    return array


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - zipfile.BadZipFile, OSError, EOFError, ... from a damaged archive
        raise DataError(f"{path.name} cannot be read as a .npz archive ({type(exc).__name__}: {exc}).",
                        code="data.bad_file", field="path", value=str(path)) from exc
    with archive:
        keys = list(archive.files)
        x_key = next((k for k in ("X", "x") if k in keys), None)
        y_key = next((k for k in ("y", "Y") if k in keys), None)
        if x_key is None or y_key is None:
            raise DataError(f"{path.name} must hold arrays named 'X' and 'y' but holds {', '.join(map(repr, keys)) or 'none'}; "
                            "save it with np.savez(path, X=inputs, y=targets).", code="data.missing_array",
                            field="path", value=keys)
        try:
            return archive[x_key], archive[y_key]
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise _refuse_pickle(path, exc) from exc
            raise DataError(f"{path.name} has an unreadable array ({exc}).", code="data.bad_file", field="path",
                            value=str(path)) from exc
        except Exception as exc:  # noqa: BLE001 - a damaged member: BadZipFile (bad CRC), OSError, TokenError...
            raise DataError(f"{path.name} has an unreadable array ({type(exc).__name__}: {exc}).",
                            code="data.bad_file", field="path", value=str(path)) from exc


def _pair_paths(path: Path, options: dict[str, Any]) -> tuple[Path, Path]:
    if path.is_dir():
        return path / "X.npy", path / "y.npy"
    if options.get("y_path"):
        return path, Path(options["y_path"])
    stem = path.stem
    if stem.endswith(("X", "x")):
        return path, path.with_name(stem[:-1] + "y" + path.suffix)
    raise DataError(f"Cannot tell where the targets for {path.name} are; name the files X.npy and y.npy, "
                    "or set the option y_path.", code="data.not_found", field="options.y_path", value=str(path))


def load_numpy(path: str | Path, options: dict[str, Any] | None = None) -> LoadedData:
    options = dict(options or {})
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DataError(f"There is no .npz file at {path}; check the path.", code="data.not_found",
                            field="path", value=str(path))
        x, y = _load_npz(path)
    else:
        x_path, y_path = _pair_paths(path, options)
        x, y = _load_array(x_path, "X"), _load_array(y_path, "y")
    return arrays_to_data(x, y, name=path.name, options=options)


def _numeric(array: np.ndarray, name: str, what: str) -> None:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} in {name} has dtype {array.dtype}; only numbers (bool, int, float) are accepted.",
                        code="data.bad_dtype", field=what, value=str(array.dtype))


def _inputs(x: np.ndarray, name: str, options: dict[str, Any]) -> tuple[np.ndarray, str]:
    kind = options.get("input_kind")
    scale = x.dtype == np.uint8
    x = x.astype(np.float32)
    if scale:
        x /= 255.0
    if x.ndim == 2 and kind in (None, "vector"):
        return x, "vector"
    if x.ndim == 3 and kind == "image":
        return x[:, None], "image"
    if x.ndim == 3 and kind in (None, "sequence"):
        return x, "sequence"
    if x.ndim == 4 and kind in (None, "image"):
        channels_last = options.get("channels_last", x.shape[1] > 4 and x.shape[-1] in (1, 3, 4))
        if channels_last:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # to channels-first
        return x, "image"
    raise DataError(f"X in {name} has shape {x.shape}; expected (N, features), (N, length, channels) or "
                    f"(N, channels, height, width){f' for input kind {kind!r}' if kind else ''}.",
                    code="data.bad_shape", field="X", value=list(x.shape))


def arrays_to_data(x: np.ndarray, y: np.ndarray, name: str = "arrays", options: dict[str, Any] | None = None) -> LoadedData:
    """Validate and wrap input and target arrays."""
    options = dict(options or {})
    task = options.get("task")
    if task is not None and task not in TASKS:
        raise ValidationError(f"Option 'task' must be one of {', '.join(TASKS)}, not {task!r}.",
                              field="options.task", value=task)
    _numeric(x, name, "X")
    _numeric(y, name, "y")
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"X in {name} has shape {x.shape}; it needs one row per sample and at least one sample.",
                        code="data.bad_shape", field="X", value=list(x.shape))
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise DataError(f"X in {name} has {x.shape[0]} samples but y has shape {y.shape}; they need the same length.",
                        code="data.bad_shape", field="y", value=list(y.shape))
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.flatnonzero((~np.isfinite(x.reshape(x.shape[0], -1))).any(axis=1))[0])
        raise DataError(f"X in {name} has NaN or infinite values (first in sample {bad}); clean them first.",
                        code="data.missing_values", field="X", value=bad)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"y in {name} has NaN or infinite values; clean them first.", code="data.missing_values",
                        field="y")
    xf, kind = _inputs(x, name, options)
    whole = y.dtype.kind in "biu"
    if task is None:
        task = "classification" if whole and y.ndim == 1 else "regression"
    class_names: tuple[str, ...] = ()
    if task == "classification":
        if y.ndim != 1 or (y.dtype.kind == "f" and not np.all(y == np.round(y))) or y.min() < 0:
            raise DataError(f"Classification labels in {name} must be non-negative whole numbers shaped (N,).",
                            code="data.bad_value", field="y")
        labels = y.astype(np.int64)
        count = int(labels.max()) + 1
        class_names = tuple(options.get("class_names") or [str(k) for k in range(count)])
        if len(class_names) < count:
            raise DataError(f"{name} has labels up to {count - 1} but only {len(class_names)} class names.",
                            code="data.bad_value", field="options.class_names")
        return LoadedData(x=torch.from_numpy(xf), y=torch.from_numpy(labels), task=task, input_kind=kind,
                          input_shape=tuple(xf.shape[1:]), num_outputs=len(class_names), class_names=class_names,
                          name=name, description=f"Arrays from {name}: {x.shape[0]} samples.", source="numpy")
    yf = y.astype(np.float32).reshape(y.shape[0], -1)
    if task in ("binary", "multilabel"):
        if not np.isin(yf, (0.0, 1.0)).all() or (task == "binary" and yf.shape[1] != 1):
            raise DataError(f"{task} targets in {name} must be 0 or 1{' in one column' if task == 'binary' else ''}.",
                            code="data.bad_value", field="y")
        class_names = tuple(options.get("class_names") or (("negative", "positive") if task == "binary"
                                                            else [f"label {k}" for k in range(yf.shape[1])]))
    return LoadedData(x=torch.from_numpy(xf), y=torch.from_numpy(yf), task=task, input_kind=kind,
                      input_shape=tuple(xf.shape[1:]), num_outputs=yf.shape[1], class_names=class_names, name=name,
                      description=f"Arrays from {name}: {x.shape[0]} samples.", source="numpy")
