"""Runtime: devices, seeding, determinism and threads (REQ-H21)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from studio.backend.core.errors import DeviceUnavailableError, RuntimeConfigError
from studio.backend.core.requests import RuntimeConfig

__all__ = [
    "DeviceInfo",
    "available_devices",
    "describe_devices",
    "resolve_device",
    "seed_everything",
    "check_seed",
    "check_threads",
    "set_deterministic",
    "set_threads",
    "apply_runtime",
    "MAX_SEED",
]

MAX_SEED = 2**32 - 1  # numpy's limit; torch and random accept it too


@dataclass(frozen=True)
class DeviceInfo:
    """What the device selector shows: ``cuda:0 — NVIDIA ... (24.0 GiB)``."""

    id: str
    kind: str
    name: str
    total_memory_bytes: int | None
    bf16: bool
    fp16: bool

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


def _total_ram() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def describe_devices() -> list[DeviceInfo]:
    """One entry per available device, CPU first (name and memory for the UI)."""
    infos = [DeviceInfo("cpu", "cpu", f"{_cpu_name()} ({os.cpu_count()} threads)", _total_ram(), True, False)]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            infos.append(DeviceInfo(f"cuda:{i}", "cuda", props.name, int(props.total_memory),
                                    bool(torch.cuda.is_bf16_supported()), True))
    if _mps_available():
        infos.append(DeviceInfo("mps", "mps", "Apple GPU (MPS)", None, False, True))
    return infos


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    if not isinstance(requested, str) or not requested.strip():
        raise RuntimeConfigError(f"The device must be a name such as 'cpu' or 'auto', not {requested!r}.",
                                 field="device", value=repr(requested))
    name = requested.strip().lower()
    available = available_devices()
    if name == "auto":
        if any(d.startswith("cuda") for d in available):
            return torch.device("cuda:0")
        if "mps" in available:
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        name = "cuda:0"
    if name not in available:
        raise DeviceUnavailableError(
            f"The device {requested!r} is not available on this machine; available: {', '.join(available)}.",
            field="device",
            value=requested,
            hint="Choose one of the available devices or 'auto'.",
        )
    return torch.device(name)


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RuntimeConfigError(
            f"The seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}.",
            code="runtime.bad_seed",
            field="seed",
            value=repr(seed),
            hint="Use a number such as 0 or 42.",
        )
    return seed


def check_threads(threads: object) -> int | None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024):
        raise RuntimeConfigError(f"The CPU thread count must be a whole number from 1 to 1024, not {threads!r}.",
                                 field="threads", value=repr(threads))
    return threads


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and torch (all devices) with one number."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    return seed


def set_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (bit-identical CPU runs; slower on some GPU ops)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads; ``None`` keeps the current number. Returns the number in force."""
    if check_threads(threads) is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def apply_runtime(config: RuntimeConfig) -> torch.device:
    """Validate everything first, then apply: a bad value changes nothing."""
    device = resolve_device(config.device)
    check_seed(config.seed)
    check_threads(config.threads)
    set_threads(config.threads)
    set_deterministic(config.deterministic)
    seed_everything(config.seed)
    return device
