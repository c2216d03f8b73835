"""Interoperability: importing plain state dicts on purpose, and the JSON model card (REQ-S03, REQ-S10).

:func:`import_state_dict` is the one place a ``.pt``/``.pth`` file is ever opened, and only
because the user asked: ``torch.load(weights_only=True)``, whose restricted unpickler accepts
tensors and plain containers and refuses every other object, so a malicious file raises instead
of running code. There is no fallback to full unpickling.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from studio.backend.core.errors import CheckpointError
from studio.backend.pytorch.serialization.atomic import FileInfo, atomic_write
from studio.backend.pytorch.serialization.checkpoint import (
    STATE_PREFIXES,
    _existing,
    open_checkpoint,
    read_tensors,
)
from studio.backend.pytorch.serialization.container import read_header, sniff_foreign
from studio.backend.pytorch.serialization.metadata import DOC_KEY, jsonable

__all__ = ["import_state_dict", "write_model_card", "card_path"]

_WRAPPERS = ("state_dict", "model_state_dict", "model")


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in obj.items()):
        return dict(obj)
    return None


def import_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a plain state dict from a ``.pt``/``.pth`` (weights only) or a safetensors file, on the CPU.

    A dict of tensors, or one nested under ``state_dict``/``model_state_dict``/``model`` (as
    training scripts save it), is accepted. Anything else, and any pickle that needs more than
    tensors and containers, is a clear error.
    """
    p = _existing(path)
    with open(p, "rb") as f:
        foreign = sniff_foreign(f.read(9), os.fstat(f.fileno()).st_size)
    if foreign is None and p.suffix.lower() == ".safetensors":
        header = read_header(p)
        aliases: dict[str, str] = {}
        if DOC_KEY in header.metadata:  # a Studio checkpoint: validated, and tied names restored
            header, doc = open_checkpoint(p, verify=True)
            aliases = dict(doc.get("aliases") or {})
        tensors = read_tensors(header, header.tensors, torch.device("cpu"))
        tensors.update({alias: tensors[kept] for alias, kept in aliases.items() if kept in tensors})
        return {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIXES)}
    try:
        with open(p, "rb") as f:  # a file object: torch.load must not pick a loader by the file name
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{p.name!r} contains Python objects other than tensors; Studio will not unpickle them because that can "
            "run code.", code="checkpoint.unsafe_pickle", field="path", value=str(p),
            hint="Re-save only the weights (model.state_dict()) in the trusted environment that made it.") from exc
    except Exception as exc:  # truncated zip, not a torch file at all, ...
        raise CheckpointError(f"{p.name!r} could not be read as a PyTorch weights file: {exc}.",
                              code="checkpoint.corrupt", field="path", value=str(p)) from exc
    found = _tensor_dict(obj)
    if found is None and isinstance(obj, Mapping):
        found = next((d for d in (_tensor_dict(obj.get(k)) for k in _WRAPPERS) if d is not None), None)
    if found is None:
        raise CheckpointError(f"{p.name!r} holds a {type(obj).__name__}, not a dict of named tensors (a state dict).",
                              code="checkpoint.no_state_dict", field="path", value=str(p))
    return found


def card_path(checkpoint_path: str | os.PathLike[str]) -> Path:
    """``model.safetensors`` -> ``model.card.json`` in the same folder."""
    p = Path(checkpoint_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.card.json")


def write_model_card(checkpoint_path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> FileInfo:
    """Write a human-readable JSON card beside the checkpoint: what it is, how it did, how to load it.

    ``metadata`` defaults to the checkpoint's own document.
    """
    header, doc = open_checkpoint(checkpoint_path, verify=False)
    doc = jsonable(dict(metadata), "metadata") if metadata is not None else doc
    weights = {n: e for n, e in header.tensors.items() if not n.startswith(STATE_PREFIXES)}
    dtypes: dict[str, int] = {}
    for entry in weights.values():
        dtypes[entry.dtype] = dtypes.get(entry.dtype, 0) + math.prod(entry.shape)
    name = header.path.name
    card = {
        "name": name[: -len(header.path.suffix)] if header.path.suffix else name,
        "file": name,
        "size_bytes": header.file_size,
        "kind": doc.get("kind", "model"),
        "format_version": doc.get("format_version"),
        "created_utc": doc.get("created_utc"),
        "task": doc.get("task"),
        "classes": doc.get("class_names", []),
        "model": doc.get("model"),
        "values_stored": sum(dtypes.values()),
        "values_by_dtype": dtypes,
        "tied": doc.get("aliases", {}),
        "metrics": doc.get("metrics", {}),
        "preprocessing": doc.get("preprocessing", {}),
        "training_config": doc.get("training_config", {}),
        "versions": doc.get("versions", {}),
        "how_to_load": {
            "studio": f"from studio.backend.pytorch.serialization import load_model\n"
                      f"model, metadata = load_model({name!r}, build)  # build(spec) -> nn.Module",
            "safetensors": f"from safetensors.torch import load_file\nweights = load_file({name!r})\n"
                           + ("weights = {k: v for k, v in weights.items() if not k.startswith(('optim/', 'state/'))}\n"
                              if doc.get("kind") == "training" else "")
                           + "model.load_state_dict(weights, strict=True)",
        },
    }
    text = json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return atomic_write(card_path(header.path), lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        suffixes=(".json",))
