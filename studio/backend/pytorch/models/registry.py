"""The model registry (REQ-M01).

Architectures are registered by name with the :func:`register_model` decorator on a builder
function ``builder(input_shape, num_outputs, **hparams) -> nn.Module``. Each entry carries a
description, the tasks and input kinds it supports, a typed hyperparameter schema, size
presets and a recommended use. Listing is sorted by name, so it is deterministic.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.schema import Param, schema_to_json, validate_hparams

__all__ = [
    "INPUT_KINDS",
    "TASKS",
    "ModelInfo",
    "register_model",
    "unregister_model",
    "list_models",
    "model_names",
    "get_model_info",
    "registry_snapshot",
    "restore_registry",
]

INPUT_KINDS = ("vector", "image", "sequence")
TASKS = ("classification", "regression", "binary", "multilabel")

Builder = Callable[..., Any]
F = TypeVar("F", bound=Builder)

_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
_LOCK = threading.RLock()
_REGISTRY: dict[str, ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    """Everything the registry knows about one architecture."""

    name: str
    description: str
    tasks: tuple[str, ...]
    input_kinds: tuple[str, ...]
    schema: tuple[Param, ...]
    presets: dict[str, dict[str, Any]]
    recommended_use: str
    builder: Builder = field(compare=False, repr=False)
    default_preset: str | None = None
    source: str = "builtin"
    example_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    preferred_image_size: int | None = None  # the side image folders are resized to for this model, if it has one

    def param(self, name: str) -> Param:
        for p in self.schema:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (everything but the builder)."""
        return {
            "name": self.name,
            "description": self.description,
            "tasks": list(self.tasks),
            "input_kinds": list(self.input_kinds),
            "schema": schema_to_json(self.schema),
            "presets": {k: dict(v) for k, v in self.presets.items()},
            "recommended_use": self.recommended_use,
            "default_preset": self.default_preset,
            "source": self.source,
            "example_shapes": {k: list(v) for k, v in self.example_shapes.items()},
            "preferred_image_size": self.preferred_image_size,
        }


def _subset(values: Iterable[str], allowed: Sequence[str], what: str, name: str) -> tuple[str, ...]:
    vals = tuple(values)
    bad = [v for v in vals if v not in allowed]
    if bad or not vals:
        raise ModelError(
            f"Model {name!r} declares {what} {bad or 'none'}; choose from {', '.join(allowed)}.",
            code="model.bad_registration",
            field=what,
            value=list(vals),
        )
    return vals


def _check_schema(name: str, schema: Sequence[Param | Mapping[str, Any]]) -> tuple[Param, ...]:
    params = tuple(p if isinstance(p, Param) else Param.from_dict(p) for p in schema)
    names = [p.name for p in params]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ModelError(
            f"Model {name!r} lists hyperparameter(s) {dupes} more than once.",
            code="model.bad_registration",
            value=dupes,
        )
    return params


