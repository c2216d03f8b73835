"""Smoke: the default model on the default data through the handlers, end to end (REQ-H14)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

SCRIPT = r"""
import sys, time
started = time.perf_counter()
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import LoadRequest, PredictRequest, SaveRequest, TrainRequest, EvaluateRequest
reg = default_registry()
result = reg.call("pytorch", "train", TrainRequest())
path = sys.argv[1]
reg.call("pytorch", "save", SaveRequest(model=result.model, path=path))
loaded = reg.call("pytorch", "load", LoadRequest(path=path)).model
from sklearn.datasets import load_digits
rows = (load_digits().data[:200] / 16.0).tolist()
before = reg.call("pytorch", "predict", PredictRequest(model=result.model, inputs=rows))
after = reg.call("pytorch", "predict", PredictRequest(model=loaded, inputs=rows))
ev = reg.call("pytorch", "evaluate", EvaluateRequest(model=loaded))
print(result.final_metrics["val_accuracy"], ev.metrics["accuracy"], before.probabilities == after.probabilities,
      round(time.perf_counter() - started, 1))
"""


@pytest.mark.req("REQ-H14")
def test_default_model_trains_well_above_chance_saves_reloads_and_predicts_the_same(tmp_path) -> None:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model.safetensors")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    val_acc, eval_acc, same, seconds = out.stdout.split()
    assert float(val_acc) > 0.9  # chance is 0.1
    assert float(eval_acc) == pytest.approx(float(val_acc), abs=1e-9)
    assert same == "True"
    # REQ-H14 asks for under a minute on two cores; record it, the benchmark suite tracks speed
    print(f"smoke run took {seconds} s in the child, {time.perf_counter() - started:.1f} s with start-up")
