"""Mixed precision with a graceful fallback (REQ-T10).

``bf16`` and ``fp16`` run the forward pass under ``torch.autocast``; ``fp16`` also scales the
loss with a ``GradScaler`` so small gradients do not underflow. Support is probed once on the
actual device with a tiny matmul: where autocast to the requested type does not work, the run
proceeds in fp32 and :attr:`Precision.warning` says why (the trainer reports it as a
``RunWarning``); it never fails. On CPU with current PyTorch both bf16 and fp16 (with a CPU
``GradScaler``) are supported, so both are used as asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from studio.backend.core.errors import ValidationError

__all__ = ["PRECISIONS", "Precision", "autocast_supported"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether autocast to ``dtype`` works on ``device`` (probed, not looked up)."""
    try:
        if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            return False
        a = torch.ones(2, 2, device=device)
        with torch.autocast(device.type, dtype=dtype):
            out = a @ a
        return out.dtype == dtype
    except Exception:  # any failure means "not here"; the run falls back to fp32
        return False


def _make_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    try:
        return torch.amp.GradScaler(device.type)
    except Exception:
        return None


class Precision:
    """The precision actually in force: ``name`` is ``fp32``, ``bf16`` or ``fp16``."""

    def __init__(self, requested: str, device: torch.device,
                 probe: Callable[[torch.device, torch.dtype], bool] | None = None) -> None:
        if requested not in PRECISIONS:
            raise ValidationError(f"Unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}.",
                                  field="precision", value=requested)
        self.requested = requested
        self.device = device
        self.warning: str | None = None
        self.scaler: torch.amp.GradScaler | None = None
        name = requested
        probe = probe if probe is not None else autocast_supported
        if name != "fp32" and not probe(device, PRECISIONS[name]):
            self.warning = f"{name} autocast is not supported on {device}; training in fp32 instead."
            name = "fp32"
        if name == "fp16":
            self.scaler = _make_scaler(device)
            if self.scaler is None:
                self.warning = f"Loss scaling for fp16 is not available on {device}; training in fp32 instead."
                name = "fp32"
        self.name = name
        self.dtype = PRECISIONS[name]
        self._no_autocast = contextlib.nullcontext()  # reusable: fp32 steps allocate nothing here

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.name == "fp32":
            return self._no_autocast
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring gradients back to their true scale before they are measured or clipped."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Optimiser step; with loss scaling a step with non-finite gradients is skipped and the scale lowered."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        return dict(self.scaler.state_dict()) if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(dict(state))
