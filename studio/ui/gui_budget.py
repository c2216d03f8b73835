"""The GUI thread's share of a run's time (REQ-U02, REQ-U03).

Every millisecond the GUI thread runs Python or paints is a millisecond the training thread cannot
run: both need the GIL, and PySide holds it through its C++ calls, painting included. So while a
run trains, the window measures what it spends with the GUI thread's own CPU clock
(:func:`time.thread_time`, which counts everything: deliveries, frames, labels, garbage collection)
and keeps it to ``share`` of the run's wall time. It is a token bucket: it fills at ``share``
seconds per second, holds at most ``burst_s`` (so an idle spell, a pause say, buys no burst of
frames afterwards) and may be overdrawn by one action. Once overdrawn it refuses until it is full
again: asking costs GUI time too (a timer's wake-up, some 50 us, is 1.7 ms of the run's time at a
3% share), and a caller that asked again as soon as the debt was paid would wake every millisecond
and never draw.

The charts (:class:`~studio.ui.widgets.dashboard.Dashboard`) and the deliveries
(:class:`~studio.ui.run_bridge.RunBridge`) ask :meth:`GuiBudget.wait_s` before they spend; with the
budget spent they come later, in larger batches, never dropped.
"""

from __future__ import annotations

import time

__all__ = ["GuiBudget", "GUI_SHARE"]

GUI_SHARE = 0.03  # of a run's wall time: the window slows a GIL-bound trainer by about this much


class GuiBudget:
    """A token bucket of GUI-thread CPU seconds. Call its methods from the GUI thread only."""

    def __init__(self, share: float = GUI_SHARE, burst_s: float = 0.003) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.burst_s = burst_s
        self.active = False
        self._overdrawn = False
        self._tokens = 0.0
        self._wall = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        """A run starts: the bucket is full and the GUI thread's clock is read from now."""
        self.active = True
        self._overdrawn = False
        self._tokens = self.burst_s
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def stop(self) -> None:
        """The run ended: nothing is limited until the next start."""
        self.active = False

    def wait_s(self) -> float:
        """Seconds until the GUI thread may spend again (0 when it may now, or when no run trains)."""
        if not self.active:
            return 0.0
        wall, cpu = time.perf_counter(), time.thread_time()
        self._tokens = min(self.burst_s, self._tokens + self.share * (wall - self._wall) - (cpu - self._cpu))
        self._wall, self._cpu = wall, cpu
        if self._tokens < 0:
            self._overdrawn = True
        elif self._overdrawn and self._tokens >= self.burst_s:
            self._overdrawn = False
        return (self.burst_s - self._tokens) / self.share if self._overdrawn else 0.0
