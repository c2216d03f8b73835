"""A run that diverges or runs out of memory stops cleanly and keeps its last good state (REQ-T11, REQ-H11).

Both faults go through the ``train`` handler with an autosave (``checkpoint_path``), as the window runs
it. The NaN comes about the way it does for people: a learning rate far too high for the run being
resumed, and a CSV file with a value that overflows float32 (``1e39`` reads as ``inf``), which makes
the normalised inputs NaN. Out of memory is simulated by a model whose forward raises what PyTorch
raises: ``torch.cuda.OutOfMemoryError``, or on other allocators a plain ``RuntimeError`` saying "out of
memory". Each run ends with its documented code and advice, a ``RunFailed`` event last, and the
autosave of the last complete epoch untouched, loadable and finite.
"""

from __future__ import annotations

import math
import pathlib

import pytest
import torch
from reliability_helpers import handler_error, stored_models

from studio.backend.core.events import GrammarChecker, RunFailed, StepStats
from studio.backend.core.requests import (
    DataSpec,
    EvaluateRequest,
    LoadRequest,
    ModelSpec,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.stats_delivery import EventStream
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch.model_store import store

STEPS_PER_EPOCH = 6  # digits: 1437 training samples in batches of 256


def _finite_checkpoint(registry, path: pathlib.Path) -> None:  # noqa: ANN001
    """The checkpoint loads through the handler, holds only finite weights and evaluates."""
    loaded = registry.call("pytorch", "load", LoadRequest(path=str(path)))
    module = store.get(loaded.model).module
    assert all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point())
    metrics = registry.call("pytorch", "evaluate", EvaluateRequest(model=loaded.model)).metrics
    assert all(math.isfinite(v) for v in metrics.values()), metrics


def _failed_run(registry, request: TrainRequest, code: str):  # noqa: ANN001, ANN202
    stream = EventStream()
    before = stored_models()
    err = handler_error(registry, "train", request, events=stream.emit)
    events = stream.drain()
    GrammarChecker.check(events)
    assert isinstance(events[-1], RunFailed) and events[-1].error["code"] == code == err.code
    assert stored_models() == before
    return err, events


@pytest.mark.req("REQ-T11", "REQ-H11", "REQ-H13")
def test_a_learning_rate_far_too_high_stops_with_nonfinite_loss_keeping_the_last_autosave(
        registry, tmp_path: pathlib.Path) -> None:
    autosave = tmp_path / "run.safetensors"
    sgd = dict(batch_size=256, optimizer="sgd", momentum=0.9)
    registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=1, lr=0.05, **sgd),
                                                   checkpoint_path=str(autosave)))
    good = autosave.read_bytes()
    err, events = _failed_run(registry, TrainRequest(config=TrainConfig(epochs=4, lr=1e6, **sgd),
                                                     resume_from=str(autosave), checkpoint_path=str(autosave)),
                              "train.nonfinite_loss")
    step = err.value
    assert step > STEPS_PER_EPOCH and f"step {step}" in err.message and "epoch" in err.message
    assert "learning rate" in err.hint and f"after step {step - 1}" in err.message
    assert events[-1].step == step - 1  # the failing step was not applied
    assert autosave.read_bytes() == good  # the last complete epoch's state, as it was
    _finite_checkpoint(registry, autosave)
    resumed = registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=2, lr=0.05, **sgd),
                                                             resume_from=str(autosave)))
    assert resumed.status == "finished" and math.isfinite(resumed.final_metrics["train_loss"])


@pytest.mark.req("REQ-D02", "REQ-H11")
def test_a_csv_value_that_overflows_float32_is_refused_before_training_naming_its_line(
        registry, tmp_path: pathlib.Path) -> None:
    rows = ["width,height,label"] + [f"{1 + i % 7},{2 + (i * 3) % 5},{i % 2}" for i in range(60)]
    rows[17] = "1e39,3,1"  # larger than float32 can hold: it would train as inf
    csv = tmp_path / "measurements.csv"
    csv.write_text("\n".join(rows) + "\n")
    autosave = tmp_path / "run.safetensors"
    stream, before = EventStream(), stored_models()
    request = TrainRequest(data=DataSpec(source="csv", path=str(csv)), model=ModelSpec(name="mlp"),
                           config=TrainConfig(epochs=3, batch_size=8), checkpoint_path=str(autosave))
    err = handler_error(registry, "train", request, events=stream.emit)
    assert err.code == "data.bad_value" and err.field == "width"
    assert "line 18" in err.message and "measurements.csv" in err.message
    assert not any(isinstance(e, StepStats) for e in stream.drain())  # not one step trained on it
    assert stored_models() == before
    assert not autosave.exists() and list(tmp_path.iterdir()) == [csv]  # nothing half-written


def _failing_forward(monkeypatch: pytest.MonkeyPatch, error: BaseException, after: int) -> None:
    """Models built from now on raise ``error`` on their training forward number ``after + 1``."""
    real = model_lib.build_model
    calls = [0]

    def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        module = real(*args, **kwargs)
        forward = module.forward

        def guarded(x):  # noqa: ANN001, ANN202
            if module.training and x.device.type != "meta":
                calls[0] += 1
                if calls[0] > after:
                    raise error
            return forward(x)

        module.forward = guarded
        return module

    monkeypatch.setattr(model_lib, "build_model", build)


@pytest.mark.req("REQ-H11", "REQ-T11")
@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 3.81 GiB "
                                                "total capacity)"),
                                   RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)")],
                         ids=["OutOfMemoryError", "RuntimeError-cuda", "RuntimeError-mps"])
def test_out_of_memory_stops_the_run_advising_a_smaller_batch_and_keeps_the_last_autosave(
        registry, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    autosave = tmp_path / "run.safetensors"
    _failing_forward(monkeypatch, error, after=STEPS_PER_EPOCH + 2)  # in the second epoch
    err, events = _failed_run(registry, TrainRequest(config=TrainConfig(epochs=3, batch_size=256),
                                                     checkpoint_path=str(autosave)), "runtime.out_of_memory")
    assert err.__cause__ is error
    assert "batch size" in err.hint and err.value == STEPS_PER_EPOCH + 3
    assert sum(type(e).__name__ == "EpochStats" for e in events) == 1
    monkeypatch.undo()
    _finite_checkpoint(registry, autosave)  # the first epoch, saved before memory ran out
    resumed = registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=3, batch_size=256),
                                                             resume_from=str(autosave)))
    assert resumed.status == "finished" and resumed.epochs_run == 3
