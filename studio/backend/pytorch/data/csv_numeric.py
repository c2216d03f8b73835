"""The fast path for all-numeric CSV files: parsing plain decimal numbers with vectorised NumPy.

A file qualifies when every cell is a plain decimal number (optional sign, digits, at most one
point, at most 24 characters, no exponent, no quotes, no empty cell) and every line has the same
number of cells. Anything else returns ``None`` and the caller reads the file on the general
path, which reports the exact line of a problem.

How it works, per block of about 1 MiB (blocks run in parallel threads; NumPy releases the GIL):

1. the positions of delimiters and newlines give every cell's end and length;
2. the bytes XOR ``'0'`` (digits become 0..9) of each cell, right-aligned, are gathered as up to
   three little-endian 64-bit words (an unaligned strided view); the point and sign are set to
   0 and bytes before the cell are masked off;
3. each word turns its 8 ASCII digits into an integer with three multiply-shift steps (SWAR);
4. with ``V`` the digits read as one integer (the point as a zero digit) and ``P = 10**(k+1)``
   for ``k`` digits after the point, the value is ``10*V/P - 9*trunc(V/P)`` in float64,
   cast to float32. This equals the correctly rounded float32 of the text (checked on millions of
   values and by a property test); at worst, in a rare tie after float64 rounding, it is 1 ulp off.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["try_parse_numeric", "parse_numeric_bytes"]

_PAD = 24
_MAX_CELL = 24
_BLOCK = 1 << 20
_U = np.uint64
_MASK = np.array([0] + [((1 << (8 * n)) - 1) << (8 * (8 - n)) for n in range(1, 9)], dtype=np.uint64)
_C1, _C2, _C3 = _U(2561), _U(6553601), _U(42949672960001)
_M1, _M2 = _U(0x00FF00FF00FF00FF), _U(0x0000FFFF0000FFFF)
_S8, _S16, _S32 = _U(8), _U(16), _U(32)
# divisors 10**(k+1) for k digits after the point (index 0: no point), negated for negative cells
_SIGNED_POW = np.concatenate([10.0 ** np.arange(32), -(10.0 ** np.arange(32))])
_ALLOWED = frozenset(b"0123456789.-+\r\n")


def _word_digits(words: np.ndarray, offsets: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The integer value of the ``count`` (0..8) digit bytes just before each offset."""
    v = words[offsets]
    v &= _MASK[count]
    v *= _C1
    v >>= _S8
    v &= _M1
    v *= _C2
    v >>= _S16
    v &= _M2
    v *= _C3
    v >>= _S32
    return v


def _cell_ends(b: np.ndarray, delim: int, ncols: int) -> np.ndarray | None:
    """Positions of every cell's terminator, or None when the row structure is not regular."""
    pattern = np.full(ncols, delim, dtype=np.uint8)
    pattern[-1] = 10
    if delim in (9, 44):  # one comparison: in a file of numbers only terminators (and '+') lie below '-'
        ends = np.flatnonzero(b < 45)
        if ends.size and ends.size % ncols == 0 and (b[ends].reshape(-1, ncols) == pattern).all():
            return ends
    isend = b == delim
    isend |= b == 10
    ends = np.flatnonzero(isend)
    if ends.size == 0 or ends.size % ncols or not (b[ends].reshape(-1, ncols) == pattern).all():
        return None
    return ends


