"""The teacher: loaded read-only, frozen, always in eval mode; several combined (REQ-KD04, KD05, KD17, H17, H19).

:class:`FrozenTeacher` wraps a module without becoming part of the student (it is not an
``nn.Module``, so ``student.train()`` never reaches it): its parameters stop requiring gradients,
it stays in eval mode whatever ``train(mode)`` asks, and every forward runs under
``torch.inference_mode()``; outputs are cloned out of inference mode, so they are plain tensors
with no autograd history. :func:`load_teacher` takes a Studio checkpoint path (opened read-only
and hashed) or a model handle (copied, so the model in the store is never touched).
:class:`TeacherEnsemble` averages several teachers' probabilities in log space.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from studio.backend.core.errors import CheckpointError, DistillError, StudioError, ValidationError
from studio.backend.pytorch.data import Preprocessing
from studio.backend.pytorch.model_store import TrainedModel, store
from studio.backend.pytorch.models import capture_features, feature_layers

__all__ = [
    "FrozenTeacher",
    "TeacherEnsemble",
    "TeacherInfo",
    "check_teacher_student",
    "file_sha256",
    "load_teacher",
    "normalisation_maps",
    "normalise_weights",
    "state_sha256",
]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (read-only, in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes), for teachers held in memory."""
    digest = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class TeacherInfo:
    """What the distillation needs to know about a teacher, whichever way it was given."""

    ref: str  # the path or handle as given
    path: str | None  # absolute checkpoint path, None for a model held in memory
    sha256: str  # of the file, or of the state dict for a model in memory
    task: str
    input_shape: tuple[int, ...]
    num_outputs: int
    class_names: tuple[str, ...] = ()
    preprocessing: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        return f"teacher {Path(self.path).name!r}" if self.path else f"teacher {self.ref!r}"


