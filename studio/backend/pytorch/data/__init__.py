"""Datasets for the PyTorch backend (PT-DATA-001, REQ-D01..D09).

Load (:func:`load_data`), split (:func:`split_data`), fit normalisation on the training split
(:func:`fit_preprocessing`; on-disk images read in :class:`DiskImageBatches`), give a split's inputs to the trainer (:func:`split_inputs`: a tensor, or
:class:`DiskImageInputs` decoded from disk on demand), augment (:class:`Augmenter`) and describe
(:func:`summarize`). Batching is the trainer's (:mod:`studio.backend.pytorch.trainer.batching`).
"""

from studio.backend.pytorch.data.augment import Augmenter, augmenter_from_spec
from studio.backend.pytorch.data.builtin import builtin_datasets, load_builtin
from studio.backend.pytorch.data.csv_table import CsvTable, read_csv_table
from studio.backend.pytorch.data.disk_images import DiskImageBatches
from studio.backend.pytorch.data.disk_inputs import DiskImageInputs, split_inputs
from studio.backend.pytorch.data.images import load_image_folder
from studio.backend.pytorch.data.loader import SOURCES, load_data
from studio.backend.pytorch.data.numpy_files import arrays_to_data, load_numpy
from studio.backend.pytorch.data.preprocessing import Preprocessing, fit_preprocessing
from studio.backend.pytorch.data.seeding import derive_seed, epoch_permutation
from studio.backend.pytorch.data.splits import Splits, split_data, split_indices, validate_fractions
from studio.backend.pytorch.data.summary import preview, summarize
from studio.backend.pytorch.data.tabular import encode_features, load_csv
from studio.backend.pytorch.data.types import INPUT_KINDS, TASKS, DataBundle, DiskImageData, LoadedData

__all__ = [
    "Augmenter", "augmenter_from_spec", "CsvTable", "DataBundle", "DiskImageBatches", "DiskImageData", "DiskImageInputs", "INPUT_KINDS",
    "LoadedData", "Preprocessing", "SOURCES", "Splits", "TASKS", "arrays_to_data", "builtin_datasets", "derive_seed",
    "encode_features", "epoch_permutation", "fit_preprocessing", "load_builtin", "load_csv", "load_data",
    "load_image_folder", "load_numpy", "preview", "read_csv_table", "split_data", "split_indices", "split_inputs", "summarize",
    "validate_fractions",
]
