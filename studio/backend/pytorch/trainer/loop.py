"""The training loop (PT-TRAINER-001; REQ-H08, REQ-H09, REQ-H13, REQ-H22).

``Trainer(model, task, config).fit(train=(x, y), val=(x, y))`` trains an ``nn.Module`` on
in-memory tensors; ``x`` may instead be an object that gathers its own batches like a CPU tensor
(``len``, ``shape``, ``dtype``, ``device``, ``dim()``, ``is_floating_point()``, ``to(dtype)``,
``index_select(0, idx)``, slicing), such as the images of a folder read from disk on demand
(``data.DiskImageInputs``). Everything the caller may rely on:

- The whole configuration is validated in the constructor, before any work (``ValidationError``
  naming the field).
- Each optimisation step runs forward, loss, backward, (unscale, measure, clip), optimiser step
  and zero-grad in :meth:`Trainer._step`; the model is in train mode while training and in eval
  mode under ``no_grad`` while validating, which happens after every epoch.
- Events: one ``RunStarted``, a ``StepStats`` per step, an ``EpochStats`` per epoch, ``RunPaused`` /
  ``RunResumed`` / ``RunWarning`` as they happen, then exactly one of ``RunFinished``,
  ``RunCancelled`` or ``RunFailed``. Every failure leaves as a ``StudioError`` after ``RunFailed``.
- Cancel and pause are checked before every optimisation step, so a run stops at most one step
  after the request; a cancelled run returns ``status="cancelled"`` with the state it reached.
- A fresh run seeds Python, NumPy and torch from ``seed``; the data order is a pure function of
  ``(seed, epoch)``; a continued or resumed run restores the random state where it stopped. On CPU
  the same seed, configuration and data give bit-identical weights and history, and a paused,
  cancelled-and-continued or checkpointed-and-resumed run ends bit-identical to an uninterrupted one.
- :meth:`Trainer.state_dict` (layout in :mod:`.state`) holds only tensors and JSON values.
- An optional ``objective`` replaces the task loss (knowledge distillation uses it). It is called
  ``objective(output, target, inputs, indices) -> loss`` for every micro-batch inside the autocast
  region, ``indices`` being the batch's positions in the training set; ``objective.parameters()``
  are optimised with the model's; ``objective.bind(trainer)`` runs at the end of the constructor;
  ``objective.step_metrics()`` adds to each step's metrics and ``objective.end_epoch() -> (val, extra)``
  to each epoch's validation figures and extras; ``objective.state_dict()`` is kept under ``objective``
  in :meth:`Trainer.state_dict`. Without one, nothing of this runs.
- An optional ``augment(x, epoch, step, part) -> x`` changes the inputs of every training micro-batch
  (validation never), on the CPU, given the batch's place in the run; a seeded one (REQ-D09,
  ``data.Augmenter.seeded``) keeps same-seed runs and their resumptions bit-identical.
- Under ``torchrun`` (a process group set up by :func:`studio.backend.pytorch.distributed.init_distributed`,
  or an explicit ``distributed`` context) the steps run through DistributedDataParallel, each rank
  trains on its shard of the same seeded epoch order, the epoch's training means are averaged over
  all ranks, and a cancel on any rank stops all of them at the same step (REQ-X03).
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import (
    CheckpointError,
    DeviceUnavailableError,
    OutOfMemoryError,
    StudioError,
    TrainingError,
    ValidationError,
)
from studio.backend.core.events import (
    EpochStats,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    RunWarning,
    StepStats,
)
from studio.backend.core.handler import EventSink, RunControl
from studio.backend.core.requests import TrainConfig
from studio.backend.pytorch.distributed import DistContext
from studio.backend.pytorch.distributed import current as distributed_context
from studio.backend.pytorch.trainer.running_stats import RunningStats

from .batching import EpochPlan, epoch_order
from .callbacks import CallbackList
from .early_stopping import Tracker
from .losses import METRICS, TaskLoss, check_task
from .optimizers import build_optimizer, check_optimizer
from .precision import Precision
from .result import FitResult
from .schedules import Schedule
from .state import (
    FORMAT,
    capture_rng,
    clone_tensors,
    decode_float,
    encode_floats,
    load_optimizer_state,
    optimizer_state,
    restore_rng,
    restore_stats,
    seed_all,
    stats_state,
)

__all__ = ["Trainer"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _positive(value: Any, field: str, kind: type = int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if not (ok and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        what = "a whole number" if kind is int else "a number"
        raise ValidationError(f"{field} must be {what} above zero, not {value!r}.", field=field, value=value)


class Trainer:
    """Trains ``model`` for ``task`` with ``config``; see the module docstring for the guarantees."""

    def __init__(
        self,
        model: nn.Module,
        task: str,
        config: TrainConfig,
        *,
        events: EventSink | None = None,
        control: RunControl | None = None,
        callbacks: Iterable[Any] = (),
        device: str | torch.device = "cpu",
        seed: int = 0,
        run_id: str | None = None,
        distributed: DistContext | None = None,
        objective: Any = None,
        augment: Callable[[torch.Tensor, int, int, int], torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise ValidationError("config must be a TrainConfig.", field="config", value=type(config).__name__)
        self.task = check_task(task)
        _positive(config.epochs, "epochs")
        _positive(config.batch_size, "batch_size")
        _positive(config.accumulate, "accumulate")
        _positive(config.clip_norm, "clip_norm", float, allow_none=True)
        _positive(config.clip_value, "clip_value", float, allow_none=True)
        check_optimizer(config)
        self.config = config
        self.loss = TaskLoss(task, config)
        self.schedule = Schedule.from_config(config)
        self.tracker = Tracker.from_config(config)
        metrics = {f"{split}_{name}" for split in ("train", "val") for name in ("loss", METRICS[task])}
        for field, name in (("monitor", self.tracker.monitor), ("schedule_options.monitor", self._plateau_name())):
            if name not in metrics:
                raise ValidationError(f"Cannot monitor {name!r} for a {task} task; use one of {', '.join(sorted(metrics))}.",
                                      field=field, value=name)
        # under torchrun (REQ-X03): DDP steps, a shard of each epoch's order, stats reduced across ranks
        self.distributed = distributed if distributed is not None else distributed_context()
        if self.distributed is not None:
            device = self.distributed.device
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValidationError(f"Unknown device {device!r}.", field="device", value=str(device)) from exc
        try:
            on_device = all(t.device == self.device for t in (*model.parameters(), *model.buffers()))
            self.model = model if on_device else model.to(self.device)
        except (RuntimeError, AssertionError) as exc:  # torch asserts when a backend is not compiled in
            raise DeviceUnavailableError(f"The device {device!r} is not available ({exc}).", field="device",
                                         value=str(device), hint="Choose an available device, such as cpu.") from exc
        self.precision = Precision(config.precision, self.device)
        self.objective = objective
        params = [*self.model.parameters(), *(objective.parameters() if objective is not None else ())]
        self.optimizer = build_optimizer(params, config)
        self.loss.to(self.device)
        self._params = [p for p in params if p.requires_grad]
        self.events = events
        self.control = control
        self.callbacks = CallbackList(callbacks)
        self.seed = int(seed)
        self.augment = augment
        self.run_id = run_id or f"train-{uuid.uuid4().hex[:8]}"
        # where the run is: the epoch in progress, the steps done in it and in total
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.stats = RunningStats()
        self._best: dict[str, torch.Tensor] | None = None
        self._last: dict[str, torch.Tensor] | None = None  # last weights, kept when the best are restored
        self._rng: dict[str, Any] | None = None  # the random state where the last run stopped
        self._running = False
        self._epoch_started = self._paused_at = 0.0
        self._monitor = self.tracker.monitor
        self._plateau = self._plateau_name()
        self._copy_batches = False
        self._net: nn.Module = self.model  # what the optimisation step calls: the model, or its DDP wrapper
        if objective is not None:
            objective.bind(self)

    # -- the run ------------------------------------------------------------------------------
    def fit(self, train: Batch, val: Batch | None = None) -> FitResult:
        """Train until ``config.epochs`` epochs are complete (counting epochs before a resume), early
        stopping or a cancel. Raises ``StudioError`` (after a ``RunFailed`` event) on failure."""
        x, y = self._prepare(train, "train")
        val = self._prepare(val, "val") if val is not None else None
        n = len(x) if self.distributed is None else self.distributed.shard_size(len(x))
        plan = EpochPlan(n, self.config.batch_size, self.config.accumulate)
        self.schedule.bind(plan.steps, self.config.epochs)
        warnings = [("train.precision_fallback", self.precision.warning)] if self.precision.warning else []
        self._monitor = self._resolve(self.tracker.monitor, val is not None, warnings)
        self._plateau = self._resolve(self._plateau_name(), val is not None, warnings)
        started = time.perf_counter()
        self._emit(RunStarted(self.run_id, "train", self.config.epochs, plan.steps, str(self.device),
                              self.epoch, self.global_step, self.config.to_dict()))
        for code, message in warnings:
            self._emit(RunWarning(self.run_id, code, message))
        was_training = self.model.training
        self._running = True
        self._net = self.model if self.distributed is None else self.distributed.wrap(self.model)
        try:
            if self._rng is not None:
                restore_rng(self._rng)
            else:
                seed_all(self.seed)
            status = self._run(plan, x, y, val)
        except BaseException as exc:
            error = _as_studio_error(exc, self.global_step)
            self._stop(was_training)
            self._emit(RunFailed(self.run_id, self.global_step, error.to_dict()))
            if error is exc or not isinstance(exc, Exception):
                raise
            raise error from exc
        self._stop(was_training)
        if status == "finished":
            self._restore_best()
            self._emit(RunFinished(self.run_id, self.global_step, self.epoch, _numbers(self._final())))
        else:
            self._emit(RunCancelled(self.run_id, self.global_step, self.epoch))
        return self._result(status, time.perf_counter() - started)

    def _run(self, plan: EpochPlan, x: torch.Tensor, y: torch.Tensor, val: Batch | None) -> str:
        self.model.train()
        while self.epoch < self.config.epochs and not self.tracker.stopped:
            order = epoch_order(self.seed, self.epoch, len(x))
            if self.distributed is not None:
                order = self.distributed.shard(order)
            order = order.to(x.device)
            self._epoch_started = time.perf_counter()  # the whole epoch: data, steps and validation
            for micro in plan.step_batches(order, self.step_in_epoch):
                if self.control is not None and not self._go_on():
                    return "cancelled"
                self._step(x, y, micro)
            self._end_epoch(val)
        return "finished"

    def _step(self, x: torch.Tensor, y: torch.Tensor, micro: list[torch.Tensor]) -> None:
        """One optimisation step over one or more micro-batches (gradient accumulation)."""
        started = time.perf_counter()
        lr = self.schedule.lr(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [self._batch(x, y, idx, part) for part, idx in enumerate(micro)]
        size = sum(len(yb) for _, yb in batches)
        shares = self._shares(batches, size)  # each micro-batch's part of the step's mean loss
        losses, metrics, count = [], [], 0
        for (xb, yb), idx, share in zip(batches, micro, shares):
            with self.precision.autocast():
                out = self._net(xb)
                loss = self.loss(out, yb) if self.objective is None else self.objective(out, yb, xb, idx)
            if share is not None:
                loss = loss * share
            self.precision.backward(loss)
            losses.append(loss)
            metrics.append(self.loss.metric_total(out, yb))
            count += self.loss.metric_count(yb)
        self.precision.unscale(self.optimizer)  # true gradients before they are measured or clipped
        grads = [p.grad for p in self._params if p.grad is not None]
        values = self._floats([*losses, *metrics, *_norms(grads)])  # the step's only host sync
        n = len(batches)
        loss_v, metric_v = sum(values[:n]), sum(values[n:2 * n]) / count
        grad_norm = math.sqrt(sum(v * v for v in values[2 * n:]))  # before clipping
        if not math.isfinite(loss_v) or (not math.isfinite(grad_norm) and self.precision.scaler is None):
            _zero_grad(self._params)
            raise self._nonfinite(loss_v, grad_norm)
        self._clip(grads, grad_norm)
        self.precision.step(self.optimizer)  # with loss scaling, skips steps with inf gradients
        _zero_grad(self._params)
        self._record(size, lr, loss_v, metric_v, grad_norm, time.perf_counter() - started)

    def _record(self, size: int, lr: float, loss: float, metric: float, grad_norm: float, seconds: float) -> None:
        self.global_step += 1
        self.step_in_epoch += 1
        name = self.loss.metric
        metrics = {name: metric, **(self.objective.step_metrics() if self.objective is not None else {})}
        self.stats.update(size, {"loss": loss, **metrics}, step_time_s=seconds, lr=lr, grad_norm=grad_norm)
        if self.events is not None or self.callbacks.step_hooks:
            event = StepStats(self.run_id, self.global_step, self.epoch, loss, size, lr, seconds,
                              size / seconds if seconds > 0 else math.inf, grad_norm, metrics)
            if self.events is not None:
                self.events(event)
            if self.callbacks.step_hooks:
                self.callbacks.on_step(event)

    def _end_epoch(self, val: Batch | None) -> None:
        train = self.stats.summary()
        if self.distributed is not None:
            train = dataclasses.replace(train, means=self.distributed.reduce_means(train.means, train.samples),
                                        samples_per_s=train.samples_per_s * self.distributed.world_size)
        val_means = self._validate(*val) if val is not None else {}
        val_more, extra_more = self.objective.end_epoch() if self.objective is not None else ({}, {})
        val_means = {**val_means, **val_more}
        seconds = time.perf_counter() - self._epoch_started
        world = self.distributed.world_size if self.distributed is not None else 1
        train = dataclasses.replace(train, duration_s=seconds,
                                    samples_per_s=train.samples * world / seconds if seconds > 0 else math.inf)
        record: dict[str, Any] = {"epoch": self.epoch, "step": self.global_step, "lr": train.last_lr}
        record.update({f"train_{k}": v for k, v in train.means.items()})
        record.update({f"val_{k}": v for k, v in val_means.items()})
        self.history.append(record)
        if self.tracker.update(self.epoch, record[self._monitor]):
            self._best = clone_tensors(self.model.state_dict())
        self.schedule.epoch_end(record[self._plateau], self._plateau_mode())
        extra = {"mean_step_time_s": train.mean_step_time_s}
        if train.last_grad_norm is not None:
            extra["grad_norm"] = train.last_grad_norm
        extra.update(extra_more)
        event = EpochStats(self.run_id, self.epoch, self.global_step, dict(train.means), val_means, train.last_lr,
                           train.duration_s, train.samples_per_s, extra)
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.stats.reset()
        self._emit(event)
        self.callbacks.on_epoch(event)

    @torch.no_grad()
    def _validate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Mean loss and metric over the held-out split, in eval mode (one host sync)."""
        self.model.eval()
        try:
            losses, metrics, counts = [], [], []
            for start in range(0, len(x), self.config.batch_size):
                xb = self._to_device(x[start:start + self.config.batch_size])
                yb = self._to_device(y[start:start + self.config.batch_size])
                with self.precision.autocast():
                    out = self.model(xb)
                    losses.append(self.loss(out, yb))
                metrics.append(self.loss.metric_total(out, yb))
                counts.append((len(yb), self.loss.metric_count(yb)))
            loss_values, metric_values = torch.stack(losses).tolist(), torch.stack(metrics).tolist()
        finally:
            self.model.train()
        stats = RunningStats()
        for (size, count), loss, metric in zip(counts, loss_values, metric_values):
            stats.update(size, {"loss": loss, self.loss.metric: metric / count})
        return stats.means()

    # -- step helpers ------------------------------------------------------------------------
    def _batch(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, part: int = 0) -> Batch:
        """Gather one training batch with one ``index_select`` per tensor (no per-sample work), augmented
        (on the CPU, before any copy to the device) when the trainer has ``augment``."""
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        if self.augment is not None:
            xb = self.augment(xb.cpu(), self.epoch, self.step_in_epoch, part).to(xb.device)
        if self._copy_batches:
            return self._to_device(xb), self._to_device(yb)
        return xb, yb

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if not self._copy_batches:
            return batch
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def _floats(self, values: list[torch.Tensor]) -> list[float]:
        """Scalars to the host: one stacked copy on accelerators; on CPU ``item()`` is cheaper than a stack."""
        if self.device.type == "cpu":
            return [v.item() for v in values]
        with torch.no_grad():
            return torch.stack(values).tolist()

    def _shares(self, batches: list[Batch], size: int) -> list[Any]:
        if len(batches) == 1:
            return [None]
        if self.loss.class_weights is None:
            return [len(yb) / size for _, yb in batches]
        weights = [self.loss.weight(yb) for _, yb in batches]
        total = sum(weights)
        return [w / total for w in weights]

    def _clip(self, grads: list[torch.Tensor], grad_norm: float) -> None:
        """Clip by total norm (as ``clip_grad_norm_``, from the norm already measured) and/or by value."""
        if self.config.clip_norm is not None:
            coef = self.config.clip_norm / (grad_norm + 1e-6)
            if coef < 1.0:
                torch._foreach_mul_(grads, coef)
        if self.config.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self._params, self.config.clip_value)

    def _nonfinite(self, loss: float, grad_norm: float) -> TrainingError:
        step = self.global_step + 1
        what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", grad_norm)
        return TrainingError(
            f"The {what} became {value} at step {step} (epoch {self.epoch}); training stopped and the weights "
            f"after step {self.global_step} were kept.",
            code="train.nonfinite_loss", field="step", value=step,
            hint="Lower the learning rate, turn on gradient clipping or check the data for NaN or infinite values.",
        )

    # -- run helpers -------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if self.events is not None:
            self.events(event)

    def _go_on(self) -> bool:
        go_on = self.control is None or self.control.wait_while_paused(self._paused, self._resumed)
        return go_on if self.distributed is None else self.distributed.agree(go_on)

    def _paused(self) -> None:
        self._paused_at = time.perf_counter()
        self._emit(RunPaused(self.run_id, self.global_step))

    def _resumed(self) -> None:
        self._epoch_started += time.perf_counter() - self._paused_at  # a pause is not part of the epoch's time
        self._emit(RunResumed(self.run_id, self.global_step))

    def _stop(self, was_training: bool) -> None:
        self._rng = capture_rng()
        self._running = False
        self.model.train(was_training)

    def _plateau_name(self) -> str:
        return self.schedule.options.get("monitor") or self.tracker.monitor

    def _plateau_mode(self) -> str:
        """The plateau rule's direction: its own ``mode``, else the tracker's for the same metric, else
        the metric's natural one (accuracy up, losses and errors down)."""
        if self.schedule.options.get("mode"):
            return self.schedule.options["mode"]
        if self._plateau_name() == self.tracker.monitor:
            return self.tracker.mode
        return "max" if self._plateau_name().endswith("accuracy") else "min"

    def _resolve(self, name: str, has_val: bool, warnings: list[tuple[str, str]] | None = None) -> str:
        """Without validation data a ``val_*`` monitor falls back to its ``train_*`` twin."""
        if has_val or not name.startswith("val_"):
            return name
        fallback = "train_" + name[len("val_"):]
        message = f"No validation data: monitoring {fallback} instead of {name}."
        if warnings is not None and ("train.monitor_fallback", message) not in warnings:
            warnings.append(("train.monitor_fallback", message))
        return fallback

    def _prepare(self, data: Any, name: str) -> Batch:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValidationError(f"{name} must be a pair (inputs, targets).", field=name)
        x, y = data[0] if _lazy(data[0]) else torch.as_tensor(data[0]), torch.as_tensor(data[1])
        if x.dim() == 0 or len(x) != len(y) or len(x) == 0:
            raise ValidationError(
                f"{name} needs as many targets as inputs and at least one sample; got {tuple(x.shape)} inputs "
                f"and {tuple(y.shape)} targets.", field=name, value=[list(x.shape), list(y.shape)],
            )
        dtype = self._params[0].dtype if self._params else torch.float32
        if x.is_floating_point() and x.dtype != dtype:
            x = x.to(dtype)
        y = self.loss.prepare_target(y, name, dtype)
        if x.device.type != "cpu" and x.device != self.device:
            x, y = x.cpu(), y.cpu()
        self._copy_batches = x.device != self.device
        return x, y

    def _restore_best(self) -> None:
        if self._last is not None:  # already restored by an earlier fit of this finished run
            return
        if self.tracker.restore_best and self._best is not None and self.tracker.best_epoch != self.epoch - 1:
            self._last = clone_tensors(self.model.state_dict())
            self.model.load_state_dict(self._best)

    def _final(self) -> dict[str, Any]:
        return dict(self.history[-1]) if self.history else {}

    def _result(self, status: str, seconds: float) -> FitResult:
        best = self.tracker.best_epoch
        return FitResult(
            status=status, epochs_run=len(self.history), steps=self.global_step,
            history=[dict(h) for h in self.history],
            best_metrics=dict(self.history[best]) if 0 <= best < len(self.history) else {},
            best_epoch=best, final_metrics=self._final(), stopped_early=self.tracker.stopped,
            monitor=self._monitor, precision=self.precision.name, duration_s=seconds,
        )

    # -- states ------------------------------------------------------------------------------
    def best_state(self) -> dict[str, torch.Tensor] | None:
        """A copy of the weights of the best epoch by the monitored metric (None before the first epoch)."""
        return clone_tensors(self._best) if self._best is not None else None

    def last_state(self) -> dict[str, torch.Tensor]:
        """A copy of the weights the run ended with (before any restore of the best)."""
        return clone_tensors(self._last if self._last is not None else self.model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (layout in :mod:`studio.backend.pytorch.trainer.state`).

        Call it between runs or from a callback (the state is then that of the completed step)."""
        rng = capture_rng() if self._running else self._rng
        state = {
            "format": FORMAT,
            "task": self.task,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "model": clone_tensors(self.model.state_dict()),
            "optimizer": optimizer_state(self.optimizer),
            "schedule": encode_floats(self.schedule.state_dict()),
            "scaler": encode_floats(self.precision.state_dict()),
            "precision": self.precision.name,
            "rng": clone_tensors(rng) if rng is not None else None,
            "loop": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step},
            "epoch_stats": encode_floats(stats_state(self.stats)),
            "early_stopping": encode_floats(self.tracker.state_dict()),
            "best": {"epoch": self.tracker.best_epoch,
                     "model": clone_tensors(self._best) if self._best is not None else None},
            "history": encode_floats(self.history),
        }
        if self.objective is not None:
            state["objective"] = self.objective.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the next :meth:`fit` resumes at the saved step."""
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise CheckpointError(f"This is not a training state of format {FORMAT!r}.", code="checkpoint.incompatible",
                                  field="format", value=state.get("format") if isinstance(state, dict) else None)
        if state["task"] != self.task:
            raise CheckpointError(f"The saved run is a {state['task']} task, this trainer a {self.task} task.",
                                  code="checkpoint.incompatible", field="task", value=state["task"])
        for key in ("batch_size", "accumulate"):
            if state["config"][key] != getattr(self.config, key):
                raise CheckpointError(
                    f"The saved run used {key}={state['config'][key]}, this trainer {getattr(self.config, key)}; "
                    "resuming needs the same value.", code="checkpoint.incompatible", field=key,
                    value=state["config"][key])
        try:
            self.model.load_state_dict(state["model"])
            load_optimizer_state(self.optimizer, state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"The saved state does not fit this model or optimiser: {exc}",
                                  code="checkpoint.incompatible", field="model") from exc
        self.schedule.load_state_dict(state["schedule"])
        self.precision.load_state_dict(state["scaler"])
        self.seed = int(state["seed"])
        self._rng = clone_tensors(state["rng"]) if state["rng"] is not None else None
        loop = state["loop"]
        self.epoch, self.step_in_epoch, self.global_step = loop["epoch"], loop["step_in_epoch"], loop["global_step"]
        restore_stats(self.stats, state["epoch_stats"])
        self.tracker.load_state_dict(state["early_stopping"])
        best = state["best"]["model"]
        self._best = {k: v.to(self.device).clone() for k, v in best.items()} if best is not None else None
        self._last = None
        self.history = [{k: v if isinstance(v, int) else decode_float(v) for k, v in h.items()}
                        for h in state["history"]]
        if self.objective is not None and state.get("objective") is not None:
            self.objective.load_state_dict(state["objective"])


def _lazy(x: Any) -> bool:
    """Inputs that gather their own batches (``DiskImageInputs``: images decoded from disk on demand)."""
    return not isinstance(x, torch.Tensor) and callable(getattr(x, "index_select", None))


def _zero_grad(params: list[nn.Parameter]) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` without its profiler annotation (~40 us a step on CPU)."""
    for p in params:
        p.grad = None


def _norms(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    if not grads:
        return []
    try:
        return list(torch._foreach_norm(grads))
    except RuntimeError:  # layouts the fused kernel does not take (sparse gradients)
        return [g.norm() for g in grads]


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()}


def _is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, MemoryError, or the plain RuntimeError that other allocators (the CPU's, MPS,
    older CUDA paths) raise: "CUDA out of memory", "DefaultCPUAllocator: can't allocate memory"."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _as_studio_error(exc: BaseException, step: int) -> StudioError:
    if isinstance(exc, StudioError):
        return exc
    if _is_out_of_memory(exc):
        return OutOfMemoryError(
            f"The device ran out of memory at step {step + 1}.", value=step + 1,
            hint="Lower the batch size, use gradient accumulation or mixed precision.",
        )
    return TrainingError(f"Training failed at step {step + 1}: {type(exc).__name__}: {exc}", value=step + 1)
