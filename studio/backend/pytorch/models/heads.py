"""Which layer of a model is its output layer (its "head")."""

from __future__ import annotations

from torch import nn

__all__ = ["head_name"]


def head_name(model: nn.Module) -> str | None:
    """``model.head_name`` when set (all built-ins: ``"head"``), else the last top-level child with parameters."""
    name = getattr(model, "head_name", None)
    if isinstance(name, str) and name in dict(model.named_children()):
        return name
    last = None
    for child_name, child in model.named_children():
        if any(True for _ in child.parameters()):
            last = child_name
    return last
