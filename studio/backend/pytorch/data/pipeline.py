"""Batches for one split of any data bundle, normalised (and, for training, augmented)."""

from __future__ import annotations

from studio.backend.pytorch.data.augment import Augmenter
from studio.backend.pytorch.data.batching import InMemoryBatches
from studio.backend.pytorch.data.disk_images import DiskImageBatches
from studio.backend.pytorch.data.preprocessing import Preprocessing
from studio.backend.pytorch.data.splits import Splits
from studio.backend.pytorch.data.types import DataBundle

__all__ = ["make_batches"]


def make_batches(data: DataBundle, splits: Splits, split: str, batch_size: int, *, seed: int = 0,
                 preprocessing: Preprocessing | None = None, augment: Augmenter | None = None,
                 drop_last: bool = False, workers: int = 2) -> InMemoryBatches | DiskImageBatches:
    """Batches of ``split``: shuffled and augmented only for ``train``; targets scaled by ``preprocessing``.

    In-memory data is normalised once here; on-disk images batch by batch.
    """
    indices = splits.get(split)
    training = split == "train"
    if augment is not None and data.input_kind != "image":
        augment = None
    if not training:
        augment = None
    if data.in_memory:
        x = data.x[indices]  # type: ignore[union-attr]
        y = data.y[indices]
        if preprocessing is not None:
            x = preprocessing.apply(x)
            y = preprocessing.apply_target(y)
        return InMemoryBatches(x, y, batch_size, shuffle=training, seed=seed, drop_last=drop_last and training,
                               augment=augment)
    return DiskImageBatches(data, indices, batch_size, shuffle=training, seed=seed,  # type: ignore[arg-type]
                            drop_last=drop_last and training, augment=augment, preprocessing=preprocessing,
                            workers=workers)
