"""The inputs of one split of an on-disk image folder, decoded only when a batch asks (REQ-D03).

:class:`DiskImageInputs` stands for ``preprocessing.apply(data.x[indices])`` of a
:class:`DiskImageData`, which has no ``x``: it has that tensor's length, shape, dtype and device,
and ``index_select(0, idx)`` or ``inputs[a:b]`` read just those images (with the loader's own
:func:`read_image`, through :class:`ImageFileDataset`) and normalise them. So the trainer's batch
gather and validation, and batched inference, run on a folder too big for memory unchanged, and
give exactly the numbers the in-memory tensor would: the same decode, and normalisation is
element-wise. :func:`split_inputs` returns the real tensor for in-memory data, this otherwise.
"""

from __future__ import annotations

import torch

from studio.backend.pytorch.data.disk_images import ImageFileDataset
from studio.backend.pytorch.data.preprocessing import Preprocessing
from studio.backend.pytorch.data.types import DataBundle, DiskImageData

__all__ = ["DiskImageInputs", "split_inputs"]


class DiskImageInputs:
    """Tensor-like, read-only, on the CPU: ``len``, ``shape``, ``dtype``, ``device``, ``dim()``,
    ``is_floating_point()``, ``to(dtype)``, ``cpu()``, ``index_select(0, idx)`` and indexing by an int,
    a slice or an index tensor. Every gather decodes its images again (nothing is cached)."""

    def __init__(self, data: DiskImageData, indices: torch.Tensor, preprocessing: Preprocessing | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.files = ImageFileDataset(data, indices)
        self.preprocessing = preprocessing
        self.dtype = dtype
        self.shape = torch.Size((len(self.files), *data.input_shape))
        self.device = torch.device("cpu")
        self._data, self._indices = data, indices

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"DiskImageInputs({self._data.name!r}, shape={tuple(self.shape)}, dtype={self.dtype})"

    def dim(self) -> int:
        return len(self.shape)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def to(self, dtype: torch.dtype) -> DiskImageInputs:
        """The same images converted to ``dtype`` as they are decoded (only a dtype: they stay on the CPU)."""
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"DiskImageInputs.to takes a dtype, not {dtype!r}; batches move to a device once decoded.")
        return self if dtype == self.dtype else DiskImageInputs(self._data, self._indices, self.preprocessing, dtype)

    def cpu(self) -> DiskImageInputs:
        return self

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        """The samples at positions ``index`` (of this split), decoded and normalised, as one tensor."""
        if dim != 0:
            raise IndexError(f"DiskImageInputs selects samples (dim 0) only, not dim {dim}.")
        return self._decode(index.reshape(-1).tolist())

    def __getitem__(self, key: int | slice | torch.Tensor) -> torch.Tensor:
        if isinstance(key, torch.Tensor):
            return self.index_select(0, key)
        if isinstance(key, slice):
            return self._decode(list(range(len(self))[key]))  # a range slice: O(batch), not O(split)
        if isinstance(key, int) and not isinstance(key, bool):
            return self._decode([key])[0]
        raise TypeError(f"DiskImageInputs is indexed by an int, a slice or an index tensor, not {type(key).__name__}.")

    def _decode(self, positions: list[int]) -> torch.Tensor:
        n = len(self)
        bad = [p for p in positions if not -n <= p < n]
        if bad:
            raise IndexError(f"Sample position {bad[0]} is outside this split of {n} images.")
        if not positions:
            batch = torch.empty((0, *self.shape[1:]), dtype=torch.float32)
        else:
            batch = torch.stack([self.files[p][0] for p in positions])
        if self.preprocessing is not None:
            batch = self.preprocessing.apply(batch)
        return batch if batch.dtype == self.dtype else batch.to(self.dtype)


def split_inputs(data: DataBundle, indices: torch.Tensor,
                 preprocessing: Preprocessing | None = None) -> torch.Tensor | DiskImageInputs:
    """The (normalised) inputs of the samples ``indices``: a tensor in memory, decoded on demand from disk."""
    if data.in_memory:
        x = data.x[indices]  # type: ignore[union-attr]
        return preprocessing.apply(x) if preprocessing is not None else x
    return DiskImageInputs(data, indices, preprocessing)  # type: ignore[arg-type]
