"""Reading a CSV file into typed columns (the general path: any layout the ``csv`` module reads).

Numbers become float64 columns (missing cells NaN), anything else text columns; every data
row keeps its line number in the file so errors can point at it. All-numeric files take the
vectorised fast path of :mod:`csv_numeric` first and come here only when it declines.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.backend.core.errors import DataError
from studio.backend.pytorch.data import csv_numeric
from studio.backend.pytorch.data.csv_sniff import MISSING_TOKENS, detect_delimiter, detect_header, looks_numeric

__all__ = ["CsvTable", "read_csv_table"]

_SAMPLE_BYTES = 1 << 16


@dataclass
class CsvTable:
    """Columns of a CSV file: ``columns[j]`` is float (NaN where missing) or an object array of text."""

    path: str
    names: tuple[str, ...]
    columns: list[np.ndarray]
    missing: list[np.ndarray]
    line_numbers: np.ndarray
    has_header: bool
    delimiter: str
    preview: list[list[str]] = field(default_factory=list)
    fast_path: bool = False
    matrix: np.ndarray | None = None  # the whole float32 table when the fast path read it

    def numeric_block(self, columns: list[int]) -> np.ndarray | None:
        """float32 ``(rows, len(columns))`` straight from the fast path's matrix (None otherwise)."""
        if self.matrix is None:
            return None
        if columns == list(range(columns[0], columns[-1] + 1)):
            return np.ascontiguousarray(self.matrix[:, columns[0]:columns[-1] + 1])
        return self.matrix[:, columns]

    @property
    def num_rows(self) -> int:
        return int(self.line_numbers.shape[0])

    def is_numeric(self, j: int) -> bool:
        return self.columns[j].dtype.kind == "f"


def _decode_error(path: Path, exc: UnicodeDecodeError) -> DataError:
    return DataError(
        f"{path.name} is not UTF-8 text (undecodable byte at offset {exc.start}); save it as UTF-8 CSV and try again.",
        code="data.bad_encoding", field="path", value=str(path))


def _sample(path: Path) -> tuple[str, list[str]]:
    with open(path, "rb") as fh:
        raw = fh.read(_SAMPLE_BYTES)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if len(raw) == _SAMPLE_BYTES:  # do not cut a multi-byte character or a line in half
        raw = raw[: raw.rfind(b"\n") + 1] or raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    return text, text.splitlines()


def read_csv_table(path: str | Path, *, delimiter: str | None = None, header: bool | str = "auto",
                   categorical: tuple[str, ...] = (), preview_rows: int = 10) -> CsvTable:
    """Read ``path``; raise :class:`DataError` naming the file and line for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"There is no CSV file at {path}; check the path.", code="data.not_found",
                        field="path", value=str(path))
    text, lines = _sample(path)
    if not any(line.strip() for line in lines):
        raise DataError(f"{path.name} is empty; choose a CSV file with a header and data rows.",
                        code="data.empty", field="path", value=str(path))
    delim = delimiter or detect_delimiter(lines, path.suffix)
    head_rows = [r for r in csv.reader(io.StringIO("\n".join(lines[:50])), delimiter=delim) if r]
    has_header = detect_header(head_rows[0], head_rows[1:]) if header == "auto" else bool(header)
    width = len(head_rows[0])
    names = tuple(c.strip() or f"column_{j + 1}" for j, c in enumerate(head_rows[0])) if has_header \
        else tuple(f"column_{j + 1}" for j in range(width))
    preview = [list(r) for r in head_rows[int(has_header): int(has_header) + preview_rows]]

    matrix = csv_numeric.try_parse_numeric(path, delim, has_header, width)
    if matrix is not None:
        start = 2 if has_header else 1
        return CsvTable(path=str(path), names=names, columns=[matrix[:, j] for j in range(width)],
                        missing=[np.zeros(matrix.shape[0], dtype=bool) for _ in range(width)],
                        line_numbers=np.arange(start, start + matrix.shape[0], dtype=np.int64),
                        has_header=has_header, delimiter=delim, preview=preview, fast_path=True, matrix=matrix)
    rows, line_numbers = _read_rows(path, delim, width, has_header)
    if not rows:
        raise DataError(f"{path.name} has a header but no data rows; add rows below the header.",
                        code="data.empty", field="path", value=str(path))
    columns, missing = [], []
    for j, values in enumerate(zip(*rows)):
        col, miss = _convert_column(path, names[j], values, line_numbers, force_text=names[j] in categorical)
        columns.append(col)
        missing.append(miss)
    return CsvTable(path=str(path), names=names, columns=columns, missing=missing,
                    line_numbers=np.asarray(line_numbers, dtype=np.int64), has_header=has_header,
                    delimiter=delim, preview=preview)


def _read_rows(path: Path, delim: str, width: int, has_header: bool) -> tuple[list[list[str]], list[int]]:
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim)
        first = True
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if first:
                    first = False
                    if has_header:
                        continue
                if len(row) != width:
                    raise DataError(
                        f"Line {reader.line_num} of {path.name} has {len(row)} values but the file has {width} columns; "
                        "fix or remove that line.", code="data.bad_row", field="line", value=reader.line_num)
                rows.append(row)
                line_numbers.append(reader.line_num)
        except csv.Error as exc:
            raise DataError(f"Line {reader.line_num} of {path.name} cannot be read as CSV ({exc}); fix that line.",
                            code="data.bad_row", field="line", value=reader.line_num) from exc
        except UnicodeDecodeError as exc:
            raise _decode_error(path, exc) from exc
    return rows, line_numbers


def _convert_column(path: Path, name: str, values: tuple[str, ...], line_numbers: list[int],
                    force_text: bool) -> tuple[np.ndarray, np.ndarray]:
    stripped = [v.strip() for v in values]
    missing = np.fromiter((v.lower() in MISSING_TOKENS for v in stripped), dtype=bool, count=len(stripped))
    if not force_text:
        filled = ["nan" if m else v for v, m in zip(stripped, missing)]
        try:
            return np.array(filled, dtype=np.float64), missing
        except ValueError:
            pass
        bad = [i for i, (v, m) in enumerate(zip(stripped, missing)) if not m and not looks_numeric(v)]
        present = int((~missing).sum())
        if present and len(bad) <= 0.1 * present:
            i = bad[0]
            raise DataError(
                f"Column {name!r} of {path.name} holds numbers, but line {line_numbers[i]} has {stripped[i]!r}; "
                f"correct that value or leave the cell empty to mark it missing.",
                code="data.bad_value", field=name, value=line_numbers[i])
    text = np.array(stripped, dtype=object)
    text[missing] = None
    return text, missing
