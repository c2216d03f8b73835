"""Trained models to and from checkpoint files: the glue between the model store, the trainer
and the serialisation package (REQ-H15, REQ-S01, REQ-S07, REQ-T13).

The metadata's ``model`` entry is everything needed to rebuild the architecture:
``{"spec": ModelSpec, "input_shape": [...], "num_outputs": n}``. A training checkpoint also holds
the trainer's state (optimiser, schedule, scaler, RNG, loop position, early stopping, history),
so a run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import CheckpointError, StudioError
from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch import serialization as ser
from studio.backend.pytorch.data.types import TASKS
from studio.backend.pytorch.model_store import TrainedModel
from studio.backend.pytorch.serialization.metadata import RESERVED
from studio.backend.pytorch.trainer import Trainer

__all__ = ["model_metadata", "build_from_metadata", "save_trained", "load_trained", "trainer_for"]


def model_metadata(tm: TrainedModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "model": {"spec": tm.spec.to_dict(), "input_shape": list(tm.input_shape), "num_outputs": tm.num_outputs},
        "task": tm.task,
        "class_names": list(tm.class_names),
        "preprocessing": tm.preprocessing,
        "metrics": tm.metrics,
    }
    if tm.config is not None:  # absent (not null) for models that were never trained here
        meta["training_config"] = tm.config.to_dict()
    if tm.data is not None:
        meta["data"] = tm.data.to_dict()
    meta.update(tm.extra_metadata)
    meta.update(extra or {})
    return meta


_WRITTEN_BY_SERIALIZATION = set(RESERVED)  # format, format_version, kind, ...: written anew by every save


def build_from_metadata(entry: dict[str, Any], path: str | None = None) -> nn.Module:
    where = f"The checkpoint {Path(path).name!r}" if path else "The checkpoint"
    try:
        spec = ModelSpec.from_dict(entry["spec"])
        return model_lib.build_model(spec, tuple(entry["input_shape"]), int(entry["num_outputs"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} does not say which model it holds; it was not written by Studio "
                              "or is damaged.", code="checkpoint.bad_spec", field="path", value=path) from exc
    except StudioError as exc:  # a spec this Studio cannot build (unknown model, bad hyperparameter, ...)
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{where} holds a model this Studio cannot rebuild: {exc.message}",
                              code="checkpoint.bad_spec", field="path", value=path, hint=exc.hint) from exc


def save_trained(path: str, tm: TrainedModel, *, training_state: bool = False) -> ser.FileInfo:
    """Write ``tm`` atomically; with ``training_state`` the trainer's state too (for exact resume)."""
    meta = model_metadata(tm)
    if not training_state:
        return ser.save_model(path, tm.module, meta)
    if tm.trainer is None:
        raise CheckpointError("This model has no training state to save (it was loaded for prediction); "
                              "save it without training state.", code="checkpoint.no_training_state", field="model")
    state = tm.trainer.state_dict()
    state.pop("model")
    state.pop("optimizer")  # stored in the optimiser slot by the serialisation package
    return ser.save_training_checkpoint(path, tm.trainer.model, tm.trainer.optimizer, {"trainer": state}, meta)


def _check_metadata(meta: dict[str, Any], path: str) -> None:
    """The documented entries must have their documented types (a hand-edited file may not)."""
    kinds = {"model": dict, "class_names": list, "preprocessing": dict, "metrics": dict}
    bad = [k for k, kind in kinds.items() if k in meta and not isinstance(meta[k], kind)]
    bad += [k for k in ("training_config", "data") if meta.get(k) is not None and not isinstance(meta[k], dict)]
    if meta.get("task", "classification") not in TASKS:
        bad.append("task")
    if isinstance(meta.get("class_names"), list) and not all(isinstance(c, str) for c in meta["class_names"]):
        bad.append("class_names")
    if bad:
        raise CheckpointError(f"{Path(path).name!r} is not a valid checkpoint: its metadata entry {bad[0]!r} is "
                              f"{meta.get(bad[0])!r:.60}, which Studio does not write there.", code="checkpoint.corrupt",
                              field="path", value=path, hint="The file may have been edited or damaged; use another copy.")


