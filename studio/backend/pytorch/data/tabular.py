"""Turning a CSV table into model inputs and targets (REQ-D02).

- The target is the column named by ``target`` (default: the last column); several columns
  (``targets``) make a multi-output regression or a multilabel task.
- Numeric features are used as they are; text features are one-hot encoded (one column per
  category, named ``column=value``, categories sorted).
- Values that are not finite numbers (``inf``, ``-Infinity``, or beyond float32's range such as
  ``1e39``) are an error naming the column and line: no model trains on them.
- Missing feature cells are rejected (``missing="reject"``, the default) or imputed with the
  column's mean or median (numbers) or most frequent category (text). A missing target is
  always an error: a label cannot be guessed.
- A text target, or a numeric one holding at most 20 distinct whole numbers, makes a
  classification task whose class names are the values as written; any other numeric target
  a regression. ``task`` overrides the guess.

The encoding (columns, categories, imputed values) is kept in ``info["encoding"]`` so that the
same columns of another file can be encoded the same way at prediction time (:func:`encode_features`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.pytorch.data.csv_table import CsvTable, read_csv_table
from studio.backend.pytorch.data.types import TASKS, LoadedData

__all__ = ["load_csv", "table_to_data", "encode_features", "MAX_CLASSES_FROM_NUMBERS"]

MAX_CLASSES_FROM_NUMBERS = 20
_MISSING_POLICIES = ("reject", "mean", "median")


def load_csv(path: str, target: str | None = None, options: dict[str, Any] | None = None) -> LoadedData:
    options = dict(options or {})
    policy = options.get("missing", "reject")
    if policy not in _MISSING_POLICIES:
        raise ValidationError(f"Option 'missing' must be one of {', '.join(_MISSING_POLICIES)}, not {policy!r}.",
                              field="options.missing", value=policy)
    task = options.get("task")
    if task is not None and task not in TASKS:
        raise ValidationError(f"Option 'task' must be one of {', '.join(TASKS)}, not {task!r}.",
                              field="options.task", value=task)
    table = read_csv_table(path, delimiter=options.get("delimiter"), header=options.get("header", "auto"),
                           categorical=tuple(options.get("categorical", ())))
    targets = options.get("targets") or [target or options.get("target") or table.names[-1]]
    return table_to_data(table, list(targets), policy, task)


def _column_index(table: CsvTable, name: str) -> int:
    if name not in table.names:
        raise DataError(f"{_file(table)} has no column {name!r}; its columns are {', '.join(map(repr, table.names))}.",
                        code="data.missing_target", field="target", value=name)
    return table.names.index(name)


def _file(table: CsvTable) -> str:
    from pathlib import Path

    return Path(table.path).name


def _first_missing_line(table: CsvTable, j: int) -> int:
    return int(table.line_numbers[int(np.argmax(table.missing[j]))])


def table_to_data(table: CsvTable, targets: list[str], policy: str, task: str | None) -> LoadedData:
    target_idx = [_column_index(table, name) for name in targets]
    for j in target_idx:
        if table.missing[j].any():
            raise DataError(f"The target column {table.names[j]!r} of {_file(table)} has no value on line "
                            f"{_first_missing_line(table, j)} ({int(table.missing[j].sum())} rows in all); "
                            "fill in or remove those rows.", code="data.missing_values", field=table.names[j],
                            value=_first_missing_line(table, j))
    feature_idx = [j for j in range(len(table.names)) if j not in target_idx]
    if not feature_idx:
        raise DataError(f"{_file(table)} has no feature columns besides the target; add input columns.",
                        code="data.bad_shape", field="target")
    encoding = _fit_encoding(table, feature_idx, policy)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which _check_finite reports
        x = _encode(table, feature_idx, encoding)
        _check_finite(table, x, encoding["features"])
        y, task, num_outputs, class_names = _targets(table, target_idx, task)
    if y.is_floating_point():
        _check_finite(table, y.numpy().reshape(len(y), -1), [table.names[j] for j in target_idx])
    return LoadedData(
        x=torch.from_numpy(x), y=y, task=task, input_kind="vector", input_shape=(x.shape[1],),
        num_outputs=num_outputs, class_names=class_names, feature_names=tuple(encoding["features"]),
        name=_file(table), description=f"Table from {_file(table)}: {table.num_rows} rows, "
        f"{len(feature_idx)} input columns, target {', '.join(targets)}.",
        target_names=tuple(targets) if task in ("regression", "multilabel") else (), source="csv",
        info={"encoding": encoding, "preview": {"columns": list(table.names), "rows": table.preview},
              "fast_path": table.fast_path, "reader": table.reader, "path": table.path})


def _fit_encoding(table: CsvTable, feature_idx: list[int], policy: str) -> dict[str, Any]:
    columns: list[dict[str, Any]] = []
    features: list[str] = []
    for j in feature_idx:
        name, miss = table.names[j], table.missing[j]
        if miss.any() and policy == "reject":
            raise DataError(
                f"Column {name!r} of {_file(table)} has no value on line {_first_missing_line(table, j)} "
                f"({int(miss.sum())} missing in all); fill them in, or set missing to 'mean' or 'median' to impute them.",
                code="data.missing_values", field=name, value=_first_missing_line(table, j))
        if table.is_numeric(j):
            fill = None
            if miss.any():  # only then is the column itself needed (the fast path's features stay in Arrow)
                present = table.columns[j][~miss]
                if present.size == 0:
                    raise DataError(f"Column {name!r} of {_file(table)} is empty; remove it or fill it in.",
                                    code="data.missing_values", field=name)
                fill = float(np.median(present) if policy == "median" else present.mean())
            columns.append({"name": name, "kind": "number", "fill": fill})
            features.append(name)
        else:
            present = [v for v in table.columns[j][~miss]]
            if not present:
                raise DataError(f"Column {name!r} of {_file(table)} is empty; remove it or fill it in.",
                                code="data.missing_values", field=name)
            categories = sorted(set(present))
            fill = Counter(present).most_common(1)[0][0] if miss.any() else None
            columns.append({"name": name, "kind": "category", "categories": categories, "fill": fill})
            features.extend(f"{name}={c}" for c in categories)
    return {"columns": columns, "features": features}


def _encode(table: CsvTable, feature_idx: list[int], encoding: dict[str, Any]) -> np.ndarray:
    block = table.numeric_block(feature_idx)
    if block is not None:
        return block
    if all(table.is_numeric(j) for j in feature_idx) and not any(table.missing[j].any() for j in feature_idx):
        cols = [table.columns[j] for j in feature_idx]
        return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)
    parts = []
    for j, spec in zip(feature_idx, encoding["columns"]):
        parts.append(_encode_column(table.columns[j], table.missing[j], spec, table, j))
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def _encode_column(col: np.ndarray, miss: np.ndarray, spec: dict[str, Any], table: CsvTable | None, j: int) -> np.ndarray:
    if spec["kind"] == "number":
        values = col.astype(np.float64, copy=True)
        if miss.any():
            values[miss] = spec["fill"]
        return values[:, None]
    lookup = {c: k for k, c in enumerate(spec["categories"])}
    codes = np.empty(col.shape[0], dtype=np.int64)
    for i, v in enumerate(col):
        key = spec["fill"] if miss[i] else v
        code = lookup.get(key)
        if code is None:
            where = f"line {int(table.line_numbers[i])} of {_file(table)}" if table is not None else f"row {i + 1}"
            raise DataError(f"Column {spec['name']!r} has the category {v!r} on {where}, which the model has not seen; "
                            f"known categories are {', '.join(map(repr, spec['categories']))}.",
                            code="data.unknown_category", field=spec["name"], value=v)
        codes[i] = code
    onehot = np.zeros((col.shape[0], len(spec["categories"])), dtype=np.float32)
    onehot[np.arange(col.shape[0]), codes] = 1.0
    return onehot


def encode_features(table: CsvTable, encoding: dict[str, Any]) -> torch.Tensor:
    """Encode another table's feature columns with a stored encoding (for prediction on a CSV file)."""
    parts = []
    for spec in encoding["columns"]:
        if spec["name"] not in table.names:
            raise DataError(f"{_file(table)} has no column {spec['name']!r}, which the model needs; its columns are "
                            f"{', '.join(map(repr, table.names))}.", code="data.missing_column", field=spec["name"])
        j = table.names.index(spec["name"])
        miss = table.missing[j]
        if miss.any() and spec.get("fill") is None:
            raise DataError(f"Column {spec['name']!r} of {_file(table)} has no value on line "
                            f"{_first_missing_line(table, j)}; fill it in.", code="data.missing_values",
                            field=spec["name"], value=_first_missing_line(table, j))
        if spec["kind"] == "number" and not table.is_numeric(j):
            raise DataError(f"Column {spec['name']!r} of {_file(table)} should hold numbers but holds text.",
                            code="data.bad_value", field=spec["name"])
        col = table.columns[j]
        if spec["kind"] == "category" and table.is_numeric(j):  # digits-only categories read as numbers
            col = np.array([None if m else _number_text(v) for v, m in zip(col, miss)], dtype=object)
        parts.append(_encode_column(col, miss, spec, table, j))
    with np.errstate(over="ignore"):
        x = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
    _check_finite(table, x, encoding["features"])
    return torch.from_numpy(x)


