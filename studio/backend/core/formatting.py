"""Human formatting of parameter counts, byte sizes and durations, for the window and the terminal (REQ-H12)."""

from __future__ import annotations

import math

__all__ = ["format_count", "format_bytes", "format_duration"]


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
