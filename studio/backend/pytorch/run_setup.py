"""What a training run and a distillation run share: the error wrapper, the data set-up, the epoch
autosave and the fit-to-result conversion. ``handlers.train`` and ``distill.handler.distill`` each
keep only what is theirs (continuing a run; teachers, objective and comparison).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from studio.backend.core.errors import OutOfMemoryError, StudioError, TrainingError, ValidationError
from studio.backend.core.requests import DataSpec
from studio.backend.core.results import TrainResult
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import distributed

__all__ = ["handler_errors", "require_request", "PreparedData", "prepare_data", "checkpoint_interval",
           "EpochCheckpoint", "train_result", "metric_floats"]

F = TypeVar("F", bound=Callable[..., Any])
_OOM_HINT = "Use a smaller batch size or a smaller model."


def handler_errors(operation: str, oom_hint: str = _OOM_HINT) -> Callable[[F], F]:
    """Let only StudioError leave the handler of ``operation``; chain the original exception (REQ-H11)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def handler(request: Any, **kwargs: Any) -> Any:
            try:
                return fn(request, **kwargs)
            except StudioError:
                raise
            except torch.cuda.OutOfMemoryError as exc:
                raise OutOfMemoryError(f"The device ran out of memory during {operation}.", hint=oom_hint) from exc
            except Exception as exc:
                raise TrainingError(
                    f"{operation} failed unexpectedly: {type(exc).__name__}: {exc}.",
                    code=f"{operation}.failed",
                    hint="Details are in the log file; please report it if it happens again.",
                ) from exc

        return handler  # type: ignore[return-value]

    return wrap


def require_request(request: Any, kind: type) -> None:
    if not isinstance(request, kind):
        raise ValidationError(
            f"This operation takes a {kind.__name__}, not {type(request).__name__}.",
            field="request", value=type(request).__name__,
        )


@dataclass
class PreparedData:
    """The loaded data, its splits, the normalisation fitted on the training split and the two inputs a run fits on."""

    bundle: data_lib.DataBundle
    splits: data_lib.Splits
    prep: data_lib.Preprocessing
    train_xy: tuple[Any, torch.Tensor]
    val_xy: tuple[Any, torch.Tensor] | None


def prepare_data(spec: DataSpec, check: Callable[[data_lib.DataBundle], None] | None = None) -> PreparedData:
    """Load, check (``check`` sees the bundle before anything is fitted), split and normalise ``spec``.

    Inputs are tensors, or for an image folder on disk the images decoded batch by batch as the trainer asks.
    """
    bundle = data_lib.load_data(spec)
    if check is not None:
        check(bundle)
    splits = data_lib.split_data(bundle, spec.val_fraction, spec.test_fraction, spec.seed)
    prep = data_lib.fit_preprocessing(bundle, splits.train)
    train_xy = (data_lib.split_inputs(bundle, splits.train, prep), prep.apply_target(bundle.y[splits.train]))
    val_xy = (data_lib.split_inputs(bundle, splits.val, prep), prep.apply_target(bundle.y[splits.val])) \
        if len(splits.val) else None
    return PreparedData(bundle, splits, prep, train_xy, val_xy)


def checkpoint_interval(interval: Any) -> float:
    """``checkpoint_interval_s`` checked: a number of seconds >= 0."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (math.isfinite(interval)
                                                                                    and interval >= 0):
        raise ValidationError(f"checkpoint_interval_s must be a number of seconds >= 0, not {interval!r}.",
                              field="checkpoint_interval_s", value=repr(interval))
    return float(interval)


class EpochCheckpoint:
    """A trainer callback writing the run's training checkpoint after an epoch (REQ-U04's autosave, the CLI's
    --checkpoint): after the first epoch, then at most every ``interval_s`` seconds (0: every epoch), so runs of
    many short epochs do not spend their time writing files; under torchrun only rank 0 writes. ``write(path)``
    writes atomically, so a crash keeps the last complete checkpoint."""

    def __init__(self, path: str, write: Callable[[str], Any], interval_s: float = 0.0) -> None:
        self.path, self.write, self.interval_s = path, write, interval_s
        self._last: float | None = None

    def on_epoch(self, event: Any) -> None:
        if self._last is not None and time.monotonic() - self._last < self.interval_s:
            return
        context = distributed.current()
        if context is None or context.is_writer:
            self.write(self.path)
        self._last = time.monotonic()


def metric_floats(record: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics record, as floats (flags and text left out)."""
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def train_result(fit: Any, handle: str) -> TrainResult:
    """A trainer's fit result as the ``train`` operation reports it; ``fit`` None: cancelled before it began."""
    if fit is None:
        return TrainResult(status="cancelled", model=handle, epochs_run=0, steps=0, final_metrics={},
                           best_metrics={}, best_epoch=-1)
    return TrainResult(status=fit.status, model=handle, epochs_run=fit.epochs_run, steps=fit.steps,
                       final_metrics=metric_floats(fit.final_metrics), best_metrics=metric_floats(fit.best_metrics),
                       best_epoch=fit.best_epoch, history=tuple(metric_floats(h) for h in fit.history),
                       duration_s=fit.duration_s)
