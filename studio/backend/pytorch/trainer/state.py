"""The trainer's state as tensors and JSON values, for exact resume (REQ-T13, REQ-T22, REQ-H09).

``Trainer.state_dict()`` returns a nested dict whose leaves are ``torch.Tensor`` or JSON values
(``None``, ``bool``, ``int``, ``float`` (finite), ``str``, lists and string-keyed dicts of them;
non-finite floats are the strings ``"nan"``, ``"inf"``, ``"-inf"`` as in the core contracts).
Every tensor is a copy: training on does not change a state already taken. Layout
(``FORMAT`` is ``"studio.trainer/1"``)::

    format            "studio.trainer/1"
    task              "classification" | "regression" | "binary" | "multilabel"
    seed              int: the data order is a pure function of (seed, epoch)
    config            TrainConfig.to_dict()
    model             {parameter or buffer name: Tensor}                    (model.state_dict())
    optimizer         {"state": {"0": {"step": Tensor, "exp_avg": Tensor, ...}, ...},
                       "param_groups": [{"lr": float, "betas": [float, float], "params": [0, 1], ...}]}
    schedule          {"name": str, "reductions": int, "best": float | None, "wait": int}
    scaler            GradScaler.state_dict() ({"scale": float, ...}) | None when not fp16
    precision         "fp32" | "bf16" | "fp16": what actually ran
    rng               None before the first run, else {"torch": uint8 Tensor, "cuda": [uint8 Tensor, ...],
                       "numpy": {"kind": "MT19937", "keys": int64 Tensor (624), "pos": int,
                                 "has_gauss": int, "cached_gaussian": float},
                       "python": {"version": int, "state": int64 Tensor (625), "gauss_next": float | None}}
    loop              {"epoch": int (epoch in progress, 0-based), "step_in_epoch": int (steps done in it),
                       "global_step": int (steps done in total)}
    epoch_stats       running sums of the epoch in progress: {"sums": {name: float}, "weights": {name: int},
                       "samples": int, "steps": int, "step_time_s": float, "last_lr": float | None,
                       "last_grad_norm": float | None}
    early_stopping    {"monitor": str, "best": float | None, "best_epoch": int, "wait": int, "stopped": bool}
    best              {"epoch": int (-1: none yet), "model": {name: Tensor} | None}
    history           [{"epoch": int, "step": int, "lr": float, "train_loss": float, "val_loss": float, ...}]

:func:`split_tensors` separates such a tree into a flat ``{dotted path: Tensor}`` dict (what a
safetensors file holds) and a JSON tree with ``{"__tensor__": path}`` placeholders (what its
metadata holds); :func:`join_tensors` puts them back together.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

from studio.backend.pytorch.trainer.running_stats import RunningStats

__all__ = [
    "FORMAT",
    "capture_rng",
    "restore_rng",
    "optimizer_state",
    "load_optimizer_state",
    "stats_state",
    "restore_stats",
    "clone_tensors",
    "encode_floats",
    "decode_float",
    "split_tensors",
    "join_tensors",
]

FORMAT = "studio.trainer/1"
_TENSOR = "__tensor__"


# -- random number generators ------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """The state of every global generator the model may draw from (dropout, augmentation)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s.clone() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_initialized() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.from_numpy(np.array(py_state, dtype=np.int64)),
                   "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, int(n["pos"]), int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = state["python"]
    random.setstate((int(p["version"]), tuple(p["state"].tolist()), p["gauss_next"]))


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU, and CUDA/MPS where present) like ``torch.manual_seed``,
    without its compile-wrapper cost (~0.25 ms)."""
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(seed)


# -- optimiser ------------------------------------------------------------------------------
def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with string keys and lists for tuples (JSON-able around tensors)."""
    raw = optimizer.state_dict()
    return {
        "state": {str(k): clone_tensors(v) for k, v in raw["state"].items()},
        "param_groups": [encode_floats(group) for group in raw["param_groups"]],
    }


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    groups = []
    for group in state["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({
        "state": {int(k): clone_tensors(v) for k, v in state["state"].items()},
        "param_groups": groups,
    })


# -- running statistics of the epoch in progress ---------------------------------------------
def stats_state(stats: RunningStats) -> dict[str, Any]:
    return {
        "sums": dict(stats._sums), "weights": dict(stats._weights),
        "samples": stats.samples, "steps": stats.steps, "step_time_s": stats.step_time_s,
        "last_lr": None if math.isnan(stats.last_lr) else stats.last_lr,
        "last_grad_norm": stats.last_grad_norm,
    }


def restore_stats(stats: RunningStats, state: dict[str, Any]) -> None:
    stats.reset()
    stats._sums.update({k: decode_float(v) for k, v in state["sums"].items()})
    stats._weights.update({k: int(v) for k, v in state["weights"].items()})
    stats.samples, stats.steps = int(state["samples"]), int(state["steps"])
    stats.step_time_s = decode_float(state["step_time_s"])
    stats.last_lr = math.nan if state["last_lr"] is None else decode_float(state["last_lr"])
    stats.last_grad_norm = None if state["last_grad_norm"] is None else decode_float(state["last_grad_norm"])


# -- trees of tensors and JSON values --------------------------------------------------------
def clone_tensors(tree: Any) -> Any:
    """A copy of ``tree`` with every tensor detached and cloned, tuples as lists, non-finite floats encoded."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k if isinstance(k, str) else str(k): clone_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [clone_tensors(v) for v in tree]
    return encode_floats(tree)


def encode_floats(tree: Any) -> Any:
    if isinstance(tree, float) and not math.isfinite(tree):
        return "nan" if math.isnan(tree) else ("inf" if tree > 0 else "-inf")
    if isinstance(tree, dict):
        return {k if isinstance(k, str) else str(k): encode_floats(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [encode_floats(v) for v in tree]
    return tree


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def decode_float(value: Any) -> float:
    return _NONFINITE[value] if isinstance(value, str) else float(value)


def split_tensors(tree: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """``(tensors, skeleton)``: every tensor moved to a flat dict under its dotted path."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            if path in tensors:
                raise ValueError(f"two tensors share the path {path!r}")
            tensors[path] = node
            return {_TENSOR: path}
        if isinstance(node, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(node)]
        return node

    return tensors, walk(tree, prefix)


def join_tensors(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {_TENSOR}:
            return tensors[skeleton[_TENSOR]]
        return {k: join_tensors(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_tensors(v, tensors) for v in skeleton]
    return skeleton
