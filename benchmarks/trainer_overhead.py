"""Studio Trainer throughput against a hand-written PyTorch loop (REQ-T16).

Both sides train the same model (same initial weights), on the same in-memory data, with the
same batch size, optimiser (Adam, lr 1e-3), shuffling and per-epoch validation, and both read
the loss of every step (the hand-written loop sums ``loss.item()``, as a training loop that
reports progress does). The Trainer additionally measures the gradient norm and the step's
accuracy, checks for non-finite values, keeps running statistics and emits a ``StepStats`` per
step into a non-blocking ``EventStream``: that is the overhead measured.

Runs alternate A B A B in one process after a warm-up; the ratio is the median hand-written
time over the median Trainer time (throughput ratio, higher is better). Two workloads: an MLP
on scikit-learn digits (64 features, 10 classes) and a 2-conv-layer CNN on generated 1x32x32
shape images (4 classes).

    .venv/bin/python benchmarks/trainer_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
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
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 4),
    )


# -- the two loops -----------------------------------------------------------------------------
def hand_written(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int) -> float:
    """The reference: a plain PyTorch loop with per-step loss logging and per-epoch validation."""
    x, y, xv, yv = data
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    running = 0.0
    for epoch in range(epochs):
        model.train()
        order = epoch_order(seed, epoch, len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = [F.cross_entropy(model(xv[i:i + batch_size]), yv[i:i + batch_size], reduction="sum")
                   for i in range(0, len(xv), batch_size)]
            running += float(torch.stack(val).sum())
    return running


def studio_trainer(model: nn.Module, data: Data, epochs: int, batch_size: int, seed: int) -> float:
    x, y, xv, yv = data
    stream: EventStream[Any] = EventStream()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3)
    result = Trainer(model, "classification", config, events=stream, seed=seed).fit((x, y), (xv, yv))
    stream.drain()
    return result.final_metrics["train_loss"]


# -- measurement -----------------------------------------------------------------------------
def _time(fn: Callable[..., Any], model: nn.Module, *args: Any) -> float:
    model = copy.deepcopy(model)
    start = time.perf_counter()
    fn(model, *args)
    return time.perf_counter() - start


def compare(name: str, make_model: Callable[[], nn.Module], data: Data, epochs: int, batch_size: int,
            repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = make_model()
    args = (data, epochs, batch_size, 0)
    _time(hand_written, model, *args)  # warm-up both paths (allocator, kernels, first-call costs)
    _time(studio_trainer, model, *args)
    hand, studio = [], []
    for _ in range(repeats):  # interleaved A B A B
        hand.append(_time(hand_written, model, *args))
        studio.append(_time(studio_trainer, model, *args))
    samples = len(data[0]) * epochs
    hand_s, studio_s = statistics.median(hand), statistics.median(studio)
    return {
        "workload": name,
        "train_samples_per_epoch": len(data[0]),
        "epochs": epochs,
        "batch_size": batch_size,
        "repeats": repeats,
        "hand_median_s": hand_s,
        "trainer_median_s": studio_s,
        "hand_samples_per_s": samples / hand_s,
        "trainer_samples_per_s": samples / studio_s,
        "ratio": hand_s / studio_s,
        "hand_runs_s": hand,
        "trainer_runs_s": studio,
    }


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 5 if quick else 15
    results = [
        compare("mlp_digits", mlp, digits_data(), epochs=2 if quick else 5, batch_size=64, repeats=repeats),
        compare("cnn_shapes_32x32", cnn, shapes_data(), epochs=1 if quick else 2, batch_size=64, repeats=repeats),
    ]
    return {
        "trainer_overhead_ratio": {
            "value": min(r["ratio"] for r in results),
            "unit": "x",
            "goal": ">= 0.97",
            "reference": "hand-written PyTorch loop",
            "detail": {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "workloads": {r["workload"]: r for r in results},
            },
        }
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    args = parser.parse_args(argv)
    out = run(quick=args.quick)
    metric = out["trainer_overhead_ratio"]
    for name, r in metric["detail"]["workloads"].items():
        print(f"{name:>18}: hand {r['hand_samples_per_s']:9.0f} samples/s, trainer {r['trainer_samples_per_s']:9.0f} "
              f"samples/s, ratio {r['ratio']:.3f}", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
