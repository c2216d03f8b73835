"""Python's cyclic garbage collector runs on the GUI thread only, once Studio has worker threads.

Python collects reference cycles in whichever thread happens to allocate when a generation's
threshold is crossed. When that is a worker (the trainer, the task runner) and the cycle holds the
wrapper of a closed widget, the widget's C++ destructor runs in the worker: it locks Qt's object
mutexes while shiboken waits for the GIL that the GUI thread holds as it deletes another object,
and both threads wait for ever (seen in the suite: a test stuck in ``QObject::~QObject`` with the
task thread collecting garbage in the middle of an ``import``).

:func:`collect_on_gui_thread` turns automatic collection off and collects on a GUI-thread timer,
generation by generation with Python's own thresholds, once a second, so a cycle is freed within a
second and always on the GUI thread. (Checked four times a second, generation-1 collections fall
into the backend's torch import: launch to first step measured 1.24x a bare script, against 1.07x
checking once a second; within this machine's noise, so the measured setting stays.) It is
pyqtgraph's ``GarbageCollector`` idea; that class is not used because importing it imports all of
pyqtgraph, which the window defers until after its first paint.
Headless use (the CLI, ``torchrun``) never calls this and keeps Python's default collector.

Objects that live as long as the process (modules, classes, functions: about 400,000 once torch
and pyqtgraph are imported) are frozen out of collection (``gc.freeze``) when the collector starts
and again when the backend is ready (:func:`freeze_long_lived`). Collected once a second, they all
reached the first generation-1 collection together, which then held the GIL for 265 ms, stalling
the trainer and the window; a frozen object is never traversed again.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Slot

__all__ = ["GuiThreadCollector", "collect_on_gui_thread", "collector", "freeze_long_lived"]

_collector: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    """Collects on a timer of the thread it is made in (the GUI thread), with gc's thresholds."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.collections = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        gc.disable()
        gc.freeze()  # what exists now (imports, the window) lives as long as the process
        self._timer.start()

    @Slot()
    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (what gc would have done)."""
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] <= self.thresholds[g]:
                break
            generation = g
        if generation >= 0:
            gc.collect(generation)
            self.collections += 1


def collect_on_gui_thread() -> GuiThreadCollector | None:
    """Install the collector once per process (call from the GUI thread before starting a worker)."""
    global _collector
    app = QCoreApplication.instance()
    if _collector is not None or app is None or QThread.currentThread() is not app.thread():
        return _collector
    _collector = GuiThreadCollector(parent=app)
    _collector.destroyed.connect(_forget)
    return _collector


def collector() -> GuiThreadCollector | None:
    return _collector


def freeze_long_lived() -> None:
    """Freeze what exists now out of collection (call when the backend's imports are done).

    Only while the GUI-thread collector runs: garbage cycles existing at this moment are never
    freed, which costs little right after start-up and nothing headless, where this does nothing.
    """
    if _collector is not None:
        gc.freeze()


def _forget() -> None:
    """The application went away with its collector: give collection back to Python."""
    global _collector
    _collector = None
    gc.enable()
