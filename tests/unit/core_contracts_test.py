"""Core contracts: frozen, JSON round-trippable, free of torch and Qt (REQ-H10)."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from studio.backend.core import errors, events, requests, results
from studio.backend.core.contract import Contract, contract_registry, decode_any
from studio.backend.core.errors import StudioError, ValidationError, error_from_dict

SAMPLES: list[Contract] = [
    requests.DataSpec(source="csv", path="/tmp/a.csv", target="label", val_fraction=0.25, options={"missing": "mean"}),
    requests.ModelSpec(name="resnet", preset="small", hparams={"depth": 3, "widths": [16, 32]}),
    requests.TrainConfig(epochs=3, class_weights=(1.0, 2.5), early_stopping={"patience": 2}),
    requests.TrainRequest(resume_from="run.safetensors"),
    requests.DistillRequest(teacher="t.safetensors", distill=requests.DistillConfig(feature_pairs=(("a", "b"),))),
    requests.PredictRequest(model="m1", inputs=[[0.5, 1.0], [2.0, 3.0]]),
    requests.ExportRequest(model="m1", path="out.onnx"),
    results.TrainResult(status="finished", model="m1", epochs_run=2, steps=10, final_metrics={"val_loss": 0.1},
                        best_metrics={"val_loss": 0.05}, best_epoch=1, history=({"epoch": 0.0, "loss": 1 / 3},)),
    results.EvaluateResult(split="val", num_samples=4, metrics={"accuracy": 0.75}, confusion=((1, 0), (1, 2))),
    results.PredictResult(task="classification", indices=(1,), labels=("cat",), top_k=((("cat", 0.9),),)),
    results.DistillResult(train=results.TrainResult("finished", "s", 1, 1, {}, {}, 0), teacher_metrics={"a": 1.0}),
    events.RunStarted(run_id="r", operation="train", total_epochs=2, steps_per_epoch=5),
    events.StepStats(run_id="r", step=1, epoch=0, loss=math.pi, batch_size=32, lr=1e-3, step_time_s=0.01,
                     samples_per_s=3200.0, grad_norm=None, metrics={"accuracy": 0.5}),
    events.EpochStats(run_id="r", epoch=0, step=5, train={"loss": 0.3}, val={"loss": math.nan}, lr=1e-3,
                      duration_s=1.0, samples_per_s=100.0),
    events.RunFailed(run_id="r", step=3, error={"code": "train.nonfinite_loss"}),
]


@pytest.mark.req("REQ-H10")
@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_every_contract_survives_a_json_round_trip_exactly(obj: Contract) -> None:
    text = obj.to_json()
    json.loads(text)  # plain, strict JSON (no NaN tokens)
    back = type(obj).from_json(text)
    assert type(back) is type(obj)
    assert _equal_nan(back.to_dict(), obj.to_dict())
    assert type(decode_any(text)) is type(obj)


@pytest.mark.req("REQ-H10")
def test_floats_keep_full_precision_and_non_finite_values() -> None:
    event = events.StepStats(run_id="r", step=1, epoch=0, loss=0.1 + 0.2, batch_size=1, lr=math.inf,
                             step_time_s=1e-300, samples_per_s=-math.inf)
    back = events.StepStats.from_json(event.to_json())
    assert back.loss == 0.1 + 0.2 and back.step_time_s == 1e-300
    assert back.lr == math.inf and back.samples_per_s == -math.inf


@pytest.mark.req("REQ-H10")
def test_contracts_are_frozen() -> None:
    spec = requests.ModelSpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.req("REQ-H10")
def test_every_registered_contract_is_a_frozen_dataclass() -> None:
    kinds = contract_registry()
    assert {"TrainRequest", "TrainResult", "RunStarted", "StepStats", "EpochStats", "RunFinished"} <= set(kinds)
    for name, cls in kinds.items():
        assert dataclasses.is_dataclass(cls), name
        assert cls.__dataclass_params__.frozen, name  # type: ignore[attr-defined]


@pytest.mark.req("REQ-H10")
def test_unknown_key_and_wrong_type_are_clear_errors() -> None:
    with pytest.raises(ValidationError) as info:
        requests.TrainConfig.from_dict({"epochs": 3, "epocs": 4})
    assert info.value.code == "request.unknown_key" and "epocs" in info.value.message
    with pytest.raises(ValidationError) as info:
        requests.TrainConfig.from_dict({"epochs": "three"})
    assert info.value.field == "TrainConfig.epochs"
    with pytest.raises(ValidationError):
        requests.TrainConfig.from_json("{not json")
    with pytest.raises(ValidationError):
        requests.TrainConfig.from_json(requests.ModelSpec().to_json())  # wrong kind


@pytest.mark.req("REQ-H10")
def test_errors_carry_a_stable_code_and_round_trip() -> None:
    err = errors.DeviceUnavailableError("No such device.", field="device", value="cuda:3", hint="Use cpu.")
    assert isinstance(err, StudioError) and isinstance(err, ValidationError)
    assert err.code == "runtime.device_unavailable"
    back = error_from_dict(json.loads(json.dumps(err.to_dict())))
    assert type(back) is errors.DeviceUnavailableError
    assert (back.code, back.message, back.field, back.value, back.hint) == (
        err.code, err.message, err.field, err.value, err.hint)
    assert "[runtime.device_unavailable]" in str(err)


@pytest.mark.req("REQ-H10")
def test_event_grammar_checker_accepts_a_valid_run_and_rejects_violations() -> None:
    start = events.RunStarted(run_id="r", operation="train", total_epochs=1, steps_per_epoch=2)

    def step(n: int) -> events.StepStats:
        return events.StepStats(run_id="r", step=n, epoch=0, loss=1.0, batch_size=1, lr=0.1,
                                step_time_s=0.1, samples_per_s=10.0)

    epoch = events.EpochStats(run_id="r", epoch=0, step=2, train={}, val={}, lr=0.1, duration_s=1, samples_per_s=1)
    done = events.RunFinished(run_id="r", step=2, epoch=0)
    events.GrammarChecker.check([start, step(1), step(2), epoch, done])
    bad_runs = [
        [step(1), start, done],  # step before start
        [start, step(2), step(2), done],  # step not increasing
        [start, step(1), done, step(2)],  # event after the end
        [start, start, done],  # two starts
        [start, step(1)],  # no terminal event
        [start, epoch, epoch, done],  # epoch twice
    ]
    for run in bad_runs:
        with pytest.raises(ValidationError):
            events.GrammarChecker.check(run)


@pytest.mark.req("REQ-H10")
def test_core_imports_neither_torch_nor_qt() -> None:
    code = (
        "import sys, pkgutil, importlib, studio.backend.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('studio.backend.core.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'shiboken6', 'pyqtgraph')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _equal_nan(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal_nan(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal_nan(x, y) for x, y in zip(a, b))
    return a == b
