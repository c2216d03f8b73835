"""Reading a CSV file into typed columns with ``pyarrow.csv`` (REQ-D02).

Numbers become float columns (missing cells NaN), anything else text columns. The file is read
by Arrow's multi-threaded CSV reader in up to three steps, each taken only when the one before
declines:

1. **numbers**: every column as float64, the cells of :data:`MISSING_TOKENS` (in any letter
   case) as missing. Most training files end here; the feature matrix is then cut from Arrow's
   record batches straight into one float32 array (:meth:`CsvTable.numeric_block`).
2. **text**: every column as text (quotes, quoted delimiters and newlines honoured), then per
   column a vectorised cast to numbers, or the rules of :func:`_convert_column` for text
   columns and for cells the cast refuses (a few bad cells in a numeric column are an error
   naming the line, many make a text column).
3. **csv module**: when Arrow cannot parse the file at all (a row with the wrong number of
   cells, bytes that are not UTF-8, a blank line of spaces) or its rows could differ from the
   ``csv`` module's (a single-column file, blank lines before the first row, a header with a
   quoted line break), Python's ``csv`` module reads it line by line. It either raises the error
   naming the exact line, or reads what Arrow was stricter about.

Columns listed as ``categorical`` skip step 1.

Arrow knows rows, not lines (it skips blank lines and a quoted value may span lines), and its
errors give no line (``use_threads=True``) or a row count (without threads): so the line
number of each row is found by the ``csv`` module, on first use only, which is only when an
error must name a line.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.backend.core.errors import DataError
from studio.backend.pytorch.data.csv_sniff import MISSING_TOKENS, detect_delimiter, detect_header, looks_numeric

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CsvTable", "read_csv_table"]

_SAMPLE_BYTES = 1 << 16
# Arrow parses blocks of this size on its threads (its own default): one record batch per block.
# 256 KiB parsed as fast, but four times as many batches made the float32 cut of
# :meth:`CsvTable.numeric_block` three times slower (0.11 s against 0.04 s for 1,000,000 x 19).
_ARROW_BLOCK = 1 << 20
_CONVERT_THREADS = max(1, min(4, os.cpu_count() or 1))


class _LazyColumns(Sequence[np.ndarray]):
    """A list of columns converted on first use (a 1,000,000-row file need not copy the feature columns twice)."""

    def __init__(self, count: int, convert: Callable[[int], np.ndarray]) -> None:
        self._items: list[np.ndarray | None] = [None] * count
        self._convert = convert

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, j):  # type: ignore[override]
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        item = self._items[j]
        if item is None:
            item = self._items[j] = self._convert(j if j >= 0 else j + len(self))
        return item


@dataclass
class CsvTable:
    """Columns of a CSV file: ``columns[j]`` is float (NaN where missing) or an object array of text.

    ``reader`` says which step read the file: ``"arrow-numbers"`` (the fast path), ``"arrow-text"``
    or ``"csv"``. ``line_numbers[i]`` is the file line of data row ``i`` (computed on first use).
    """

    path: str
    names: tuple[str, ...]
    columns: Sequence[np.ndarray]
    missing: Sequence[np.ndarray]
    num_rows: int
    has_header: bool
    delimiter: str
    preview: list[list[str]] = field(default_factory=list)
    reader: str = "csv"
    arrow: pa.Table | None = field(default=None, repr=False)  # the float64 table of the fast path
    _line_numbers: np.ndarray | None = field(default=None, repr=False)

    @property
    def fast_path(self) -> bool:
        return self.reader == "arrow-numbers"

    @property
    def line_numbers(self) -> np.ndarray:
        if self._line_numbers is None:
            self._line_numbers = _scan_line_numbers(Path(self.path), self.delimiter, len(self.names),
                                                    self.has_header, self.num_rows)
        return self._line_numbers

    def numeric_block(self, columns: list[int]) -> np.ndarray | None:
        """float32 ``(rows, len(columns))`` cut straight from the fast path's record batches.

        None unless the fast path read the file and none of these columns has a missing cell.
        Each record batch (a few thousand rows) is stacked into its rows of the output, which stays
        in the cache; the batches are split between threads (NumPy copies without the GIL): on two
        cores a 1,000,000 x 19 block takes about two thirds of the time of one thread.
        """
        if self.arrow is None or any(self.arrow.column(j).null_count for j in columns):
            return None
        out = np.empty((self.num_rows, len(columns)), dtype=np.float32)
        batches = self.arrow.select(columns).to_batches()
        starts = np.cumsum([0] + [b.num_rows for b in batches])

        def fill(part: range) -> None:
            with np.errstate(over="ignore"):  # beyond float32's range becomes inf: the caller reports it
                for i in part:
                    np.stack([c.to_numpy(zero_copy_only=True) for c in batches[i].columns], axis=1,
                             out=out[starts[i]:starts[i + 1]], casting="same_kind")

        workers = min(_CONVERT_THREADS, len(batches))
        if workers <= 1 or self.num_rows < 100_000:
            fill(range(len(batches)))
            return out
        bounds = np.linspace(0, len(batches), workers + 1).astype(int)
        with ThreadPoolExecutor(workers, thread_name_prefix="studio-csv") as pool:
            list(pool.map(fill, [range(a, b) for a, b in itertools.pairwise(bounds)]))
        return out

    def is_numeric(self, j: int) -> bool:
        return self.arrow is not None or self.columns[j].dtype.kind == "f"


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
    table = CsvTable(path=str(path), names=names, columns=[], missing=[], num_rows=0, has_header=has_header,
                     delimiter=delim, preview=preview)
    # Arrow's rows are the csv module's rows (so line numbers can be found later) except for
    # whitespace-only lines, which the csv module skips: they are not rows of a wider file (Arrow
    # refuses them), but they would be in a one-column file, or as leading lines Arrow must skip;
    # and Arrow skips the header as one line, so a header with a quoted line break goes to step 3.
    header_lines = has_header and any("\n" in c or "\r" in c for c in head_rows[0])
    if width > 1 and len(delim) == 1 and lines[0].strip() and not header_lines:
        forced = tuple(j for j, name in enumerate(names) if name in categorical)
        if _read_with_arrow(table, path, forced):
            return table
    _read_with_csv_module(table, path, categorical)
    return table


# ---------------------------------------------------------------- steps 1 and 2: pyarrow.csv


@functools.cache
def _null_spellings() -> list[str]:
    """Every letter-case spelling of the missing-value tokens (Arrow compares null values exactly)."""
    spellings = set()
    for token in MISSING_TOKENS:
        spellings.update("".join(chars) for chars in itertools.product(*({c.lower(), c.upper()} for c in token)))
    return sorted(spellings)  # callers must not change the list


def _arrow_options(table: CsvTable, numbers: bool) -> dict[str, Any]:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    keys = [f"c{j}" for j in range(len(table.names))]  # Arrow's own names: unique even when the header's are not
    kind = pa.float64() if numbers else pa.string()
    return {
        "read_options": pacsv.ReadOptions(use_threads=True, block_size=_ARROW_BLOCK, column_names=keys,
                                          skip_rows=int(table.has_header)),
        # a quote can never be part of a number: the numbers step reads without quoting (it declines on any quote)
        "parse_options": pacsv.ParseOptions(delimiter=table.delimiter, quote_char=False if numbers else '"',
                                            double_quote=True, newlines_in_values=not numbers),
        "convert_options": pacsv.ConvertOptions(
            column_types={k: kind for k in keys}, null_values=_null_spellings() if numbers else [],
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    }


def _read_with_arrow(table: CsvTable, path: Path, forced_text: tuple[int, ...]) -> bool:
    """Fill ``table`` by steps 1 or 2; False when Arrow cannot parse the file (step 3 then reports or reads it)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    if not forced_text:
        try:
            # read through Arrow's own file reader, not a memory map: a map of a file that another program
            # truncates meanwhile would kill the process (SIGBUS) instead of raising
            arrow = pacsv.read_csv(str(path), **_arrow_options(table, numbers=True))
        except pa.ArrowException:  # a cell that is not a number, a quote, a ragged row: the next step tells which
            pass
        else:
            _check_rows(table, arrow.num_rows, path)
            table.arrow, table.num_rows, table.reader = arrow, arrow.num_rows, "arrow-numbers"
            table.columns = _LazyColumns(arrow.num_columns, lambda j: arrow.column(j).to_numpy())
            table.missing = _LazyColumns(arrow.num_columns, lambda j: _null_mask(arrow.column(j)))
            return True
    try:
        text = pacsv.read_csv(str(path), **_arrow_options(table, numbers=False))
    except pa.ArrowException:
        return False
    _check_rows(table, text.num_rows, path)
    table.num_rows, table.reader = text.num_rows, "arrow-text"
    converted = [_convert_arrow_column(table, path, j, text.column(j), j in forced_text)
                 for j in range(text.num_columns)]
    table.columns = [c for c, _ in converted]
    table.missing = [m for _, m in converted]
    return True


