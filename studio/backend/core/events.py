"""The event grammar of every long-running handler (REQ-H13, REQ-H18).

A run emits, in this order::

    RunStarted  (StepStats | EpochStats | RunPaused | RunResumed | RunWarning)*  Terminal

where ``Terminal`` is exactly one of :class:`RunFinished`, :class:`RunFailed` or
:class:`RunCancelled`; step numbers strictly increase, and an :class:`EpochStats` closes every
completed epoch. :class:`GrammarChecker` enforces this and is used by the tests and by
consumers that want to be strict. Events are frozen, JSON round-trippable contracts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.backend.core.contract import Contract
from studio.backend.core.errors import ValidationError

__all__ = [
    "Event",
    "RunStarted",
    "StepStats",
    "EpochStats",
    "RunPaused",
    "RunResumed",
    "RunWarning",
    "RunFinished",
    "RunFailed",
    "RunCancelled",
    "TERMINAL_EVENTS",
    "GrammarChecker",
]


@dataclass(frozen=True)
class Event(Contract):
    """Base of all events; ``run_id`` ties events to the run that produced them."""

    run_id: str


@dataclass(frozen=True)
class RunStarted(Event):
    operation: str
    total_epochs: int
    steps_per_epoch: int
    device: str = "cpu"
    start_epoch: int = 0
    start_step: int = 0
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepStats(Event):
    """One optimisation step. ``step`` counts from 1 across the whole run."""

    step: int
    epoch: int
    loss: float
    batch_size: int
    lr: float
    step_time_s: float
    samples_per_s: float
    grad_norm: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochStats(Event):
    """Summary of a completed epoch: batch-size-weighted means of training and validation."""

    epoch: int
    step: int
    train: dict[str, float]
    val: dict[str, float]
    lr: float
    duration_s: float
    samples_per_s: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPaused(Event):
    step: int


@dataclass(frozen=True)
class RunResumed(Event):
    step: int


@dataclass(frozen=True)
class RunWarning(Event):
    code: str
    message: str


@dataclass(frozen=True)
class RunFinished(Event):
    step: int
    epoch: int
    summary: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFailed(Event):
    step: int
    error: dict[str, Any]


@dataclass(frozen=True)
class RunCancelled(Event):
    step: int
    epoch: int


TERMINAL_EVENTS = (RunFinished, RunFailed, RunCancelled)


class GrammarChecker:
    """Feeds on events one by one and raises :class:`ValidationError` at the first violation."""

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self.last_step = 0
        self.last_epoch_closed = -1
        self.count = 0

    def feed(self, event: Event) -> None:
        self.count += 1
        where = f"event {self.count} ({type(event).__name__})"
        if self.ended:
            raise ValidationError(f"{where} arrived after the terminal event.", code="events.grammar")
        if isinstance(event, RunStarted):
            if self.started:
                raise ValidationError(f"{where}: a second RunStarted.", code="events.grammar")
            self.started = True
            self.last_step = event.start_step
            self.last_epoch_closed = event.start_epoch - 1
            return
        if not self.started:
            raise ValidationError(f"{where} came before RunStarted.", code="events.grammar")
        if isinstance(event, StepStats):
            if event.step <= self.last_step:
                raise ValidationError(
                    f"{where}: step {event.step} does not follow step {self.last_step}.",
                    code="events.grammar",
                )
            self.last_step = event.step
        elif isinstance(event, EpochStats):
            if event.epoch <= self.last_epoch_closed:
                raise ValidationError(f"{where}: epoch {event.epoch} summarised twice.", code="events.grammar")
            self.last_epoch_closed = event.epoch
        elif isinstance(event, TERMINAL_EVENTS):
            self.ended = True

    def finish(self) -> None:
        if not (self.started and self.ended):
            raise ValidationError("The run ended without a terminal event.", code="events.grammar")

    @classmethod
    def check(cls, events: list[Event]) -> None:
        checker = cls()
        for event in events:
            checker.feed(event)
        checker.finish()
