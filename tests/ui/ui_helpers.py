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


def registry_with(**overrides):  # noqa: ANN003, ANN201
    """The real PyTorch backend with some operations replaced by test doubles."""
    from studio.backend.core.registry import HandlerRegistry, default_registry

    real = default_registry()
    registry = HandlerRegistry(discover_entry_points=False)

    def load(reg: HandlerRegistry) -> None:
        for op in sorted(set(real.operations("pytorch")) | set(overrides)):
            reg.register("pytorch", op, overrides.get(op) or real.get("pytorch", op))

    registry.add_backend("pytorch", load)
    return registry
