"""Guessing how a CSV file is laid out: its delimiter and whether the first row is a header."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MISSING_TOKENS", "detect_delimiter", "looks_numeric", "detect_header"]

#: Cell texts read as "no value" (compared after stripping spaces, case-insensitively).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a"})

_CANDIDATES = (",", ";", "\t", "|")


def detect_delimiter(first_lines: Sequence[str], suffix: str = "") -> str:
    """The delimiter: tab for ``.tsv``; otherwise the candidate found equally often, and most often, on each line."""
    if suffix.lower() == ".tsv":
        return "\t"
    lines = [line for line in first_lines if line.strip()][:20]
    if not lines:
        return ","
    best, best_count = ",", 0
    for cand in _CANDIDATES:
        counts = {line.count(cand) for line in lines}
        count = min(counts)
        if count > best_count and len(counts) == 1:
            best, best_count = cand, count
    if best_count == 0:  # no candidate is consistent: take the most frequent on the first line
        first = lines[0]
        best = max(_CANDIDATES, key=first.count)
    return best


def looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_header(first_row: Sequence[str], next_rows: Sequence[Sequence[str]]) -> bool:
    """True when the first row names the columns.

    It does when none of its cells is a number or empty, and either some column holds numbers
    below it, or (all text) none of its cells appears again in its column below.
    """
    cells = [c.strip() for c in first_row]
    if not cells or any(not c or looks_numeric(c) for c in cells):
        return False
    if not next_rows:
        return True
    for j in range(len(cells)):
        below = [row[j].strip() for row in next_rows if j < len(row)]
        values = [v for v in below if v.lower() not in MISSING_TOKENS]
        if values and all(looks_numeric(v) for v in values):
            return True
    return all(cells[j] not in {row[j].strip() for row in next_rows if j < len(row)} for j in range(len(cells)))
