"""Building a model from a spec and the data's shape (REQ-M02, REQ-M14, REQ-M19).

Hyperparameters resolve as: schema defaults, overlaid by the chosen preset, overlaid by the
explicit ``hparams`` - every value checked against the schema before anything is built. Input
channels, image size, feature count, sequence length and number of outputs always come from the
arguments. :func:`resolve_spec` gives the plain-JSON record (spec with every hyperparameter
spelled out, input shape, outputs) that :func:`rebuild` turns back into the same architecture.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import ModelError, StudioError
from studio.backend.core.requests import ModelSpec
from studio.backend.pytorch.models.init import apply_init, check_init
from studio.backend.pytorch.models.registry import ModelInfo, get_model_info, model_names
from studio.backend.pytorch.models.schema import validate_hparams
from studio.backend.pytorch.models.shapes import check_input_shape, check_num_outputs, input_kind_of

__all__ = ["as_spec", "resolve_hparams", "expand_spec", "build_model", "resolve_spec", "rebuild"]


def as_spec(spec: ModelSpec | Mapping[str, Any] | str) -> ModelSpec:
    """Accept a ``ModelSpec``, its dict or its JSON text."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, str):
        return ModelSpec.from_json(spec)
    if isinstance(spec, Mapping):
        return ModelSpec.from_dict(dict(spec))
    raise ModelError(
        f"A model spec must be a ModelSpec, a dict or JSON text, not {type(spec).__name__}.",
        code="model.bad_spec",
        field="model",
    )


def resolve_hparams(spec: ModelSpec | Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter's value for ``spec``: defaults < preset < explicit values, all validated."""
    spec = as_spec(spec)
    info = get_model_info(spec.name)
    preset: Mapping[str, Any] = {}
    if spec.preset is not None:
        if spec.preset not in info.presets:
            raise ModelError(
                f"Model {spec.name!r} has no preset {spec.preset!r}; its presets are "
                f"{', '.join(info.presets) or 'none'}.",
                code="model.unknown_preset",
                field="model.preset",
                value=spec.preset,
            )
        preset = info.presets[spec.preset]
    if not isinstance(spec.hparams, Mapping):
        raise ModelError(
            "Model hyperparameters must be an object of name: value.", code="model.bad_spec", field="model.hparams"
        )
    return validate_hparams(info.schema, {**preset, **spec.hparams}, spec.name)


def expand_spec(spec: ModelSpec | Mapping[str, Any]) -> ModelSpec:
    """The same spec with every hyperparameter spelled out, so no preset or default needs looking up."""
    spec = as_spec(spec)
    return ModelSpec(name=spec.name, preset=spec.preset, hparams=resolve_hparams(spec), init=check_init(spec.init))


def check_kind(info: ModelInfo, shape: tuple[int, ...]) -> None:
    kind = input_kind_of(shape)
    if kind not in info.input_kinds:
        others = ", ".join(model_names(input_kind=kind)) or "none"
        raise ModelError(
            f"Model {info.name!r} takes {' or '.join(info.input_kinds)} inputs but the data are {kind}s "
            f"of shape {shape}; models for {kind} data: {others}.",
            code="model.incompatible",
            field="model.name",
            value=info.name,
        )


def build_model(
    spec: ModelSpec | Mapping[str, Any],
    input_shape: Sequence[int],
    num_outputs: int,
    *,
    seed: int | None = None,
) -> nn.Module:
    """Build ``spec`` for data of per-sample ``input_shape`` with ``num_outputs`` outputs, in float32.

    With ``seed`` the weights are drawn under that seed inside ``torch.random.fork_rng`` (the global
    random state is not advanced); without it they come from the global generator, so
    ``torch.manual_seed`` decides. Every check runs before the builder is called.
    """
    spec = as_spec(spec)
    info = get_model_info(spec.name)
    shape = check_input_shape(input_shape)
    check_num_outputs(num_outputs)
    check_kind(info, shape)
    hparams = resolve_hparams(spec)
    check_init(spec.init)
    if seed is None:
        return _build(info, spec.init, shape, num_outputs, hparams)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(info, spec.init, shape, num_outputs, hparams)


def _build(info: ModelInfo, init: str, shape: tuple[int, ...], num_outputs: int, hparams: dict[str, Any]) -> nn.Module:
    try:
        model = info.builder(shape, num_outputs, **hparams)
    except StudioError:
        raise
    except Exception as exc:
        raise ModelError(
            f"Model {info.name!r} could not be built for inputs of shape {shape} with {num_outputs} outputs "
            f"({type(exc).__name__}: {exc}).",
            code="model.build_failed",
            field="model.name",
            value=info.name,
        ) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"The builder of model {info.name!r} returned {type(model).__name__}, not a torch module.",
            code="model.build_failed",
            field="model.name",
            value=info.name,
        )
    return apply_init(model.float(), init)


def resolve_spec(spec: ModelSpec | Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> dict[str, Any]:
    """Plain-JSON record (what checkpoints store) that :func:`rebuild` turns into the same architecture."""
    return {
        "model": json.loads(expand_spec(spec).to_json()),
        "input_shape": list(check_input_shape(input_shape)),
        "num_outputs": check_num_outputs(num_outputs),
    }


def rebuild(resolved: Mapping[str, Any] | str, *, seed: int | None = None) -> nn.Module:
    """Build the model a :func:`resolve_spec` record (dict or JSON text) describes."""
    data = json.loads(resolved) if isinstance(resolved, str) else dict(resolved)
    missing = sorted({"model", "input_shape", "num_outputs"} - set(data))
    if missing:
        raise ModelError(
            f"A resolved model spec needs model, input_shape and num_outputs; {', '.join(missing)} missing.",
            code="model.bad_spec",
            value=missing,
        )
    return build_model(as_spec(data["model"]), tuple(data["input_shape"]), data["num_outputs"], seed=seed)
