"""Knowledge distillation (PT-DISTILL-001): a frozen teacher teaches a small student.

- losses (plain functions on tensors, in a registry): :func:`kd_loss`, :func:`dkd_loss`,
  :func:`hint_mse_loss`, :func:`hint_cosine_loss`, :func:`attention_transfer_loss`,
  :func:`regression_distill_loss`; :func:`register_loss`, :func:`get_loss`, :func:`list_losses`
- the objective: :class:`DistillObjective` (hard, soft and feature terms and their weights)
- teachers: :class:`FrozenTeacher`, :class:`TeacherEnsemble`, :func:`load_teacher`,
  :func:`check_teacher_student`
- :func:`make_adapter`, :class:`Adapters`; :class:`TeacherCache`; :class:`ScheduledValue`
- :class:`Distillation`: the trainer plug-in (``Trainer(..., objective=Distillation(...))``)
- comparison: :class:`BaselineRun`, :func:`gap_closed`, :func:`measure_latency`
- the ``distill`` handler (REQ-H16..H20, H24)
"""

from studio.backend.pytorch.distill.adapters import Adapters, make_adapter
from studio.backend.pytorch.distill.cache import TeacherCache, data_fingerprint
from studio.backend.pytorch.distill.compare import BaselineRun, gap_closed, measure_latency, teacher_warning
from studio.backend.pytorch.distill.handler import distill, save_distill_checkpoint
from studio.backend.pytorch.distill.loop import Distillation
from studio.backend.pytorch.distill.losses import (
    LossInfo,
    TemperatureWarning,
    attention_map,
    attention_transfer_loss,
    debug_checks,
    dkd_loss,
    dkd_terms,
    get_loss,
    hint_cosine_loss,
    hint_mse_loss,
    kd_loss,
    kl_from_log_probs,
    list_losses,
    register_loss,
    regression_distill_loss,
)
from studio.backend.pytorch.distill.objective import DistillObjective, LossTerms, agreement
from studio.backend.pytorch.distill.schedules import ScheduledValue, build_schedules
from studio.backend.pytorch.distill.teacher import (
    FrozenTeacher,
    TeacherEnsemble,
    TeacherInfo,
    check_teacher_student,
    file_sha256,
    load_teacher,
)

__all__ = [
    "Adapters",
    "BaselineRun",
    "Distillation",
    "DistillObjective",
    "FrozenTeacher",
    "LossInfo",
    "LossTerms",
    "ScheduledValue",
    "TeacherCache",
    "TeacherEnsemble",
    "TeacherInfo",
    "TemperatureWarning",
    "agreement",
    "attention_map",
    "attention_transfer_loss",
    "build_schedules",
    "check_teacher_student",
    "data_fingerprint",
    "debug_checks",
    "distill",
    "dkd_loss",
    "dkd_terms",
    "file_sha256",
    "gap_closed",
    "get_loss",
    "hint_cosine_loss",
    "hint_mse_loss",
    "kd_loss",
    "kl_from_log_probs",
    "list_losses",
    "load_teacher",
    "make_adapter",
    "measure_latency",
    "register_loss",
    "regression_distill_loss",
    "save_distill_checkpoint",
    "teacher_warning",
]
