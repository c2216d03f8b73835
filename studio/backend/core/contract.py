"""JSON round trip for frozen dataclasses (REQ-H10, REQ-H12).

Every request, result and event is a frozen dataclass deriving from :class:`Contract`.
``to_dict`` gives plain JSON types; ``from_dict`` rebuilds the exact same object, converting
lists back to tuples and nested dicts back to contracts, and rejects unknown keys with a
:class:`ValidationError` that names them. Floats keep full precision through ``json``
(``repr`` round-trips), and non-finite floats are written as the strings "nan", "inf", "-inf".
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, ClassVar, TypeVar, Union

from studio.backend.core.errors import ValidationError

__all__ = ["Contract", "contract_registry", "round_trip"]

C = TypeVar("C", bound="Contract")

_KINDS: dict[str, type[Contract]] = {}


def contract_registry() -> dict[str, type[Contract]]:
    """Every concrete contract class by its ``kind`` name (for decoding tagged JSON)."""
    return dict(_KINDS)


class Contract:
    """Mixin for frozen dataclasses that cross the handler boundary."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        _KINDS[cls.__name__] = cls

    # -- encoding ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps({"kind": self.kind, **self.to_dict()}, allow_nan=False, **kwargs)

    # -- decoding ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ValidationError(
                f"{cls.__name__} must be given as a JSON object, not {type(data).__name__}.",
                field=cls.__name__,
                value=repr(data)[:80],
            )
        data = {k: v for k, v in data.items() if k != "kind"}
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValidationError(
                f"{cls.__name__} has no setting {', '.join(map(repr, unknown))}; "
                f"known settings are {', '.join(sorted(fields))}.",
                code="request.unknown_key",
                field=unknown[0],
                value=unknown,
                hint="Remove or rename the unknown setting.",
            )
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for name, value in data.items():
            kwargs[name] = _decode(value, hints[name], f"{cls.__name__}.{name}")
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise ValidationError(
                f"{cls.__name__} is incomplete: {exc}.", field=cls.__name__
            ) from exc

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{cls.__name__} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.",
                code="request.bad_json",
            ) from exc
        if isinstance(data, dict) and data.get("kind", cls.kind) != cls.kind:
            target = _KINDS.get(str(data["kind"]))
            if target is None or not issubclass(target, cls):
                raise ValidationError(
                    f"Expected a {cls.__name__} but the JSON holds a {data['kind']}.",
                    field="kind",
                    value=data["kind"],
                )
            return target.from_dict(data)  # type: ignore[return-value]
        return cls.from_dict(data)


def round_trip(obj: C) -> C:
    """Encode to JSON and back; equal to ``obj`` for every contract (used by tests and logs)."""
    return type(obj).from_json(obj.to_json())


def decode_any(text: str) -> Contract:
    """Decode tagged JSON (``{"kind": ..., ...}``) into whichever contract it names."""
    data = json.loads(text)
    cls = _KINDS.get(str(data.get("kind"))) if isinstance(data, dict) else None
    if cls is None:
        raise ValidationError(f"Unknown contract kind {data.get('kind')!r}.", field="kind")
    return cls.from_dict(data)


def _encode(value: Any) -> Any:
    if isinstance(value, Contract):
        return {"kind": value.kind, **value.to_dict()}
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(value: Any, hint: Any, where: str) -> Any:  # noqa: C901 - one dispatch on type shape
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(value, arg, where)
            except ValidationError as exc:
                errors.append(exc)
        raise errors[0] if errors else ValidationError(f"{where} may not be empty.", field=where)
    if origin is typing.Literal:
        if value not in args:
            raise ValidationError(
                f"{where} must be one of {', '.join(map(repr, args))}, not {value!r}.",
                field=where,
                value=value,
            )
        return value
    if origin is tuple:
        _expect(value, (list, tuple), where, "a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValidationError(f"{where} must have {len(args)} items, not {len(value)}.", field=where)
        return tuple(_decode(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        _expect(value, (list, tuple), where, "a list")
        return [_decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        _expect(value, dict, where, "an object")
        vt = args[1] if args else Any
        return {k: _decode(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Contract):
        if isinstance(value, dict) and "kind" in value and value["kind"] != hint.kind:
            sub = _KINDS.get(str(value["kind"]))
            if sub is not None and issubclass(sub, hint):
                return sub.from_dict(value)
        return hint.from_dict(value)
    if hint is float:
        if isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"{where} must be a number, not {value!r}.", field=where, value=value)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{where} must be a whole number, not {value!r}.", field=where, value=value)
        return value
    if hint is bool:
        _expect(value, bool, where, "true or false")
        return value
    if hint is str:
        _expect(value, str, where, "text")
        return value
    if origin is None and hint in (dict, list, tuple, object):
        return value
    return value


def _expect(value: Any, types_: Any, where: str, what: str) -> None:
    if not isinstance(value, types_):
        raise ValidationError(f"{where} must be {what}, not {value!r}.", field=where, value=repr(value)[:80])
