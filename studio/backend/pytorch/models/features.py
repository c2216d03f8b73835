"""Named intermediate features for distillation (REQ-M16).

Built-in models list their feature layers in ``feature_names``; for any other module the
top-level children except the head are offered. :func:`capture_features` records layer
outputs through forward hooks that only observe (they return ``None``), so the model's own
code path and outputs are unchanged; the captured tensors keep their autograd history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.heads import head_name
from studio.backend.pytorch.models.probe import first_tensor, per_sample_shape, probe_forward

__all__ = ["feature_names", "feature_layers", "capture_features"]


def feature_names(model: nn.Module) -> tuple[str, ...]:
    """The layers a model offers as distillation features, in forward order."""
    names = getattr(model, "feature_names", None)
    if names is not None:
        return tuple(names)
    head = head_name(model)
    return tuple(n for n, _ in model.named_children() if n != head)


def _resolve(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in modules or n == ""]
    if unknown:
        raise ModelError(
            f"The model has no layer {', '.join(map(repr, unknown))}; its feature layers are "
            f"{', '.join(feature_names(model)) or 'none'} (any layer name from the layer summary also works).",
            code="model.unknown_layer",
            field="features",
            value=unknown,
            hint="Pick one of the listed feature layers.",
        )
    return {n: modules[n] for n in wanted}


@contextmanager
def capture_features(
    model: nn.Module, names: Iterable[str] | None = None, *, detach: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward pass of ``model`` fills the yielded dict with ``name -> output``.

    ``names`` defaults to :func:`feature_names`. Hooks are removed on leaving the block, even on error.
    Unknown names raise ``model.unknown_layer`` listing the available ones, before any hook is added.
    """
    targets = _resolve(model, feature_names(model) if names is None else names)
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):  # noqa: ANN202 - a hook closure
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            t = first_tensor(output)
            if t is not None:
                captured[name] = t.detach() if detach else t

        return hook

    try:
        for name, module in targets.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for h in handles:
            h.remove()


def feature_layers(
    model: nn.Module, input_shape: Sequence[int], names: Iterable[str] | None = None
) -> dict[str, tuple[int, ...]]:
    """``name -> per-sample output shape`` of each feature layer, from one dummy forward pass."""
    wanted = list(feature_names(model) if names is None else names)
    with capture_features(model, wanted, detach=True) as feats:
        probe_forward(model, input_shape, batch=1)
    return {n: tuple(per_sample_shape(feats[n])) for n in wanted if n in feats}
