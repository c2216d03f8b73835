"""Teacher outputs computed once per training sample and reused (REQ-KD18, REQ-KD19).

A :class:`TeacherCache` belongs to one teacher and one training set: its :attr:`key` is the
SHA-256 of the teacher's hash (of its checkpoint file, or of its weights when held in memory) and
the data fingerprint (a SHA-256 of the training tensors the teacher sees), and entries are
addressed by sample index (a position in the training split, as in the trainer's epoch order),
never by batch position, so shuffling cannot mix samples up. It stores raw outputs, so
temperature schedules still apply, and optionally the teacher features of feature pairs.

With augmentation on, a sample's input differs from epoch to epoch, so a stored output would be
wrong: building a cache then raises ``distill.cache_refused`` with that reason.

:meth:`fill` computes every entry up front, in index order and fixed-size chunks: the values do
not depend on the run's history, which keeps a resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from studio.backend.core.errors import DistillError

__all__ = ["TeacherCache", "data_fingerprint", "REFUSED_REASON"]

REFUSED_REASON = ("training batches are augmented, so each sample's input differs from epoch to epoch and a stored "
                  "teacher output would not match it")


def data_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' dtypes, shapes and bytes (as ``LoadedData.fingerprint`` does for a whole dataset)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class TeacherCache:
    """Raw teacher outputs (and features) per sample index; see the module docstring."""

    def __init__(self, teacher_sha256: str, data_fingerprint: str, *, augment: bool = False) -> None:
        if augment:
            raise DistillError(f"Teacher outputs cannot be cached: {REFUSED_REASON}.", code="distill.cache_refused",
                               field="distill.cache_teacher", value=True,
                               hint="Turn augmentation off to cache, or let the teacher run on every batch.")
        self.teacher_sha256 = str(teacher_sha256)
        self.data_fingerprint = str(data_fingerprint)
        self.key = hashlib.sha256(f"{self.teacher_sha256}:{self.data_fingerprint}".encode()).hexdigest()
        self._outputs: torch.Tensor | None = None
        self._features: dict[str, torch.Tensor] = {}
        self._filled: torch.Tensor | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return 0 if self._filled is None else int(self._filled.sum())

    def nbytes(self) -> int:
        tensors = ([self._outputs] if self._outputs is not None else []) + list(self._features.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def _index(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(indices, dtype=torch.long).reshape(-1).cpu()

    def put(self, indices: torch.Tensor, outputs: torch.Tensor, features: dict[str, torch.Tensor] | None = None,
            *, size: int | None = None) -> None:
        """Store the outputs (and features) of the samples ``indices``; ``size`` is the training set's length
        (needed on the first call, else the largest index + 1)."""
        idx = self._index(indices)
        if self._outputs is None:
            n = int(size) if size is not None else int(idx.max()) + 1
            self._outputs = torch.zeros((n, *outputs.shape[1:]), dtype=outputs.dtype, device=outputs.device)
            self._filled = torch.zeros(n, dtype=torch.bool)
        dev = self._outputs.device
        self._outputs[idx.to(dev)] = outputs.detach().to(dev)
        for name, value in (features or {}).items():
            if name not in self._features:
                self._features[name] = torch.zeros((len(self._outputs), *value.shape[1:]), dtype=value.dtype,
                                                   device=dev)
            self._features[name][idx.to(dev)] = value.detach().to(dev)
        assert self._filled is not None
        self._filled[idx] = True

    def get(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The stored outputs of ``indices`` in that order, or ``None`` unless every one is stored."""
        idx = self._index(indices)
        if self._filled is None or idx.numel() == 0 or int(idx.max()) >= len(self._filled) \
                or not bool(self._filled[idx].all()):
            self.misses += 1
            return None
        self.hits += 1
        assert self._outputs is not None
        return self._outputs[idx.to(self._outputs.device)]

    def features(self, indices: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor] | None:
        """The stored features ``names`` of ``indices``, or ``None`` if any is missing."""
        if any(n not in self._features for n in names):
            return None
        idx = self._index(indices)
        return {n: self._features[n][idx.to(self._features[n].device)] for n in names}

    def fill(self, teacher: object, inputs: torch.Tensor, *, features: Sequence[str] = (), batch_size: int = 256) -> None:
        """Run ``teacher.forward(chunk, features)`` over ``inputs`` in index order and store every sample."""
        n = len(inputs)
        for start in range(0, n, batch_size):
            chunk = inputs[start:start + batch_size]
            out, feats = teacher.forward(chunk, list(features))  # type: ignore[attr-defined]
            self.put(torch.arange(start, start + len(chunk)), out, feats, size=n)
