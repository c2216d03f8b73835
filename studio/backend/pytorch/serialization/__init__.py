"""Checkpoints, atomic writes and checked export (PT-SERIAL-001, REQ-T22, REQ-T23).

Public surface::

    save_model(path, model, metadata) -> FileInfo              one .safetensors file + metadata
    load_model(path, build, device="cpu") -> (model, metadata)  build(spec) -> nn.Module, never unpickles
    read_metadata(path) -> metadata                            header only
    save_training_checkpoint(path, model, optimizer, extra_state, metadata) -> FileInfo
    load_training_checkpoint(path, build, device="cpu") -> (model, state)
    import_state_dict(path) -> {name: tensor}                  explicit, torch.load(weights_only=True)
    write_model_card(checkpoint_path) -> FileInfo              model.card.json beside the checkpoint
    atomic_write(path, write_fn) -> FileInfo                   write_fn(tmp_path) fills the file
    export_torchscript / export_onnx / export_model -> ExportResult   checked against the live model

``metadata`` is JSON: ``model`` (the spec, required), ``task``, ``class_names``,
``preprocessing``, ``training_config``, ``metrics`` and anything else the caller wants kept.
Errors are :class:`~studio.backend.core.errors.CheckpointError` (codes ``checkpoint.*``),
:class:`~studio.backend.core.errors.ValidationError` or
:class:`~studio.backend.core.errors.ExportError`.
"""

from __future__ import annotations

from studio.backend.pytorch.serialization.atomic import FileInfo, atomic_write
from studio.backend.pytorch.serialization.checkpoint import load_model, read_metadata, save_model
from studio.backend.pytorch.serialization.export import export_model, export_onnx, export_torchscript
from studio.backend.pytorch.serialization.interop import import_state_dict, write_model_card
from studio.backend.pytorch.serialization.metadata import FORMAT_VERSION
from studio.backend.pytorch.serialization.training_state import load_training_checkpoint, save_training_checkpoint

__all__ = [
    "FORMAT_VERSION",
    "FileInfo",
    "atomic_write",
    "save_model",
    "load_model",
    "read_metadata",
    "save_training_checkpoint",
    "load_training_checkpoint",
    "import_state_dict",
    "write_model_card",
    "export_model",
    "export_torchscript",
    "export_onnx",
]
