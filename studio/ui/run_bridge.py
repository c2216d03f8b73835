"""One bridge between the window and a long-running handler (Orange's ConcurrentWidgetMixin idea).

The handler runs in a worker ``QThread``. It emits events into an :class:`EventStream`, which
never blocks; a GUI-side ``QTimer`` drains the stream at most ``max_rate`` times per second and
hands the batch to the window through :attr:`RunBridge.events` (REQ-H23, REQ-U03). What the window
does with a delivery (feeding and drawing the charts, the progress text) is GUI-thread time taken
from the trainer (the GIL), so while the run trains, deliveries wait while the run's
:class:`~studio.ui.gui_budget.GuiBudget` is spent, but come at least every :data:`SLOWEST_DELIVERY_S`:
a fast run's events arrive in fewer, larger batches, a slow run's still ``max_rate`` times a second.
The worker sends exactly one Qt signal of its own at the end (``done`` or ``failed``), so the GUI
event queue is never flooded, whatever the step rate.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, QTimer, Signal, Slot

from studio.backend.core.handler import RunControl
from studio.backend.core.stats_delivery import EventStream
from studio.ui.errors import error_dict
from studio.ui.gui_budget import GUI_SHARE, GuiBudget
from studio.ui.gui_gc import collect_on_gui_thread

__all__ = ["RunBridge", "SLOWEST_DELIVERY_S", "paint_pending"]

SLOWEST_DELIVERY_S = 0.25  # deliveries come at least this often, budget or not: the progress stays live

log = logging.getLogger(__name__)


class _Job(QThread):
    done = Signal(object)
    failed = Signal(dict)

    def __init__(self, call: Callable[..., Any], request: Any, stream: EventStream, control: RunControl) -> None:
        super().__init__()
        self.setObjectName("studio-run")
        self._call, self._request, self._stream, self._control = call, request, stream, control

    def run(self) -> None:  # runs in the worker thread
        try:
            result = self._call(self._request, events=self._stream.emit, control=self._control)
        except BaseException as exc:  # noqa: BLE001 - nothing may vanish inside the thread (SystemExit from user code too)
            self.failed.emit(error_dict(exc, "run"))
        else:
            self.done.emit(result)


def paint_pending() -> None:
    """Let the window paint what is waiting (the new run's list entry, the earlier runs' receded
    curves) before a worker starts. Qt paints a graphics scene's changes two event-loop turns after
    they are made, which would be during the run's first steps, taking some 20 ms of GUI time (four
    charts) from the trainer. Input events wait: a click now cannot start or change anything."""
    flags = QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents
    for _ in range(2):  # the scene's queued update, then the paints it asks for
        QCoreApplication.processEvents(flags)


class RunBridge(QObject):
    """Start, pause, resume and cancel one run at a time; deliver its events in batches."""

    # a list of core events, in order, on the GUI thread; declared as object, since a list signal
    # converts every event to a QVariant and back for each receiver (35 us per 100 events, against 1 us)
    events = Signal(object)
    finished = Signal(object)  # the handler's result
    failed = Signal(dict)  # StudioError.to_dict()
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_rate: float = 30.0, share: float = GUI_SHARE) -> None:
        super().__init__(parent)
        collect_on_gui_thread()  # a cycle of widgets must never be freed by the trainer's thread (a deadlock)
        self._timer = QTimer(self)
        self._fastest_ms = max(1, int(1000 / max_rate))
        self._timer.setInterval(self._fastest_ms)
        self._timer.timeout.connect(self._drain)
        self._job: _Job | None = None
        self._stream: EventStream = EventStream()
        self.control = RunControl()
        self.deliveries = 0
        self.delivery_cpu_s: deque[float] = deque(maxlen=10_000)  # GUI-thread CPU time per delivery
        self.budget = GuiBudget(share)  # the GUI thread's share of a run's time: deliveries and charts
        self._last_delivery = 0.0
        self.owner: object | None = None  # the area whose run this is; others ignore its signals

    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, call: Callable[..., Any], request: Any) -> None:
        """Run ``call(request, events=..., control=...)`` in a worker, once the window has painted what
        the caller changed (:func:`paint_pending`); if a queued call started a run meanwhile, that one stands."""
        if self._job is not None:
            raise RuntimeError("a run is already in progress")
        paint_pending()
        if self._job is not None:
            return
        self._stream = EventStream()
        self.control = RunControl()
        self._timer.setInterval(self._fastest_ms)
        job = _Job(call, request, self._stream, self.control)
        job.done.connect(self._on_done)
        job.failed.connect(self._on_failed)
        self._job = job
        self._last_delivery = time.perf_counter()
        self.budget.start()
        self._timer.start()
        job.start()
        self.running_changed.emit(True)

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def cancel(self) -> None:
        self.control.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker ends (used on close); True if it ended."""
        job = self._job
        return job.wait(timeout_ms) if job is not None else True

    @Slot()
    def _drain(self) -> None:
        since = time.perf_counter() - self._last_delivery
        wait = self.budget.wait_s()
        if wait > 0 and since < SLOWEST_DELIVERY_S:  # the window's share is spent: later, in a larger batch
            self._timer.setInterval(max(self._fastest_ms, int(1000 * min(wait, SLOWEST_DELIVERY_S - since)) + 1))
            return
        self._timer.setInterval(self._fastest_ms)
        self._deliver()

    def _deliver(self) -> None:
        batch = self._stream.drain()
        self._last_delivery = time.perf_counter()
        if batch:
            self.deliveries += 1
            started = time.thread_time()
            self.events.emit(batch)  # the receivers run now, on this (the GUI) thread
            self.delivery_cpu_s.append(time.thread_time() - started)

    def _finish(self) -> None:
        self._timer.stop()
        self.budget.stop()  # the trainer is done: what is left is drawn at once
        self._deliver()
        job, self._job = self._job, None
        if job is not None:
            job.wait()
            job.deleteLater()
        self.running_changed.emit(False)

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        self._finish()
        self.finished.emit(result)

    @Slot(dict)
    def _on_failed(self, error: dict) -> None:
        self._finish()
        self.failed.emit(error)
