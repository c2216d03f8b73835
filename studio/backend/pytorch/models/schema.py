"""Typed hyperparameter schemas (REQ-M01, REQ-M02).

A model's schema is a tuple of :class:`Param`. Each parameter has a type (``int``, ``float``,
``bool``, ``choice`` or ``int_list``), a default, an allowed range or list of choices and a
help text in plain words. The schema is plain JSON (:meth:`Param.to_dict`), so the window
can generate its form and the command line its flags from it. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.backend.core.errors import ModelError

__all__ = ["PARAM_TYPES", "Param", "HParam", "validate_hparams", "schema_to_json", "schema_defaults"]

PARAM_TYPES = ("int", "float", "bool", "choice", "int_list")


@dataclass(frozen=True)
class Param:
    """One hyperparameter: what it is called, what it may hold and what it means.

    ``min``/``max`` bound ``int`` and ``float`` values and each item of an ``int_list``;
    ``min_items``/``max_items`` bound the length of an ``int_list``.
    """

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    min_items: int = 1
    max_items: int = 8

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ModelError(
                f"Hyperparameter {self.name!r} has type {self.type!r}; use one of {', '.join(PARAM_TYPES)}.",
                code="model.bad_schema",
                field=self.name,
                value=self.type,
            )
        if self.type == "choice" and not self.choices:
            raise ModelError(
                f"Hyperparameter {self.name!r} is a choice but lists no choices.",
                code="model.bad_schema",
                field=self.name,
            )
        object.__setattr__(self, "choices", tuple(self.choices))
        try:
            object.__setattr__(self, "default", self.validate(self.default))
        except ModelError as exc:
            raise ModelError(
                f"The default of hyperparameter {self.name!r} is not allowed by its own schema: {exc.message}",
                code="model.bad_schema",
                field=self.name,
                value=self.default,
            ) from exc

    # -- checking ----------------------------------------------------------------------------
    def allowed(self) -> str:
        """The allowed values in words, e.g. ``a whole number from 1 to 1024``."""
        if self.type == "bool":
            return "true or false"
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        rng = _range_text(self.min, self.max)
        if self.type == "int":
            return f"a whole number{rng}"
        if self.type == "float":
            return f"a number{rng}"
        return f"a list of {self.min_items} to {self.max_items} whole numbers{rng}"

    def validate(self, value: Any, model: str = "") -> Any:
        """Return ``value`` normalised (floats as float, lists as list) or raise ``model.bad_hparam``."""
        ok, norm = _check(self, value)
        if not ok:
            where = f" of model {model!r}" if model else ""
            raise ModelError(
                f"Hyperparameter {self.name!r}{where} must be {self.allowed()}, not {value!r}.",
                code="model.bad_hparam",
                field=f"model.hparams.{self.name}",
                value=value if isinstance(value, (str, int, float, bool, list)) else repr(value),
                hint="Change the value or leave it out to use the default.",
            )
        return norm

    def parse_text(self, text: str) -> Any:
        """Parse a command-line string (``64,32`` for lists, ``true``/``false`` for flags) and validate it."""
        raw: Any = text.strip()
        try:
            if self.type == "int":
                raw = int(raw)
            elif self.type == "float":
                raw = float(raw)
            elif self.type == "bool":
                low = raw.lower()
                if low in ("true", "yes", "1", "on"):
                    raw = True
                elif low in ("false", "no", "0", "off"):
                    raw = False
            elif self.type == "int_list":
                raw = [int(p) for p in raw.replace(" ", "").split(",") if p] if raw else []
        except ValueError:
            pass  # validate() below reports the text as given
        return self.validate(raw)

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        default = list(self.default) if isinstance(self.default, (list, tuple)) else self.default
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": default,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices),
            "help": self.help,
        }
        if self.type == "int_list":
            out["min_items"] = self.min_items
            out["max_items"] = self.max_items
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Param:
        known = {"name", "type", "default", "min", "max", "choices", "help", "min_items", "max_items"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(
                f"A hyperparameter description has unknown keys {unknown}; known keys are {sorted(known)}.",
                code="model.bad_schema",
                value=unknown,
            )
        kwargs = dict(data)
        kwargs["choices"] = tuple(kwargs.get("choices") or ())
        return cls(**kwargs)


HParam = Param  # the name used in specs/PT-MODELS-001.md


def _range_text(lo: float | None, hi: float | None) -> str:
    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(v)

    if lo is not None and hi is not None:
        return f" from {fmt(lo)} to {fmt(hi)}"
    if lo is not None:
        return f" of at least {fmt(lo)}"
    if hi is not None:
        return f" of at most {fmt(hi)}"
    return ""


def _in_range(p: Param, v: float) -> bool:
    return (p.min is None or v >= p.min) and (p.max is None or v <= p.max)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(p: Param, value: Any) -> tuple[bool, Any]:
    if p.type == "bool":
        return isinstance(value, bool), value
    if p.type == "choice":
        return isinstance(value, str) and value in p.choices, value
    if p.type == "int":
        return _is_int(value) and _in_range(p, value), value
    if p.type == "float":
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and _in_range(p, value)
        return ok, float(value) if ok else value
    # int_list
    if not isinstance(value, (list, tuple)):
        return False, value
    ok = p.min_items <= len(value) <= p.max_items and all(_is_int(v) and _in_range(p, v) for v in value)
    return ok, list(value)


def validate_hparams(schema: Sequence[Param], values: Mapping[str, Any], model: str = "") -> dict[str, Any]:
    """Defaults overlaid with ``values``, every value checked; unknown names raise ``model.bad_hparam``."""
    by_name = {p.name: p for p in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        known = ", ".join(by_name) or "none"
        where = f"Model {model!r}" if model else "This model"
        raise ModelError(
            f"{where} has no hyperparameter {', '.join(map(repr, unknown))}; its hyperparameters are {known}.",
            code="model.bad_hparam",
            field=f"model.hparams.{unknown[0]}",
            value=unknown,
            hint="Remove or rename the unknown hyperparameter.",
        )
    out = {p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in schema}
    for name, value in values.items():
        out[name] = by_name[name].validate(value, model)
    return out


def schema_defaults(schema: Iterable[Param]) -> dict[str, Any]:
    return {p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in schema}


def schema_to_json(schema: Iterable[Param]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in schema]