def _check_presets(
    name: str, schema: tuple[Param, ...], presets: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pname, values in (presets or {}).items():
        try:
            validate_hparams(schema, values, name)
        except ModelError as exc:
            raise ModelError(
                f"Preset {pname!r} of model {name!r} is invalid: {exc.message}",
                code="model.bad_registration",
                field=pname,
            ) from exc
        out[str(pname)] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
    return out


def register_model(
    name: str,
    *,
    description: str,
    tasks: Iterable[str] = TASKS,
    input_kinds: Iterable[str],
    schema: Sequence[Param | Mapping[str, Any]] = (),
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    recommended_use: str = "",
    default_preset: str | None = None,
    replace: bool = False,
    source: str = "builtin",
    example_shapes: Mapping[str, Sequence[int]] | None = None,
    preferred_image_size: int | None = None,
) -> Callable[[F], F]:
    """Decorator registering ``builder(input_shape, num_outputs, **hparams) -> nn.Module``.

    Everything is checked at registration (names, tasks, input kinds, schema defaults, presets);
    a second registration under the same name is ``registry.duplicate`` unless ``replace=True``.
    ``default_preset`` defaults to ``"small"`` when such a preset exists. ``example_shapes`` gives,
    per input kind, a sample shape the model is checked and described with when no data are at hand
    (for models that need, say, large images). ``preferred_image_size`` is the side (in pixels) that
    image folders are resized to for this model unless the data's ``size`` option says otherwise (a
    pretrained backbone's own input size, say); without it Studio picks a default (see ``image_size``).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(
            f"Model name {name!r} is not allowed; use lowercase letters, digits, '_' or '-', starting with a letter.",
            code="model.bad_registration",
            field="name",
            value=repr(name),
        )
    tasks_ = _subset(tasks, TASKS, "tasks", name)
    kinds = _subset(input_kinds, INPUT_KINDS, "input kinds", name)
    params = _check_schema(name, schema)
    presets_ = _check_presets(name, params, presets)
    if default_preset is None and "small" in presets_:
        default_preset = "small"
    if default_preset is not None and default_preset not in presets_:
        raise ModelError(
            f"Default preset {default_preset!r} of model {name!r} is not one of its presets {list(presets_)}.",
            code="model.bad_registration",
            field="default_preset",
        )

    if preferred_image_size is not None and (isinstance(preferred_image_size, bool) or not isinstance(
            preferred_image_size, int) or not 4 <= preferred_image_size <= 1024 or "image" not in kinds):
        raise ModelError(f"Model {name!r} declares preferred_image_size {preferred_image_size!r}; give a whole number "
                         "from 4 to 1024, for a model that takes images.", code="model.bad_registration",
                         field="preferred_image_size", value=repr(preferred_image_size))

    examples = {}
    for kind, shape in (example_shapes or {}).items():
        _subset([kind], kinds, "example shape kinds", name)
        examples[kind] = tuple(int(d) for d in shape)

    def decorator(builder: F) -> F:
        if not callable(builder):
            raise ModelError(f"Model {name!r} must decorate a function.", code="model.bad_registration")
        info = ModelInfo(
            name=name,
            description=description.strip(),
            tasks=tasks_,
            input_kinds=kinds,
            schema=params,
            presets=presets_,
            recommended_use=recommended_use.strip(),
            builder=builder,
            default_preset=default_preset,
            source=source,
            example_shapes=examples,
            preferred_image_size=preferred_image_size,
        )
        with _LOCK:
            if name in _REGISTRY and not replace:
                raise ModelError(
                    f"A model named {name!r} is already registered ({_REGISTRY[name].source}); "
                    "pick another name or register with replace=True.",
                    code="registry.duplicate",
                    field="name",
                    value=name,
                )
            _REGISTRY[name] = info
        return builder

    return decorator


def unregister_model(name: str) -> None:
    with _LOCK:
        if name not in _REGISTRY:
            raise _unknown(name)
        del _REGISTRY[name]


def list_models(input_kind: str | None = None, task: str | None = None) -> tuple[ModelInfo, ...]:
    """Registered models sorted by name, optionally only those taking ``input_kind`` and ``task``."""
    with _LOCK:
        infos = sorted(_REGISTRY.values(), key=lambda i: i.name)
    return tuple(
        i for i in infos if (input_kind is None or input_kind in i.input_kinds) and (task is None or task in i.tasks)
    )


def model_names(input_kind: str | None = None, task: str | None = None) -> tuple[str, ...]:
    """Names of :func:`list_models`, sorted."""
    return tuple(i.name for i in list_models(input_kind, task))


def _unknown(name: object) -> ModelError:
    return ModelError(
        f"There is no model named {name!r}; available models are {', '.join(model_names())}.",
        code="model.unknown",
        field="name",
        value=name if isinstance(name, str) else repr(name),
        hint="Pick one of the listed models.",
    )


def get_model_info(name: str) -> ModelInfo:
    with _LOCK:
        info = _REGISTRY.get(name) if isinstance(name, str) else None
    if info is None:
        raise _unknown(name)
    return info


def registry_snapshot() -> dict[str, ModelInfo]:
    """A copy of the registry, to restore with :func:`restore_registry` (used for transactions)."""
    with _LOCK:
        return dict(_REGISTRY)


def restore_registry(snapshot: Mapping[str, ModelInfo]) -> None:
    with _LOCK:
        _REGISTRY.clear()
        _REGISTRY.update(snapshot)