def _check_finite(table: CsvTable, values: np.ndarray, names: list[str]) -> None:
    """Raise naming the column and line of the first value that is not a finite float32 (one vectorised pass)."""
    if np.isfinite(values).all():
        return
    bad = ~np.isfinite(values)
    row = int(np.argmax(bad.any(axis=1)))
    col = int(np.argmax(bad[row]))
    line, name = int(table.line_numbers[row]), names[col]
    raise DataError(
        f"Column {name!r} of {_file(table)} has the value {float(values[row, col])} on line {line}, which is not a "
        "finite number (or too large for 32-bit floats); correct that cell, or empty it and set missing to "
        "'mean' or 'median'.", code="data.bad_value", field=name, value=line)


def _targets(table: CsvTable, target_idx: list[int], task: str | None) -> tuple[torch.Tensor, str, int, tuple[str, ...]]:
    cols = [table.columns[j] for j in target_idx]
    names = [table.names[j] for j in target_idx]
    if len(cols) > 1 or task in ("regression", "multilabel"):
        if not all(c.dtype.kind == "f" for c in cols):
            raise DataError(f"Targets {', '.join(map(repr, names))} of {_file(table)} must hold numbers for "
                            f"{task or 'regression'}.", code="data.bad_value", field=names[0])
        y = np.stack(cols, axis=1).astype(np.float32)
        if task == "multilabel":
            if not np.isin(y, (0.0, 1.0)).all():
                raise DataError(f"Multilabel targets of {_file(table)} must be 0 or 1.", code="data.bad_value",
                                field=names[0])
            return torch.from_numpy(y), "multilabel", y.shape[1], tuple(names)
        return torch.from_numpy(y), "regression", y.shape[1], ()
    col = cols[0]
    numeric = col.dtype.kind == "f"
    if numeric:
        whole = bool(np.all(col == np.round(col)))  # cheap test first: most regression targets fail it at once
        distinct = np.unique(col) if whole or task is not None else col[:0]
        if task is None and not (whole and distinct.size <= MAX_CLASSES_FROM_NUMBERS):
            return torch.from_numpy(col.astype(np.float32)[:, None]), "regression", 1, ()
        labels = [_number_text(v) for v in distinct]
        codes = np.searchsorted(distinct, col)
    else:
        labels = sorted(set(col.tolist()))
        lookup = {c: k for k, c in enumerate(labels)}
        codes = np.fromiter((lookup[v] for v in col), dtype=np.int64, count=col.shape[0])
    task = task or "classification"
    if task == "binary":
        if len(labels) != 2:
            raise DataError(f"A binary target needs exactly 2 classes, but {names[0]!r} has {len(labels)}.",
                            code="data.bad_value", field=names[0])
        return torch.from_numpy(codes.astype(np.float32)[:, None]), "binary", 1, tuple(labels)
    return torch.from_numpy(codes.astype(np.int64)), "classification", len(labels), tuple(labels)


def _number_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))