class FrozenTeacher:
    """A frozen, eval-mode teacher on the student's device (see the module docstring)."""

    def __init__(self, module: nn.Module, info: TeacherInfo | None = None) -> None:
        if not isinstance(module, nn.Module):
            raise ValidationError(f"A teacher must be a torch module, not {type(module).__name__}.", field="teacher")
        module.requires_grad_(False)
        module.eval()
        self.module = module
        self.info = info
        self.forwards = 0  # teacher forward passes run (live, not cached), per batch
        self.samples = 0  # samples seen by those forward passes

    # mode: always eval
    @property
    def training(self) -> bool:
        return False

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Kept in eval mode whatever ``mode`` says (the teacher's batch-norm statistics never move)."""
        self.module.eval()
        return self

    def eval(self) -> FrozenTeacher:
        return self.train(False)

    def to(self, device: torch.device | str) -> FrozenTeacher:
        self.module.to(device)
        return self

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.module.parameters()

    @property
    def device(self) -> torch.device:
        first = next(iter(list(self.module.parameters()) + list(self.module.buffers())), None)
        return first.device if first is not None else torch.device("cpu")

    def feature_shapes(self, input_shape: Sequence[int], names: Iterable[str] | None = None) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of the named layers (one dummy forward, in eval and inference mode)."""
        self.module.eval()
        with torch.inference_mode():
            return feature_layers(self.module, input_shape, names)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def forward(self, x: torch.Tensor, features: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Outputs (and the named features) of ``x`` as plain tensors without autograd history."""
        if self.module.training:  # something called .train() on the module itself behind our back
            self.module.eval()
        assert not self.module.training, "the teacher must run in eval mode"
        self.forwards += 1
        self.samples += int(x.shape[0])
        x = x.to(self.device)
        with torch.inference_mode():
            if features:
                with capture_features(self.module, list(features), detach=True) as feats:
                    out = self.module(x)
                feats = dict(feats)
            else:
                out, feats = self.module(x), {}
        return out.clone(), {k: v.clone() for k, v in feats.items()}


def load_teacher(ref: str, device: torch.device | str = "cpu") -> tuple[FrozenTeacher, TeacherInfo]:
    """A teacher from a Studio checkpoint path (hashed, opened read-only) or a model handle (copied).

    A file that is missing, not a Studio checkpoint, or damaged keeps its ``checkpoint.*`` code with a
    message naming the teacher."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError(f"The teacher must be a checkpoint path or a model handle, not {ref!r}.",
                              field="teacher", value=repr(ref))
    if ref in store:
        tm = store.get(ref)
        module = copy.deepcopy(tm.module)  # never freeze, move or switch the model the store holds
        return FrozenTeacher(module.to(device)), _info(tm, ref, None, state_sha256(module))
    from studio.backend.pytorch import model_files

    path = Path(ref).expanduser().absolute()
    try:
        if not path.is_file():
            raise CheckpointError(f"There is no checkpoint file at {str(path)!r}.", code="checkpoint.not_found",
                                  field="path", value=str(path))
        sha = file_sha256(path)
        tm = model_files.load_trained(str(path), device)
    except StudioError as exc:
        raise type(exc)(f"The teacher {str(path)!r} could not be loaded: {exc.message}", code=exc.code,
                        field="teacher", value=str(path), hint=exc.hint) from exc
    return FrozenTeacher(tm.module.to(device)), _info(tm, ref, str(path), sha)


def _info(tm: TrainedModel, ref: str, path: str | None, sha: str) -> TeacherInfo:
    return TeacherInfo(ref=ref, path=path, sha256=sha, task=tm.task, input_shape=tuple(tm.input_shape),
                       num_outputs=int(tm.num_outputs), class_names=tuple(tm.class_names),
                       preprocessing=dict(tm.preprocessing), spec=tm.spec.to_dict(), metrics=dict(tm.metrics))


def _side(data: Any, name: str) -> Any:
    return data.get(name) if isinstance(data, dict) else getattr(data, name)


def check_teacher_student(teacher: TeacherInfo, student_spec: Any, data: Any) -> None:
    """Teacher and student fit when they share task, input shape, number of outputs and class names (in
    order); the student's architecture must also fit the data. ``data`` is a ``DataSummary``, a loaded
    dataset or a dict with ``task``, ``input_shape``, ``num_outputs``, ``class_names`` (and ``input_kind``).

    Raises ``DistillError`` (``distill.incompatible``) naming the property and both sides' values."""
    who = teacher.describe()
    task, shape = _side(data, "task"), tuple(_side(data, "input_shape"))
    outputs, names = int(_side(data, "num_outputs")), tuple(_side(data, "class_names") or ())

    def fail(prop: str, mine: Any, theirs: Any, message: str) -> DistillError:
        return DistillError(message, code="distill.incompatible", field=f"teacher.{prop}",
                            value={"teacher": mine, "student": theirs},
                            hint="Choose a teacher trained on this data, or data the teacher was trained on.")

    if teacher.task != task:
        raise fail("task", teacher.task, task, f"The {who} was trained for {teacher.task} but the student's data "
                                               f"is a {task} task; choose a teacher trained on this data.")
    if tuple(teacher.input_shape) != shape:
        raise fail("input_shape", list(teacher.input_shape), list(shape),
                   f"The {who} takes inputs shaped {tuple(teacher.input_shape)} but the student's data gives "
                   f"{shape}; choose a teacher trained on this data.")
    if teacher.num_outputs != outputs:
        what = "classes" if task == "classification" else "outputs"
        raise fail("num_outputs", teacher.num_outputs, outputs,
                   f"The {who} predicts {teacher.num_outputs} {what} but the student's data has {outputs}; "
                   "choose a teacher trained on this data.")
    if teacher.class_names and names and tuple(teacher.class_names) != names:
        diff = next(i for i, (a, b) in enumerate(zip(teacher.class_names, names)) if a != b) \
            if len(teacher.class_names) == len(names) else 0
        raise fail("class_names", list(teacher.class_names), list(names),
                   f"The {who}'s classes are {list(teacher.class_names)} but the student's data has {list(names)} "
                   f"(they first differ at position {diff}); the same names in the same order are needed.")
    try:
        from studio.backend.pytorch.models import require_compatible

        kind = _side(data, "input_kind") if (isinstance(data, dict) and "input_kind" in data) or \
            hasattr(data, "input_kind") else None
        if kind is not None:
            require_compatible(student_spec, kind, task)
    except StudioError as exc:
        raise DistillError(f"The student does not fit the data: {exc.message}", code="distill.incompatible",
                           field="student", value=str(getattr(student_spec, "name", student_spec))) from exc


class TeacherEnsemble:
    """Several frozen teachers with weights, combined by averaging probabilities (REQ-KD17).

    ``log p_bar = logsumexp_i(log w_i + log_softmax(t_i / T))``; :meth:`combine` returns it as logits
    ``T * log p_bar`` (whose softmax at temperature T is exactly ``p_bar``), so every soft loss takes an
    ensemble like one teacher. A single teacher's logits pass through unchanged; regression outputs are
    the weighted mean. Teachers of weight 0 are never run.
    """

    def __init__(self, teachers: Sequence[FrozenTeacher], weights: Sequence[float] | None = None, *,
                 task: str = "classification") -> None:
        if not teachers:
            raise ValidationError("Distillation needs at least one teacher.", field="teacher")
        self.teachers = list(teachers)
        self.task = task
        self.weights = normalise_weights(weights, len(self.teachers))
        self.active = [i for i, w in enumerate(self.weights) if w > 0]

    def __len__(self) -> int:
        return len(self.teachers)

    @property
    def first(self) -> FrozenTeacher:
        return self.teachers[0]

    def train(self, mode: bool = True) -> TeacherEnsemble:
        for t in self.teachers:
            t.train(mode)
        return self

    def combine(self, outputs: Sequence[torch.Tensor | None], temperature: float) -> torch.Tensor:
        """One teacher target from per-teacher outputs (``None`` for weight-0 teachers)."""
        if len(self.active) == 1:
            return outputs[self.active[0]]  # type: ignore[return-value]
        if self.task == "regression":
            return sum(self.weights[i] * outputs[i].float() for i in self.active)  # type: ignore[union-attr,return-value]
        T = float(temperature)
        lp = self.log_probs(outputs, T)
        return T * lp if self.task == "classification" else T * (lp[..., 1] - lp[..., 0])

    def log_probs(self, outputs: Sequence[torch.Tensor | None], temperature: float) -> torch.Tensor:
        """``log p_bar`` at temperature T over the classes (binary and multi-label: over [no, yes] per label)."""
        T = float(temperature)
        parts = [math.log(self.weights[i]) + F.log_softmax(_class_logits(outputs[i], self.task).float() / T, -1)
                 for i in self.active]  # type: ignore[arg-type]
        return torch.logsumexp(torch.stack(parts), dim=0)


def _class_logits(z: torch.Tensor, task: str) -> torch.Tensor:
    """Classification logits as they are; a binary or multi-label logit z as the pair [0, z]."""
    if task == "classification":
        return z
    return torch.stack((torch.zeros_like(z), z), dim=-1)


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """One finite, non-negative weight per teacher with a positive sum, normalised to sum to 1."""
    if weights is None or len(weights) == 0:
        return [1.0 / n] * n
    weights = list(weights)
    if len(weights) != n:
        raise ValidationError(f"teacher_weights has {len(weights)} weights for {n} teachers; give one per teacher.",
                              field="distill.teacher_weights", value=weights)
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValidationError(f"Teacher weights must be finite numbers of at least 0, not {w!r}.",
                                  field="distill.teacher_weights", value=[repr(v) for v in weights])
    total = float(sum(weights))
    if total <= 0:
        raise ValidationError("At least one teacher weight must be above 0.", field="distill.teacher_weights",
                              value=weights)
    return [float(w) / total for w in weights]


def _affine(mean_s: tuple[float, ...], std_s: tuple[float, ...], mean_t: tuple[float, ...],
            std_t: tuple[float, ...], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``x_t = (x_s * std_s + mean_s - mean_t) / std_t`` per channel, or ``None`` when it is the identity."""
    if tuple(mean_s) == tuple(mean_t) and tuple(std_s) == tuple(std_t):
        return None
    k = max(len(mean_s), len(mean_t))

    def vec(values: tuple[float, ...], fill: float) -> torch.Tensor:
        return torch.tensor(values if values else [fill] * k, dtype=torch.float64)

    ms, ss, mt, st = vec(mean_s, 0.0), vec(std_s, 1.0), vec(mean_t, 0.0), vec(std_t, 1.0)
    scale, shift = (ss / st).float().reshape(shape), ((ms - mt) / st).float().reshape(shape)

    def apply(x: torch.Tensor) -> torch.Tensor:
        return x * scale.to(x.device) + shift.to(x.device)

    return apply


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def normalisation_maps(student: Preprocessing, teacher_preprocessing: dict[str, Any] | None
                       ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """``(inputs, outputs)``: inputs as the student sees them -> as the teacher expects them, and the teacher's
    (regression) outputs -> the student's target scale. Identity functions when both sides agree."""
    teacher = Preprocessing.from_dict(teacher_preprocessing) if teacher_preprocessing else \
        Preprocessing(input_kind=student.input_kind, input_shape=student.input_shape)
    stats = student._stats_shape() if student.x_mean else teacher._stats_shape()
    # inputs: the student's normalisation undone, the teacher's applied
    to_teacher = _affine(student.x_mean, student.x_std, teacher.x_mean, teacher.x_std, stats) if \
        (student.x_mean or teacher.x_mean) else None
    # outputs (regression): the teacher's target scaling undone, the student's applied
    to_student = _affine(teacher.y_mean, teacher.y_std, student.y_mean, student.y_std, (-1,)) if \
        (student.y_mean or teacher.y_mean) else None
    return to_teacher or _identity, to_student or _identity
