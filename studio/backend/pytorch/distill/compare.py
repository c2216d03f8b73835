"""Teacher evaluation, the student-alone baseline, and the comparison (REQ-KD21, KD22, H24).

- :func:`evaluate_on` computes a model's metrics exactly as the ``evaluate`` handler does (its own
  preprocessing on the raw inputs, batches of 256, metrics in the target's original units), so
  ``DistillResult.teacher_metrics`` equals ``evaluate`` of the teacher on the validation split.
- :func:`teacher_warning` flags a teacher near chance: accuracy below the majority-class share of
  the validation split plus 5 percentage points (regression: R^2 below 0.05).
- :class:`BaselineRun` trains the same student without a teacher, one epoch at a time alongside the
  distilled student, from a copy of its initial weights, with the same configuration and seed
  (hence the same data order and schedule), under its own random state: the caller's random state
  is saved before each of its epochs and restored after, so neither run disturbs the other. Its
  final weights equal those of a plain ``train`` run with the same seed.
- :func:`comparison_row` gives one row of ``DistillResult.comparison``: accuracy (or MSE),
  parameter count, size on disk (of the saved checkpoint) and inference latency (the median
  per-sample time over batches of the evaluation batch size on the run's device);
  :func:`gap_closed` the share of the teacher-student gap that distillation closed.
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from studio.backend.core.handler import RunControl
from studio.backend.core.requests import TrainConfig
from studio.backend.pytorch.evaluation import evaluate_outputs
from studio.backend.pytorch.inference import run_model
from studio.backend.pytorch.models import count_parameters
from studio.backend.pytorch.trainer import Trainer
from studio.backend.pytorch.trainer.state import capture_rng, restore_rng

__all__ = ["BaselineRun", "EVAL_BATCH", "comparison_row", "evaluate_on", "gap_closed", "measure_latency",
           "saved_size", "teacher_warning"]

EVAL_BATCH = 256
NEAR_CHANCE_MARGIN = 0.05


def evaluate_on(module: nn.Module | Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                targets: torch.Tensor, task: str, class_names: tuple[str, ...] = (),
                inverse_target: Callable[[torch.Tensor], torch.Tensor] | None = None,
                batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """Metrics of ``module`` on ``inputs`` (already normalised for it) against raw ``targets``."""
    outputs = run_model(module, inputs, batch_size) if isinstance(module, nn.Module) else module(inputs)
    if task == "regression" and inverse_target is not None:
        outputs = inverse_target(outputs)
    return dict(evaluate_outputs(task, outputs, targets, class_names).metrics)


def teacher_warning(metrics: dict[str, float], targets: torch.Tensor, task: str) -> str | None:
    """A message when the teacher is near chance on the validation split, else ``None``."""
    if task == "regression":
        r2 = metrics.get("r2")
        if r2 is not None and r2 < NEAR_CHANCE_MARGIN:
            return (f"The teacher explains almost none of the validation targets (R^2 {r2:.3f}); its outputs carry "
                    "little to learn from. Train the teacher longer or choose another one.")
        return None
    accuracy = metrics.get("accuracy")
    if accuracy is None or len(targets) == 0:
        return None
    if task == "classification":
        majority = float(torch.bincount(targets.long()).max()) / len(targets)
    else:
        positive = (targets.float() > 0.5).float().mean(0)
        majority = float(torch.maximum(positive, 1 - positive).mean())
    if accuracy < majority + NEAR_CHANCE_MARGIN:
        return (f"The teacher's validation accuracy is {accuracy:.1%}, near chance (always predicting the most "
                f"common class scores {majority:.1%}); distilling from it will not help. Train the teacher first or "
                "choose another one.")
    return None


def gap_closed(teacher: float | None, student: float | None, baseline: float | None, *,
               higher_is_better: bool = True) -> float | None:
    """``(student - baseline) / (teacher - baseline)`` (signs flipped for errors); ``None`` when the
    teacher is not better than the baseline or a figure is missing."""
    if teacher is None or student is None or baseline is None:
        return None
    sign = 1.0 if higher_is_better else -1.0
    denominator = sign * (teacher - baseline)
    if not denominator > 0:
        return None
    return sign * (student - baseline) / denominator


def measure_latency(module: nn.Module | Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                    device: torch.device | str, batch_size: int = EVAL_BATCH, repeats: int = 3) -> float:
    """Median per-sample inference time in milliseconds over batches of ``batch_size`` (after one warm-up)."""
    if len(inputs) == 0:
        return float("nan")
    is_module = isinstance(module, nn.Module)
    was_training = module.training if is_module else False
    if is_module:
        module.eval()
    times = []
    try:
        with torch.inference_mode():
            module(inputs[:batch_size].to(device))
            for _ in range(repeats):
                for start in range(0, len(inputs), batch_size):
                    batch = inputs[start:start + batch_size].to(device)
                    if torch.device(device).type == "cuda":
                        torch.cuda.synchronize()
                    began = time.perf_counter()
                    module(batch)
                    if torch.device(device).type == "cuda":
                        torch.cuda.synchronize()
                    times.append((time.perf_counter() - began) * 1000.0 / len(batch))
    finally:
        if is_module:
            module.train(was_training)
    return max(statistics.median(times), 1e-9)


def saved_size(save: Callable[[str], Any]) -> int:
    """Bytes of the checkpoint ``save(path)`` writes (into a temporary folder, removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="studio-size-") as folder:
        path = os.path.join(folder, "model.safetensors")
        save(path)
        return os.path.getsize(path)


def comparison_row(role: str, task: str, metrics: dict[str, float], modules: list[nn.Module], size_bytes: int,
                   latency_ms: float, **extra: Any) -> dict[str, Any]:
    key = "mse" if task == "regression" else "accuracy"
    params = sum(count_parameters(m)[0] for m in modules)
    return {"role": role, key: float(metrics[key]), "params": int(params), "size_bytes": int(size_bytes),
            "latency_ms": float(latency_ms), **extra}


class _StopAfterEachEpoch:
    def __init__(self, run: BaselineRun) -> None:
        self.run = run

    def on_epoch(self, event: Any) -> None:
        self.run.control.cancel()


class BaselineRun:
    """The student trained alone, one epoch per :meth:`run_epoch`; see the module docstring."""

    def __init__(self, initial: nn.Module, task: str, config: TrainConfig, *, device: torch.device | str,
                 seed: int, run_id: str) -> None:
        self.control = RunControl()
        self.trainer = Trainer(copy.deepcopy(initial), task, config, device=device, seed=seed,
                               run_id=f"{run_id}-baseline", callbacks=[_StopAfterEachEpoch(self)], control=self.control)
        self.train: tuple[torch.Tensor, torch.Tensor] | None = None
        self.val: tuple[torch.Tensor, torch.Tensor] | None = None
        self.result: Any = None

    def bind(self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.train, self.val = train, val

    @property
    def model(self) -> nn.Module:
        return self.trainer.model

    @property
    def done(self) -> bool:
        t = self.trainer
        return t.epoch >= t.config.epochs or t.tracker.stopped

    def run_epoch(self) -> dict[str, Any]:
        """Train one more epoch (unless finished) and return its history record."""
        assert self.train is not None, "bind() the data first"
        if not self.done:
            saved = capture_rng()
            try:
                self.control = RunControl()
                self.trainer.control = self.control
                self.result = self.trainer.fit(self.train, self.val)
            finally:
                restore_rng(saved)
        return dict(self.trainer.history[-1]) if self.trainer.history else {}

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state)
