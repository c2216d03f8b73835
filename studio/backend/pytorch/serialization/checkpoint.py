"""Model checkpoints: one safetensors file of weights plus a metadata document (REQ-S01..S06, S08..S10).

Tensor names are the model's own ``state_dict`` names, so ``safetensors.torch.load_file`` gives a
state dict that ``model.load_state_dict(..., strict=True)`` accepts (REQ-S10; a model with tied
weights stores one name per tie, which ``safetensors.torch.load_model`` understands). Training
checkpoints (``training_state.py``) add tensors under the ``optim/`` and ``state/`` prefixes.

Loading never unpickles: pickle-based files are recognised by name and by content and refused;
the header is validated here (``container.read_header``) and checksummed before safetensors maps
the file. The model is built from the stored spec by the caller's ``build(spec)``, on the meta
device when that works (no wasted random initialisation), then the memory-mapped tensors are
assigned to it; anything that fails leaves no model behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from studio.backend.core.errors import CheckpointError, StudioError, ValidationError
from studio.backend.pytorch.runtime import resolve_device
from studio.backend.pytorch.serialization.atomic import FileInfo, atomic_write, check_target, clean_stale_temps
from studio.backend.pytorch.serialization.container import (
    Header,
    read_header,
    sniff_foreign,
    st_dtype,
    verify_header,
    verify_tensors,
    write_file,
)
from studio.backend.pytorch.serialization.metadata import DOC_KEY, build_doc, parse_doc
from studio.backend.pytorch.serialization.ties import dedupe, retie

__all__ = ["save_model", "load_model", "read_metadata", "SUFFIX", "STATE_PREFIXES"]

SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")
STATE_PREFIXES = ("optim/", "state/")  # training-state tensors; never model parameter names
Build = Callable[[dict[str, Any]], nn.Module]


# -- saving -------------------------------------------------------------------------------------

def save_model(path: str | os.PathLike[str], model: nn.Module, metadata: Mapping[str, Any]) -> FileInfo:
    """Write ``model``'s weights and ``metadata`` (which must hold the ``model`` spec) to ``path``."""
    return save_checkpoint(path, model_state(model), metadata, kind="model")


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise ValidationError(f"Expected a torch.nn.Module to save, not {type(model).__name__}.", field="model")
    state = model.state_dict(keep_vars=False)
    clash = [k for k in state if k.startswith(STATE_PREFIXES)]
    if clash:
        raise ValidationError(f"The model tensor name {clash[0]!r} uses a prefix reserved for training state.",
                              field="model", value=clash[0])
    return state


def save_checkpoint(path: str | os.PathLike[str], weights: Mapping[str, torch.Tensor],
                    metadata: Mapping[str, Any], *, kind: str, extra_tensors: Mapping[str, torch.Tensor] | None = None,
                    extra_metadata: Mapping[str, str] | None = None) -> FileInfo:
    """The one writer behind model and training checkpoints; validates everything before writing."""
    check_target(path, suffixes=(SUFFIX,))
    tensors = {**weights, **(extra_tensors or {})}
    unique, aliases = dedupe(tensors)
    for name, tensor in unique.items():
        st_dtype(tensor.dtype, name)
    doc = build_doc(metadata, kind, aliases)
    text = {DOC_KEY: json.dumps(doc, allow_nan=False, ensure_ascii=False), **(extra_metadata or {})}
    return atomic_write(path, lambda tmp: write_file(tmp, unique, text), suffixes=(SUFFIX,))


# -- opening ------------------------------------------------------------------------------------

