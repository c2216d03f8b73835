"""Studio Trainer throughput against a hand-written PyTorch loop (REQ-T16).

Both sides train the same model (same initial weights) on the same in-memory data with the same
batch size, optimiser (Adam, lr 1e-3), epoch order (``epoch_order``), batching by
``index_select`` and validation after every epoch. The reference is the loop people write: forward,
loss, ``zero_grad(set_to_none=True)``, backward, step, and ``loss.item()`` every step for the
progress display. The Trainer additionally measures the gradient norm and the step's accuracy,
checks both for non-finite values, keeps batch-weighted running statistics, emits a ``StepStats``
per step into a non-blocking ``EventStream`` and keeps the best weights: that is the overhead
measured. Two savings of the Trainer offset it: it builds Adam with ``fused=True`` (PyTorch's
fused kernel: one kernel for the whole update, agreeing with the default per-parameter loop to
rounding, deterministic) and clears gradients by setting them to ``None`` directly (``zero_grad``
without its profiler annotation). For transparency two more references are timed: "fused" (the
reference loop with the fused Adam: the Trainer's whole overhead, none of its savings) and "same
statistics" (the reference loop also computing the gradient norm and accuracy every step: the cost
of the Trainer's bookkeeping alone).

Runs alternate in one process after a warm-up (A B C D, B C D A, ...: nobody always goes first);
each ratio is the median reference time over the median Trainer time (a throughput ratio: higher
is better, 1.0 is parity); the headline ``value`` is the smaller of the two workloads' ratios
against the reference loop. Torch runs on
one thread and time is the main thread's CPU time by default, so other processes on a shared
machine do not blur a difference of a few percent; wall-clock medians are reported too.
Workloads: the ``mlp/small`` architecture (64-128-64-10) on scikit-learn digits, and a two-conv
CNN on generated 1x32x32 shape images (4 classes).

    .venv/bin/python benchmarks/trainer_overhead.py [--quick] [--threads N] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.backend.core.requests import TrainConfig
from studio.backend.core.stats_delivery import EventStream
from studio.backend.pytorch.trainer import Trainer, epoch_order

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# -- workloads -------------------------------------------------------------------------------
def digits_data() -> Data:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    cut = int(len(x) * 0.8)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def shapes_data(n: int = 1280, size: int = 32, seed: int = 0) -> Data:
    """Filled squares, discs, triangles and crosses at random positions and sizes, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    labels = rng.integers(0, 4, n)
    for i, label in enumerate(labels):
        r = rng.integers(5, 10)
        cy, cx = rng.integers(r, size - r, 2)
        dy, dx = yy - cy, xx - cx
        if label == 0:
            mask = (abs(dy) <= r) & (abs(dx) <= r)
        elif label == 1:
            mask = dy**2 + dx**2 <= r**2
        elif label == 2:
            mask = (dy >= -r) & (dy <= r) & (abs(dx) <= (dy + r) / 2)
        else:
            mask = ((abs(dy) <= r) & (abs(dx) <= 2)) | ((abs(dx) <= r) & (abs(dy) <= 2))
        images[i, 0][mask] = 1.0
    images += rng.normal(0, 0.1, images.shape).astype(np.float32)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).long()
    cut = int(n * 0.8)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def mlp() -> nn.Module:
    """The architecture of the ``mlp`` family's ``small`` preset (hidden 128, 64) for digits."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 4),
    )


# -- the loops ---------------------------------------------------------------------------------
def hand_written(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int,
                 statistics: bool = False, fused: bool | None = None) -> float:
    """The reference: a plain PyTorch loop. With ``statistics`` it also measures the gradient norm
    and the accuracy of every step, as the Trainer does; ``fused`` picks Adam's implementation."""
    x, y, xv, yv = data
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    params = list(model.parameters())
    running = 0.0
    for epoch in range(epochs):
        model.train()
        order = epoch_order(seed, epoch, len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if statistics:
                norms = torch._foreach_norm([p.grad for p in params])
                correct = (out.argmax(-1) == yb).sum(dtype=torch.float32)
                running += sum(n.item() ** 2 for n in norms) ** 0.5 + correct.item()
            optimizer.step()
            running += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = [F.cross_entropy(model(xv[i:i + batch_size]), yv[i:i + batch_size], reduction="sum")
                   for i in range(0, len(xv), batch_size)]
            running += float(torch.stack(val).sum())
    return running


def fused_adam(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int) -> float:
    return hand_written(model, data, epochs, batch_size, seed, fused=True)


def same_statistics(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int) -> float:
    return hand_written(model, data, epochs, batch_size, seed, statistics=True)


def studio_trainer(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int) -> float:
    x, y, xv, yv = data
    stream: EventStream[Any] = EventStream()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3)
    result = Trainer(model, "classification", config, events=stream, seed=seed).fit((x, y), (xv, yv))
    stream.drain()
    return result.final_metrics["train_loss"]


