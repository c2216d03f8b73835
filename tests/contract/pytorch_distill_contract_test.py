"""The ``distill`` handler seen from outside (REQ-H16..H20, REQ-H24).

Every call goes through the registry, as the window and the command line make it, with real
checkpoint files in temporary folders and tiny models on the built-in digits.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import threading

import pytest
import torch

from studio.backend.core.errors import DistillError, StudioError
from studio.backend.core.events import (
    EpochStats,
    GrammarChecker,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepStats,
)
from studio.backend.core.handler import RunControl
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    EvaluateRequest,
    ModelSpec,
    RuntimeConfig,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.results import DistillResult
from studio.backend.core.stats_delivery import EventStream
from studio.backend.pytorch import model_files
from studio.backend.pytorch.distill import file_sha256
from studio.backend.pytorch.model_store import store

STUDENT = ModelSpec(name="mlp", preset="tiny")
PAIR = (("hidden1", "hidden1"),)  # student 32 wide, teacher 128: a learned linear adapter
TERMS = {"hard_loss", "soft_loss", "feature_loss", "feature_loss/hidden1->hidden1", "agreement", "temperature",
         "hard_weight", "soft_weight", "feature_weight"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    """Module fixtures run before function-level ones: keep every run of this module on one thread, so runs
    compared bit for bit use the same reductions (and two slow cores stay shared with other tests)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def call(registry, request, **kwargs):
    return registry.call("pytorch", "distill", request, **kwargs)


def run(registry, request, control=None):
    stream = EventStream()
    result = call(registry, request, events=stream.emit, control=control)
    return result, stream.drain()


def train_and_save(registry, path: pathlib.Path, spec: ModelSpec, config: TrainConfig, data: DataSpec | None = None):
    result = registry.call("pytorch", "train", TrainRequest(data=data or DataSpec(), model=spec, config=config))
    registry.call("pytorch", "save", SaveRequest(model=result.model, path=str(path)))
    return result.model


