"""Every random number generator a run draws from, captured and restored (REQ-S07, REQ-T13).

``torch`` CPU (a uint8 tensor), each CUDA device already initialised (never initialises CUDA
just to ask), MPS when present, NumPy's global generator and Python's ``random``. Generators a
trainer owns itself (a ``torch.Generator`` for shuffling, say) belong in the trainer's own state:
``generator.get_state()`` is a tensor and travels like any other.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state"]


def _mps() -> Any:
    backend = getattr(torch.backends, "mps", None)
    return torch.mps if backend is not None and backend.is_available() else None


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    mps = _mps()
    if mps is not None:
        state["mps"] = mps.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> list[str]:
    """Restore what ``state`` holds and this machine has; returns the generators restored."""
    restored = []
    if "torch" in state:
        torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
        restored.append("torch")
    if "numpy" in state:
        np.random.set_state(state["numpy"])
        restored.append("numpy")
    if "python" in state:
        random.setstate(state["python"])
        restored.append("python")
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([s.to("cpu", torch.uint8) for s in cuda])
        restored.append("cuda")
    mps = _mps()
    if "mps" in state and mps is not None:
        mps.set_rng_state(state["mps"].to("cpu", torch.uint8))
        restored.append("mps")
    return restored
