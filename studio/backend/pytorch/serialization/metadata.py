"""The checkpoint's metadata document, its format version and migrations (REQ-S01, REQ-S06).

safetensors metadata is a map of texts, so the document is one JSON text under the key
``studio``. Version 1.0 holds::

    format          "studio.checkpoint"
    format_version  "1.0"
    kind            "model" or "training"
    created_utc     ISO 8601 time of writing, UTC
    versions        {"studio", "torch", "safetensors", "numpy", "python"}
    model           the model spec the caller's ``build(spec)`` turns back into a module
    task, class_names, preprocessing, training_config, metrics
    aliases         {alias: kept} for tied tensors stored once (REQ-S08)
    ...             any further JSON the caller adds (non-finite floats become "nan"/"inf"/"-inf")

Versions are ``major.minor``. A file of an older version is migrated step by step through
:data:`MIGRATIONS`; a newer minor version of the same major is read (additions only within a
major); a newer major is refused with ``checkpoint.too_new``.

Version 0.9 (pre-release) stored ``spec``, ``classes``, ``config``, ``created`` and a flat
``torch_version``, had no ``kind`` (model checkpoints only), no aliases and no integrity record.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import platform
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import safetensors
import torch

import studio
from studio.backend.core.errors import CheckpointError, ValidationError

__all__ = ["FORMAT", "FORMAT_VERSION", "DOC_KEY", "MIGRATIONS", "build_doc", "parse_doc", "library_versions",
           "jsonable"]

FORMAT = "studio.checkpoint"
FORMAT_VERSION = "1.0"
DOC_KEY = "studio"
RESERVED = ("format", "format_version", "kind", "created_utc", "versions", "aliases", "migrated_from")
_DEFAULTS: dict[str, Any] = {"task": None, "class_names": [], "preprocessing": {}, "training_config": {},
                             "metrics": {}}
_TYPES: dict[str, tuple[type, ...]] = {"model": (dict,), "task": (str, type(None)), "class_names": (list,),
                                       "preprocessing": (dict,), "training_config": (dict,), "metrics": (dict,)}


def library_versions() -> dict[str, str]:
    return {"studio": studio.__version__, "torch": torch.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def jsonable(value: Any, where: str) -> Any:
    """Plain JSON form of ``value`` (tuples become lists; contracts their dicts); else a clear error."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValidationError(f"{where} has a non-text key {bad[0]!r}; metadata keys must be texts.",
                                  field=where, value=repr(bad[0]))
        return {k: jsonable(v, f"{where}.{k}") for k, v in value.items()}
    raise ValidationError(f"{where} is a {type(value).__name__}, which checkpoint metadata cannot hold; "
                          "use numbers, texts, lists and dicts.", field=where, value=repr(value)[:80])


def build_doc(metadata: Mapping[str, Any], kind: str, aliases: Mapping[str, str]) -> dict[str, Any]:
    """Validate the caller's ``metadata`` and complete it into a version-1.0 document."""
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"The checkpoint metadata must be a dict, not {type(metadata).__name__}.",
                              field="metadata")
    taken = [k for k in RESERVED if k in metadata]
    if taken:
        raise ValidationError(f"The metadata key {taken[0]!r} is set by Studio itself; remove it.",
                              field=f"metadata.{taken[0]}", value=taken[0])
    doc = jsonable(dict(metadata), "metadata")
    if "model" not in doc:
        raise ValidationError("The checkpoint metadata needs the model spec under 'model' so it can be rebuilt.",
                              field="metadata.model")
    for key, default in _DEFAULTS.items():
        doc.setdefault(key, copy.deepcopy(default))
    for key, types in _TYPES.items():
        if not isinstance(doc[key], types):
            raise ValidationError(f"metadata.{key} must be {' or '.join(t.__name__ for t in types)}, "
                                  f"not {type(doc[key]).__name__}.", field=f"metadata.{key}")
    if not all(isinstance(c, str) for c in doc["class_names"]):
        raise ValidationError("metadata.class_names must be a list of texts.", field="metadata.class_names")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions(), **doc, "aliases": dict(aliases)}


def _from_0_9(doc: dict[str, Any]) -> dict[str, Any]:
    old = dict(doc)
    new = {"format": FORMAT, "format_version": "1.0", "kind": "model", "created_utc": old.pop("created", None),
           "versions": {"torch": old.pop("torch_version", "unknown")}, "model": old.pop("spec", None),
           "class_names": old.pop("classes", []), "training_config": old.pop("config", {}), "aliases": {}}
    for key in ("format", "format_version"):
        old.pop(key, None)
    return {**copy.deepcopy(_DEFAULTS), **old, **new}


# from-version -> function returning the document one step newer (it sets its own format_version)
MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"0.9": _from_0_9}


def _version(text: Any) -> tuple[int, int] | None:
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def parse_doc(text: str | None, name: str) -> tuple[dict[str, Any], tuple[int, int]]:
    """Parse, version-check and migrate a document; returns it and the version it was written in."""
    not_studio = CheckpointError(
        f"{name!r} is a safetensors file but not a Studio checkpoint (no Studio metadata).",
        code="checkpoint.not_studio", field="path", value=name,
        hint=f"Import its weights into a Studio checkpoint of the same architecture: studio import-weights {name} "
             "--into MODEL.safetensors --out NEW.safetensors.")
    if text is None:
        raise not_studio
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"The metadata of {name!r} does not parse; the file is damaged.",
                              code="checkpoint.corrupt", field="path", value=name) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise not_studio
    written = _version(doc.get("format_version"))
    current = _version(FORMAT_VERSION)
    assert current is not None
    if written is None:
        raise CheckpointError(f"{name!r} has an unreadable format version {doc.get('format_version')!r}.",
                              code="checkpoint.corrupt", field="path", value=name)
    if written[0] > current[0]:
        raise CheckpointError(
            f"{name!r} was written by a newer Studio (format {written[0]}.{written[1]}); this Studio reads "
            f"format {FORMAT_VERSION} and older.", code="checkpoint.too_new", field="path", value=name,
            hint="Upgrade Studio to open it.")
    version = written
    while version[0] < current[0] or (version[0] == current[0] and version[1] < current[1]):
        step = MIGRATIONS.get(f"{version[0]}.{version[1]}")
        if step is None:
            if version[0] == current[0]:
                break  # an older minor of this major: only additions since, nothing to migrate
            raise CheckpointError(f"{name!r} uses format {version[0]}.{version[1]}, which this Studio can no longer "
                                  "read.", code="checkpoint.too_old", field="path", value=name,
                                  hint="Open and re-save it with an older Studio release.")
        doc = step(doc)
        doc.setdefault("migrated_from", f"{written[0]}.{written[1]}")
        version = _version(doc["format_version"]) or current
    return doc, written
