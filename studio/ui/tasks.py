"""Short handler calls off the GUI thread: one worker object in one ``QThread`` for every area.

Orange's ``ConcurrentWidgetMixin`` idea: areas never hand-roll threads. They call
``tasks.submit(operation, request, on_done, key=...)``; the handler runs in the worker thread
and ``on_done(result)`` (or ``on_error(error_dict)``) runs later on the GUI thread. A ``key``
makes a call *latest-only*: a newer call with the same key supersedes the older one, which is
skipped if it has not started yet and whose result is dropped if it has. Long runs with events
(train, distill) go through :class:`~studio.ui.run_bridge.RunBridge` instead.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.backend.core.registry import HandlerRegistry, default_registry
from studio.ui.errors import error_dict
from studio.ui.gui_gc import collect_on_gui_thread

__all__ = ["Backend", "TaskRunner"]

log = logging.getLogger(__name__)
_live: weakref.WeakSet[TaskRunner] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """A script that exits without closing its window must not abort on a running QThread."""
    for runner in list(_live):
        runner.shutdown(10_000)


_warm_lock = threading.Lock()
_warmed: set[tuple[int, str]] = set()


class Backend:
    """The handlers of one backend, looked up lazily (the lookup imports torch, so only workers call it).

    The first call of any thread loads the backend and runs its ``warm_up`` (first-use imports such as
    ``torch._dynamo``) under one lock, and every other thread waits for it: torch's lazy imports are
    not safe when two threads trigger them at once ("partially initialized module").
    """

    def __init__(self, registry: HandlerRegistry | None = None, name: str = "pytorch") -> None:
        self.registry = registry or default_registry()
        self.name = name

    def ensure_ready(self) -> None:
        key = (id(self.registry), self.name)
        if key in _warmed:
            return
        with _warm_lock:
            if key in _warmed:
                return
            try:
                self.registry.operations(self.name)  # loads the backend (imports torch)
                handlers = sys.modules.get(f"studio.backend.{self.name}.handlers")
                warm = getattr(handlers, "warm_up", None)
                if warm is not None:
                    warm()
            finally:
                _warmed.add(key)  # a failure shows up again, clearly, in the call that needs it

    def call(self, operation: str, request: Any, **kwargs: Any) -> Any:
        self.ensure_ready()
        return self.registry.get(self.name, operation)(request, **kwargs)

    def caller(self, operation: str) -> Callable[..., Any]:
        """A function ``f(request, **kwargs)`` for :meth:`RunBridge.start` (runs in the worker)."""

        def call(request: Any, **kwargs: Any) -> Any:
            return self.call(operation, request, **kwargs)

        call.__name__ = operation
        return call


@dataclass
class _Pending:
    key: str | None
    on_done: Callable[[Any], None] | None
    on_error: Callable[[dict], None] | None


class _Worker(QObject):
    done = Signal(int, object)
    failed = Signal(int, dict)

    def __init__(self, backend: Backend, skip: Callable[[int], bool]) -> None:
        super().__init__()
        self._backend = backend
        self._skip = skip

    @Slot(int, str, object)
    def run(self, job: int, operation: str, request: Any) -> None:  # runs in the worker thread
        if self._skip(job):
            self.done.emit(job, None)
            return
        try:
            result = self._backend.call(operation, request)
        except BaseException as exc:  # noqa: BLE001 - nothing may vanish inside the thread (SystemExit from user code too)
            self.failed.emit(job, error_dict(exc, operation))
        else:
            self.done.emit(job, result)


class TaskRunner(QObject):
    """Queue of short handler calls, run one after another in a worker thread."""

    _request = Signal(int, str, object)
    busy_changed = Signal(bool)
    error = Signal(dict)  # failures of calls submitted without their own on_error

    def __init__(self, backend: Backend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        collect_on_gui_thread()  # a cycle of widgets must never be freed by the worker (a deadlock)
        self.backend = backend
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._latest: dict[str, int] = {}
        self._keys: dict[int, str | None] = {}
        self._closed = False
        self._lock = threading.Lock()
        self._thread = QThread()
        self._thread.setObjectName("studio-tasks")
        self._worker = _Worker(backend, self._superseded)
        self._worker.moveToThread(self._thread)
        self._request.connect(self._worker.run)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        self._thread.start()
        _live.add(self)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, operation: str, request: Any, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[dict], None] | None = None, key: str | None = None) -> int:
        """Run ``backend.<operation>(request)`` in the worker; callbacks run on the GUI thread."""
        if self._closed:
            return 0
        job = next(self._ids)
        with self._lock:
            self._keys[job] = key
            if key is not None:
                self._latest[key] = job
        was_busy = self.busy
        self._pending[job] = _Pending(key, on_done, on_error)
        if not was_busy:
            self.busy_changed.emit(True)
        self._request.emit(job, operation, request)
        return job

    def _superseded(self, job: int) -> bool:
        """True when a newer call with the same key exists or the runner is closing (any thread)."""
        if self._closed:
            return True
        with self._lock:
            key = self._keys.get(job)
            return key is not None and self._latest.get(key) != job

    def _take(self, job: int) -> _Pending | None:
        stale = self._superseded(job)
        with self._lock:
            self._keys.pop(job, None)
        pending = self._pending.pop(job, None)
        if not self._pending:
            self.busy_changed.emit(False)
        return None if stale else pending

    @Slot(int, object)
    def _on_done(self, job: int, result: Any) -> None:
        pending = self._take(job)
        if pending is not None and pending.on_done is not None and result is not None:
            pending.on_done(result)

    @Slot(int, dict)
    def _on_failed(self, job: int, error: dict) -> None:
        pending = self._take(job)
        if pending is None:
            return
        if pending.on_error is not None:
            pending.on_error(error)
        else:
            self.error.emit(error)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Let the call in progress end, skip the queued ones and stop the thread (on close)."""
        if self._closed:
            return True
        self._closed = True
        self._thread.quit()
        ended = self._thread.wait(timeout_ms)
        if not ended:
            log.warning("the task worker did not stop within %d ms", timeout_ms)
        return ended

    def wait_idle(self, timeout_ms: int = 60_000) -> bool:
        """For tests and scripts: process events until no call is pending."""
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer

        deadline = QDeadlineTimer(timeout_ms)
        while self._pending and not deadline.hasExpired():
            QCoreApplication.processEvents()
            QThread.msleep(5)
        return not self._pending
