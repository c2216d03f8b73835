"""Callbacks observe the loop through two optional hooks (REQ-T14).

A callback is any object with ``on_step(event: StepStats)`` and/or ``on_epoch(event: EpochStats)``;
subclassing :class:`Callback` is optional. ``on_step`` runs after the optimisation step and its
bookkeeping are complete, ``on_epoch`` after validation, so the trainer's state is consistent
whenever a hook runs: a hook may call ``trainer.state_dict()`` or the run control. An exception
in a hook stops the run with :class:`TrainingError` ``train.callback_failed`` naming the callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from studio.backend.core.errors import TrainingError
from studio.backend.core.events import EpochStats, StepStats

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Base class with no-op hooks (override the ones you need)."""

    def on_step(self, event: StepStats) -> None:
        """After each optimisation step."""

    def on_epoch(self, event: EpochStats) -> None:
        """After each epoch, once validation is recorded."""


def _hooks(callbacks: Iterable[Any], name: str) -> list[tuple[Any, Callable[[Any], None]]]:
    out = []
    for cb in callbacks:
        hook = getattr(cb, name, None)
        if hook is None or getattr(type(cb), name, None) is getattr(Callback, name):
            continue  # absent or the inherited no-op: skip it on the hot path
        if not callable(hook):
            raise TypeError(f"{type(cb).__name__}.{name} is not callable")
        out.append((cb, hook))
    return out


class CallbackList:
    """The hooks of several callbacks, called in order; failures become ``train.callback_failed``."""

    def __init__(self, callbacks: Iterable[Any] = ()) -> None:
        callbacks = list(callbacks)
        self.step_hooks = _hooks(callbacks, "on_step")
        self.epoch_hooks = _hooks(callbacks, "on_epoch")

    def on_step(self, event: StepStats) -> None:
        for cb, hook in self.step_hooks:
            try:
                hook(event)
            except Exception as exc:
                raise _failed(cb, "on_step", event.step, exc) from exc

    def on_epoch(self, event: EpochStats) -> None:
        for cb, hook in self.epoch_hooks:
            try:
                hook(event)
            except Exception as exc:
                raise _failed(cb, "on_epoch", event.step, exc) from exc


def _failed(cb: Any, hook: str, step: int, exc: Exception) -> TrainingError:
    name = type(cb).__name__
    return TrainingError(
        f"The callback {name}.{hook} failed after step {step} ({type(exc).__name__}: {exc}); training stopped "
        f"with the state of step {step}.",
        code="train.callback_failed",
        field="callbacks",
        value=name,
        hint="Fix or remove the callback, then resume from the saved state.",
    )
