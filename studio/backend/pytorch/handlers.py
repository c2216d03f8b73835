"""The PyTorch backend's handlers (REQ-H01): one function per operation, registered by :func:`register`.

Every handler checks the type of its request, validates before doing any work, reports
progress through the event sink, and lets only :class:`StudioError` out (REQ-H11).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from studio.backend.core.errors import OutOfMemoryError, StudioError, TrainingError, ValidationError
from studio.backend.core.handler import EventSink, RunControl
from studio.backend.core.registry import HandlerRegistry
from studio.backend.core.requests import InspectDataRequest, InspectModelRequest, TrainRequest
from studio.backend.core.results import DataSummary, ModelSummary, TrainResult
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch.model_store import TrainedModel, store
from studio.backend.pytorch.runtime import apply_runtime
from studio.backend.pytorch.trainer import Trainer

__all__ = ["register", "warm_up", "train", "inspect_data", "inspect_model"]

F = TypeVar("F", bound=Callable[..., Any])


def studio_errors(operation: str) -> Callable[[F], F]:
    """Let only StudioError leave the handler; chain the original exception (REQ-H11)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def handler(request: Any, **kwargs: Any) -> Any:
            try:
                return fn(request, **kwargs)
            except StudioError:
                raise
            except torch.cuda.OutOfMemoryError as exc:
                raise OutOfMemoryError(
                    f"The device ran out of memory during {operation}.",
                    hint="Use a smaller batch size or a smaller model.",
                ) from exc
            except Exception as exc:
                raise TrainingError(
                    f"{operation} failed unexpectedly: {type(exc).__name__}: {exc}.",
                    code=f"{operation}.failed",
                    hint="Details are in the log file; please report it if it happens again.",
                ) from exc

        return handler  # type: ignore[return-value]

    return wrap


def _require(request: Any, kind: type) -> None:
    if not isinstance(request, kind):
        raise ValidationError(
            f"This operation takes a {kind.__name__}, not {type(request).__name__}.",
            field="request", value=type(request).__name__,
        )


@studio_errors("inspect_data")
def inspect_data(request: InspectDataRequest, **_: Any) -> DataSummary:
    _require(request, InspectDataRequest)
    data_lib.validate_fractions(request.data.val_fraction, request.data.test_fraction)
    bundle = data_lib.load_data(request.data)
    splits = data_lib.split_data(bundle, request.data.val_fraction, request.data.test_fraction, request.data.seed)
    return data_lib.summarize(bundle, splits, request.preview_rows)


@studio_errors("inspect_model")
def inspect_model(request: InspectModelRequest, **_: Any) -> ModelSummary:
    _require(request, InspectModelRequest)
    bundle = data_lib.load_data(request.data)
    model_lib.require_compatible(request.model, bundle.input_kind, bundle.task)
    return model_lib.summarize_model(request.model, tuple(bundle.input_shape), int(bundle.num_outputs))


@studio_errors("train")
def train(request: TrainRequest, *, events: EventSink | None = None, control: RunControl | None = None) -> TrainResult:
    """Train ``request.model`` on ``request.data`` (REQ-H05); progress as events (REQ-H13)."""
    _require(request, TrainRequest)
    data_lib.validate_fractions(request.data.val_fraction, request.data.test_fraction)
    device = apply_runtime(request.runtime)
    bundle = data_lib.load_data(request.data)
    model_lib.require_compatible(request.model, bundle.input_kind, bundle.task)
    splits = data_lib.split_data(bundle, request.data.val_fraction, request.data.test_fraction, request.data.seed)
    prep = data_lib.fit_preprocessing(bundle, splits.train)
    x, y = bundle.x, bundle.y
    train_xy = (prep.apply(x[splits.train]), prep.apply_target(y[splits.train]))
    val_xy = (prep.apply(x[splits.val]), prep.apply_target(y[splits.val])) if len(splits.val) else None
    module = model_lib.build_model(request.model, tuple(bundle.input_shape), int(bundle.num_outputs),
                                   seed=request.runtime.seed)
    trainer = Trainer(module, bundle.task, request.config, events=events, control=control,
                      device=device, seed=request.runtime.seed)
    fit = trainer.fit(train_xy, val_xy)
    handle = store.put(TrainedModel(
        module=trainer.model, spec=request.model, input_shape=tuple(bundle.input_shape),
        num_outputs=int(bundle.num_outputs), task=bundle.task, class_names=tuple(bundle.class_names),
        preprocessing=prep.to_dict(), data=request.data, config=request.config,
        metrics=_floats(fit.final_metrics), trainer_state=None,
    ))
    return TrainResult(
        status=fit.status, model=handle, epochs_run=fit.epochs_run, steps=fit.steps,
        final_metrics=_floats(fit.final_metrics), best_metrics=_floats(fit.best_metrics),
        best_epoch=fit.best_epoch, history=tuple(_floats(h) for h in fit.history), duration_s=fit.duration_s,
    )


def _floats(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def warm_up() -> None:
    """Pay first-use costs early (the first optimiser imports ``torch._dynamo``)."""
    param = torch.nn.Parameter(torch.zeros(1))
    torch.optim.Adam([param]).step()


HANDLERS: dict[str, Callable[..., Any]] = {
    "inspect_data": inspect_data,
    "inspect_model": inspect_model,
    "train": train,
}


def register(registry: HandlerRegistry) -> None:
    for operation, handler in HANDLERS.items():
        registry.register("pytorch", operation, handler)
