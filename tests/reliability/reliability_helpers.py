"""Helpers shared by the reliability tests (imported by name: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from studio.backend.core.errors import StudioError
from studio.backend.core.requests import TrainConfig

#: A tiny, fast run on the built-in digits: 1437 training samples, 6 steps an epoch.
QUICK = TrainConfig(epochs=1, batch_size=256)
RUN_TIMEOUT_MS = 120_000


def handler_error(registry: Any, operation: str, request: Any, **kwargs: Any) -> StudioError:
    """Call a handler that must fail; the error is a ``StudioError`` with a readable one-sentence message."""
    with pytest.raises(StudioError) as info:
        registry.call("pytorch", operation, request, **kwargs)
    err = info.value
    assert "." in err.message and len(err.message) > 20, err
    return err


def stored_models() -> dict[str, Any]:
    """The backend's model store by handle (to show that a failed load or run added nothing)."""
    from studio.backend.pytorch.model_store import store

    return dict(store._models)


def rss_bytes() -> int:
    """Resident memory of this process, from ``/proc/self/statm`` (psutil is not a dependency)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def os_thread_count() -> int:
    """Threads of this process as the kernel sees them (Python, Qt and OpenMP threads alike)."""
    return len(os.listdir("/proc/self/task"))


def python_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def os_thread_names() -> list[str]:
    """The kernel's name of each thread of this process (a QThread's object name, ``python``, ...)."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended while we looked
            pass
    return sorted(names)
