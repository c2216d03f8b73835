"""Knowledge distillation pays on digits with few labels (REQ-KD26; Hinton, Vinyals & Dean 2015).

The paper's MNIST claim: a small net alone makes 146 test errors, the same net distilled from a
large one makes 74, about half. Here, on the built-in digits (1,797 8x8 images):

- split: 20% test (never seen by anyone), 10% validation, 70% training, stratified, seed 0;
- teacher: ``lenet`` preset ``small`` (21,386 parameters) trained on the whole training split;
- student: ``mlp`` preset ``tiny`` (one hidden layer of 32, about 2.4k parameters) that sees only a
  stratified 10% of the training split with its labels (126 images; a different subset per seed);
- "alone": the student trained on its subset with cross-entropy; "distilled": the same student,
  from the same initial weights, on the same subset, in the same data order, for the same epochs,
  with the loss ``hard_weight * CE + soft_weight * T^2 * KL`` through Studio's distillation plug-in
  (``Trainer(..., objective=Distillation(...))``, teacher outputs cached);
- each student's normalisation is fitted on its own subset (as the ``distill`` handler does); the
  teacher keeps its own, and sees the student's batches mapped into it;
- T=4, hard_weight 0.5, soft_weight 1, 300 epochs (batch 32, Adam 1e-3), ten seeds (five with
  ``--quick``): chosen with ``run_seed(..., split="heldout")`` on the validation split plus the training
  images outside the subset (ratio 0.73 there), never on the test split.

The figure is ``kd_error_ratio``: the distilled student's mean test error over the seeds divided by
the student-alone mean test error (goal <= 0.8). ``detail`` holds every seed's accuracies.

    .venv/bin/python benchmarks/distill_digits.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch.distill import (
    Distillation,
    DistillObjective,
    FrozenTeacher,
    TeacherCache,
    TeacherEnsemble,
    data_fingerprint,
)
from studio.backend.pytorch.distill.teacher import normalisation_maps
from studio.backend.pytorch.trainer import Trainer
from studio.backend.pytorch.trainer.losses import TaskLoss

TEACHER = ModelSpec(name="lenet", preset="small")
STUDENT = ModelSpec(name="mlp", preset="tiny")
LABELLED = 0.10
TEMPERATURE = 4.0
HARD_WEIGHT = 0.5
SOFT_WEIGHT = 1.0
TEACHER_CONFIG = TrainConfig(epochs=30, batch_size=64, lr=1e-3)


def student_config(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=32, lr=1e-3)


def load_splits() -> dict[str, Any]:
    bundle = data_lib.load_data(DataSpec(name="digits"))
    splits = data_lib.split_data(bundle, val_fraction=0.1, test_fraction=0.2, seed=0)
    return {"bundle": bundle, "splits": splits}


def train_teacher(data: dict[str, Any], seed: int = 0, config: TrainConfig = TEACHER_CONFIG
                  ) -> tuple[torch.nn.Module, data_lib.Preprocessing, float]:
    """The teacher trained on the whole training split; returns it, its normalisation and its test accuracy."""
    bundle, splits = data["bundle"], data["splits"]
    prep = data_lib.fit_preprocessing(bundle, splits.train)
    module = model_lib.build_model(TEACHER, tuple(bundle.input_shape), bundle.num_outputs, seed=seed)
    Trainer(module, "classification", config, seed=seed).fit(
        (prep.apply(bundle.x[splits.train]), bundle.y[splits.train]),
        (prep.apply(bundle.x[splits.val]), bundle.y[splits.val]))
    return module.eval(), prep, accuracy(module, prep.apply(bundle.x[splits.test]), bundle.y[splits.test])


def labelled_subset(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A stratified ``fraction`` of positions 0..len(y)-1 (at least one per class), sorted."""
    generator = torch.Generator().manual_seed(1000 + seed)
    picked = []
    for c in range(int(y.max()) + 1):
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        picked.append(members[:max(1, round(fraction * len(members)))])
    return torch.sort(torch.cat(picked)).values