@pytest.fixture(scope="module")
def teacher(registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    path = folder / "teacher.safetensors"
    handle = train_and_save(registry, path, ModelSpec("mlp", "small"), TrainConfig(epochs=6, lr=3e-3))
    return {"path": str(path), "handle": handle, "folder": folder}


def distill_request(teacher_ref: str, **changes) -> DistillRequest:
    base = {"teacher": teacher_ref, "student": STUDENT, "config": TrainConfig(epochs=2, batch_size=128)}
    base.update(changes)
    return DistillRequest(**base)


@pytest.fixture(scope="module")
def full(registry, teacher):
    """A distillation with a feature pair, a constant schedule and the baseline."""
    request = distill_request(teacher["path"], runtime=RuntimeConfig(seed=2),
                              distill=DistillConfig(temperature=3.0, hard_weight=0.5, soft_weight=1.5,
                                                    feature_weight=0.25, feature_pairs=PAIR, baseline=True))
    result, events = run(registry, request)
    return {"request": request, "result": result, "events": events}


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# == REQ-H16 =======================================================================================
@pytest.mark.req("REQ-H16")
def test_distill_returns_what_train_returns_plus_the_teachers_metrics(registry, teacher, full):
    result, events = full["result"], full["events"]
    assert isinstance(result, DistillResult) and DistillResult.from_json(result.to_json()) == result
    train = result.train
    assert train.status == "finished" and train.epochs_run == 2 and len(train.history) == 2
    assert train.final_metrics["val_accuracy"] > 0.3 and train.best_epoch in (0, 1)
    assert set(train.best_metrics) >= {"val_loss", "val_accuracy", "train_loss"}
    GrammarChecker.check(events)
    assert isinstance(events[0], RunStarted) and events[0].operation == "distill"
    assert isinstance(events[-1], RunFinished)
    assert [e.step for e in events if isinstance(e, StepStats)] == list(range(1, train.steps + 1))
    assert [e.epoch for e in events if isinstance(e, EpochStats)] == [0, 1]
    assert store.get(train.model).module is not None
    evaluated = registry.call("pytorch", "evaluate", EvaluateRequest(model=teacher["path"], split="val"))
    assert result.teacher_metrics == evaluated.metrics


# == REQ-H17 =======================================================================================
def renamed_teacher(source: str, path: pathlib.Path, **changes) -> str:
    tm = model_files.load_trained(source)
    model_files.save_trained(str(path), dataclasses.replace(tm, extra_metadata={}, **changes))
    return str(path)


@pytest.mark.req("REQ-H17")
@pytest.mark.parametrize(("case", "named"), [
    ("digits teacher, iris data", ("(1, 8, 8)", "(4,)")),
    ("reordered class names", ("'9', '8'", "'0', '1'")),
    ("regression teacher", ("regression", "classification")),
])
def test_a_teacher_that_does_not_fit_fails_before_the_first_step_naming_both_sides(registry, teacher, tmp_path,
                                                                                   case, named):
    data = DataSpec()
    if case == "digits teacher, iris data":
        ref, data = teacher["path"], DataSpec(name="iris")
    elif case == "reordered class names":
        ref = renamed_teacher(teacher["path"], tmp_path / "reordered.safetensors",
                              class_names=tuple(str(d) for d in range(9, -1, -1)))
    else:
        ref = renamed_teacher(teacher["path"], tmp_path / "regression.safetensors", task="regression")
    checkpoint = tmp_path / "run" / "ckpt.safetensors"
    checkpoint.parent.mkdir()
    stream = EventStream()
    with pytest.raises(DistillError) as info:
        call(registry, distill_request(ref, data=data, checkpoint_path=str(checkpoint)), events=stream.emit)
    assert info.value.code == "distill.incompatible"
    assert all(text in info.value.message for text in named), info.value.message
    assert not any(isinstance(e, StepStats) for e in stream.drain())
    assert os.listdir(checkpoint.parent) == []


# == REQ-H18 =======================================================================================
@pytest.mark.req("REQ-H18")
def test_every_step_and_epoch_carries_the_distillation_terms(full):
    events = full["events"]
    GrammarChecker.check(events)
    steps = [e for e in events if isinstance(e, StepStats)]
    epochs = [e for e in events if isinstance(e, EpochStats)]
    assert steps and epochs
    for e in steps:
        m = e.metrics
        assert TERMS <= set(m)
        weighted = m["hard_weight"] * m["hard_loss"] + m["soft_weight"] * m["soft_loss"] + \
            m["feature_weight"] * m["feature_loss"]
        assert abs(e.loss - weighted) < 1e-6 * max(1.0, abs(e.loss))
        assert (m["temperature"], m["hard_weight"], m["soft_weight"], m["feature_weight"]) == (3.0, 0.5, 1.5, 0.25)
        assert 0.0 <= m["agreement"] <= 1.0
    for e in epochs:
        assert TERMS <= set(e.train) and TERMS <= set(e.val)
        t = e.train
        assert abs(t["loss"] - (0.5 * t["hard_loss"] + 1.5 * t["soft_loss"] + 0.25 * t["feature_loss"])) < 1e-6
        assert e.val["loss"] == pytest.approx(e.val["hard_loss"], abs=1e-6)  # validation loss: the task loss
        assert {"baseline_val_loss", "baseline_val_accuracy"} <= set(e.extra)


# == REQ-H19 =======================================================================================
@pytest.fixture(scope="module")
def bn_teacher(registry, tmp_path_factory):
    path = tmp_path_factory.mktemp("bn") / "bn-teacher.safetensors"
    spec = ModelSpec("mlp", hparams={"hidden": [64], "norm": "batch", "dropout": 0.2})
    handle = train_and_save(registry, path, spec, TrainConfig(epochs=3, lr=3e-3))
    return {"path": str(path), "handle": handle}


def _stat(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return file_sha256(path), st.st_mtime_ns, st.st_size


@pytest.mark.req("REQ-H19")
@pytest.mark.parametrize("ending", ["finished", "cancelled", "failed"])
@pytest.mark.parametrize("given_as", ["file", "handle"])
def test_the_teacher_is_never_changed_whatever_the_run_ends_with(registry, bn_teacher, ending, given_as):
    ref = bn_teacher["path"] if given_as == "file" else bn_teacher["handle"]
    held = store.get(bn_teacher["handle"]).module
    file_before, memory_before = _stat(bn_teacher["path"]), state(held)
    flags_before = ([p.requires_grad for p in held.parameters()], held.training)
    control = RunControl()

    def sink(event):
        if isinstance(event, StepStats) and event.step == 3:
            if ending == "cancelled":
                control.cancel()
            elif ending == "failed":
                raise RuntimeError("the window went away")

    request = distill_request(ref, distill=DistillConfig(cache_teacher=False))
    if ending == "failed":
        with pytest.raises(StudioError):
            call(registry, request, events=sink, control=control)
    else:
        assert call(registry, request, events=sink, control=control).train.status == ending
    assert _stat(bn_teacher["path"]) == file_before
    assert_equal_states(state(held), memory_before)  # running means, variances, num_batches_tracked included
    assert ([p.requires_grad for p in held.parameters()], held.training) == flags_before


@pytest.mark.req("REQ-H19")
def test_a_checkpoint_path_on_the_teacher_file_is_refused_before_anything_is_written(registry, bn_teacher):
    before = _stat(bn_teacher["path"])
    with pytest.raises(StudioError) as info:
        call(registry, distill_request(bn_teacher["path"], checkpoint_path=bn_teacher["path"]))
    assert info.value.field == "checkpoint_path" and _stat(bn_teacher["path"]) == before


# == REQ-H20 =======================================================================================
@pytest.mark.req("REQ-H20")
def test_cancel_stops_within_one_step_with_a_cancelled_result_and_no_partial_file(registry, teacher, tmp_path):
    control = RunControl()
    seen = []

    def sink(event):
        seen.append(event)
        if isinstance(event, StepStats) and event.step == 3:
            control.cancel()

    checkpoint = tmp_path / "ckpt.safetensors"
    request = distill_request(teacher["path"], config=TrainConfig(epochs=50, batch_size=128),
                              checkpoint_path=str(checkpoint), distill=DistillConfig(feature_pairs=PAIR,
                                                                                     feature_weight=0.1))
    result = call(registry, request, events=sink, control=control)
    assert result.train.status == "cancelled" and result.train.steps == 3
    assert isinstance(seen[-1], RunCancelled)
    GrammarChecker.check(seen)
    assert os.listdir(tmp_path) == []  # no epoch completed: nothing written, no temporary left behind


@pytest.mark.req("REQ-H20")
def test_a_paused_and_resumed_distillation_is_bit_identical_to_an_uninterrupted_one(registry, teacher, tmp_path):
    def request(name: str) -> DistillRequest:
        return distill_request(teacher["path"], checkpoint_path=str(tmp_path / name),
                               distill=DistillConfig(feature_pairs=PAIR, feature_weight=0.1, baseline=True))

    plain = call(registry, request("plain.safetensors"))
    control = RunControl()
    paused_at = []

    def sink(event):
        if isinstance(event, StepStats) and event.step == 5:
            control.pause()
            paused_at.append(event.step)
            threading.Timer(0.2, control.resume).start()

    resumed = call(registry, request("paused.safetensors"), events=sink, control=control)
    assert paused_at == [5] and resumed.train.history == plain.train.history
    assert_equal_states(state(store.get(resumed.train.model).module), state(store.get(plain.train.model).module))
    assert_equal_states(state(store.get(resumed.baseline.model).module),
                        state(store.get(plain.baseline.model).module))
    from safetensors import safe_open

    def adapters(name: str) -> dict[str, torch.Tensor]:
        with safe_open(str(tmp_path / name), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys() if k.startswith("state/adapters/")}

    assert adapters("plain.safetensors") and \
        all(torch.equal(a, b) for a, b in zip(adapters("plain.safetensors").values(),
                                              adapters("paused.safetensors").values()))


@pytest.mark.req("REQ-H20")
def test_a_failed_run_reports_run_failed_and_a_clear_error(registry, teacher):
    seen = []

    def sink(event):
        seen.append(event)
        if isinstance(event, StepStats) and event.step == 2:
            raise ValueError("consumer broke")

    with pytest.raises(StudioError) as info:
        call(registry, distill_request(teacher["path"]), events=sink)
    assert isinstance(seen[-1], RunFailed) and info.value.code == "train.failed"
    assert isinstance(info.value.__cause__, ValueError)


# == REQ-H24 =======================================================================================
@pytest.mark.req("REQ-H24")
def test_the_result_compares_teacher_student_and_baseline_on_the_same_validation_data(registry, teacher, full,
                                                                                     tmp_path):
    result = full["result"]
    rows = {r["role"]: r for r in result.comparison}
    assert list(rows) == ["teacher", "student", "baseline"]
    refs = {"teacher": teacher["path"], "student": result.train.model, "baseline": result.baseline.model}
    for role, ref in refs.items():
        evaluated = registry.call("pytorch", "evaluate", EvaluateRequest(model=ref, split="val"))
        assert rows[role]["accuracy"] == evaluated.metrics["accuracy"], role
        assert rows[role]["latency_ms"] > 0
        module = store.get(ref).module if role != "teacher" else model_files.load_trained(ref).module
        assert rows[role]["params"] == sum(p.numel() for p in module.parameters())
    assert rows["teacher"]["size_bytes"] == os.path.getsize(teacher["path"])
    for role in ("student", "baseline"):
        saved = registry.call("pytorch", "save", SaveRequest(model=refs[role], path=str(tmp_path / f"{role}.safetensors")))
        assert rows[role]["size_bytes"] == saved.size_bytes == os.path.getsize(saved.path)
    t, s, b = (rows[r]["accuracy"] for r in ("teacher", "student", "baseline"))
    assert result.gap_closed == (pytest.approx((s - b) / (t - b)) if t > b else None)
    # the baseline started from the student's initial weights: it ends where plain training from them ends
    plain = registry.call("pytorch", "train", TrainRequest(model=STUDENT, config=full["request"].config,
                                                           runtime=full["request"].runtime))
    assert_equal_states(state(store.get(result.baseline.model).module), state(store.get(plain.model).module))


@pytest.mark.req("REQ-H24")
def test_without_the_baseline_there_are_two_rows_and_no_gap(registry, teacher):
    result = call(registry, distill_request(teacher["path"], config=TrainConfig(epochs=1, batch_size=128)))
    assert [r["role"] for r in result.comparison] == ["teacher", "student"]
    assert result.gap_closed is None and result.baseline is None
