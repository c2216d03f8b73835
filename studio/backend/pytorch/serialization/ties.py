"""Shared (tied) tensors: stored once, tied again after loading (REQ-S08).

safetensors refuses tensors that share memory. :func:`dedupe` keeps one name per group of exact
aliases (same storage, offset, shape, strides and dtype) and returns the alias map
``{alias: kept}`` that goes into the metadata; tensors that merely overlap without being the same
view are copied (their sharing cannot be expressed by the format and is not restored).
:func:`retie` makes a loaded model's aliased parameters and buffers the same objects again.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["dedupe", "retie"]


def _view_key(t: torch.Tensor) -> tuple[object, ...]:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _byte_span(t: torch.Tensor) -> tuple[int, int]:
    start = t.data_ptr()
    extent = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())) + 1
    return start, start + extent * t.element_size()


def dedupe(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return ``(unique, aliases)``: one entry per distinct view, the first name in order kept."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[object, ...], str] = {}
    for name, t in tensors.items():
        if t.numel() == 0 or t.device.type == "meta":
            unique[name] = t
            continue
        key = _view_key(t)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = t
    # distinct views of overlapping memory: copy the later ones so the format can hold them
    spans = sorted((( *_byte_span(t), t.device.type, name) for name, t in unique.items()
                    if t.numel() and t.device.type != "meta"), key=lambda s: (s[2], s[0], s[1]))
    reach: dict[str, int] = {}
    for start, stop, device, name in spans:
        if start < reach.get(device, -1):
            unique[name] = unique[name].clone()
        else:
            reach[device] = stop
    return unique, aliases


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_path, _, attr = name.rpartition(".")
    return (model.get_submodule(module_path) if module_path else model), attr


def retie(model: nn.Module, aliases: Mapping[str, str]) -> None:
    """Make each ``alias`` parameter/buffer of ``model`` the very object named ``kept``."""
    for alias, kept in aliases.items():
        kept_owner, kept_attr = _owner(model, kept)
        owner, attr = _owner(model, alias)
        if kept_attr in kept_owner._parameters and attr in owner._parameters:
            owner._parameters[attr] = kept_owner._parameters[kept_attr]
        elif kept_attr in kept_owner._buffers and attr in owner._buffers:
            owner._buffers[attr] = kept_owner._buffers[kept_attr]
