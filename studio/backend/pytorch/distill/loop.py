"""The distillation step on top of the trainer (PT-TRAINER-001): a plug-in, not a second loop.

:class:`Distillation` is the trainer's ``objective`` (see :class:`~studio.backend.pytorch.trainer.Trainer`):
the trainer keeps its loop, batching, optimiser, precision, validation, events, callbacks, cancel,
pause and exact resume, and asks the objective for each micro-batch's loss from the student's
outputs, the targets, the inputs and the batch's sample indices. The objective adds:

- the teacher target: cached outputs by sample index, or a live forward of the frozen teachers on
  the same inputs (mapped to each teacher's normalisation), combined by the ensemble at the
  temperature in force;
- the hard, soft and feature terms with their scheduled weights (:class:`DistillObjective`), and
  the adapters' parameters, which the trainer optimises with the student's;
- the terms, the teacher-student agreement and the values in force in every step's metrics;
- at each epoch end, the same terms and the agreement on the validation split, then one epoch of
  the optional student-alone baseline (:class:`~studio.backend.pytorch.distill.compare.BaselineRun`);
- its state (adapters, baseline) inside the trainer's ``state_dict()`` under ``objective``.

Teachers run in eval mode under inference mode and draw no random numbers; the baseline runs
under its own random state; so with ``soft_weight = 0`` and no feature pairs the student's
weights equal those of plain training with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from studio.backend.core.events import RunWarning
from studio.backend.pytorch.distill.adapters import Adapters
from studio.backend.pytorch.distill.cache import TeacherCache
from studio.backend.pytorch.distill.objective import DistillObjective, LossTerms, agreement
from studio.backend.pytorch.distill.teacher import TeacherEnsemble
from studio.backend.pytorch.models import capture_features
from studio.backend.pytorch.trainer.state import clone_tensors

__all__ = ["Distillation", "InputMap", "TERM_KEYS"]

TERM_KEYS = ("hard_loss", "soft_loss", "feature_loss", "agreement")
InputMap = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _Means:
    """Batch-size-weighted sums of a step's (or a validation pass's) terms, synced to the host once."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, torch.Tensor]] = []
        self.values: dict[str, float] = {}
        self.names: list[str] = []

    def add(self, size: int, terms: LossTerms, agree: torch.Tensor | None, values: dict[str, float]) -> None:
        """``agree`` is None for regression, which has no top-1 to agree on."""
        keys = TERM_KEYS if agree is not None else TERM_KEYS[:3]
        self.names = [*keys, *(f"feature_loss/{k}" for k in terms.features)]
        parts = [terms.hard, terms.soft, terms.feature, *([agree.to(terms.hard.device)] if agree is not None else []),
                 *terms.features.values()]
        self.rows.append((size, torch.stack([p.float().reshape(()) for p in parts])))
        self.values = values

    def means(self) -> dict[str, float]:
        if not self.rows:
            return {}
        sizes = [s for s, _ in self.rows]
        table = torch.stack([r for _, r in self.rows]).double().cpu()
        weights = torch.tensor(sizes, dtype=torch.float64)
        sums = (table * weights[:, None]).sum(0) / weights.sum()
        out = dict(zip(self.names, (float(v) for v in sums.tolist())))
        out.update(self.values)
        return out