def _existing(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValidationError(f"The checkpoint path must be a non-empty text, not {path!r}.", code="path.invalid",
                              field="path", value=repr(path))
    p = Path(path).expanduser().absolute()
    if not p.is_file():
        raise CheckpointError(f"There is no checkpoint file at {str(p)!r}.", code="checkpoint.not_found",
                              field="path", value=str(p), hint="Check the path and choose an existing file.")
    return p


def _refuse_pickle(p: Path) -> None:
    with open(p, "rb") as f:
        kind = sniff_foreign(f.read(9), os.fstat(f.fileno()).st_size)
    if kind is None and p.suffix.lower() in PICKLE_SUFFIXES:
        kind = f"a {p.suffix} file"
    if kind is not None:
        raise CheckpointError(
            f"{p.name!r} is {kind}, not a safetensors checkpoint; Studio does not load pickle files because "
            "loading them can run code.", code="checkpoint.not_safetensors", field="path", value=str(p),
            hint=f"If you trust it and it holds only weights, convert it with: studio convert {p.name} (or put its "
                 f"weights into a Studio checkpoint of the same architecture: studio import-weights {p.name} "
                 "--into MODEL.safetensors --out NEW.safetensors).")


def open_checkpoint(path: str | os.PathLike[str], *, verify: bool) -> tuple[Header, dict[str, Any]]:
    """Validate ``path`` and return its header and (migrated) metadata document."""
    p = _existing(path)
    clean_stale_temps(p.parent)
    try:
        _refuse_pickle(p)
        header = read_header(p)
        doc, written = parse_doc(header.metadata.get(DOC_KEY), p.name)
        aliases = doc.get("aliases") or {}
        if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
            raise CheckpointError(f"{p.name!r} is not a valid checkpoint: its map of tied tensors is damaged.",
                                  code="checkpoint.corrupt", field="path", value=str(p))
        if written >= (1, 0):
            record = verify_header(header)
            if verify:
                verify_tensors(header, record)
    except OSError as exc:
        raise CheckpointError(f"Could not read {str(p)!r}: {exc.strerror or exc}.", code="checkpoint.unreadable",
                              field="path", value=str(p)) from exc
    return header, doc


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's metadata document, from the header alone (no tensor data is read)."""
    return open_checkpoint(path, verify=False)[1]


# -- loading ------------------------------------------------------------------------------------

def load_model(path: str | os.PathLike[str], build: Build, device: str | torch.device = "cpu", *,
               verify: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model with ``build(metadata["model"])`` and load the weights onto ``device``.

    Returns ``(model, metadata)`` with the model in eval mode. ``verify`` checks every tensor's
    checksum (reads the whole file once; on by default).
    """
    dev = resolve_device(str(device))
    header, doc = open_checkpoint(path, verify=verify)
    model, _ = materialise(header, doc, build, dev)
    return model.eval(), doc


def read_tensors(header: Header, names: Iterable[str], device: torch.device) -> dict[str, torch.Tensor]:
    names = list(names)
    if not names:
        return {}
    try:
        with safe_open(str(header.path), framework="pt", device=str(device)) as f:
            return {name: f.get_tensor(name) for name in names}
    except Exception as exc:  # the header was validated; this is a damaged or changed file
        raise CheckpointError(f"The tensors of {header.path.name!r} could not be read: {exc}.",
                              code="checkpoint.corrupt", field="path", value=str(header.path)) from exc


def _mismatch(header: Header, what: str) -> CheckpointError:
    return CheckpointError(f"The weights in {header.path.name!r} do not fit the model built from its spec: {what}.",
                           code="checkpoint.mismatch", field="path", value=str(header.path),
                           hint="The file may belong to another model or a changed architecture.")


def _build(build: Build, spec: Any, *, meta: bool) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # building must not move the caller's random streams
        if meta:
            with torch.device("meta"):
                model = build(spec)
        else:
            model = build(spec)
    if not isinstance(model, nn.Module):
        raise ValidationError(f"build(spec) returned a {type(model).__name__}, not a torch.nn.Module.",
                              field="build")
    return model


def _needs_real_build(model: nn.Module) -> bool:
    """True when the meta-built model holds tensors that loading will not replace."""
    persistent = set(model.state_dict())
    if any(name not in persistent for name, _ in model.named_buffers(remove_duplicate=False)):
        return True
    for module in model.modules():
        for key, value in vars(module).items():
            if key in ("_parameters", "_buffers", "_modules"):
                continue
            items = value if isinstance(value, (list, tuple)) else (value.values() if isinstance(value, dict)
                                                                   else (value,))
            if any(isinstance(v, torch.Tensor) and v.is_meta for v in items):
                return True
    return False


def _make_model(build: Build, spec: Any) -> nn.Module:
    try:
        model = _build(build, spec, meta=True)
        if not _needs_real_build(model):
            return model
    except Exception:  # noqa: BLE001 - a builder that cannot run on the meta device is built for real
        pass
    try:
        return _build(build, spec, meta=False)
    except StudioError:
        raise
    except Exception as exc:
        raise CheckpointError(f"The model could not be rebuilt from the stored spec: {exc}.",
                              code="checkpoint.bad_spec", field="model", value=repr(spec)[:120]) from exc


def materialise(header: Header, doc: dict[str, Any], build: Build,
                device: torch.device) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Build the model, load its tensors (memory-mapped, onto ``device``) and tie shared ones.

    Returns the model and every stored tensor by name (training-state tensors on the CPU), with
    aliases resolved, for callers that need more than the model.
    """
    aliases: dict[str, str] = dict(doc.get("aliases") or {})
    stored = {n for n in header.tensors if not n.startswith(STATE_PREFIXES)}
    state_names = set(header.tensors) - stored
    tensors = {**read_tensors(header, sorted(stored), device), **read_tensors(header, sorted(state_names),
                                                                            torch.device("cpu"))}
    missing_kept = [k for k in aliases.values() if k not in tensors]
    if missing_kept:
        raise CheckpointError(f"{header.path.name!r} ties to a tensor {missing_kept[0]!r} it does not hold.",
                              code="checkpoint.corrupt", field="path", value=str(header.path))
    tensors.update({alias: tensors[kept] for alias, kept in aliases.items()})
    model = _make_model(build, doc.get("model"))
    expected = model.state_dict()
    provided = {n for n in tensors if not n.startswith(STATE_PREFIXES)}
    missing, unexpected = sorted(set(expected) - provided), sorted(provided - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected[:5])}"] if unexpected else [])
        raise _mismatch(header, "; ".join(parts))
    for name, want in expected.items():
        if tuple(want.shape) != tuple(tensors[name].shape):
            raise _mismatch(header, f"{name} is {tuple(tensors[name].shape)} in the file but the model "
                                    f"needs {tuple(want.shape)}")
    try:
        model.load_state_dict({n: tensors[n] for n in expected}, strict=True, assign=True)
    except RuntimeError as exc:
        raise _mismatch(header, str(exc).splitlines()[0]) from exc
    retie(model, {a: k for a, k in aliases.items() if a in expected and k in expected})
    return model.to(device), tensors
