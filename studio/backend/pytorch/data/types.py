"""The data bundles every loader returns: :class:`LoadedData` in memory, :class:`DiskImageData` on disk.

Both carry the same description of the task (what the model must predict, from what kind of
input, with which class or feature names) so splits, summaries, preprocessing and batching
treat them alike; only the in-memory bundle holds the input tensor ``x``.

Conventions:

- ``x`` is float32, shaped ``(N, *input_shape)``: ``(N, F)`` for vectors, ``(N, C, H, W)`` for
  images (values 0..1 before normalisation), ``(N, L, C)`` for sequences.
- ``y`` is int64 class indices ``(N,)`` for ``classification``; float32 ``(N, 1)`` of 0/1 for
  ``binary``; float32 ``(N, k)`` of 0/1 for ``multilabel``; float32 ``(N, k)`` for ``regression``.
- ``num_outputs`` is what the model's last layer must produce: the class count, 1 for binary,
  the label count for multilabel, ``k`` for regression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

from studio.backend.core.errors import DataError

__all__ = ["TASKS", "INPUT_KINDS", "LoadedData", "DiskImageData", "DataBundle", "class_counts"]

TASKS = ("classification", "regression", "binary", "multilabel")
INPUT_KINDS = ("vector", "image", "sequence")


def _check_common(name: str, task: str, input_kind: str, y: torch.Tensor, num_outputs: int) -> None:
    if task not in TASKS:
        raise DataError(f"Dataset {name!r} has unknown task {task!r}; use one of {', '.join(TASKS)}.",
                        code="data.bad_task", field="task", value=task)
    if input_kind not in INPUT_KINDS:
        raise DataError(f"Dataset {name!r} has unknown input kind {input_kind!r}; use one of {', '.join(INPUT_KINDS)}.",
                        code="data.bad_shape", field="input_kind", value=input_kind)
    if task == "classification":
        if y.dtype != torch.int64 or y.dim() != 1:
            raise DataError(f"Dataset {name!r}: classification labels must be a 1-D int64 tensor, not {y.dtype} {tuple(y.shape)}.",
                            code="data.bad_shape", field="y")
    elif y.dtype != torch.float32 or y.dim() != 2 or y.shape[1] != num_outputs:
        raise DataError(f"Dataset {name!r}: {task} targets must be float32 shaped (N, {num_outputs}), "
                        f"not {y.dtype} {tuple(y.shape)}.", code="data.bad_shape", field="y")


@dataclass
class LoadedData:
    """A whole dataset in memory, ready to split, normalise and batch."""

    x: torch.Tensor
    y: torch.Tensor
    task: str
    input_kind: str
    input_shape: tuple[int, ...]
    num_outputs: int
    class_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    name: str = ""
    description: str = ""
    target_names: tuple[str, ...] = ()
    source: str = "builtin"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32:
            raise DataError(f"Dataset {self.name!r}: inputs must be float32, not {self.x.dtype}.",
                            code="data.bad_shape", field="x")
        if tuple(self.x.shape[1:]) != tuple(self.input_shape):
            raise DataError(f"Dataset {self.name!r}: inputs are {tuple(self.x.shape)} but the per-sample shape "
                            f"is declared as {tuple(self.input_shape)}.", code="data.bad_shape", field="x")
        if self.x.shape[0] != self.y.shape[0]:
            raise DataError(f"Dataset {self.name!r} has {self.x.shape[0]} inputs but {self.y.shape[0]} targets.",
                            code="data.bad_shape", field="y")
        _check_common(self.name, self.task, self.input_kind, self.y, self.num_outputs)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])

    def __len__(self) -> int:
        return self.num_samples

    @property
    def in_memory(self) -> bool:
        return True

    def fingerprint(self) -> str:
        """A SHA-256 of the inputs and targets (for caches keyed by the data, e.g. teacher logits)."""
        digest = hashlib.sha256()
        for t in (self.x, self.y):
            digest.update(str((t.dtype, tuple(t.shape))).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()


@dataclass
class DiskImageData:
    """An image-folder dataset too big for memory: file paths and labels; pixels are read per batch.

    ``size`` is ``(height, width)``; ``channels`` 1 (grayscale) or 3 (RGB).
    """

    paths: tuple[str, ...]
    y: torch.Tensor
    class_names: tuple[str, ...]
    size: tuple[int, int]
    channels: int
    max_pixels: int
    name: str = ""
    description: str = ""
    source: str = "images"
    info: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    input_kind: str = "image"
    feature_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.paths) != int(self.y.shape[0]):
            raise DataError(f"Dataset {self.name!r} has {len(self.paths)} files but {self.y.shape[0]} labels.",
                            code="data.bad_shape", field="y")
        _check_common(self.name, self.task, self.input_kind, self.y, self.num_outputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size[0], self.size[1])

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    @property
    def num_samples(self) -> int:
        return len(self.paths)

    def __len__(self) -> int:
        return self.num_samples

    @property
    def in_memory(self) -> bool:
        return False

    def fingerprint(self) -> str:
        """A SHA-256 of the file list, sizes, modification times and labels (pixels are not read)."""
        import os

        digest = hashlib.sha256()
        for path in self.paths:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        digest.update(self.y.numpy().tobytes())
        return digest.hexdigest()


DataBundle = LoadedData | DiskImageData


def class_counts(y: torch.Tensor, task: str, num_outputs: int) -> tuple[int, ...]:
    """Samples per class (classification, binary: negatives then positives) or positives per label (multilabel)."""
    if task == "classification":
        return tuple(int(c) for c in torch.bincount(y, minlength=num_outputs).tolist())
    if task == "binary":
        positives = int((y[:, 0] > 0.5).sum())
        return (int(y.shape[0]) - positives, positives)
    if task == "multilabel":
        return tuple(int(c) for c in (y > 0.5).sum(dim=0).tolist())
    return ()
