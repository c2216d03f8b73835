"""Reference cycles are freed on the GUI thread, never by a worker (REQ-U02, REQ-U11).

Python collects cycles in whichever thread crosses a threshold. A worker that frees a cycle holding a
widget runs the widget's C++ destructor off the GUI thread, which deadlocked the suite once (a test
stuck for good in ``QObject::~QObject`` while the task thread collected garbage inside an import).
Once the window's worker machinery exists, collection belongs to a GUI-thread timer.
"""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from PySide6.QtWidgets import QWidget

from studio.ui import gui_gc
from studio.ui.run_bridge import RunBridge


class _Holder:
    widget: QWidget


def _widget_cycle(freed_in: list[str]) -> None:
    """A closed widget and a Python object that refer to each other, unreachable once this returns."""
    widget = QWidget()
    holder = _Holder()
    holder.widget = widget
    widget.holder = holder  # the cycle runs through the widget's Python wrapper
    weakref.finalize(holder, lambda: freed_in.append(threading.current_thread().name))


@pytest.mark.req("REQ-U02", "REQ-U11")
def test_a_cycle_holding_a_widget_is_freed_on_the_gui_thread_while_a_worker_allocates(qtbot) -> None:  # noqa: ANN001
    bridge = RunBridge()  # what the window makes before any worker starts
    assert gui_gc.collector() is not None and not gc.isenabled()
    freed_in: list[str] = []
    _widget_cycle(freed_in)
    kept: list[list] = []

    def allocate() -> None:  # far past gc's first threshold (700): with automatic collection on, it collects here
        kept.extend([] for _ in range(50_000))

    worker = threading.Thread(target=allocate, name="allocating-worker")
    worker.start()
    worker.join()
    assert freed_in == []  # the worker's allocations did not collect
    qtbot.waitUntil(lambda: freed_in != [], timeout=5_000)  # the GUI-thread timer did, within a second or so
    assert freed_in == [threading.main_thread().name]
    kept.clear()
    del bridge


@pytest.mark.req("REQ-U02")
def test_the_collector_keeps_pythons_thresholds_and_collects_only_past_them(qtbot) -> None:  # noqa: ANN001
    RunBridge()
    collector = gui_gc.collector()
    assert collector is not None
    assert collector.thresholds == gc.get_threshold()
    gc.collect()  # counts start at zero
    before = collector.collections
    collector.check()
    assert collector.collections == before  # nothing past a threshold: no work on the GUI thread
    kept = [[] for _ in range(5_000)]
    collector.check()
    assert collector.collections == before + 1 and gc.get_count()[0] < collector.thresholds[0]
    del kept


@pytest.mark.req("REQ-U02")
def test_long_lived_objects_are_frozen_out_of_collection_and_later_cycles_are_still_freed(qtbot) -> None:  # noqa: ANN001
    """What an import leaves (torch: ~400,000 objects) is never traversed again; garbage made later still goes."""
    RunBridge()
    assert gui_gc.collector() is not None
    imported = [[k] for k in range(2_000)]  # stands for an import's long-lived objects
    marker = imported[-1]
    before = gc.get_freeze_count()
    gui_gc.freeze_long_lived()
    assert gc.get_freeze_count() >= before + 2_000
    assert not any(o is marker for o in gc.get_objects())  # no collection looks at it any more
    freed_in: list[str] = []
    _widget_cycle(freed_in)
    busy = [[] for _ in range(5_000)]  # the app goes on allocating, past the first threshold
    qtbot.waitUntil(lambda: freed_in != [], timeout=5_000)
    assert freed_in == [threading.main_thread().name]
    del busy