def _parse_block(block: memoryview, delim: int, ncols: int) -> np.ndarray | None:  # noqa: C901 - one pipeline
    b = np.frombuffer(block, dtype=np.uint8)
    ends = _cell_ends(b, delim, ncols)
    if ends is None:
        return None
    cells = ends.size
    starts = np.empty_like(ends)
    starts[0] = 0
    np.add(ends[:-1], 1, out=starts[1:])
    length = ends - starts
    first = b[starts]
    neg = first == 45
    signed = neg | (first == 43)
    padded = np.empty(b.size + _PAD, dtype=np.uint8)
    padded[:_PAD] = 0
    digitval = padded[_PAD:]
    np.bitwise_xor(b, np.uint8(48), out=digitval)  # digits become 0..9, everything else 10 or more
    points = np.flatnonzero(digitval == 30)  # '.'
    digits = np.count_nonzero(digitval < 10)
    n_signed = int(np.count_nonzero(signed))
    if b.size - digits != cells + points.size + n_signed:
        return None  # some other character (letter, space, quote, exponent, misplaced sign)
    if points.size == cells:
        if not ((points >= starts) & (points < ends)).all():
            return None
        kp1 = ends - points
    elif points.size == 0:
        kp1 = np.zeros(cells, dtype=np.int64)
    else:
        owner = np.searchsorted(ends, points)
        if points.size > 1 and not (np.diff(owner) > 0).all():
            return None  # two points in one cell
        kp1 = np.zeros(cells, dtype=np.int64)
        kp1[owner] = ends[owner] - points
    longest = int(length.max())
    if longest > _MAX_CELL or int((length - signed - (kp1 > 0)).min()) < 1:
        return None  # an empty cell, a lone sign or point, or a very long cell
    padded[points + _PAD] = 0
    if n_signed:
        padded[starts[signed] + _PAD] = 0
    words = np.ndarray(shape=(padded.size - 7,), dtype=np.uint64, buffer=padded, strides=(1,))
    offsets = ends + (_PAD - 8)
    low = _word_digits(words, offsets, np.minimum(length, 8))
    if longest > 8:
        offsets -= 8
        high = _word_digits(words, offsets, np.clip(length - 8, 0, 8))
        high *= _U(100_000_000)
        low += high  # at most 16 digits: exact in 64 bits
    value = low.astype(np.float64)
    if longest > 16:
        offsets -= 8
        top = _word_digits(words, offsets, np.clip(length - 16, 0, 8)).astype(np.float64)
        top *= 1e16
        value += top
    if n_signed:
        kp1 += neg * 32
    value /= _SIGNED_POW[kp1]
    whole = np.trunc(value)
    value *= 10.0
    whole *= 9.0
    value -= whole
    return value.astype(np.float32).reshape(-1, ncols)


def _blocks(data: bytes, start: int, stop: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    while pos < stop:
        end = data.rfind(b"\n", pos, min(pos + _BLOCK, stop)) + 1 if pos + _BLOCK < stop else stop
        if end <= pos:  # a single line longer than a block
            end = data.find(b"\n", pos + _BLOCK, stop) + 1 or stop
        spans.append((pos, end))
        pos = end
    return spans


def parse_numeric_bytes(data: bytes, delimiter: str, ncols: int, skip_first_line: bool,
                        threads: int | None = None) -> np.ndarray | None:
    """Parse ``data`` (a whole CSV file) into a float32 ``(rows, ncols)`` array, or None if not plain numeric."""
    if len(delimiter) != 1 or ncols < 1:
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None
    start = data.index(b"\n") + 1 if skip_first_line and b"\n" in data else (len(data) if skip_first_line else 0)
    if data.startswith(b"\xef\xbb\xbf") and not skip_first_line:
        start = 3
    stop = len(data)
    while stop > start and data[stop - 1] == 10:  # trailing blank lines
        stop -= 1
    if stop <= start:
        return None
    if not set(data[start : min(stop, start + 4096)]) <= _ALLOWED | {ord(delimiter)}:
        return None
    data = data[:stop] + b"\n" if stop == len(data) else data
    stop += 1
    view = memoryview(data)
    spans = _blocks(data, start, stop)
    delim = ord(delimiter)
    workers = max(1, min(threads or os.cpu_count() or 1, len(spans), 8))
    if workers == 1:
        parts = [_parse_block(view[a:z], delim, ncols) for a, z in spans]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda span: _parse_block(view[span[0]:span[1]], delim, ncols), spans))
    if any(p is None for p in parts):
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts)  # type: ignore[arg-type]


def try_parse_numeric(path: str | Path, delimiter: str, has_header: bool, ncols: int) -> np.ndarray | None:
    """The whole file as float32 when it is plain numeric, else None (the general path takes over)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
        if not head:
            return None
        fh.seek(0)
        data = fh.read()
    return parse_numeric_bytes(data, delimiter, ncols, skip_first_line=has_header)
