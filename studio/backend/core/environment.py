"""What a backend says about itself for ``studio doctor`` and the window's Help > About this system.

A backend answers the ``environment`` operation with a :class:`BackendEnvironment`: its framework and
version, how that framework was built (CUDA, ROCm, MPS), and its devices with their memory, so a
bug report says which build ran on which hardware. Nothing here imports torch or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.backend.core.contract import Contract

__all__ = ["EnvironmentRequest", "BackendEnvironment"]


@dataclass(frozen=True)
class EnvironmentRequest(Contract):
    """Ask a backend about its framework, its build and its devices."""

    include_devices: bool = True


@dataclass(frozen=True)
class BackendEnvironment(Contract):
    """``build``: how the framework was compiled (``cuda``, ``cudnn``, ``hip``, ``mps`` ...) and what is usable
    here (``cuda_available``, ``mps_available``); ``devices``: id, kind, name, total and free memory in bytes."""

    backend: str = ""
    framework: str = ""
    version: str = ""
    build: dict[str, Any] = field(default_factory=dict)
    devices: tuple[dict[str, Any], ...] = ()
    threads: int = 0
