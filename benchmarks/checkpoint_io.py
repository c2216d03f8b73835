"""``ckpt_load_speedup`` and ``ckpt_save_ratio``: Studio checkpoints against torch.load/torch.save (REQ-S09).

A 100.7M-parameter model (six 4096x4096 linear layers, float32, 403 MB) is saved and loaded
repeatedly, the contenders interleaved and alternated in one process, medians reported.

- Load: ``torch.load(weights_only=True)`` of the same state dict versus Studio's
  ``load_model(path, build)``, which does more: validates the header, checks every tensor's
  XXH3-64 digest, builds the model from its spec and hands back a ready model (memory-mapped tensors).
  Also reported: Studio without the checksum pass, ``torch.load(mmap=True)``, and the end to
  end "file -> ready model" time of the plain PyTorch way (build, torch.load, load_state_dict).
- Save: Studio's ``save_model`` is atomic and durable (temporary file, fsync, rename, directory
  fsync). The fair reference is ``torch.save`` given the same treatment; plain ``torch.save``
  (no fsync: the data may still be in the page cache when it returns) is reported as the raw
  ratio. Both formats checksum their data (torch.save's zip records carry CRC-32). Every save
  starts after ``os.sync()`` (untimed), so none pays for the write-back of the previous one.

Files live in the system temporary folder; all runs read from a warm page cache. The load's
GB/s (file bytes over the median time) is reported beside this machine's memory-copy bandwidth
(a numpy copy of a 400 MB array, same run), the ceiling for anything that reads every byte.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.backend.pytorch.serialization import load_model, save_model

SPEC = {"width": 4096, "depth": 6}


def build(spec: dict) -> nn.Module:
    return nn.Sequential(*[nn.Linear(spec["width"], spec["width"]) for _ in range(spec["depth"])])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def torch_save_durable(state: dict, path: Path) -> None:
    """torch.save with exactly the durability Studio provides: temp file, fsync, rename, dir fsync."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _settle() -> None:
    """Flush every dirty page first, so no save pays for the write-back of the one before."""
    if hasattr(os, "sync"):
        os.sync()


def _half_spread(times: list[float]) -> float:
    """Half the range of the repeats over their median: a relative noise band."""
    return (max(times) - min(times)) / 2 / statistics.median(times)


def copy_bandwidth_gbs(nbytes: int = 400_000_000, repeats: int = 5) -> float:
    """This machine's memory-copy bandwidth: best of ``repeats`` numpy copies of an ``nbytes`` array."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return src.nbytes / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                 settle: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(repeats):
        for name in (names if i % 2 == 0 else names[::-1]):
            settle()
            t0 = time.perf_counter()
            result = contenders[name]()
            times[name].append(time.perf_counter() - t0)
            del result
    return times


def measure(repeats: int, folder: Path) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    model = build(SPEC)
    state = model.state_dict()
    meta = {"model": SPEC, "task": "regression"}
    st, pt, pt_raw = folder / "model.safetensors", folder / "model.pt", folder / "model_raw.pt"

    def studio_load() -> nn.Module:
        return load_model(st, build)[0]

    def studio_load_unverified() -> nn.Module:
        return load_model(st, build, verify=False)[0]

    def torch_e2e() -> nn.Module:
        fresh = build(SPEC)
        fresh.load_state_dict(torch.load(pt, weights_only=True, map_location="cpu"))
        return fresh

    saves = {
        "studio_save": lambda: save_model(st, model, meta),
        "torch_save_durable": lambda: torch_save_durable(state, pt),
        "torch_save_plain": lambda: torch.save(state, pt_raw),
    }
    _interleaved(saves, 1, _settle)  # warm-up
    save_runs = _interleaved(saves, repeats, _settle)
    loads = {
        "torch_load": lambda: torch.load(pt, weights_only=True, map_location="cpu"),
        "studio_load": studio_load,
        "studio_load_unverified": studio_load_unverified,
        "torch_load_mmap": lambda: torch.load(pt, weights_only=True, map_location="cpu", mmap=True),
        "torch_build_and_load": torch_e2e,
    }
    _interleaved(loads, 1)
    load_runs = _interleaved(loads, repeats)
    loaded = load_model(st, build)[0].state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items()), "the round trip must be exact"
    median = {name: statistics.median(ts) for name, ts in {**save_runs, **load_runs}.items()}
    noise = {name: _half_spread(ts) for name, ts in {**save_runs, **load_runs}.items()}
    return {"save": {k: median[k] for k in saves}, "load": {k: median[k] for k in loads}, "noise": noise,
            "copy_gbs": copy_bandwidth_gbs(), "sizes": {"studio_bytes": st.stat().st_size,
                                                              "torch_bytes": pt.stat().st_size}}


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="studio-ckpt-bench-") as folder:
        m = measure(repeats, Path(folder))
    save, load = m["save"], m["load"]
    ms = {k: round(v * 1000, 1) for k, v in {**save, **load}.items()}
    noise = m["noise"]
    gbs = m["sizes"]["studio_bytes"] / load["studio_load"] / 1e9
    return {
        "ckpt_load_speedup": {
            "value": round(load["torch_load"] / load["studio_load"], 2), "unit": "x", "goal": ">= 5",
            "noise": round(max(noise["torch_load"], noise["studio_load"]), 4),
            "reference": "torch.load(weights_only=True) of the same 100.7M-parameter state dict",
            "detail": {
                "median_ms": ms, "repeats": repeats, **m["sizes"],
                "studio_load_gbs": round(gbs, 2), "memory_copy_gbs": round(m["copy_gbs"], 2),
                "torch_load_gbs": round(m["sizes"]["torch_bytes"] / load["torch_load"] / 1e9, 2),
                "speedup_unverified": round(load["torch_load"] / load["studio_load_unverified"], 2),
                "speedup_end_to_end": round(load["torch_build_and_load"] / load["studio_load"], 2),
                "note": "studio_load = validated header + XXH3-64 of every tensor + model built from spec; "
                        "torch_load_mmap is lazy and unchecked, like studio_load_unverified",
            },
        },
        "ckpt_save_ratio": {
            "value": round(save["studio_save"] / save["torch_save_durable"], 3), "unit": "x", "goal": "<= 1.1",
            "noise": round(max(noise["studio_save"], noise["torch_save_durable"]), 4),
            "reference": "torch.save with the same temp file + fsync + rename + directory fsync",
            "detail": {"median_ms": ms, "repeats": repeats,
                       "ratio_raw": round(save["studio_save"] / save["torch_save_plain"], 3),
                       "note": "ratio_raw compares with plain torch.save, which returns before the data is on disk"},
        },
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))
