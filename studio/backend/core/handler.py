"""The handler protocol and the run control shared by every long-running operation.

A handler is a callable ``handler(request, *, events=None, control=None) -> result``.
``events`` is an :data:`EventSink` (any callable taking an event; it must not block) and
``control`` a :class:`RunControl` through which a caller cancels, pauses and resumes; the
loop checks it between optimisation steps (REQ-H08, REQ-H09, REQ-T15).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from studio.backend.core.events import Event

__all__ = ["EventSink", "Handler", "RunControl", "discard_events"]

EventSink = Callable[[Event], None]


def discard_events(event: Event) -> None:
    """An event sink for callers that do not listen."""


class Handler(Protocol):
    def __call__(self, request: Any, *, events: EventSink | None = None, control: RunControl | None = None) -> Any: ...


class RunControl:
    """Thread-safe cancel and pause flags.

    The training loop calls :meth:`checkpoint` between steps: it returns ``False`` when the run
    should stop, and blocks (without spinning) while the run is paused.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused loop so it can see the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, on_pause: Callable[[], None] | None = None,
                          on_resume: Callable[[], None] | None = None) -> bool:
        """Block while paused; return ``True`` to continue, ``False`` if cancelled."""
        if self._cancel.is_set():
            return False
        if not self._running.is_set():
            if on_pause is not None:
                on_pause()
            self._running.wait()
            if self._cancel.is_set():
                return False
            if on_resume is not None:
                on_resume()
        return not self._cancel.is_set()