LOOPS: dict[str, Callable[..., float]] = {
    "hand_written": hand_written,
    "fused": fused_adam,
    "same_statistics": same_statistics,
    "trainer": studio_trainer,
}


# -- measurement -----------------------------------------------------------------------------
def _time(fn: Callable[..., Any], model: nn.Module, *args: Any) -> tuple[float, float]:
    model = copy.deepcopy(model)
    gc.collect()  # nobody pays for the garbage of the run before
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(model, *args)
    return time.thread_time() - cpu, time.perf_counter() - wall


def compare(name: str, make_model: Callable[[], nn.Module], data: Data, epochs: int, batch_size: int,
            repeats: int, clock: str) -> dict[str, Any]:
    torch.manual_seed(0)
    model = make_model()
    args = (data, epochs, batch_size, 0)
    for fn in LOOPS.values():  # warm-up (allocator, kernels, first-call costs)
        _time(fn, model, *args)
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in LOOPS}
    keys = list(LOOPS)
    for i in range(repeats):  # interleaved, rotating who goes first: A B C D, B C D A, ...
        for key in keys[i % len(keys):] + keys[:i % len(keys)]:
            times[key].append(_time(LOOPS[key], model, *args))
    pick = 0 if clock == "cpu" else 1
    median = {key: statistics.median(t[pick] for t in runs) for key, runs in times.items()}
    wall = {key: statistics.median(t[1] for t in runs) for key, runs in times.items()}
    samples = len(data[0]) * epochs
    return {
        "workload": name,
        "train_samples_per_epoch": len(data[0]),
        "epochs": epochs,
        "batch_size": batch_size,
        "repeats": repeats,
        "clock": "main-thread CPU time" if clock == "cpu" else "wall clock",
        "median_s": median,
        "samples_per_s": {key: samples / value for key, value in median.items()},
        "ratio": median["hand_written"] / median["trainer"],
        "ratio_vs_fused": median["fused"] / median["trainer"],
        "ratio_vs_same_statistics": median["same_statistics"] / median["trainer"],
        "median_of_paired_ratios": statistics.median(
            h[pick] / t[pick] for h, t in zip(times["hand_written"], times["trainer"])),
        "wall_median_s": wall,
        "wall_ratio": wall["hand_written"] / wall["trainer"],
        "runs_s": {key: [round(t[pick], 5) for t in runs] for key, runs in times.items()},
    }


def run(quick: bool = False, threads: int | None = 1, clock: str = "cpu") -> dict[str, Any]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        repeats = 7 if quick else 21
        results = [
            compare("mlp_small_digits", mlp, digits_data(), epochs=3 if quick else 5, batch_size=64,
                    repeats=repeats, clock=clock),
            compare("cnn_shapes_32x32", cnn, shapes_data(), epochs=1 if quick else 2, batch_size=64,
                    repeats=repeats, clock=clock),
        ]
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)  # the harness runs other benchmarks in this process
    return {
        "trainer_overhead_ratio": {
            "value": min(r["ratio"] for r in results),
            "unit": "x",
            "goal": ">= 0.97",
            "reference": "hand-written PyTorch loop",
            "detail": {
                "torch": torch.__version__,
                "threads": used,
                "workloads": {r["workload"]: r for r in results},
            },
        }
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="what to time (default cpu)")
    args = parser.parse_args(argv)
    out = run(quick=args.quick, threads=args.threads, clock=args.clock)
    metric = out["trainer_overhead_ratio"]
    for name, r in metric["detail"]["workloads"].items():
        sps = r["samples_per_s"]
        print(f"{name:>18}: hand-written {sps['hand_written']:8.0f}/s, trainer {sps['trainer']:8.0f}/s, "
              f"ratio {r['ratio']:.3f} (vs fused {r['ratio_vs_fused']:.3f}, "
              f"vs same statistics {r['ratio_vs_same_statistics']:.3f}, wall {r['wall_ratio']:.3f})", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
