"""The PyTorch training loop (PT-TRAINER-001).

``Trainer(model, task, config).fit(train=(x, y), val=(x, y)) -> FitResult``; see :mod:`.loop`
for the guarantees and :mod:`.state` for the layout of ``Trainer.state_dict()``.
"""

from .batching import EpochPlan, epoch_order
from .callbacks import Callback, CallbackList
from .early_stopping import Tracker
from .loop import Trainer
from .losses import LOSSES, METRICS, TASKS, TaskLoss
from .optimizers import OPTIMIZERS, build_optimizer, check_optimizer
from .precision import PRECISIONS, Precision, autocast_supported
from .result import FitResult
from .schedules import SCHEDULES, Schedule
from .state import FORMAT, join_tensors, split_tensors

__all__ = [
    "Trainer",
    "FitResult",
    "Callback",
    "CallbackList",
    "EpochPlan",
    "epoch_order",
    "Tracker",
    "TaskLoss",
    "TASKS",
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "build_optimizer",
    "check_optimizer",
    "PRECISIONS",
    "Precision",
    "autocast_supported",
    "SCHEDULES",
    "Schedule",
    "FORMAT",
    "split_tensors",
    "join_tensors",
]
