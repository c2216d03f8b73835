"""Freezing layers (REQ-M17).

A frozen parameter has ``requires_grad=False`` and no gradient, so backward gives it none and
optimisers - which skip parameters whose ``grad`` is ``None`` - leave it unchanged, weight decay
and momentum included. Batch-norm running statistics are buffers, not parameters: they still
update in train mode unless that layer is put in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.heads import head_name

__all__ = ["ALL_BUT_HEAD", "freeze", "unfreeze", "frozen_parameters", "trainable_parameters"]

ALL_BUT_HEAD = "all_but_head"


def _head_params(model: nn.Module, params: dict[str, nn.Parameter]) -> list[str]:
    head = head_name(model)
    if head is None:
        raise ModelError("The model has no layer with parameters to keep as its head.", code="model.no_head")
    return [n for n in params if not (n == head or n.startswith(head + "."))]


def _param_names(model: nn.Module, layers: str | Iterable[str] | None, all_but_head: bool) -> list[str]:
    params = dict(model.named_parameters())
    if all_but_head or layers == ALL_BUT_HEAD:
        return _head_params(model, params)
    if layers is None or layers == "all":
        return list(params)
    names = [layers] if isinstance(layers, str) else list(layers)
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in params and (n not in modules or n == "")]
    if unknown:
        top = [n for n, _ in model.named_children()]
        raise ModelError(
            f"Cannot freeze {', '.join(map(repr, unknown))}: the model has no such layer. Its layers are "
            f"{', '.join(top)}; '{ALL_BUT_HEAD}' freezes everything but the output layer.",
            code="model.unknown_layer",
            field="freeze",
            value=unknown,
        )
    out: list[str] = []
    for n in names:
        out.extend([n] if n in params else [p for p in params if p.startswith(n + ".")])
    return list(dict.fromkeys(out))


def freeze(model: nn.Module, layers: str | Iterable[str] | None = None, *, all_but_head: bool = False) -> list[str]:
    """Freeze layers or parameters by name (``"all_but_head"`` or ``all_but_head=True`` keeps only the
    output layer trainable; ``None`` or ``"all"`` freezes everything). Returns the frozen parameter names.

    Unknown names raise ``model.unknown_layer`` listing the layers, before anything changes.
    """
    names = _param_names(model, layers, all_but_head)
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(False)
        params[n].grad = None
    return names


def unfreeze(model: nn.Module, layers: str | Iterable[str] | None = None) -> list[str]:
    """Make layers (all when ``None``) trainable again; returns their parameter names."""
    names = _param_names(model, layers, False)
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(True)
    return names


def frozen_parameters(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """What an optimiser should be given."""
    return [p for p in model.parameters() if p.requires_grad]
