"""Helpers of the window tests (waiting for runs and calls, closing windows, fake backends)."""

from __future__ import annotations

RUN_TIMEOUT_MS = 120_000


def close_window(win, qtbot) -> None:  # noqa: ANN001
    if win.bridge.running:
        win.bridge.cancel()
        qtbot.waitUntil(lambda: not win.bridge.running, timeout=RUN_TIMEOUT_MS)
    win.close()


def wait_run(win, qtbot) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not win.bridge.running, timeout=RUN_TIMEOUT_MS)


def wait_idle(win, qtbot) -> None:  # noqa: ANN001
    """Until no short call (inspection, evaluation, ...) is waiting, queued or running."""
    qtbot.waitUntil(win.is_settled, timeout=RUN_TIMEOUT_MS)
