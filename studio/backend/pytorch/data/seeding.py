"""Derived seeds and the epoch order: pure functions of (seed, epoch[, batch]), so any epoch or batch replays.

The epoch order is the trainer's :func:`studio.backend.pytorch.trainer.batching.epoch_order`
(the single source of order, REQ-D07): in-memory training and the
on-disk image loader all visit samples in exactly that order.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "epoch_permutation"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (SHA-256, so nearby inputs give unrelated seeds)."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of ``epoch``: the same for the same ``(n, seed, epoch)``, whatever came before."""
    from studio.backend.pytorch.trainer.batching import epoch_order  # lazy: the trainer never imports data

    return epoch_order(seed, epoch, n)
