"""Coalesced delivery of step statistics and bounded chart history (REQ-H23).

- :class:`EventStream`: the producer's side. ``emit`` appends under a lock and returns at
  once, so a slow consumer never blocks the training loop; ``drain`` hands over everything
  pending, in order, with nothing lost.
- :class:`Coalescer`: a background thread that drains a stream and delivers batches to a
  callback at most ``max_rate`` times per second (30 by default). The window does the same
  from a GUI-side timer instead of a thread.
- :class:`ChartHistory`: the points a chart keeps. Memory is bounded whatever the run length:
  points fall into buckets of equal width, each keeping its minimum and maximum (with their
  positions); when the buckets are full, neighbours merge in pairs and the width doubles.
  The result depends only on the sequence of points, not on how they were batched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

__all__ = ["EventStream", "Coalescer", "ChartHistory"]

T = TypeVar("T")


class EventStream(Generic[T]):
    """An unbounded, ordered, thread-safe buffer between one producer and one consumer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._emitted = 0

    def emit(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            self._emitted += 1

    __call__ = emit  # a stream is itself an event sink

    def drain(self) -> list[T]:
        with self._lock:
            items, self._items = self._items, []
        return items

    @property
    def emitted(self) -> int:
        return self._emitted

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Coalescer(Generic[T]):
    """Delivers what a stream collects in batches, at most ``max_rate`` batches per second.

    ``deliver`` runs on the coalescer's own thread. :meth:`close` delivers what is left and
    joins the thread, so every emitted item is delivered exactly once.
    """

    def __init__(self, stream: EventStream[T], deliver: Callable[[list[T]], None], max_rate: float = 30.0) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        self.stream = stream
        self.deliver = deliver
        self.interval = 1.0 / max_rate
        self.deliveries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-coalescer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_at = time.monotonic() + self.interval
            self._flush()

    def _flush(self) -> None:
        batch = self.stream.drain()
        if batch:
            self.deliveries += 1
            self.deliver(batch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()


class ChartHistory:
    """Bounded min/max-preserving history of one series of ``(x, y)`` points."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number of at least 2")
        self.capacity = capacity
        self.width = 1  # points per complete bucket
        self.count = 0  # points seen
        self._n = 0  # complete buckets
        self._b = np.empty((4, capacity), dtype=np.float64)  # x_at_min, y_min, x_at_max, y_max
        self._partial: list[float] | None = None  # same four values for the open bucket
        self._partial_count = 0
        self.last: tuple[float, float] | None = None

    # -- input --------------------------------------------------------------------------------
    def append(self, x: float, y: float) -> None:
        self.extend([x], [y])

    def extend(self, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray) -> None:
        xs = np.asarray(xs, dtype=np.float64).ravel()
        ys = np.asarray(ys, dtype=np.float64).ravel()
        if xs.shape != ys.shape:
            raise ValueError("xs and ys must have the same length")
        if not len(xs):
            return
        self.count += len(xs)
        self.last = (float(xs[-1]), float(ys[-1]))
        if self.width == 1 and self._partial_count == 0 and self._n + len(xs) < self.capacity:
            # one point per bucket, room for all (every run's first 4,095 points): the point is both
            # the bucket's min and max, so it is copied in as it is (a quarter of the general path's time)
            span = slice(self._n, self._n + len(xs))
            self._b[0, span] = self._b[2, span] = xs
            self._b[1, span] = self._b[3, span] = ys
            self._n += len(xs)
            return
        i = 0
        while i < len(xs):
            if self._partial_count == 0 and len(xs) - i >= self.width:
                m = min((len(xs) - i) // self.width, self.capacity - self._n)
                end = i + m * self.width
                bx = xs[i:end].reshape(m, self.width)
                by = ys[i:end].reshape(m, self.width)
                rows = np.arange(m)
                lo, hi = by.argmin(axis=1), by.argmax(axis=1)
                self._b[:, self._n:self._n + m] = (bx[rows, lo], by[rows, lo], bx[rows, hi], by[rows, hi])
                self._n += m
                i = end
                if self._n == self.capacity:
                    self._compact()
                continue
            take = min(self.width - self._partial_count, len(xs) - i)
            cx, cy = xs[i:i + take], ys[i:i + take]
            lo, hi = int(cy.argmin()), int(cy.argmax())
            cand = [cx[lo], cy[lo], cx[hi], cy[hi]]
            self._partial = cand if self._partial is None else _merge(self._partial, cand)
            self._partial_count += take
            i += take
            if self._partial_count == self.width:
                self._push_partial()

    def _push_partial(self) -> None:
        self._b[:, self._n] = self._partial
        self._n += 1
        self._partial, self._partial_count = None, 0
        if self._n == self.capacity:
            self._compact()

    def _compact(self) -> None:
        half = self._n // 2
        a, b = self._b[:, 0:2 * half:2], self._b[:, 1:2 * half:2]
        take_b_min = b[1] < a[1]  # ties keep the earlier point
        take_b_max = b[3] > a[3]
        merged = np.empty((4, half))
        merged[0] = np.where(take_b_min, b[0], a[0])
        merged[1] = np.where(take_b_min, b[1], a[1])
        merged[2] = np.where(take_b_max, b[2], a[2])
        merged[3] = np.where(take_b_max, b[3], a[3])
        self._b[:, :half] = merged
        self._n = half
        self.width *= 2  # compaction runs only when the open bucket is empty

    # -- output -------------------------------------------------------------------------------
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """The points to draw, in x order: each bucket's min and max (once when they coincide)."""
        cols = self._b[:, : self._n]
        if self._partial is not None:
            cols = np.concatenate([cols, np.asarray(self._partial).reshape(4, 1)], axis=1)
        if cols.shape[1] == 0:
            return np.empty(0), np.empty(0)
        min_first = cols[0] <= cols[2]
        x = np.empty((cols.shape[1], 2))
        y = np.empty((cols.shape[1], 2))
        x[:, 0] = np.where(min_first, cols[0], cols[2])
        y[:, 0] = np.where(min_first, cols[1], cols[3])
        x[:, 1] = np.where(min_first, cols[2], cols[0])
        y[:, 1] = np.where(min_first, cols[3], cols[1])
        keep = np.ones_like(x, dtype=bool)
        keep[:, 1] = x[:, 1] != x[:, 0]
        return x[keep], y[keep]

    @property
    def nbytes(self) -> int:
        return int(self._b.nbytes)

    def __len__(self) -> int:
        return self.count


def _merge(a: list[float], b: list[float]) -> list[float]:
    lo = a[:2] if a[1] <= b[1] else b[:2]
    hi = a[2:] if a[3] >= b[3] else b[2:]
    return [*lo, *hi]
