"""Trained models to and from checkpoint files: the glue between the model store, the trainer
and the serialisation package (REQ-H15, REQ-S01, REQ-S07, REQ-T13).

The metadata's ``model`` entry is everything needed to rebuild the architecture:
``{"spec": ModelSpec, "input_shape": [...], "num_outputs": n}``. A training checkpoint also holds
the trainer's state (optimiser, schedule, scaler, RNG, loop position, early stopping, history),
so a run continues exactly where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import CheckpointError
from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch import serialization as ser
from studio.backend.pytorch.model_store import TrainedModel
from studio.backend.pytorch.trainer import Trainer

__all__ = ["model_metadata", "build_from_metadata", "save_trained", "load_trained", "trainer_for"]


def model_metadata(tm: TrainedModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "model": {"spec": tm.spec.to_dict(), "input_shape": list(tm.input_shape), "num_outputs": tm.num_outputs},
        "task": tm.task,
        "class_names": list(tm.class_names),
        "preprocessing": tm.preprocessing,
        "training_config": tm.config.to_dict() if tm.config is not None else None,
        "data": tm.data.to_dict() if tm.data is not None else None,
        "metrics": tm.metrics,
    }
    meta.update(tm.extra_metadata)
    meta.update(extra or {})
    return meta


_WRITTEN_BY_SERIALIZATION = {"format", "kind", "created_utc", "versions", "aliases"}


def build_from_metadata(entry: dict[str, Any]) -> nn.Module:
    try:
        spec = ModelSpec.from_dict(entry["spec"])
        return model_lib.build_model(spec, tuple(entry["input_shape"]), int(entry["num_outputs"]))
    except (KeyError, TypeError) as exc:
        raise CheckpointError("The checkpoint does not say which model it holds; it was not written by Studio "
                              "or is damaged.", code="checkpoint.bad_spec") from exc


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


def _trained_from(model: nn.Module, meta: dict[str, Any], path: str) -> TrainedModel:
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
    """Load a model or training checkpoint; a training checkpoint also restores its trainer."""
    meta = ser.read_metadata(path)
    if meta.get("kind") != "training":
        model, meta = ser.load_model(path, build_from_metadata, device)
        return _trained_from(model, meta, path)
    model, state = ser.load_training_checkpoint(path, build_from_metadata, device, restore_rng=False)
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
    tm.trainer = trainer
    return tm


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