@torch.no_grad()
def accuracy(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was = module.training
    module.eval()
    try:
        return float((module(x).argmax(1) == y).double().mean())
    finally:
        module.train(was)


def run_seed(data: dict[str, Any], teacher: torch.nn.Module, teacher_prep: data_lib.Preprocessing, seed: int,
             epochs: int, *, temperature: float = TEMPERATURE, hard_weight: float = HARD_WEIGHT,
             soft_weight: float = SOFT_WEIGHT, fraction: float = LABELLED, split: str = "test") -> dict[str, float]:
    """Accuracy on ``split`` of the student alone and distilled, on one labelled subset and one
    initialisation. ``split`` is ``test`` for the figure; ``heldout`` (the validation split plus the
    training images outside the labelled subset, which the students never see) for tuning."""
    bundle, splits = data["bundle"], data["splits"]
    train_idx = splits.train[labelled_subset(bundle.y[splits.train], fraction, seed)]
    prep = data_lib.fit_preprocessing(bundle, train_idx)
    x, y = prep.apply(bundle.x[train_idx]), bundle.y[train_idx]
    if split == "heldout":  # for tuning: validation plus the training images the student never sees
        unseen = splits.train[~torch.isin(splits.train, train_idx)]
        held = torch.cat([unseen, splits.val])
    else:
        held = splits.get(split)
    x_test, y_test = prep.apply(bundle.x[held]), bundle.y[held]
    initial = model_lib.build_model(STUDENT, tuple(bundle.input_shape), bundle.num_outputs, seed=seed)
    config = student_config(epochs)

    alone = model_lib.build_model(STUDENT, tuple(bundle.input_shape), bundle.num_outputs, seed=seed)
    alone.load_state_dict(initial.state_dict())
    Trainer(alone, "classification", config, seed=seed).fit((x, y))

    student = model_lib.build_model(STUDENT, tuple(bundle.input_shape), bundle.num_outputs, seed=seed)
    student.load_state_dict(initial.state_dict())
    to_teacher, _ = normalisation_maps(prep, teacher_prep.to_dict())
    frozen = FrozenTeacher(teacher)
    teacher_x = to_teacher(x)
    cache = TeacherCache("benchmark-teacher", data_fingerprint(teacher_x))
    cache.fill(frozen, teacher_x)
    objective = DistillObjective(TaskLoss("classification", config), "kd",
                                 task="classification", hard_weight=hard_weight, soft_weight=soft_weight,
                                 temperature=temperature)
    plug_in = Distillation(objective, TeacherEnsemble([frozen]), caches=[cache], teacher_inputs=[to_teacher])
    Trainer(student, "classification", config, seed=seed, objective=plug_in).fit((x, y))
    return {"seed": seed, "labelled": len(train_idx), "alone_accuracy": accuracy(alone, x_test, y_test),
            "distilled_accuracy": accuracy(student, x_test, y_test)}


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    alone = [1 - r["alone_accuracy"] for r in rows]
    distilled = [1 - r["distilled_accuracy"] for r in rows]
    spread = statistics.stdev if len(rows) > 1 else (lambda _: 0.0)
    return {"alone_error_mean": statistics.mean(alone), "alone_error_std": spread(alone),
            "distilled_error_mean": statistics.mean(distilled), "distilled_error_std": spread(distilled),
            "ratio": statistics.mean(distilled) / statistics.mean(alone),
            "ratio_per_seed_mean": statistics.mean(d / a for d, a in zip(distilled, alone) if a > 0)}


def run(quick: bool = False) -> dict[str, dict[str, Any]]:
    seeds = list(range(5 if quick else 10))
    epochs = 300
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and steadiest
    try:
        started = time.perf_counter()
        data = load_splits()
        teacher, teacher_prep, teacher_acc = train_teacher(data)
        rows = [run_seed(data, teacher, teacher_prep, seed, epochs) for seed in seeds]
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    summary = summarise(rows)
    n_test = len(data["splits"].test)
    detail = {
        "setup": (f"digits, {n_test} test images; teacher {TEACHER.name}/{TEACHER.preset} on the full training split "
                  f"({len(data['splits'].train)} images); student {STUDENT.name}/{STUDENT.preset} on a stratified "
                  f"{LABELLED:.0%} of it; kd, T={TEMPERATURE:g}, hard_weight={HARD_WEIGHT:g}, "
                  f"soft_weight={SOFT_WEIGHT:g}; {epochs} epochs, batch 32, Adam 1e-3"),
        "teacher_test_accuracy": teacher_acc,
        "teacher_params": model_lib.count_parameters(teacher)[0],
        "student_params": model_lib.count_parameters(model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0))[0],
        "seeds": rows,
        **summary,
        "test_errors_alone_mean": summary["alone_error_mean"] * n_test,
        "test_errors_distilled_mean": summary["distilled_error_mean"] * n_test,
        "seconds": seconds,
    }
    return {"kd_error_ratio": {"value": summary["ratio"], "unit": "x", "goal": "<= 0.8",
                               "reference": "same student trained alone", "detail": detail}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 seeds instead of 10")
    args = parser.parse_args(argv)
    figure = run(quick=args.quick)["kd_error_ratio"]
    d = figure["detail"]
    print(f"teacher test accuracy {d['teacher_test_accuracy']:.4f} ({d['teacher_params']} parameters); student "
          f"{d['student_params']} parameters")
    print(f"{'seed':>4} {'labelled':>8} {'alone':>8} {'distilled':>9}")
    for r in d["seeds"]:
        print(f"{r['seed']:>4} {r['labelled']:>8} {r['alone_accuracy']:>8.4f} {r['distilled_accuracy']:>9.4f}")
    print(f"test error alone {d['alone_error_mean']:.4f} +- {d['alone_error_std']:.4f}, distilled "
          f"{d['distilled_error_mean']:.4f} +- {d['distilled_error_std']:.4f}; kd_error_ratio {figure['value']:.3f} "
          f"(goal {figure['goal']}) in {d['seconds']:.0f} s")
    print(json.dumps(figure, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