def _check_rows(table: CsvTable, rows: int, path: Path) -> None:
    if rows == 0:
        raise DataError(f"{path.name} has a header but no data rows; add rows below the header.",
                        code="data.empty", field="path", value=str(path))


def _null_mask(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count == 0:
        return np.zeros(len(column), dtype=bool)
    return column.is_null().to_numpy()


def _convert_arrow_column(table: CsvTable, path: Path, j: int, column: pa.ChunkedArray,
                          force_text: bool) -> tuple[np.ndarray, np.ndarray]:
    """A text column as numbers when every present cell casts (the common case, vectorised), else by the Python rules."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not force_text:
        trimmed = pc.utf8_trim_whitespace(column)
        missing = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING_TOKENS)))
        try:
            numbers = pc.cast(pc.if_else(missing, pa.scalar(None, pa.string()), trimmed), pa.float64())
        except pa.ArrowInvalid:
            pass  # some cell is not a number Arrow reads: the Python rules below decide (error or text column)
        else:
            return numbers.to_numpy(), missing.to_numpy()
    return _convert_column(path, table.names[j], column.to_pylist(), lambda i: int(table.line_numbers[i]),
                           force_text)


# ---------------------------------------------------------------- step 3: the csv module


def _read_with_csv_module(table: CsvTable, path: Path, categorical: tuple[str, ...]) -> None:
    rows = list(_iter_rows(path, table.delimiter, len(table.names), table.has_header))
    if not rows:
        _check_rows(table, 0, path)
    line_numbers = np.fromiter((line for line, _ in rows), dtype=np.int64, count=len(rows))
    table.num_rows, table.reader, table._line_numbers = len(rows), "csv", line_numbers
    table.columns, table.missing = [], []
    for j, values in enumerate(zip(*(row for _, row in rows))):
        col, miss = _convert_column(path, table.names[j], values, lambda i: int(line_numbers[i]),
                                    force_text=table.names[j] in categorical)
        table.columns.append(col)  # type: ignore[attr-defined]
        table.missing.append(miss)  # type: ignore[attr-defined]


def _iter_rows(path: Path, delim: str, width: int, has_header: bool) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of every data row; blank lines are skipped, a ragged row is an error."""
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
                yield reader.line_num, row
        except csv.Error as exc:
            raise DataError(f"Line {reader.line_num} of {path.name} cannot be read as CSV ({exc}); fix that line.",
                            code="data.bad_row", field="line", value=reader.line_num) from exc
        except UnicodeDecodeError as exc:
            raise _decode_error(path, exc) from exc


def _scan_line_numbers(path: Path, delim: str, width: int, has_header: bool, rows: int) -> np.ndarray:
    """The line of each data row, for an error message about a table Arrow read."""
    lines = np.fromiter((line for line, _ in _iter_rows(path, delim, width, has_header)), dtype=np.int64)
    if lines.shape[0] != rows:  # not expected: Arrow and the csv module agree on rows (see read_csv_table)
        return np.arange(1 + has_header, 1 + has_header + rows, dtype=np.int64)
    return lines


def _convert_column(path: Path, name: str, values: Sequence[str], line_of: Callable[[int], int],
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
                f"Column {name!r} of {path.name} holds numbers, but line {line_of(i)} has {stripped[i]!r}; "
                f"correct that value or leave the cell empty to mark it missing.",
                code="data.bad_value", field=name, value=line_of(i))
    text = np.array(stripped, dtype=object)
    text[missing] = None
    return text, missing
