"""A partial configuration merged into a contract's defaults, unknown keys rejected (REQ-H12)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from studio.backend.core.contract import Contract
from studio.backend.core.errors import ValidationError

__all__ = ["merge_config"]

C = TypeVar("C", bound=Contract)


def merge_config(defaults: C, partial: dict[str, Any] | None) -> C:
    """``defaults`` with the keys of ``partial`` replaced; nested contracts merge recursively.

    Unknown keys are rejected with a :class:`ValidationError` naming them and the known ones.
    """
    if not partial:
        return defaults
    if not isinstance(partial, dict):
        raise ValidationError(f"Settings for {type(defaults).__name__} must be an object, not {partial!r}.",
                              field=type(defaults).__name__)
    names = {f.name for f in dataclasses.fields(defaults)}  # type: ignore[arg-type]
    unknown = sorted(set(partial) - names - {"kind"})
    if unknown:
        close = {u: _closest(u, names) for u in unknown}
        hint = "; ".join(f"did you mean {c!r} for {u!r}?" for u, c in close.items() if c)
        raise ValidationError(
            f"{type(defaults).__name__} has no setting {', '.join(map(repr, unknown))}; "
            f"known settings are {', '.join(sorted(names))}.",
            code="request.unknown_key",
            field=unknown[0],
            value=unknown,
            hint=hint.capitalize() if hint else None,
        )
    merged = defaults.to_dict()
    for key, value in partial.items():
        if key == "kind":
            continue
        current = getattr(defaults, key)
        if isinstance(current, Contract) and isinstance(value, dict):
            merged[key] = merge_config(current, value).to_dict()
        else:
            merged[key] = value
    return type(defaults).from_dict(merged)


def _closest(word: str, options: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None
