"""Nested training state <-> (JSON document, flat tensor dict), with no pickle (REQ-S03, REQ-S07).

``optimizer.state_dict()``, scheduler and scaler states, RNG states and the like are trees of
dicts, lists, tuples, numbers, texts and tensors. :func:`encode` walks such a tree: every tensor
(and NumPy array) moves to the flat tensor dict under ``{prefix}{path}`` and is replaced by a
reference; what JSON cannot say directly is tagged so :func:`decode` rebuilds the exact same
tree:

- ``{"$tensor": key}`` / ``{"$ndarray": key}`` a tensor or a NumPy array stored as a tensor;
- ``{"$tuple": [...]}`` a tuple (``random.getstate()`` and Adam's ``betas`` are tuples);
- ``{"$dict": [[key, value], ...]}`` a dict whose keys are not all texts (an optimiser's
  ``state`` is keyed by integer parameter ids), or that uses a ``$`` key itself;
- ``{"$float": "nan" | "inf" | "-inf"}`` a non-finite float.

Anything else (functions, arbitrary objects) is refused with a clear error: storing it would
need pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from studio.backend.core.errors import CheckpointError, ValidationError

__all__ = ["encode", "decode"]


def _key(prefix: str, path: list[str], tensors: dict[str, torch.Tensor]) -> str:
    base = prefix + "/".join(path) if path else prefix.rstrip("/") or "value"
    key, n = base, 1
    while key in tensors:
        key, n = f"{base}~{n}", n + 1
    return key


def encode(value: Any, prefix: str, tensors: dict[str, torch.Tensor], path: list[str] | None = None) -> Any:
    """JSON-able form of ``value``; tensors are added to ``tensors`` under ``prefix``."""
    path = path or []
    if isinstance(value, torch.Tensor):
        key = _key(prefix, path, tensors)
        tensors[key] = value
        return {"$tensor": key}
    if isinstance(value, np.ndarray):
        try:
            tensor = torch.from_numpy(np.ascontiguousarray(value))
        except TypeError as exc:
            raise _unstorable(path, value) from exc
        key = _key(prefix, path, tensors)
        tensors[key] = tensor
        return {"$ndarray": key}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, prefix, tensors, [*path, str(i)]) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, prefix, tensors, [*path, str(i)]) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, prefix, tensors, [*path, k]) for k, v in value.items()}
        return {"$dict": [[encode(k, prefix, tensors, [*path, "key"]), encode(v, prefix, tensors, [*path, str(k)])]
                          for k, v in value.items()]}
    raise _unstorable(path, value)


def _unstorable(path: list[str], value: Any) -> ValidationError:
    where = "/".join(path) or "the value"
    kind = f"a NumPy array of {value.dtype}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
    return ValidationError(
        f"The training state at {where!r} holds {kind}, which cannot be stored without pickle; "
        "only numbers, texts, lists, dicts, tuples, tensors and numeric NumPy arrays can.",
        code="checkpoint.unstorable", field=where, value=repr(value)[:80])


def decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        try:
            if tag == "$tensor":
                return tensors[inner]
            if tag == "$ndarray":
                return tensors[inner].numpy().copy()
        except KeyError as exc:
            raise CheckpointError(f"The training state refers to a tensor {inner!r} the file does not hold.",
                                  code="checkpoint.corrupt") from exc
        if tag == "$tuple":
            return tuple(decode(v, tensors) for v in inner)
        if tag == "$dict":
            return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in inner}
        if tag == "$float":
            return float(inner)
    return {k: decode(v, tensors) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
