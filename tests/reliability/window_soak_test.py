"""Soak: 50 cycles of start, pause, resume, stop and resume-from-checkpoint in one window (REQ-U02, REQ-U04, REQ-H09).

Each cycle drives the window as a person would: Train, Pause (the worker stops between steps and says
so), Resume, Stop (the run ends cancelled, keeping its state), Save with training state in the Export
area, and resuming the stopped run from that checkpoint (the window's recovery path), which trains to
the end. Runs are tiny (digits, one epoch of 12 batches) so 50 cycles fit in about a minute.

Each cycle ends as a tidy person ends it: the cycle's two runs are unticked and forgotten ("Forget
hidden runs"), which removes their curves and releases their models in the backend (the newest
model stays, since the Evaluate and Export areas show it). A window that keeps every run keeps its
curves and models by design (REQ-U15): measured here at about 0.75 MiB a run for digits + mlp, so
without forgetting 50 cycles grow by some 75 MiB of live memory (more in RSS, which also holds the
pixmap cache of the earlier runs' curves, up to 128 MiB).

After every cycle no run thread is left and the process has no more threads than after the first
(warm-up) cycle. Resident memory (``/proc/self/statm``) is sampled after each cycle twice: as it is,
and after a collection and ``malloc_trim`` hand freed heap back to the system (so the figure is live
memory, not the allocator's cache). Growth of the second over the 50 cycles is held to 16 MiB, well
below one cycle's runs kept (1.5 MiB) times 50: a leak of runs, models, threads, files or datasets
would show. Both growths are printed.
"""

from __future__ import annotations

import ctypes
import gc
import pathlib

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytorch_serialization_unit_test import temps
from reliability_helpers import RUN_TIMEOUT_MS, os_thread_count, os_thread_names, rss_bytes

from studio.backend.core.events import RunPaused
from studio.backend.pytorch.model_store import store

CYCLES = 50
GROWTH_BOUND = 16 * 2**20  # bytes of live memory over the 50 cycles after warm-up


def _live_rss() -> int:
    """RSS after the collector ran and glibc returned its free heap to the system."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS as it is
        pass
    return rss_bytes()


@pytest.mark.req("REQ-U02", "REQ-U04", "REQ-H09", "REQ-U11")
@pytest.mark.timeout(240)
def test_fifty_cycles_of_start_pause_resume_stop_and_resume_from_checkpoint(
        make_window, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    win = make_window()
    win.tasks.wait_idle()
    win.epochs.setValue(1)
    win.batch_size.setValue(128)  # 12 steps an epoch
    checkpoint = tmp_path / "stopped.safetensors"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(checkpoint), ""))
    paused: list[RunPaused] = []
    win.bridge.events.connect(lambda batch: paused.extend(e for e in batch if isinstance(e, RunPaused)))
    threads: list[int] = []
    memory: list[int] = []
    raw: list[int] = []
    earlier: str | None = None

    def wait_run() -> None:
        qtbot.waitUntil(lambda: not win.bridge.running, timeout=RUN_TIMEOUT_MS)

    for cycle in range(CYCLES + 1):  # cycle 0 warms up (first imports, Qt's pools, allocator arenas)
        seen = len(paused)
        win.start_training()
        win.toggle_pause()  # before the first step
        qtbot.waitUntil(lambda: len(paused) > seen, timeout=RUN_TIMEOUT_MS)  # noqa: B023 - called at once
        assert win.bridge.running and win.pause_button.text() == "Resume"
        win.toggle_pause()
        win.stop_training()
        wait_run()
        stopped = win.last_result
        assert win.last_error is None and stopped.status == "cancelled", (cycle, win.last_error)
        request = win.train_area.last_request

        win.export_area.training_state.setChecked(True)
        win.export_area.save_checkpoint()
        win.tasks.wait_idle()
        assert checkpoint.is_file() and win.banner.text() == "", win.banner.text()

        win.train_area.resume_interrupted(request, str(checkpoint))
        wait_run()
        resumed = win.last_result
        assert win.last_error is None and resumed.status == "finished", (cycle, win.last_error)
        assert resumed.epochs_run == 1 and resumed.steps == 12
        assert not checkpoint.exists() and temps(tmp_path) == []  # the resumed run's clean end removed it

        dash = win.train_area.dashboard
        for key in list(dash.runs):
            dash.runs[key].item.setCheckState(Qt.CheckState.Unchecked)
        qtbot.mouseClick(dash.clear_button, Qt.MouseButton.LeftButton)
        win.tasks.wait_idle()
        assert dash.runs == {} and stopped.model not in store and resumed.model in store
        assert earlier is None or earlier not in store  # the last cycle's newest model: no longer in use
        earlier = resumed.model

        qtbot.waitUntil(lambda: "studio-run" not in os_thread_names(), timeout=10_000)
        threads.append(os_thread_count())
        raw.append(rss_bytes())
        memory.append(_live_rss())
        assert threads[-1] <= threads[0], f"cycle {cycle}: {threads[-1]} threads, {threads[0]} after warm-up"

    growth = memory[-1] - memory[0]
    per_cycle = growth / CYCLES
    print(f"\nsoak: {CYCLES} cycles ({2 * CYCLES} runs, {CYCLES} saves, runs forgotten each cycle; "
          f"{len(store._models)} models in the store, from all tests so far); threads {threads[0]} -> {threads[-1]} (max {max(threads)}); "
          f"live memory {memory[0] / 2**20:.1f} MiB -> {memory[-1] / 2**20:.1f} MiB, growth {growth / 2**20:+.1f} MiB "
          f"({per_cycle / 2**10:+.0f} KiB a cycle), peak {max(memory) / 2**20:.1f} MiB; RSS as it is "
          f"{raw[0] / 2**20:.1f} -> {raw[-1] / 2**20:.1f} MiB ({(raw[-1] - raw[0]) / 2**20:+.1f} MiB)")
    assert growth < GROWTH_BOUND
