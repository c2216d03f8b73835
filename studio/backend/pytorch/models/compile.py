"""Optional ``torch.compile`` with an eager fallback (REQ-M21)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from studio.backend.pytorch.models.probe import eval_mode
from studio.backend.pytorch.models.shapes import dummy_input

__all__ = ["CompileFallbackWarning", "maybe_compile"]


class CompileFallbackWarning(UserWarning):
    """``torch.compile`` failed or is unsupported here; the model runs in eager mode."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _fallback(model: nn.Module, why: str) -> tuple[nn.Module, str]:
    text = f"torch.compile could not be used ({why}); the model runs without compiling (eager mode)."
    warnings.warn(text, CompileFallbackWarning, stacklevel=3)
    return model, text


def maybe_compile(
    model: nn.Module,
    example: torch.Tensor | Sequence[int] | None = None,
    enabled: bool = True,
    **compile_kwargs: Any,
) -> tuple[nn.Module, str | None]:
    """``(compiled, None)``, or ``(model, warning_text)`` when compiling fails or is unsupported.

    Compilation in PyTorch is lazy, so with ``example`` (a batch, or one sample's input shape) one
    trial forward pass runs here, where a failure can still fall back. Without it, only failures of
    ``torch.compile`` itself are caught. A :class:`CompileFallbackWarning` is also issued. Never raises.
    With ``enabled=False`` the model is returned as it is.
    """
    if not enabled:
        return model, None
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        return _fallback(model, "this PyTorch has no torch.compile")
    try:
        compiled = compile_fn(model, **compile_kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure means eager
        return _fallback(model, _first_line(exc))
    if example is not None:
        try:
            x = example if isinstance(example, torch.Tensor) else dummy_input(tuple(example), 2)
            with eval_mode(model), torch.no_grad():
                compiled(x)
        except Exception as exc:  # noqa: BLE001 - any failure means eager
            return _fallback(model, _first_line(exc))
    return compiled, None
