"""The handler contract of the PyTorch backend (REQ-H01, H04..H09, H11, H13, H15)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from studio.backend.core.errors import StudioError, ValidationError
from studio.backend.core.events import EpochStats, GrammarChecker, RunCancelled, RunFinished, RunStarted, StepStats
from studio.backend.core.handler import RunControl
from studio.backend.core.registry import OPERATIONS
from studio.backend.core.requests import (
    DataSpec,
    EvaluateRequest,
    ModelSpec,
    PredictRequest,
    ReleaseRequest,
    RuntimeConfig,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.results import EvaluateResult, PredictResult, ReleaseResult, TrainResult
from studio.backend.core.stats_delivery import EventStream

SMALL = TrainConfig(epochs=2, batch_size=64)


def _train(registry, request=None, **kwargs):
    return registry.call("pytorch", "train", request or TrainRequest(config=SMALL), **kwargs)


@pytest.fixture(scope="module")
def trained(registry):
    return _train(registry, TrainRequest(config=TrainConfig(epochs=4)))


@pytest.mark.req("REQ-H01")
def test_the_backend_provides_one_handler_per_operation(registry) -> None:
    assert set(registry.operations("pytorch")) >= set(OPERATIONS) - {"distill"}


@pytest.mark.req("REQ-H05", "REQ-H13")
def test_train_returns_metrics_history_and_a_model_with_the_event_grammar(registry) -> None:
    stream: EventStream = EventStream()
    result = _train(registry, events=stream.emit)
    assert isinstance(result, TrainResult) and result.status == "finished"
    assert result.epochs_run == 2 and len(result.history) == 2
    assert result.final_metrics["val_accuracy"] > 0.3 and result.best_epoch in (0, 1)
    assert set(result.best_metrics) >= {"val_loss", "val_accuracy", "train_loss"}
    events = stream.drain()
    GrammarChecker.check(events)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    steps = [e.step for e in events if isinstance(e, StepStats)]
    assert steps == list(range(1, result.steps + 1))
    assert [e.epoch for e in events if isinstance(e, EpochStats)] == [0, 1]


@pytest.mark.req("REQ-H04")
@pytest.mark.parametrize("request_,field", [
    (TrainRequest(config=TrainConfig(epochs=0)), "epochs"),
    (TrainRequest(config=TrainConfig(lr=-1.0)), "lr"),
    (TrainRequest(config=TrainConfig(optimizer="adamz")), "optimizer"),
    (TrainRequest(data=DataSpec(val_fraction=1.5)), "val_fraction"),
    (TrainRequest(data=DataSpec(name="mnist")), "name"),
    (TrainRequest(model=ModelSpec(name="vgg")), "model"),
    (TrainRequest(model=ModelSpec(name="mlp", hparams={"hiden": [8]})), "hiden"),
    (TrainRequest(runtime=RuntimeConfig(device="cuda:9")), "device"),
    (TrainRequest(runtime=RuntimeConfig(seed=-4)), "seed"),
])
def test_a_bad_request_is_a_clear_error_naming_the_field_before_any_work(registry, request_, field) -> None:
    stream: EventStream = EventStream()
    with pytest.raises(StudioError) as info:
        _train(registry, request_, events=stream.emit)
    err = info.value
    assert field in f"{err.field} {err.message}"
    assert err.code and "." in err.code and len(err.message) > 20
    assert not any(isinstance(e, StepStats) for e in stream.drain())  # no training happened


@pytest.mark.req("REQ-H04", "REQ-H11")
def test_a_request_of_the_wrong_type_is_refused(registry) -> None:
    with pytest.raises(ValidationError) as info:
        registry.call("pytorch", "train", {"epochs": 3})
    assert "TrainRequest" in info.value.message


@pytest.mark.req("REQ-H06")
def test_evaluate_gives_loss_accuracy_per_class_metrics_and_confusion(registry, trained) -> None:
    result = registry.call("pytorch", "evaluate", EvaluateRequest(model=trained.model))
    assert isinstance(result, EvaluateResult)
    confusion = np.array(result.confusion)
    assert confusion.shape == (10, 10) and confusion.sum() == result.num_samples
    assert result.metrics["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert result.metrics["accuracy"] == pytest.approx(trained.final_metrics["val_accuracy"], abs=1e-9)
    for i, row in enumerate(result.per_class):
        tp = confusion[i, i]
        assert row["support"] == confusion[i].sum()
        assert row["recall"] == pytest.approx(tp / confusion[i].sum())
        assert row["precision"] == pytest.approx(tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0)
    assert result.class_names == tuple(str(i) for i in range(10))


@pytest.mark.req("REQ-H06")
def test_evaluate_regression_reports_mse_mae_and_r2_in_original_units(registry) -> None:
    data = DataSpec(name="sine")
    result = _train(registry, TrainRequest(data=data, model=ModelSpec(name="mlp"), config=TrainConfig(epochs=3)))
    ev = registry.call("pytorch", "evaluate", EvaluateRequest(model=result.model, data=data))
    assert set(ev.metrics) >= {"mse", "mae", "r2"}
    assert ev.metrics["mae"] <= np.sqrt(ev.metrics["mse"]) + 1e-12  # MAE <= RMSE always
    assert ev.metrics["r2"] <= 1.0


@pytest.mark.req("REQ-H07")
def test_predict_returns_classes_probabilities_and_top_k_in_input_order(registry, trained) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = (digits.data[:40] / 16.0).tolist()
    result = registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=rows, top_k=3))
    assert isinstance(result, PredictResult) and len(result.indices) == 40
    probs = np.array(result.probabilities)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-6)
    assert list(result.indices) == probs.argmax(1).tolist()
    assert all(len(t) == 3 and t[0][0] == label for t, label in zip(result.top_k, result.labels))
    assert (np.array(result.indices) == digits.target[:40]).mean() > 0.6
    reversed_ = registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=rows[::-1]))
    assert reversed_.indices == result.indices[::-1]


@pytest.mark.req("REQ-H07")
def test_predict_refuses_inputs_of_the_wrong_shape_stating_both_shapes(registry, trained) -> None:
    with pytest.raises(StudioError) as info:
        registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=[[0.0] * 63]))
    assert "(N, 1, 8, 8)" in info.value.message and "(1, 63)" in info.value.message


@pytest.mark.req("REQ-H08")
def test_cancel_stops_within_one_step_and_returns_the_state_reached(registry) -> None:
    control = RunControl()
    seen = []

    def sink(event):
        seen.append(event)
        if isinstance(event, StepStats) and event.step == 3:
            control.cancel()

    result = _train(registry, TrainRequest(config=TrainConfig(epochs=50)), events=sink, control=control)
    assert result.status == "cancelled" and result.steps == 3
    assert isinstance(seen[-1], RunCancelled)
    GrammarChecker.check(seen)


@pytest.mark.req("REQ-H09")
def test_a_paused_and_resumed_train_is_bit_identical_to_an_uninterrupted_one(registry) -> None:
    from studio.backend.pytorch.model_store import store

    request = TrainRequest(config=TrainConfig(epochs=2, batch_size=128))
    plain = store.get(_train(registry, request).model).module
    control = RunControl()
    paused_at = []

    def sink(event):
        if isinstance(event, StepStats) and event.step == 5:
            control.pause()
            paused_at.append(event.step)
            threading.Timer(0.2, control.resume).start()

    resumed = store.get(_train(registry, request, events=sink, control=control).model).module
    assert paused_at == [5]
    for (name, a), b in zip(plain.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.req("REQ-H11")
def test_raw_library_exceptions_never_cross_the_handler_boundary(registry, monkeypatch) -> None:
    from studio.backend.pytorch import handlers

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero deep inside")

    monkeypatch.setattr(handlers.data_lib, "load_data", boom)
    with pytest.raises(StudioError) as info:
        _train(registry)
    assert info.value.code == "train.failed"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.req("REQ-H15", "REQ-H01")
def test_save_load_and_export_report_paths_and_sizes(registry, trained, tmp_path) -> None:
    from studio.backend.core.requests import ExportRequest, LoadRequest, SaveRequest

    saved = registry.call("pytorch", "save", SaveRequest(model=trained.model, path=str(tmp_path / "m.safetensors"),
                                                         model_card=True))
    assert saved.size_bytes == (tmp_path / "m.safetensors").stat().st_size > 1000
    assert (tmp_path / "m.card.json").exists() and saved.extra["card_size_bytes"] > 100
    loaded = registry.call("pytorch", "load", LoadRequest(path=saved.path))
    assert loaded.size_bytes == saved.size_bytes and loaded.metadata["task"] == "classification"
    rows = [[0.25] * 64, [0.5] * 64]
    a = registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=rows))
    b = registry.call("pytorch", "predict", PredictRequest(model=loaded.model, inputs=rows))
    assert a.probabilities == b.probabilities
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        result = registry.call("pytorch", "export", ExportRequest(model=trained.model, path=str(tmp_path / name),
                                                                  format=fmt))
        assert result.size_bytes == (tmp_path / name).stat().st_size and result.max_abs_diff <= 1e-4
        assert name in result.loader_snippet


@pytest.mark.req("REQ-H15")
@pytest.mark.parametrize("name,code", [("missing/m.safetensors", "path.missing_folder"),
                                       ("m.txt", "path.bad_suffix"), ("", "path.invalid")])
def test_an_invalid_save_path_is_a_clear_error_and_writes_nothing(registry, trained, tmp_path, name, code) -> None:
    from studio.backend.core.requests import SaveRequest

    path = str(tmp_path / name) if name else ""
    with pytest.raises(StudioError) as info:
        registry.call("pytorch", "save", SaveRequest(model=trained.model, path=path))
    assert info.value.code == code
    assert list(tmp_path.iterdir()) == []


@pytest.mark.req("REQ-H15")
def test_an_unwritable_folder_is_a_clear_error(registry, trained, tmp_path) -> None:
    import os
    import pathlib

    from studio.backend.core.requests import SaveRequest

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # as root permissions do not bite; /sys refuses new files to everyone
    target = locked if not os.access(locked, os.W_OK) else pathlib.Path("/sys")
    try:
        with pytest.raises(StudioError) as info:
            registry.call("pytorch", "save", SaveRequest(model=trained.model, path=str(target / "m.safetensors")))
        assert info.value.code.endswith("unwritable") and str(target) in info.value.message
        assert not (target / "m.safetensors").exists()
    finally:
        locked.chmod(0o700)


@pytest.mark.req("REQ-H09", "REQ-T13")
def test_train_resumed_from_its_autosave_matches_an_uninterrupted_run(registry, tmp_path) -> None:
    from studio.backend.pytorch.model_store import store

    full = _train(registry, TrainRequest(config=TrainConfig(epochs=3)))
    ck = tmp_path / "run.safetensors"
    _train(registry, TrainRequest(config=TrainConfig(epochs=1), checkpoint_path=str(ck)))
    resumed = _train(registry, TrainRequest(config=TrainConfig(epochs=3), resume_from=str(ck)))
    assert resumed.steps == full.steps and len(resumed.history) == 3
    a, b = store.get(full.model).module.state_dict(), store.get(resumed.model).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == full.history


@pytest.mark.req("REQ-H05")
def test_a_finished_run_extends_by_more_epochs_keeping_optimizer_state(registry) -> None:
    from studio.backend.pytorch.model_store import store

    full = _train(registry, TrainRequest(config=TrainConfig(epochs=3)))
    first = _train(registry, TrainRequest(config=TrainConfig(epochs=2)))
    extended = _train(registry, TrainRequest(config=TrainConfig(epochs=3), continue_from=first.model))
    a, b = store.get(full.model).module.state_dict(), store.get(extended.model).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)



@pytest.mark.req("REQ-H01", "REQ-H10")
def test_release_frees_models_is_idempotent_and_a_released_handle_is_a_clear_error(registry) -> None:
    from studio.backend.pytorch.model_store import store

    a, b = _train(registry), _train(registry)
    request = ReleaseRequest(models=(a.model, a.model, "model-never"))
    assert ReleaseRequest.from_json(request.to_json()) == request
    result = registry.call("pytorch", "release", request)
    assert result == ReleaseResult(released=(a.model,), unknown=("model-never",))
    assert ReleaseResult.from_json(result.to_json()) == result
    assert a.model not in store and b.model in store
    with pytest.raises(ValidationError) as err:
        registry.call("pytorch", "evaluate", EvaluateRequest(model=a.model))
    assert err.value.code == "model.unknown_handle" and a.model in str(err.value) and b.model in str(err.value)
    assert registry.call("pytorch", "release", ReleaseRequest(models=(a.model,))).unknown == (a.model,)
    with pytest.raises(ValidationError) as err:  # a bare string is not a list of handles: nothing released
        registry.call("pytorch", "release", ReleaseRequest(models=b.model))  # type: ignore[arg-type]
    assert err.value.field == "models" and b.model in store