class Distillation:
    """The trainer objective of a distillation run; see the module docstring.

    ``teacher_inputs[i]`` maps a batch as the student sees it to teacher ``i``'s normalisation and
    ``teacher_outputs[i]`` maps teacher ``i``'s outputs to the student's target scale (both identity
    by default). ``caches[i]`` (or ``None``) holds teacher ``i``'s outputs by training-sample index.
    ``val`` is the validation split as the student sees it, ``(x, y)``; ``baseline`` a
    :class:`BaselineRun` advanced one epoch at each epoch end; ``teacher_val_metric`` the teacher's
    value of the trainer's validation metric, for the worse-than-baseline warning.
    """

    def __init__(
        self,
        objective: DistillObjective,
        teachers: TeacherEnsemble,
        *,
        adapters: Adapters | None = None,
        caches: Sequence[TeacherCache | None] | None = None,
        teacher_inputs: Sequence[InputMap] | None = None,
        teacher_outputs: Sequence[InputMap] | None = None,
        val: tuple[torch.Tensor, torch.Tensor] | None = None,
        baseline: Any = None,
        teacher_val_metric: float | None = None,
        eval_batch_size: int = 256,
    ) -> None:
        n = len(teachers)
        self.objective = objective
        self.teachers = teachers
        self.task = objective.task
        self.adapters = adapters
        self.caches = list(caches) if caches is not None else [None] * n
        self.inputs = list(teacher_inputs) if teacher_inputs is not None else [_identity] * n
        self.outputs = list(teacher_outputs) if teacher_outputs is not None else [_identity] * n
        self.student_layers = [s for s, _ in objective.pairs]
        self.teacher_layers = [t for _, t in objective.pairs]
        self.baseline = baseline
        self.teacher_val_metric = teacher_val_metric
        self.eval_batch_size = int(eval_batch_size)
        self.trainer: Any = None
        self.warned: list[str] = []
        self._features: dict[str, torch.Tensor] = {}
        self._step = _Means()
        self._step_id = -1
        self.val = val
        self._val_teacher: list[torch.Tensor | None] | None = None
        self._val_features: dict[str, torch.Tensor] = {}

    # -- the trainer's plug-in protocol ---------------------------------------------------------
    def bind(self, trainer: Any) -> None:
        """Called once by the trainer's constructor: moves adapters and teachers to its device."""
        self.trainer = trainer
        self.objective.task_loss = trainer.loss  # the trainer's own task loss: same code, same numbers
        if self.adapters is not None:
            self.adapters.to(trainer.device)
        for t in self.teachers.teachers:
            t.to(trainer.device)
        self.teachers.train(False)
        if self.val is not None:
            self._val_teacher, self._val_features = self._teacher_pass(self.val[0])

    def parameters(self) -> list[nn.Parameter]:
        """Extra trainable parameters (the adapters'), optimised with the student's."""
        return list(self.adapters.parameters()) if self.adapters is not None else []

    @contextmanager
    def attach(self, student: nn.Module) -> Iterator[None]:
        """While the run lasts, record the student's feature-pair layers on every forward pass."""
        if not self.student_layers:
            yield
            return
        with capture_features(student, sorted(set(self.student_layers))) as feats:
            self._features = feats
            try:
                yield
            finally:
                self._features = {}

    def __call__(self, output: torch.Tensor, target: torch.Tensor, inputs: torch.Tensor,
                 indices: torch.Tensor) -> torch.Tensor:
        """The loss of one micro-batch (called by the trainer inside its autocast region)."""
        step, epoch = self.trainer.global_step, self.trainer.epoch
        if step != self._step_id:
            self._step, self._step_id = _Means(), step
        values = self.objective.values(step, epoch)
        outs, feats = self._teacher_batch(inputs, indices)
        terms, agree = self._terms(output, target, outs, feats, values)
        self._step.add(len(target), terms, agree, values)
        return terms.total

    def step_metrics(self) -> dict[str, float]:
        """The step's terms, agreement and values in force (after the optimiser step)."""
        out, self._step = self._step.means(), _Means()
        return out

    def end_epoch(self) -> tuple[dict[str, float], dict[str, float]]:
        """After the trainer's validation: ``(validation terms and agreement, extra epoch figures)``."""
        val = self._validate()
        extra: dict[str, float] = {}
        if self.baseline is not None:
            record = self.baseline.run_epoch()
            extra.update({f"baseline_{k}": float(v) for k, v in record.items()
                          if k.startswith(("train_", "val_")) and isinstance(v, (int, float))})
            self._check_baseline(record)
        return val, extra

    def state_dict(self) -> dict[str, Any]:
        return {
            "adapters": clone_tensors(self.adapters.state_dict()) if self.adapters is not None else {},
            "baseline": self.baseline.state_dict() if self.baseline is not None else None,
            "warned": list(self.warned),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.adapters is not None and state.get("adapters"):
            self.adapters.load_state_dict(state["adapters"])
        if self.baseline is not None and state.get("baseline") is not None:
            self.baseline.load_state_dict(state["baseline"])
        self.warned = list(state.get("warned") or [])

    # -- teacher outputs ---------------------------------------------------------------------
    def _teacher_batch(self, inputs: torch.Tensor, indices: torch.Tensor
                       ) -> tuple[list[torch.Tensor | None], dict[str, torch.Tensor]]:
        outs: list[torch.Tensor | None] = [None] * len(self.teachers)
        feats: dict[str, torch.Tensor] = {}
        for i in self.teachers.active:
            names = self.teacher_layers if i == 0 else []
            cache = self.caches[i]
            cached = cache.get(indices) if cache is not None else None
            cached_feats = cache.features(indices, names) if cached is not None and names else {}
            if cached is not None and cached_feats is not None:
                out, f = cached, cached_feats
            else:
                out, f = self.teachers.teachers[i].forward(self.inputs[i](inputs), names)
            outs[i] = self.outputs[i](out.to(inputs.device))
            if i == 0:
                feats = {k: v.to(inputs.device) for k, v in f.items()}
        return outs, feats

    def _teacher_pass(self, x: torch.Tensor) -> tuple[list[torch.Tensor | None], dict[str, torch.Tensor]]:
        """Teacher outputs (and first-teacher features) over a whole split, in fixed-size chunks."""
        chunks = [self._teacher_batch_live(x[i:i + self.eval_batch_size]) for i in range(0, len(x), self.eval_batch_size)]
        outs: list[torch.Tensor | None] = [None] * len(self.teachers)
        for i in self.teachers.active:
            outs[i] = torch.cat([c[0][i] for c in chunks]) if chunks else None  # type: ignore[misc]
        feats = {k: torch.cat([c[1][k] for c in chunks]) for k in (chunks[0][1] if chunks else {})}
        return outs, feats

    def _teacher_batch_live(self, x: torch.Tensor) -> tuple[list[torch.Tensor | None], dict[str, torch.Tensor]]:
        device = self.trainer.device if self.trainer is not None else x.device
        x = x.to(device)
        outs: list[torch.Tensor | None] = [None] * len(self.teachers)
        feats: dict[str, torch.Tensor] = {}
        for i in self.teachers.active:
            names = self.teacher_layers if i == 0 else []
            out, f = self.teachers.teachers[i].forward(self.inputs[i](x), names)
            outs[i] = self.outputs[i](out.to(device))
            if i == 0:
                feats = f
        return outs, feats

    def _terms(self, output: torch.Tensor, target: torch.Tensor, outs: list[torch.Tensor | None],
               feats: dict[str, torch.Tensor], values: dict[str, float]) -> tuple[LossTerms, torch.Tensor | None]:
        temperature = values.get("temperature", 1.0)
        teacher = self.teachers.combine(outs, temperature)
        terms = self.objective(output, teacher, target, student_features=self._features, teacher_features=feats,
                               adapters=self.adapters, values=values)
        if self.task == "regression":
            return terms, None
        reference = teacher if len(self.teachers.active) == 1 else self.teachers.combine(outs, 1.0)
        return terms, agreement(output.detach(), reference, self.task)

    # -- epoch end ---------------------------------------------------------------------------
    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        if self.val is None or self._val_teacher is None:
            return {}
        model, trainer = self.trainer.model, self.trainer
        x, y = self.val
        values = self.objective.values(max(trainer.global_step - 1, 0), trainer.epoch)
        means = _Means()
        was_training = model.training
        model.eval()
        try:
            bs = int(trainer.config.batch_size)
            for start in range(0, len(x), bs):
                xb = x[start:start + bs].to(trainer.device)
                yb = y[start:start + bs].to(trainer.device)
                out = model(xb)
                outs = [t[start:start + bs] if t is not None else None for t in self._val_teacher]
                feats = {k: v[start:start + bs] for k, v in self._val_features.items()}
                terms, agree = self._terms(out, yb, outs, feats, values)
                means.add(len(yb), terms, agree, values)
        finally:
            model.train(was_training)
        return means.means()

    def _check_baseline(self, record: dict[str, Any]) -> None:
        """Warn once when the student-alone baseline does better than the teacher on validation."""
        if self.teacher_val_metric is None or "teacher_worse_than_baseline" in self.warned:
            return
        metric = "val_accuracy" if self.task != "regression" else "val_mae"
        value = record.get(metric)
        if value is None:
            return
        better = value > self.teacher_val_metric if self.task != "regression" else value < self.teacher_val_metric
        if not better:
            return
        self.warned.append("teacher_worse_than_baseline")
        name = metric[len("val_"):]
        message = (f"The student trained alone reached validation {name} {value:.4g} at epoch {record['epoch']}, "
                   f"better than the teacher's {self.teacher_val_metric:.4g}; distilling from this teacher is "
                   "unlikely to help. Train a stronger teacher or pick another one.")
        if self.trainer.events is not None:
            self.trainer.events(RunWarning(self.trainer.run_id, "distill.teacher_worse_than_baseline", message))
