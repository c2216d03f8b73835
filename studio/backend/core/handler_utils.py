"""Small utilities every handler and front end shares (REQ-H12)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

from studio.backend.core.contract import Contract
from studio.backend.core.errors import ValidationError

__all__ = ["round_trip", "merge_config", "format_count", "format_bytes", "format_duration"]

C = TypeVar("C", bound=Contract)


def round_trip(obj: C) -> C:
    """Encode to JSON and back; equal to ``obj`` for every contract (used by tests and logs)."""
    return type(obj).from_json(obj.to_json())


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


def format_count(n: int | float) -> str:
    """1234 -> '1.2 K', 3_400_000 -> '3.4 M' (parameter counts, samples)."""
    if not math.isfinite(n):
        return str(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{int(n)}" if float(n).is_integer() else f"{sign}{n:.3g}"


def format_bytes(n: int | float) -> str:
    """Binary units: 1536 -> '1.5 KiB'."""
    if n < 0 or not math.isfinite(n):
        raise ValueError(f"a byte size must be a non-negative number, not {n!r}")
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """0.0000012 -> '1.2 µs', 0.0053 -> '5.3 ms', 0.0123 -> '12 ms', 75 -> '1 min 15 s', 3725 -> '1 h 2 min'."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 0:
        raise ValueError(f"a duration must not be negative, not {seconds!r}")
    if seconds < 0.001:  # per-example inference times
        micro = seconds * 1e6
        return f"{micro:.1f} µs" if micro < 10 else f"{micro:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"
