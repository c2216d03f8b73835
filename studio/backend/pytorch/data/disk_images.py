"""On-disk image batches (REQ-D07): a torch DataLoader with workers reads each batch's files.

The sampler hands the DataLoader whole batches of indices in the order of
:func:`epoch_permutation` (the trainer's epoch order), so an image folder read from disk gives
the same batches, in the same order, as the same folder loaded in memory. The batches are the
raw pixels: fitting the normalisation reads them (training itself takes on-disk inputs through
:mod:`disk_inputs`, which normalises and lets the trainer augment).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.pytorch.data.images import read_image
from studio.backend.pytorch.data.seeding import epoch_permutation
from studio.backend.pytorch.data.types import DiskImageData

__all__ = ["ImageFileDataset", "DiskImageBatches"]


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a whole number >= 1, not {batch_size!r}.", field="batch_size",
                              value=batch_size)


def batch_spans(n: int, batch_size: int, drop_last: bool) -> list[tuple[int, int]]:
    stop = (n // batch_size) * batch_size if drop_last else n
    return [(a, min(a + batch_size, n)) for a in range(0, stop, batch_size)]


class ImageFileDataset(Dataset):
    """Decodes one file per item: ``(float32 (C, H, W), label)``."""

    def __init__(self, data: DiskImageData, indices: torch.Tensor) -> None:
        self.paths = [data.paths[int(i)] for i in indices]
        self.labels = data.y[indices]
        self.size, self.channels, self.max_pixels = data.size, data.channels, data.max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = read_image(self.paths[i], self.size, self.channels, self.max_pixels)
        return torch.from_numpy(pixels), self.labels[i]


class _EpochBatchSampler(Sampler[list[int]]):
    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.spans = batch_spans(n, batch_size, drop_last)
        self.epoch = 0
        self.start_batch = 0

    def __len__(self) -> int:
        return len(self.spans) - self.start_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        for a, z in self.spans[self.start_batch:]:
            yield order[a:z].tolist()


class DiskImageBatches:
    """The raw ``(x, y)`` batches of a :class:`DiskImageData` subset, per epoch, read by DataLoader workers."""

    def __init__(self, data: DiskImageData, indices: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, workers: int = 2) -> None:
        check_batch_size(batch_size)
        self.dataset = ImageFileDataset(data, indices)
        self.seed = int(seed)
        self.sampler = _EpochBatchSampler(len(self.dataset), batch_size, shuffle, self.seed, drop_last)
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=max(0, int(workers)),
                                 persistent_workers=False)

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def __len__(self) -> int:
        return len(self.sampler.spans)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.epoch, self.sampler.start_batch = epoch, start_batch
        iterator = iter(self.loader)
        try:
            while True:
                try:
                    xb, yb = next(iterator)
                except StopIteration:
                    return
                except DataError as exc:  # a worker re-raises with the text only: restore a specific code
                    if exc.code != DataError.default_code:
                        raise
                    message = exc.message.strip().splitlines()[-1].split("] ", 1)[-1]
                    raise DataError(message, code="data.bad_image", field="path") from exc
                yield xb, yb
        finally:
            # Stop the workers now: after an error (or an epoch left early) the iterator lives on in the
            # traceback, and when the garbage collector ends it, its queues may already be gone, so each
            # worker is waited for 5 s (a 10 s freeze of whatever thread collects it).
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