def _trained_from(model: nn.Module, meta: dict[str, Any], path: str) -> TrainedModel:
    _check_metadata(meta, path)
    entry = meta["model"]
    config = meta.get("training_config")
    data = meta.get("data")
    known = {"model", "task", "class_names", "preprocessing", "training_config", "data", "metrics"}
    return TrainedModel(
        module=model, spec=ModelSpec.from_dict(entry["spec"]), input_shape=tuple(entry["input_shape"]),
        num_outputs=int(entry["num_outputs"]), task=str(meta.get("task", "classification")),
        class_names=tuple(meta.get("class_names") or ()), preprocessing=dict(meta.get("preprocessing") or {}),
        data=DataSpec.from_dict(data) if data else None, config=TrainConfig.from_dict(config) if config else None,
        metrics=dict(meta.get("metrics") or {}), source_path=path,
        extra_metadata={k: v for k, v in meta.items() if k not in known | _WRITTEN_BY_SERIALIZATION},
    )


def load_trained(path: str, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model or training checkpoint; a training checkpoint also restores its trainer.

    Metadata that the serialisation package accepts but that does not describe a Studio model or run
    (a hand-edited or foreign document with a valid checksum) is ``checkpoint.corrupt``.
    """
    meta = ser.read_metadata(path)
    build = functools.partial(build_from_metadata, path=path)
    if meta.get("kind") != "training":
        model, meta = ser.load_model(path, build, device)
        with _damaged_metadata(path):
            tm = _trained_from(model, meta, path)
        _own_memory(model)
        return tm
    model, state = ser.load_training_checkpoint(path, build, device, restore_rng=False)
    with _damaged_metadata(path):
        tm = _trained_from(model, state["metadata"], path)
        if tm.config is None:
            raise CheckpointError("The training checkpoint has no training configuration; it cannot be resumed.",
                                  code="checkpoint.corrupt", field="path", value=path)
        trainer = Trainer(model, tm.task, tm.config, device=device, seed=int(state["trainer"]["seed"]))
        trainer_state = dict(state["trainer"])
        trainer_state["model"] = model.state_dict()
        trainer_state["optimizer"] = _fresh_optimizer_state(trainer)
        trainer.load_state_dict(trainer_state)
        trainer.optimizer.load_state_dict(state["optimizer_state_dict"])
        _own_memory(model, trainer.optimizer)
    tm.trainer = trainer
    return tm


def _own_memory(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Copy the loaded CPU tensors out of the checkpoint's memory map.

    Loading maps the file (REQ-S09), but the store keeps a model for the whole session: if another
    program then rewrites the file in place (``safetensors.torch.save_file``, ``cp``), reading a
    tensor still mapped from it kills the process with SIGBUS.
    """
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:  # each shared (tied) tensor once
            if t.device.type == "cpu":
                t.data = t.data.clone()
        for slot in (optimizer.state.values() if optimizer is not None else ()):
            for key, value in slot.items():
                if isinstance(value, torch.Tensor) and value.device.type == "cpu":
                    slot[key] = value.clone()


@contextlib.contextmanager
def _damaged_metadata(path: str) -> Iterator[None]:
    """Turn a failure to interpret a checkpoint's metadata or training state into ``checkpoint.corrupt``."""
    name = Path(path).name
    try:
        yield
    except CheckpointError as exc:
        if name in exc.message:
            raise
        raise CheckpointError(f"{name!r} cannot be used: {exc.message}", code=exc.code, field="path", value=path,
                              hint=exc.hint) from exc
    except (torch.OutOfMemoryError, MemoryError):
        raise
    except (StudioError, KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        why = exc.message if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{name!r} is not a valid checkpoint: its metadata or training state is "
                              f"damaged ({why.rstrip('.')}).", code="checkpoint.corrupt", field="path", value=path,
                              hint="The file may have been edited or damaged; use another copy.") from exc


def trainer_for(tm: TrainedModel, config: TrainConfig, **kwargs: Any) -> Trainer:
    """A trainer over ``tm``'s model that continues ``tm``'s run with ``config`` (more epochs, ...)."""
    if tm.trainer is None:
        raise CheckpointError("This model has no training state to continue from; train it here or load a "
                              "training checkpoint.", code="checkpoint.no_training_state", field="model")
    trainer = Trainer(tm.trainer.model, tm.task, config, **kwargs)
    trainer.load_state_dict(tm.trainer.state_dict())
    return trainer


def _fresh_optimizer_state(trainer: Trainer) -> Any:
    return trainer.state_dict()["optimizer"]


def file_size(path: str) -> int:
    return Path(path).stat().st_size
