"""How a run's events are shown: a progress bar, plain lines, or JSON lines (REQ-X01).

- :class:`TerminalProgress` (stdout is a terminal): one ``rich`` bar per epoch with the running
  loss, the metric, and the time left in the epoch and in the run; each finished epoch stays on
  screen with its validation results.
- :class:`LineProgress` (stdout is a pipe or a file): one plain line per epoch, and within a long
  epoch at most one line every 10 s; no control characters.
- :class:`JsonEvents` (``--json``): every event as one JSON object per line (``Event.to_json``).

Each is an event sink (``sink(event)``) for a handler.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

from studio.backend.core.events import (
    EpochStats,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    RunWarning,
    StepStats,
)
from studio.backend.core.formatting import format_duration

__all__ = ["TerminalProgress", "LineProgress", "JsonEvents", "choose_progress", "format_metrics"]


def format_metrics(values: dict[str, float], prefix: str = "", limit: int | None = None) -> str:
    """``{'loss': 0.1234, 'accuracy': 0.96}`` -> ``loss 0.1234  accuracy 0.9600`` (the first ``limit`` only)."""
    parts = []
    for name, value in list(values.items())[:limit]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{prefix}{name} {_num(float(value))}")
    return "  ".join(parts)


def _num(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


class _Timing:
    """Epoch durations so far, for the time left in the run."""

    def __init__(self) -> None:
        self.total_epochs = 0
        self.start_epoch = 0
        self.steps_per_epoch = 0
        self.durations: list[float] = []

    def started(self, event: RunStarted) -> None:
        self.total_epochs, self.start_epoch = event.total_epochs, event.start_epoch
        self.steps_per_epoch = event.steps_per_epoch

    def run_left(self, epoch: int, fraction_done: float, epoch_elapsed: float) -> float | None:
        """Seconds left in the run while ``epoch`` (0-based) is ``fraction_done`` complete."""
        if self.durations:
            per_epoch = sum(self.durations) / len(self.durations)
        elif fraction_done > 0:
            per_epoch = epoch_elapsed / fraction_done
        else:
            return None
        return per_epoch * (1 - fraction_done) + per_epoch * max(0, self.total_epochs - epoch - 1)


class LineProgress:
    """Plain lines: one per epoch; within an epoch at most one every ``interval_s`` seconds."""

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 10.0, clock: Any = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.interval_s = interval_s
        self.clock = clock
        self.timing = _Timing()
        self._last_line = 0.0
        self._epoch_started = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self._last_line = self.clock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.timing.started(event)
            self._epoch_started = self.clock()
            self._print(_started_line(event))
        elif isinstance(event, StepStats):
            now = self.clock()
            if now - self._last_line >= self.interval_s:
                done = (event.step - 1) % max(1, self.timing.steps_per_epoch) + 1
                left = self.timing.run_left(event.epoch, done / max(1, self.timing.steps_per_epoch),
                                            now - self._epoch_started)
                eta = f"  ETA {format_duration(left)}" if left is not None else ""
                self._print(f"epoch {event.epoch + 1}/{self.timing.total_epochs}  step {done}/"
                            f"{self.timing.steps_per_epoch}  loss {_num(event.loss)}  "
                            f"{format_metrics(event.metrics)}{eta}")
        elif isinstance(event, EpochStats):
            self.timing.durations.append(event.duration_s)
            self._print(_epoch_line(event, self.timing))
            self._epoch_started = self.clock()
        elif isinstance(event, RunWarning):
            self._print(f"warning: {event.message}")

    def close(self) -> None:
        pass


class JsonEvents:
    """Every event as one JSON object per line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        print(event.to_json(), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class TerminalProgress:
    """A ``rich`` progress bar for the epoch in progress (steps, running loss and metric, time left in
    the epoch and the run); each finished epoch leaves one line with its results above the bar."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.timing = _Timing()
        self.progress: Any = None
        self.task: Any = None
        self._epoch = 0
        self._loss_sum = 0.0
        self._metric_sum = 0.0
        self._metric_name = ""
        self._samples = 0
        self._epoch_started = 0.0

    def _start_progress(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[run_eta]}"), console=self.console, transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=self.timing.steps_per_epoch, stats="", run_eta="")

    def _new_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._loss_sum = self._metric_sum = 0.0
        self._samples = 0
        self._epoch_started = time.monotonic()
        self.progress.reset(self.task, total=self.timing.steps_per_epoch, completed=0,
                            description=f"epoch {epoch + 1}/{self.timing.total_epochs}", stats="", run_eta="")

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.timing.started(event)
            self.console.print(_started_line(event))
            self._start_progress()
            self._new_epoch(event.start_epoch)
        elif isinstance(event, StepStats) and self.progress is not None:
            self._samples += event.batch_size
            self._loss_sum += event.loss * event.batch_size
            for name, value in event.metrics.items():
                self._metric_name, self._metric_sum = name, self._metric_sum + value * event.batch_size
            stats = f"loss {_short(self._loss_sum / self._samples)}"
            if self._metric_name:
                stats += f" {self._metric_name} {_short(self._metric_sum / self._samples)}"
            done = (event.step - 1) % max(1, self.timing.steps_per_epoch) + 1
            left = self.timing.run_left(self._epoch, done / max(1, self.timing.steps_per_epoch),
                                        time.monotonic() - self._epoch_started)
            self.progress.update(self.task, completed=done, stats=stats,
                                 run_eta=f"run {format_duration(left)}" if left is not None else "")
        elif isinstance(event, EpochStats):
            self.timing.durations.append(event.duration_s)
            self.console.print(_epoch_line(event, self.timing))
            if self.progress is not None and event.epoch + 1 < self.timing.total_epochs:
                self._new_epoch(event.epoch + 1)
        elif isinstance(event, RunWarning):
            self.console.print(f"[yellow]warning:[/] {event.message}")
        elif isinstance(event, (RunFinished, RunCancelled, RunFailed)):
            self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _started_line(event: RunStarted) -> str:
    start = f", from epoch {event.start_epoch + 1}" if event.start_epoch else ""
    return f"{event.operation}: {event.total_epochs} epochs of {event.steps_per_epoch} steps on {event.device}{start}"


def _epoch_line(event: EpochStats, timing: _Timing) -> str:
    left = timing.run_left(event.epoch, 1.0, 0.0)
    eta = f"  ETA {format_duration(left)}" if left else ""
    # the loss and the task's metric; everything else (distillation's parts, ...) is in --json
    val = f"  {format_metrics(event.val, 'val_', 2)}" if event.val else ""
    return (f"epoch {event.epoch + 1}/{timing.total_epochs}  {format_metrics(event.train, 'train_', 2)}{val}"
            f"  lr {event.lr:.3g}  {format_duration(event.duration_s)}{eta}")


def choose_progress(json_mode: bool, quiet: bool = False, stream: IO[str] | None = None) -> Any:
    """JSON lines with ``--json``; a bar when stdout is a terminal; plain lines otherwise; None when quiet."""
    out = stream or sys.stdout
    if json_mode:
        return JsonEvents(out)
    if quiet:
        return None
    if out.isatty():
        return TerminalProgress(out)
    return LineProgress(out)
