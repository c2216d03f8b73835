"""The ``environment`` operation: torch's version and build, and the devices with their memory."""

from __future__ import annotations

from typing import Any

import torch

from studio.backend.core.environment import BackendEnvironment, EnvironmentRequest
from studio.backend.pytorch.runtime import describe_devices

__all__ = ["environment", "torch_build"]


def torch_build() -> dict[str, Any]:
    """How this torch was built, and which of its accelerators can be used here."""
    mps = getattr(torch.backends, "mps", None)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "cuda": torch.version.cuda,  # None in a CPU-only build
        "cudnn": cudnn,
        "hip": getattr(torch.version, "hip", None),  # ROCm builds
        "mps": bool(mps is not None and mps.is_built()),
        "cuda_available": torch.cuda.is_available(),
        "mps_available": bool(mps is not None and mps.is_available()),
        "debug": bool(torch.version.debug),
    }


def _free_memory(device_id: str) -> int | None:
    if not device_id.startswith("cuda:"):
        return None
    try:
        free, _total = torch.cuda.mem_get_info(int(device_id.split(":", 1)[1]))
    except (RuntimeError, ValueError, AssertionError):
        return None
    return int(free)


def environment(request: EnvironmentRequest | None = None, **_: Any) -> BackendEnvironment:
    request = request if request is not None else EnvironmentRequest()
    devices: tuple[dict[str, Any], ...] = ()
    if request.include_devices:
        devices = tuple({**d.to_dict(), "free_memory_bytes": _free_memory(d.id)} for d in describe_devices())
    return BackendEnvironment(backend="pytorch", framework="torch", version=str(torch.__version__),
                              build=torch_build(), devices=devices, threads=torch.get_num_threads())
