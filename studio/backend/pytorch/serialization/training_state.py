"""Training checkpoints: everything a bit-identical resume needs, in one safetensors file (REQ-S07, REQ-T22).

On top of a model checkpoint the file holds

- the optimiser's ``state_dict()``: its tensors under ``optim/...`` (``optim/state/0/exp_avg``),
  the rest (param groups, integer ids, tuples) as tagged JSON;
- ``extra_state``, whatever else the trainer must restore, by convention ``scheduler``,
  ``scaler`` (``GradScaler.state_dict()``), ``epoch``, ``step``, ``early_stopping``, ``best_state``,
  ``data_order`` and ``history``: its tensors under ``state/...``, the rest as tagged JSON;
- the RNG states at the moment of saving (``state/rng/...``, see ``rng.py``).

The JSON goes in the ``studio.state`` metadata entry (see ``state_codec.py`` for its tags); the
model's own tensors keep their plain names, so the weights still load with plain safetensors once
the ``optim/`` and ``state/`` entries are set aside.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import CheckpointError, ValidationError
from studio.backend.pytorch.runtime import resolve_device
from studio.backend.pytorch.serialization.atomic import FileInfo
from studio.backend.pytorch.serialization.checkpoint import (
    Build,
    materialise,
    model_state,
    open_checkpoint,
    save_checkpoint,
)
from studio.backend.pytorch.serialization.rng import capture_rng_state, restore_rng_state
from studio.backend.pytorch.serialization.state_codec import decode, encode

__all__ = ["save_training_checkpoint", "load_training_checkpoint", "STATE_KEY"]

STATE_KEY = "studio.state"
_RESERVED = ("optimizer_state_dict", "rng", "metadata")


def save_training_checkpoint(path: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                             extra_state: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> FileInfo:
    """Write model, optimiser, ``extra_state`` and the current RNG states to ``path``."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValidationError(f"Expected a torch.optim.Optimizer, not {type(optimizer).__name__}.", field="optimizer")
    extra = dict(extra_state or {})
    taken = [k for k in _RESERVED if k in extra]
    if taken:
        raise ValidationError(f"extra_state may not use the key {taken[0]!r}; Studio fills it in.",
                              field=f"extra_state.{taken[0]}")
    weights = model_state(model)
    tensors: dict[str, torch.Tensor] = {}
    document = {
        "optimizer": encode(optimizer.state_dict(), "optim/", tensors),
        "extra": encode(extra, "state/", tensors),
        "rng": encode(capture_rng_state(), "state/rng/", tensors),
    }
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    return save_checkpoint(path, weights, metadata, kind="training", extra_tensors=tensors,
                           extra_metadata={STATE_KEY: text})


def load_training_checkpoint(path: str | os.PathLike[str], build: Build, device: str | torch.device = "cpu", *,
                             restore_rng: bool = True, verify: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model and return ``(model, state)``.

    ``state`` holds ``optimizer_state_dict`` (give it to ``optimizer.load_state_dict`` of an
    optimiser built over the returned model's parameters), every key of the saved
    ``extra_state``, ``rng`` and ``metadata``. With ``restore_rng`` (the default) the global RNG
    states are set back to the moment of saving, last, after the model is built. Optimiser and
    state tensors are on the CPU (``load_state_dict`` moves them next to their parameters).
    """
    dev = resolve_device(str(device))
    header, doc = open_checkpoint(path, verify=verify)
    text = header.metadata.get(STATE_KEY)
    if doc.get("kind") != "training" or text is None:
        raise CheckpointError(f"{header.path.name!r} is a model checkpoint without training state; it can be "
                              "loaded for prediction but not resumed.", code="checkpoint.no_training_state",
                              field="path", value=str(header.path))
    try:
        document = json.loads(text)
        parts = {key: document[key] for key in ("optimizer", "extra", "rng")}
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"The training state in {header.path.name!r} does not parse; the file is damaged.",
                              code="checkpoint.corrupt", field="path", value=str(header.path)) from exc
    model, tensors = materialise(header, doc, build, dev)
    try:
        extra = decode(parts["extra"], tensors)
        decoded = {"optimizer_state_dict": decode(parts["optimizer"], tensors), "rng": decode(parts["rng"], tensors)}
    except (CheckpointError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a tag of the wrong shape
        why = exc.message.rstrip(".") if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"The training state in {header.path.name!r} does not parse; the file is damaged "
                              f"({why}).", code="checkpoint.corrupt", field="path", value=str(header.path)) from exc
    state = {"optimizer_state_dict": decoded["optimizer_state_dict"], **(extra if isinstance(extra, dict) else {}),
             "rng": decoded["rng"], "metadata": doc}
    if restore_rng:
        restore_rng_state(state["rng"])
    return model.train(), state
