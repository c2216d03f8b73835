"""Knowledge distillation (PT-DISTILL-001, REQ-KD01..KD26 and KD06a).

Loss values are checked against float64 NumPy computations written out here from the formulas of
the spec (never by calling the code under test). Runs use the built-in digits with tiny models and
two or three epochs; exactness claims (plain training, resume, the baseline) use ``torch.equal`` on
every tensor. Teachers are trained once per module and saved as real checkpoint files.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from studio.backend.core.errors import DistillError, StudioError, ValidationError
from studio.backend.core.events import EpochStats, GrammarChecker, RunWarning, StepStats
from studio.backend.core.handler import RunControl
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    ExportRequest,
    LoadRequest,
    ModelSpec,
    PredictRequest,
    RuntimeConfig,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.stats_delivery import EventStream
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import handlers, model_files
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch import serialization as ser
from studio.backend.pytorch.distill import (
    Distillation,
    DistillObjective,
    FrozenTeacher,
    TeacherCache,
    TeacherEnsemble,
    TemperatureWarning,
    attention_transfer_loss,
    data_fingerprint,
    debug_checks,
    distill,
    dkd_loss,
    dkd_terms,
    file_sha256,
    get_loss,
    hint_cosine_loss,
    hint_mse_loss,
    kd_loss,
    kl_from_log_probs,
    list_losses,
    make_adapter,
    regression_distill_loss,
)
from studio.backend.pytorch.distill import handler as distill_handler
from studio.backend.pytorch.distill.schedules import ScheduledValue
from studio.backend.pytorch.inference import run_model
from studio.backend.pytorch.model_store import TrainedModel, store
from studio.backend.pytorch.trainer import TaskLoss, Trainer

STUDENT = ModelSpec(name="mlp", preset="tiny")
CFG = TrainConfig(epochs=2, batch_size=64)
DISTILL_DIR = pathlib.Path(__file__).resolve().parents[2] / "studio" / "backend" / "pytorch" / "distill"


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    """Module fixtures run before function-level ones: keep every run of this module on one thread, so runs
    compared bit for bit use the same reductions (and two slow cores stay shared with other tests)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _strict_log_probs():
    previous = debug_checks(True)
    yield
    debug_checks(previous)


# -- hand computations (float64 NumPy, straight from the formulas) --------------------------------
def np_log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_kl(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """(1/B) sum_b sum_c p[b,c] (log p[b,c] - log q[b,c])."""
    return float((np.exp(log_p) * (log_p - log_q)).sum() / log_p.shape[0])


def np_kd(s: np.ndarray, t: np.ndarray, T: float) -> float:
    return T * T * np_kl(np_log_softmax(np.asarray(t) / T), np_log_softmax(np.asarray(s) / T))


S45 = np.array([[1.0, -0.5, 2.0, 0.3, -1.2],
                [0.2, 0.1, -0.3, 1.5, 0.0],
                [-2.0, 1.0, 0.5, 0.5, 3.0],
                [0.0, 0.0, 0.0, 0.0, 1.0]])
T45 = np.array([[2.5, -1.0, 1.0, 0.0, -2.0],
                [0.0, 0.5, 0.5, 2.0, -0.5],
                [-1.0, 2.0, 0.0, 1.0, 1.5],
                [1.0, -1.0, 0.5, 0.0, 0.0]])
Y4 = np.array([2, 3, 4, 0])


def t32(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


# -- runs -------------------------------------------------------------------------------------------
def train_and_save(path: pathlib.Path, spec: ModelSpec, config: TrainConfig, data: DataSpec | None = None) -> str:
    result = handlers.train(TrainRequest(data=data or DataSpec(), model=spec, config=config))
    handlers.save(SaveRequest(model=result.model, path=str(path)))
    return result.model


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, str]:
    """Two trained digits teachers as checkpoint files (and their handles)."""
    folder = tmp_path_factory.mktemp("teachers")
    mlp = train_and_save(folder / "mlp.safetensors", ModelSpec("mlp", "small"), TrainConfig(epochs=6, lr=3e-3))
    lenet = train_and_save(folder / "lenet.safetensors", ModelSpec("lenet", "tiny"), TrainConfig(epochs=6, lr=5e-3))
    return {"mlp": str(folder / "mlp.safetensors"), "lenet": str(folder / "lenet.safetensors"),
            "mlp_handle": mlp, "lenet_handle": lenet}


def run(request: DistillRequest, control: RunControl | None = None):
    stream = EventStream()
    result = distill(request, events=stream.emit, control=control)
    return result, stream.drain()


def request(teacher: str, **changes) -> DistillRequest:
    base = {"teacher": teacher, "student": STUDENT, "config": CFG}
    base.update(changes)
    return DistillRequest(**base)


def warnings_of(events, code: str) -> list[RunWarning]:
    return [e for e in events if isinstance(e, RunWarning) and e.code == code]


def module_of(handle: str) -> nn.Module:
    return store.get(handle).module


def assert_state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def digits_tensors(val_fraction: float = 0.2):
    bundle = data_lib.load_data(DataSpec())
    splits = data_lib.split_data(bundle, val_fraction, 0.0, 0)
    prep = data_lib.fit_preprocessing(bundle, splits.train)
    train = (prep.apply(bundle.x[splits.train]), bundle.y[splits.train])
    val = (prep.apply(bundle.x[splits.val]), bundle.y[splits.val])
    return train, val


def plug_in(teacher: nn.Module, *, cache: bool, val=None, **weights) -> Distillation:
    frozen = FrozenTeacher(teacher)
    objective = DistillObjective(TaskLoss("classification", CFG), "kd", task="classification", **weights)
    caches = None
    if cache:
        caches = [TeacherCache("sha", "data")]
    return Distillation(objective, TeacherEnsemble([frozen]), caches=caches, val=val)


# == REQ-KD01 ======================================================================================
@pytest.mark.req("REQ-KD01")
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_kd_loss_equals_the_written_out_sum_at_each_temperature(T):
    value = kd_loss(t32(S45), t32(T45), temperature=T)
    assert abs(float(value) - np_kd(S45, T45, T)) < 1e-6


@pytest.mark.req("REQ-KD01")
def test_kd_loss_of_identical_logits_is_zero():
    z = torch.randn(16, 7, generator=torch.Generator().manual_seed(3)) * 5
    assert float(kd_loss(z, z.clone(), temperature=3.0)) == 0.0


# == REQ-KD02 ======================================================================================
@pytest.mark.req("REQ-KD02")
def test_the_total_is_the_weighted_sum_of_hard_soft_and_feature_terms():
    s, t, y = t32(S45), t32(T45), torch.tensor(Y4)
    fs, ft = torch.randn(4, 6), torch.randn(4, 6)
    objective = DistillObjective(lambda o, target: F.cross_entropy(o, target), "kd", task="classification",
                                 hard_weight=0.3, soft_weight=0.7, feature_weight=0.5, temperature=2.0,
                                 feature_pairs=[("a", "b")])
    terms = objective(s, t, y, student_features={"a": fs}, teacher_features={"b": ft})
    hard = F.cross_entropy(s, torch.tensor(Y4))
    expected = 0.3 * float(hard) + 0.7 * np_kd(S45, T45, 2.0) + 0.5 * float(((fs - ft) ** 2).mean())
    assert abs(float(terms.total) - expected) < 1e-6
    assert abs(float(terms.hard) - float(hard)) < 1e-6 and abs(float(terms.soft) - np_kd(S45, T45, 2.0)) < 1e-6


@pytest.mark.req("REQ-KD02")
@pytest.mark.parametrize(("weights", "field"), [
    ({"hard_weight": -1.0}, "distill.hard_weight"),
    ({"soft_weight": math.nan}, "distill.soft_weight"),
    ({"feature_weight": math.inf}, "distill.feature_weight"),
    ({"hard_weight": 0.0, "soft_weight": 0.0}, "distill.soft_weight"),
    ({"feature_weight": 1.0}, "distill.feature_pairs"),
    ({"feature_pairs": [("hidden1", "fc1")]}, "distill.feature_weight"),
])
def test_invalid_weights_are_refused_naming_the_field(weights, field):
    with pytest.raises(ValidationError) as info:
        DistillObjective(F.cross_entropy, "kd", task="classification", **weights)
    assert info.value.code == "request.invalid" and info.value.field == field


@pytest.mark.req("REQ-KD02")
def test_the_handler_refuses_a_negative_weight_before_touching_the_teacher(tmp_path):
    missing = str(tmp_path / "nothing-here.safetensors")
    with pytest.raises(ValidationError) as info:
        distill(request(missing, distill=DistillConfig(soft_weight=-0.5)))
    assert info.value.field == "distill.soft_weight"


# == REQ-KD03 ======================================================================================
@pytest.fixture(scope="module")
def plain_run():
    """A plain `train` of the student, seed 3: the reference for KD03 and KD22."""
    result = handlers.train(TrainRequest(model=STUDENT, config=CFG, runtime=RuntimeConfig(seed=3)))
    return result, {k: v.clone() for k, v in module_of(result.model).state_dict().items()}


@pytest.mark.req("REQ-KD03")
def test_no_teacher_signal_gives_exactly_the_weights_of_plain_training(teachers, plain_run):
    plain, weights = plain_run
    result, _ = run(request(teachers["mlp"], runtime=RuntimeConfig(seed=3),
                            distill=DistillConfig(hard_weight=1.0, soft_weight=0.0)))
    assert_state_equal(module_of(result.train.model).state_dict(), weights)
    for mine, theirs in zip(result.train.history, plain.history, strict=True):
        assert (mine["train_loss"], mine["val_loss"]) == (theirs["train_loss"], theirs["val_loss"])


# == REQ-KD04 / KD05 ===============================================================================
@pytest.mark.req("REQ-KD04")
def test_the_frozen_teacher_builds_no_graph_and_gets_no_gradient():
    teacher = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    frozen = FrozenTeacher(teacher)
    assert all(p.requires_grad is False for p in teacher.parameters())
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append(torch.is_inference_mode_enabled()))
    x = torch.randn(5, 4)
    out = frozen(x)
    assert seen == [True]
    assert out.grad_fn is None and not out.requires_grad and not out.is_inference()
    student = nn.Linear(4, 3)
    kd_loss(student(x), out, temperature=2.0).backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def bn_dropout_teacher() -> nn.Module:
    module = model_lib.build_model(ModelSpec("mlp", hparams={"hidden": [32], "norm": "batch", "dropout": 0.3}),
                                   (1, 8, 8), 10, seed=1)
    x, y = digits_tensors()[0]
    Trainer(module, "classification", TrainConfig(epochs=1), seed=1).fit((x, y))
    return module


@pytest.mark.req("REQ-KD04", "REQ-KD05")
def test_the_teacher_runs_in_eval_and_inference_mode_at_every_forward_of_a_run():
    teacher = bn_dropout_teacher()
    buffers = {k: v.clone() for k, v in teacher.state_dict().items()}
    calls = []
    teacher.register_forward_hook(lambda m, i, o: calls.append((m.training, torch.is_inference_mode_enabled())))
    train, val = digits_tensors()
    student = model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0)
    objective = plug_in(teacher, cache=False, val=val)
    trainer = Trainer(student, "classification", TrainConfig(epochs=2, batch_size=128), objective=objective)
    objective.teachers.train(True)  # a caller asking for train mode changes nothing
    trainer.fit(train, val)
    steps = trainer.global_step
    assert len(calls) >= steps + 1  # every step, plus the validation pass
    assert set(calls) == {(False, True)}
    assert_state_equal(teacher.state_dict(), buffers)  # running means, variances, num_batches_tracked
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


@pytest.mark.req("REQ-KD05")
def test_train_mode_requests_keep_the_teacher_in_eval_mode():
    teacher = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    frozen = FrozenTeacher(teacher)
    frozen.train(True)
    assert frozen.training is False and teacher.training is False
    teacher.train()  # even behind its back: the next forward runs in eval mode
    a, b = frozen(torch.ones(3, 4)), frozen(torch.ones(3, 4))
    assert torch.equal(a, b) and teacher.training is False


# == REQ-KD06 / KD06a ==============================================================================
@pytest.mark.req("REQ-KD06")
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("hard", [0.0, 1.0])
def test_the_soft_term_carries_t_squared_in_every_mode(T, hard):
    s, t, y = t32(S45), t32(T45), torch.tensor(Y4)
    objective = DistillObjective(F.cross_entropy, "kd", task="classification", hard_weight=hard, soft_weight=0.5,
                                 temperature=T)
    terms = objective(s, t, y)
    reference = 0.5 * T ** 2 * float(F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1),
                                             reduction="batchmean", log_target=True))
    assert abs(float(terms.total) - hard * float(F.cross_entropy(s, y)) - reference) < 1e-6
    assert abs(0.5 * float(terms.soft) - reference) < 1e-6


def grad_norm(s: torch.Tensor, t: torch.Tensor, T: float, squared: bool) -> float:
    s = s.clone().requires_grad_()
    loss = kd_loss(s, t, temperature=T)
    (loss if squared else loss / T ** 2).backward()
    return float(s.grad.norm())


@pytest.mark.req("REQ-KD06a")
def test_the_gradient_keeps_its_scale_across_temperatures_thanks_to_t_squared():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g)
    ref = grad_norm(s, t, 8.0, True)
    ratios = [grad_norm(s, t, T, True) / ref for T in (1.0, 2.0, 4.0, 8.0)]
    assert all(0.8 <= r <= 1.25 for r in ratios), ratios
    # without the factor the ratios grow like T^2 and fall outside the interval: a missing factor cannot pass
    bare = [grad_norm(s, t, T, False) / grad_norm(s, t, 8.0, False) for T in (1.0, 2.0, 4.0)]
    assert all(not 0.8 <= r <= 1.25 for r in bare)
    assert all(0.5 * (8 / T) ** 2 < r < 2 * (8 / T) ** 2 for r, T in zip(bare, (1.0, 2.0, 4.0)))


# == REQ-KD07 ======================================================================================
@pytest.mark.req("REQ-KD07")
def test_the_kl_is_teacher_given_student_not_the_reverse():
    p_teacher = np.array([[0.90, 0.05, 0.05]])
    q_student = np.array([[0.20, 0.50, 0.30]])
    forward = np_kl(np.log(p_teacher), np.log(q_student))
    reverse = np_kl(np.log(q_student), np.log(p_teacher))
    assert abs(forward - reverse) > 0.1
    value = float(kd_loss(t32(np.log(q_student)), t32(np.log(p_teacher)), temperature=1.0))
    assert abs(value - forward) < 1e-6 and abs(value - reverse) > 0.1


@pytest.mark.req("REQ-KD07")
def test_probabilities_or_logits_passed_as_log_probabilities_are_refused():
    log_p = F.log_softmax(t32(T45), 1)
    with pytest.raises(ValueError, match="log-probabilities"):
        kl_from_log_probs(log_p.exp(), log_p)  # probabilities as the student's input
    with pytest.raises(ValueError, match="log-probabilities"):
        kl_from_log_probs(log_p, t32(T45))  # logits as the teacher's target
    assert float(kl_from_log_probs(log_p, log_p)) == 0.0


# == REQ-KD08 ======================================================================================
@pytest.mark.req("REQ-KD08")
def test_extreme_logits_at_low_temperature_give_finite_losses_and_gradients():
    g = torch.Generator().manual_seed(1)
    sign = lambda: torch.where(torch.rand(8, 10, generator=g) < 0.5, -1.0, 1.0)  # noqa: E731
    s, t1, t2 = 1e4 * sign(), 1e4 * sign(), 1e4 * sign()
    y = torch.randint(0, 10, (8,), generator=g)
    ensemble = TeacherEnsemble([FrozenTeacher(nn.Identity()), FrozenTeacher(nn.Identity())], [0.3, 0.7])
    for make in (lambda x: kd_loss(x, t1, temperature=0.5, warn=False),
                 lambda x: dkd_loss(x, t1, y, temperature=0.5, warn=False),
                 lambda x: kd_loss(x, ensemble.combine([t1, t2], 0.5), temperature=0.5, warn=False)):
        x = s.clone().requires_grad_()
        loss = make(x)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.req("REQ-KD08")
def test_no_distillation_code_takes_the_log_of_a_softmax():
    pattern = re.compile(r"log\(\s*(torch\.|F\.)?softmax\(|\.softmax\([^)]*\)\s*\.log\(|log\(\s*\w+\.softmax\(")
    offenders = [f"{p.name}:{i}" for p in DISTILL_DIR.glob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


# == REQ-KD09 ======================================================================================
@pytest.mark.req("REQ-KD09")
@pytest.mark.parametrize("T", [0.0, -1.0, math.nan, math.inf])
def test_a_non_positive_or_non_finite_temperature_is_a_clear_error(T, tmp_path):
    with pytest.raises(ValidationError) as info:
        distill(request(str(tmp_path / "t.safetensors"), distill=DistillConfig(temperature=T)))
    assert info.value.field == "distill.temperature" and "above zero" in info.value.message
    with pytest.raises(ValidationError) as direct:
        kd_loss(t32(S45), t32(T45), temperature=T)
    assert direct.value.field == "distill.temperature"


@pytest.mark.req("REQ-KD09")
@pytest.mark.parametrize(("T", "expected"), [(0.5, 1), (40.0, 1), (4.0, 0)])
def test_unusual_temperatures_run_with_exactly_one_warning(teachers, T, expected):
    config = TrainConfig(epochs=1, batch_size=128)
    result, events = run(request(teachers["mlp"], config=config, distill=DistillConfig(temperature=T)))
    assert result.train.status == "finished"
    assert len(warnings_of(events, "distill.temperature_unusual")) == expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kd_loss(t32(S45), t32(T45), temperature=T)
    assert len([w for w in caught if issubclass(w.category, TemperatureWarning)]) == expected


# == REQ-KD10 ======================================================================================
@pytest.mark.req("REQ-KD10")
def test_schedules_follow_their_closed_forms():
    constant = ScheduledValue("constant", 2.0)
    step = ScheduledValue("step", 4.0, unit="epoch", step_size=3, gamma=0.5)
    linear = ScheduledValue("linear", 1.0, 5.0, length=4)
    cosine = ScheduledValue("cosine", 4.0, 1.0, length=10)
    warm = ScheduledValue("constant", 1.0, warmup=4)
    for t in range(12):
        assert constant.value(t, 0) == 2.0
        assert step.value(0, t) == pytest.approx(4.0 * 0.5 ** (t // 3), abs=1e-12)
        assert linear.value(t, 0) == pytest.approx(1.0 + 4.0 * min(t / 4, 1.0), abs=1e-12)
        assert cosine.value(t, 0) == pytest.approx(1.0 + 3.0 * (1 + math.cos(math.pi * min(t / 10, 1.0))) / 2,
                                                   abs=1e-12)
        assert warm.value(t, 0) == pytest.approx(min(t / 4, 1.0), abs=1e-12)


@pytest.mark.req("REQ-KD10")
def test_the_values_in_force_are_reported_at_every_step(teachers):
    schedules = {"temperature": {"kind": "cosine", "start": 6.0, "end": 2.0, "length": 20},
                 "soft_weight": {"kind": "constant", "warmup": 10}}
    config = TrainConfig(epochs=2, batch_size=128)
    _, events = run(request(teachers["mlp"], config=config, distill=DistillConfig(schedules=schedules)))
    steps = [e for e in events if isinstance(e, StepStats)]
    assert len(steps) == 2 * 12
    for e in steps:
        k = e.step - 1
        assert e.metrics["temperature"] == pytest.approx(2.0 + 4.0 * (1 + math.cos(math.pi * min(k / 20, 1))) / 2)
        assert e.metrics["soft_weight"] == pytest.approx(min(k / 10, 1.0))
        assert e.metrics["hard_weight"] == 1.0


@pytest.mark.req("REQ-KD10")
def test_a_temperature_schedule_is_checked_at_every_value_it_takes(teachers):
    bad = {"temperature": {"kind": "linear", "start": 4.0, "end": 0.0}}
    with pytest.raises(ValidationError) as info:
        distill(request(teachers["mlp"], distill=DistillConfig(schedules=bad)))
    assert info.value.field == "distill.temperature"


# -- the interrupted-and-resumed run shared by KD10, KD15 and KD24 -------------------------------
RESUME_CONFIG = TrainConfig(epochs=3, batch_size=128)  # 12 steps an epoch on digits


def resume_request(teacher: str, checkpoint: pathlib.Path, resume: pathlib.Path | None = None) -> DistillRequest:
    return request(teacher, config=RESUME_CONFIG, runtime=RuntimeConfig(seed=5),
                   checkpoint_path=str(checkpoint), resume_from=str(resume) if resume else None,
                   distill=DistillConfig(baseline=True, feature_pairs=(("hidden1", "conv1"),), feature_weight=0.2,
                                         schedules={"soft_weight": {"kind": "constant", "warmup": 20}}))


@pytest.fixture(scope="module")
def resumed(teachers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    teacher = folder / "teacher.safetensors"
    shutil.copy(teachers["lenet"], teacher)
    whole, whole_events = run(resume_request(str(teacher), folder / "whole.safetensors"))
    control = RunControl()
    stream = EventStream()

    def sink(event):  # stop after the first epoch: mid-warm-up (20 steps), its checkpoint written
        stream.emit(event)
        if isinstance(event, EpochStats) and event.epoch == 0:
            control.cancel()

    first = distill(resume_request(str(teacher), folder / "part.safetensors"), events=sink, control=control)
    after_first = folder / "after-first.safetensors"
    shutil.copy(folder / "part.safetensors", after_first)
    second, second_events = run(resume_request(str(teacher), folder / "part.safetensors", folder / "part.safetensors"))
    return {"teacher": teacher, "whole": whole, "whole_events": whole_events, "first": first,
            "first_events": stream.drain(), "second": second, "second_events": second_events,
            "whole_ckpt": folder / "whole.safetensors", "part_ckpt": folder / "part.safetensors",
            "after_first": after_first, "folder": folder}


def tensors_of(path: pathlib.Path, prefix: str = "") -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}


@pytest.mark.req("REQ-KD10")
def test_a_run_resumed_mid_warm_up_reports_the_same_values_from_the_resume_step_on(resumed):
    assert resumed["first"].train.status == "cancelled" and resumed["first"].train.steps == 12
    whole = {e.step: e.metrics for e in resumed["whole_events"] if isinstance(e, StepStats)}
    later = [e for e in resumed["second_events"] if isinstance(e, StepStats)]
    assert [e.step for e in later] == list(range(13, 37))
    for e in later:
        assert e.metrics["soft_weight"] == whole[e.step]["soft_weight"] == pytest.approx(min((e.step - 1) / 20, 1))
        assert e.metrics == whole[e.step]


# == REQ-KD11 ======================================================================================
@pytest.mark.req("REQ-KD11")
def test_regression_distillation_is_mse_l1_or_huber_without_temperature():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(6, 2, generator=g) * 3, torch.randn(6, 2, generator=g) * 3
    assert float(regression_distill_loss(s, t, kind="mse")) == pytest.approx(float(F.mse_loss(s, t)), abs=1e-6)
    assert float(regression_distill_loss(s, t, kind="l1")) == pytest.approx(float(F.l1_loss(s, t)), abs=1e-6)
    assert float(regression_distill_loss(s, t, kind="huber", delta=0.7)) == pytest.approx(
        float(F.huber_loss(s, t, delta=0.7)), abs=1e-6)
    r = (s - t).double().numpy()
    huber = np.where(np.abs(r) <= 1.0, 0.5 * r ** 2, 1.0 * (np.abs(r) - 0.5)).mean()
    assert float(regression_distill_loss(s, t, kind="huber")) == pytest.approx(huber, abs=1e-6)
    softs = [float(DistillObjective(F.mse_loss, "kd", task="regression", temperature=T)(s, t, t).soft)
             for T in (0.5, 4.0, None)]
    assert softs[0] == softs[1] == softs[2]


@pytest.mark.req("REQ-KD11")
def test_a_temperature_given_to_a_regression_teacher_is_ignored_with_one_warning(tmp_path):
    data = DataSpec(name="sine", options={"samples": 400, "window": 8})
    path = tmp_path / "sine.safetensors"
    train_and_save(path, ModelSpec("mlp", "tiny"), TrainConfig(epochs=2), data)
    config = TrainConfig(epochs=1, batch_size=64)
    given, events = run(request(str(path), data=data, config=config, distill=DistillConfig(temperature=2.0)))
    assert len(warnings_of(events, "distill.temperature_ignored")) == 1
    default, quiet = run(request(str(path), data=data, config=config))
    assert warnings_of(quiet, "distill.temperature_ignored") == []
    assert "train_temperature" not in given.train.history[0]
    assert math.isfinite(given.train.final_metrics["train_soft_loss"])
    assert given.train.final_metrics["train_loss"] == default.train.final_metrics["train_loss"]
    assert {r["role"] for r in given.comparison} == {"teacher", "student"} and "mse" in given.comparison[0]


# == REQ-KD12 ======================================================================================
@pytest.mark.req("REQ-KD12")
def test_hint_losses_equal_their_formulas():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    na, nb = a.double().numpy().reshape(3, -1), b.double().numpy().reshape(3, -1)
    assert float(hint_mse_loss(a, b)) == pytest.approx(((na - nb) ** 2).mean(), abs=1e-6)
    cos = (na * nb).sum(1) / (np.linalg.norm(na, axis=1) * np.linalg.norm(nb, axis=1))
    assert float(hint_cosine_loss(a, b)) == pytest.approx((1 - cos).mean(), abs=1e-6)
    assert float(hint_cosine_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.req("REQ-KD12")
def test_adapters_map_student_shapes_to_teacher_shapes():
    linear = make_adapter((64,), (128,))
    assert isinstance(linear, nn.Linear) and linear(torch.randn(2, 64)).shape == (2, 128)
    conv = make_adapter((16, 8, 8), (32, 4, 4))
    assert conv(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in conv.modules())
    assert isinstance(make_adapter((5, 3), (5, 3)), nn.Identity)
    assert make_adapter((16, 4, 4), (10,))(torch.randn(2, 16, 4, 4)).shape == (2, 10)


@pytest.mark.req("REQ-KD12")
@pytest.mark.parametrize(("pair", "side", "listed"), [(("hiden1", "fc1"), "student", "hidden1"),
                                                      (("hidden1", "fc9"), "teacher", "conv1")])
def test_a_misspelt_feature_layer_is_a_clear_error_listing_the_available_ones(teachers, pair, side, listed):
    with pytest.raises(DistillError) as info:
        distill(request(teachers["lenet"], distill=DistillConfig(feature_pairs=(pair,), feature_weight=1.0)))
    assert info.value.code == "distill.unknown_layer" and side in info.value.message
    assert listed in info.value.message and listed in info.value.value["available"]


# == REQ-KD13 ======================================================================================
def np_attention(f: np.ndarray) -> np.ndarray:
    q = (np.abs(f) ** 2).mean(axis=1).reshape(f.shape[0], -1)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


@pytest.mark.req("REQ-KD13")
def test_attention_transfer_equals_a_hand_computation_and_ignores_scale_and_channels():
    g = torch.Generator().manual_seed(5)
    fs, ft = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 6, 5, 5, generator=g)
    expected = np.linalg.norm(np_attention(fs.double().numpy()) - np_attention(ft.double().numpy()), axis=1).mean()
    assert float(attention_transfer_loss(fs, ft)) == pytest.approx(expected, abs=1e-6)
    assert float(attention_transfer_loss(ft, ft.clone())) == pytest.approx(0.0, abs=1e-7)
    assert float(attention_transfer_loss(2.5 * ft, ft)) == pytest.approx(0.0, abs=1e-6)
    pooled = F.adaptive_avg_pool2d(torch.randn(3, 4, 10, 10, generator=g), (5, 5))
    assert math.isfinite(float(attention_transfer_loss(torch.randn(3, 4, 10, 10), ft)))
    assert float(attention_transfer_loss(pooled, ft)) > 0
    with pytest.raises(DistillError) as info:
        attention_transfer_loss(torch.randn(3, 16), ft)
    assert info.value.code == "distill.incompatible"


@pytest.mark.req("REQ-KD13")
def test_attention_between_a_vector_layer_and_a_map_is_refused_naming_both(teachers):
    config = DistillConfig(feature_pairs=(("hidden1", "conv1"),), feature_weight=1.0, feature_loss="attention")
    with pytest.raises(DistillError) as info:
        distill(request(teachers["lenet"], distill=config))
    assert info.value.code == "distill.incompatible" and "hidden1" in info.value.message and "conv1" in info.value.message


# == REQ-KD14 ======================================================================================
def np_dkd_terms(s: np.ndarray, t: np.ndarray, y: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray]:
    tckd, nckd = [], []
    for zs, zt, g in zip(s / T, t / T, y):
        ps, pt = np.exp(np_log_softmax(zs)), np.exp(np_log_softmax(zt))
        bs, bt = np.array([ps[g], 1 - ps[g]]), np.array([pt[g], 1 - pt[g]])
        tckd.append((bt * np.log(bt / bs)).sum())
        rs, rt = np.delete(zs, g), np.delete(zt, g)
        qs, qt = np.exp(np_log_softmax(rs)), np.exp(np_log_softmax(rt))
        nckd.append((qt * np.log(qt / qs)).sum())
    return np.array(tckd), np.array(nckd)


@pytest.mark.req("REQ-KD14")
def test_decoupled_kd_terms_equal_hand_computations_and_the_papers_identity():
    T = 2.0
    tckd, nckd = dkd_terms(t32(S45), t32(T45), torch.tensor(Y4), temperature=T)
    want_t, want_n = np_dkd_terms(S45, T45, Y4, T)
    assert np.allclose(tckd.double().numpy(), want_t, atol=1e-6) and np.allclose(nckd.double().numpy(), want_n,
                                                                                atol=1e-6)
    g = torch.Generator().manual_seed(6)
    s, t, y = torch.randn(32, 7, generator=g) * 2, torch.randn(32, 7, generator=g) * 2, torch.randint(0, 7, (32,))
    tc, nc = dkd_terms(s, t, y, temperature=T)
    p_target = F.softmax(t / T, 1).gather(1, y[:, None]).squeeze(1)
    per_sample_kl = (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))).sum(1)
    assert torch.allclose(per_sample_kl, tc + (1 - p_target) * nc, atol=1e-6)
    full = float(dkd_loss(t32(S45), t32(T45), torch.tensor(Y4), temperature=T, target_weight=1, nontarget_weight=8))
    assert full == pytest.approx(T * T * (want_t.mean() + 8 * want_n.mean()), abs=1e-5)


@pytest.mark.req("REQ-KD14")
def test_the_nontarget_weight_changes_only_the_nontarget_part_and_extreme_logits_stay_finite():
    s, t, y = t32(S45), t32(T45), torch.tensor(Y4)
    _, want_n = np_dkd_terms(S45, T45, Y4, 3.0)
    a = float(dkd_loss(s, t, y, temperature=3.0, nontarget_weight=8.0))
    b = float(dkd_loss(s, t, y, temperature=3.0, nontarget_weight=2.0))
    assert a - b == pytest.approx(9.0 * 6.0 * want_n.mean(), abs=1e-5)
    c = float(dkd_loss(s, t, y, temperature=3.0, target_weight=0.0, nontarget_weight=8.0))
    assert a - c == pytest.approx(b - float(dkd_loss(s, t, y, temperature=3.0, target_weight=0.0,
                                                      nontarget_weight=2.0)), abs=1e-5)
    big = 1e4 * torch.sign(torch.randn(4, 5, generator=torch.Generator().manual_seed(7)))
    x = big.clone().requires_grad_()
    loss = dkd_loss(x, -big, y, temperature=0.5, warn=False)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


# == REQ-KD15 ======================================================================================
@pytest.mark.req("REQ-KD15")
def test_adapters_train_and_live_in_the_training_checkpoint_only(resumed, tmp_path):
    early = tensors_of(resumed["after_first"], "state/adapters/")
    late = tensors_of(resumed["part_ckpt"], "state/adapters/")
    assert early and early.keys() == late.keys()
    assert any(not torch.equal(early[k], late[k]) for k in early)  # trained
    student = resumed["second"].train.model
    saved = handlers.save(SaveRequest(model=student, path=str(tmp_path / "student.safetensors")))
    fresh = model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0).state_dict()
    assert set(tensors_of(pathlib.Path(saved.path))) == set(fresh)  # the model checkpoint: the student only


@pytest.mark.req("REQ-KD15")
def test_the_exported_student_has_no_adapter_tensor(resumed, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    path = tmp_path / "student.onnx"
    handlers.export(ExportRequest(model=resumed["second"].train.model, path=str(path), format="onnx"))
    stored = [numpy_helper.to_array(init) for init in onnx.load(str(path)).graph.initializer]

    def held(w: np.ndarray) -> bool:  # as it is or transposed (a linear layer may become a MatMul)
        return any((s.shape == w.shape and np.allclose(s, w)) or (s.shape == w.T.shape and np.allclose(s, w.T))
                   for s in stored)

    adapters = [t.numpy() for t in tensors_of(resumed["part_ckpt"], "state/adapters/").values()]
    assert adapters and not any(held(a) for a in adapters)
    student = module_of(resumed["second"].train.model)
    assert all(held(p.detach().numpy()) for p in student.parameters())  # while every student weight is there


# == REQ-KD16 ======================================================================================
@pytest.mark.req("REQ-KD16")
def test_the_registry_holds_the_six_losses_as_plain_functions_with_formulas():
    assert list_losses() == ("attention", "dkd", "hint-cosine", "hint-mse", "kd", "regression")
    s, t, y = t32(S45), t32(T45), torch.tensor(Y4)
    maps = torch.randn(4, 3, 4, 4)
    calls = {"kd": lambda fn: fn(s, t, temperature=2.0), "dkd": lambda fn: fn(s, t, y, temperature=2.0),
             "hint-mse": lambda fn: fn(s, t), "hint-cosine": lambda fn: fn(s, t),
             "attention": lambda fn: fn(maps, maps * 2), "regression": lambda fn: fn(s, t)}
    for name in list_losses():
        info = get_loss(name)
        value = calls[name](info.fn)
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and torch.isfinite(value)
        assert info.formula and " ".join(info.formula.split()) in " ".join(info.fn.__doc__.split())
        assert "=" in info.formula
    with pytest.raises(ValidationError) as err:
        get_loss("hinton")
    assert err.value.code == "request.invalid" and all(n in err.value.message for n in list_losses())


# == REQ-KD17 ======================================================================================
@pytest.mark.req("REQ-KD17")
def test_the_ensemble_target_is_the_weighted_average_of_the_teachers_probabilities():
    g = torch.Generator().manual_seed(8)
    t1, t2, t3 = (torch.randn(5, 4, generator=g) * 3 for _ in range(3))
    ensemble = TeacherEnsemble([FrozenTeacher(nn.Identity()) for _ in range(3)], [1.0, 3.0, 0.0])
    for T in (1.0, 4.0):
        target = F.softmax(ensemble.combine([t1, t2, t3], T) / T, 1)
        expected = 0.25 * F.softmax(t1 / T, 1) + 0.75 * F.softmax(t2 / T, 1)
        assert torch.allclose(target, expected, atol=1e-6)
    with pytest.raises(ValidationError) as info:
        TeacherEnsemble([FrozenTeacher(nn.Identity())] * 2, [1.0])
    assert info.value.field == "distill.teacher_weights"


@pytest.mark.req("REQ-KD17")
def test_several_teachers_are_each_checked_frozen_and_kept_in_eval_mode(teachers, monkeypatch, tmp_path):
    loaded = []
    real = distill_handler.load_teacher

    def spy(ref, device):
        frozen, info = real(ref, device)
        calls = []
        frozen.module.register_forward_hook(lambda m, i, o: calls.append((m.training, torch.is_inference_mode_enabled())))
        loaded.append((frozen, calls))
        return frozen, info

    monkeypatch.setattr(distill_handler, "load_teacher", spy)
    config = DistillConfig(teacher_weights=(1.0, 2.0), cache_teacher=False)
    result, _ = run(request(teachers["mlp"], teachers=(teachers["lenet"],), distill=config))
    assert result.train.status == "finished" and len(loaded) == 2
    for frozen, calls in loaded:
        assert calls and set(calls) == {(False, True)}
        assert all(not p.requires_grad and p.grad is None for p in frozen.module.parameters())
    iris_teacher = tmp_path / "iris.safetensors"
    train_and_save(iris_teacher, ModelSpec("mlp", "tiny"), TrainConfig(epochs=1), DataSpec(name="iris"))
    with pytest.raises(DistillError) as info:
        distill(request(teachers["mlp"], teachers=(str(iris_teacher),)))
    assert info.value.code == "distill.incompatible"
    with pytest.raises(ValidationError) as bad:
        distill(request(teachers["mlp"], teachers=(teachers["lenet"],), distill=DistillConfig(teacher_weights=(1.0,))))
    assert bad.value.field == "distill.teacher_weights"


# == REQ-KD18 ======================================================================================
@pytest.fixture
def forward_counter(monkeypatch):
    counts = {"calls": 0, "samples": 0}
    real = FrozenTeacher.forward

    def counting(self, x, features=()):
        counts["calls"] += 1
        counts["samples"] += int(x.shape[0])
        return real(self, x, features)

    monkeypatch.setattr(FrozenTeacher, "forward", counting)
    return counts


@pytest.mark.req("REQ-KD18")
@pytest.mark.parametrize("cache", [True, False])
def test_with_the_cache_the_teacher_runs_once_per_training_sample(teachers, forward_counter, cache):
    config = TrainConfig(epochs=3, batch_size=128)
    result, events = run(request(teachers["mlp"], config=config, distill=DistillConfig(cache_teacher=cache)))
    n_train, n_val = 1438, 359  # digits, 20% validation
    validation = n_val  # the validation outputs, computed once for the agreement and the terms
    expected = n_train if cache else 3 * n_train
    assert forward_counter["samples"] == expected + validation
    assert result.train.status == "finished" and warnings_of(events, "distill.cache_refused") == []


@pytest.mark.req("REQ-KD18")
def test_the_cache_key_follows_the_teacher_file_and_the_data(teachers):
    x = torch.randn(10, 3)
    changed = x.clone()
    changed[4, 1] += 1e-3
    a = TeacherCache(file_sha256(teachers["mlp"]), data_fingerprint(x))
    assert TeacherCache(file_sha256(teachers["lenet"]), data_fingerprint(x)).key != a.key
    assert TeacherCache(file_sha256(teachers["mlp"]), data_fingerprint(changed)).key != a.key
    assert TeacherCache(file_sha256(teachers["mlp"]), data_fingerprint(x.clone())).key == a.key
    a.put(torch.tensor([3, 1]), torch.tensor([[3.0], [1.0]]), size=10)
    assert torch.equal(a.get(torch.tensor([1, 3])), torch.tensor([[1.0], [3.0]])) and a.get(torch.tensor([0])) is None


@pytest.mark.req("REQ-KD18")
def test_with_augmentation_the_cache_is_refused_and_the_teacher_runs_every_step(teachers, forward_counter):
    config = TrainConfig(epochs=2, batch_size=128)
    result, events = run(request(teachers["mlp"], config=config, data=DataSpec(augment=True)))
    refused = warnings_of(events, "distill.cache_refused")
    assert len(refused) == 1 and "augmented" in refused[0].message
    assert forward_counter["calls"] == result.train.steps + 2  # every step, plus 359 validation samples in 2 chunks
    with pytest.raises(DistillError) as info:
        TeacherCache("sha", "data", augment=True)
    assert info.value.code == "distill.cache_refused" and "augmented" in info.value.message


# == REQ-KD19 ======================================================================================
class _CompareCachedWithLive:
    """Wraps the trainer objective; at every batch compares the cached outputs with a live forward."""

    def __init__(self, inner: Distillation, teacher: nn.Module) -> None:
        self.inner, self.teacher, self.worst, self.batches = inner, teacher, 0.0, 0

    def __call__(self, output, target, inputs, indices):
        cached = self.inner.caches[0].get(indices)
        with torch.no_grad():
            live = self.teacher.eval()(inputs)
        self.worst = max(self.worst, float((cached - live).abs().max()))
        self.batches += 1
        return self.inner(output, target, inputs, indices)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.req("REQ-KD19")
def test_cached_outputs_equal_live_outputs_for_the_same_samples_under_shuffling(teachers):
    train, _ = digits_tensors()
    teacher = copy.deepcopy(module_of(teachers["mlp_handle"]))
    inner = plug_in(copy.deepcopy(teacher), cache=True)
    inner.caches[0].fill(inner.teachers.first, train[0], batch_size=500)
    spy = _CompareCachedWithLive(inner, teacher)
    student = model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0)
    trainer = Trainer(student, "classification", TrainConfig(epochs=3, batch_size=100), objective=spy, seed=9)
    trainer.fit(train)
    assert spy.batches == trainer.global_step == 3 * 15
    assert spy.worst <= 1e-5


# == REQ-KD20 ======================================================================================
@pytest.mark.req("REQ-KD20")
def test_agreement_each_epoch_equals_independent_predictions_of_both_models(teachers):
    train, val = digits_tensors()
    teacher = copy.deepcopy(module_of(teachers["mlp_handle"]))
    objective = plug_in(copy.deepcopy(teacher), cache=False, val=val)
    snapshots = []

    class Snapshot:
        def on_epoch(self, event):
            snapshots.append((event, copy.deepcopy(trainer.model)))

    student = model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0)
    trainer = Trainer(student, "classification", TrainConfig(epochs=3, batch_size=128), objective=objective,
                      callbacks=[Snapshot()])
    trainer.fit(train, val)
    teacher_pred = run_model(teacher, val[0]).argmax(1)
    assert len(snapshots) == 3
    for event, model in snapshots:
        agree = float((run_model(model, val[0]).argmax(1) == teacher_pred).double().mean())
        assert event.val["agreement"] == pytest.approx(agree, abs=1e-6)
        assert 0.0 <= event.train["agreement"] <= 1.0
    assert [h["val_agreement"] for h in trainer.history] == [e.val["agreement"] for e, _ in snapshots]


# == REQ-KD21 ======================================================================================
def untrained_teacher(path: pathlib.Path) -> str:
    spec = ModelSpec("lenet", "tiny")
    bundle = data_lib.load_data(DataSpec())
    splits = data_lib.split_data(bundle, 0.2, 0.0, 0)
    prep = data_lib.fit_preprocessing(bundle, splits.train)
    tm = TrainedModel(module=model_lib.build_model(spec, (1, 8, 8), 10, seed=0), spec=spec, input_shape=(1, 8, 8),
                      num_outputs=10, task="classification", class_names=tuple(bundle.class_names),
                      preprocessing=prep.to_dict(), config=TrainConfig(epochs=1))
    model_files.save_trained(str(path), tm)
    return str(path)


@pytest.mark.req("REQ-KD21")
def test_an_untrained_teacher_is_flagged_before_the_first_step(tmp_path):
    result, events = run(request(untrained_teacher(tmp_path / "raw.safetensors"), config=TrainConfig(epochs=1)))
    weak = warnings_of(events, "distill.teacher_weak")
    assert len(weak) == 1 and "chance" in weak[0].message
    first_step = next(i for i, e in enumerate(events) if isinstance(e, StepStats))
    assert events.index(weak[0]) < first_step
    assert result.teacher_metrics["accuracy"] < 0.2


@pytest.mark.req("REQ-KD21")
def test_a_good_teacher_raises_no_warning(teachers):
    _, events = run(request(teachers["mlp"], distill=DistillConfig(baseline=True)))
    assert [e for e in events if isinstance(e, RunWarning)] == []


@pytest.mark.req("REQ-KD21")
def test_a_teacher_weaker_than_the_baseline_is_flagged(tmp_path):
    teacher = tmp_path / "weak.safetensors"
    train_and_save(teacher, ModelSpec("linear"), TrainConfig(epochs=1, lr=3e-4))
    result, events = run(request(str(teacher), config=TrainConfig(epochs=3, batch_size=32),
                                 distill=DistillConfig(baseline=True, soft_weight=0.1)))
    baseline_best = max(h["val_accuracy"] for h in result.baseline.history)
    assert baseline_best > result.teacher_metrics["accuracy"]
    assert len(warnings_of(events, "distill.teacher_worse_than_baseline")) == 1


# == REQ-KD22 ======================================================================================
@pytest.mark.req("REQ-KD22")
def test_the_baseline_starts_like_the_student_and_ends_like_plain_training(teachers, plain_run, monkeypatch):
    from studio.backend.pytorch.trainer import loop as trainer_loop

    orders: dict[int, list[torch.Tensor]] = {}
    real_order = trainer_loop.epoch_order

    def recording(seed, epoch, n):
        order = real_order(seed, epoch, n)
        orders.setdefault(epoch, []).append(order)
        return order

    starts: list[dict[str, torch.Tensor]] = []
    real_trainer = distill_handler.Trainer
    real_baseline = distill_handler.BaselineRun

    def trainer_spy(model, *args, **kwargs):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_trainer(model, *args, **kwargs)

    class BaselineSpy(real_baseline):
        def __init__(self, initial, *args, **kwargs):
            starts.append({k: v.clone() for k, v in initial.state_dict().items()})
            super().__init__(initial, *args, **kwargs)

    monkeypatch.setattr(trainer_loop, "epoch_order", recording)
    monkeypatch.setattr(distill_handler, "Trainer", trainer_spy)
    monkeypatch.setattr(distill_handler, "BaselineRun", BaselineSpy)
    result, _ = run(request(teachers["mlp"], runtime=RuntimeConfig(seed=3), distill=DistillConfig(baseline=True)))
    baseline_start, student_start = starts
    assert_state_equal(baseline_start, student_start)
    for epoch in range(CFG.epochs):
        assert len(orders[epoch]) >= 2 and all(torch.equal(o, orders[epoch][0]) for o in orders[epoch])
    _, plain_weights = plain_run
    assert_state_equal(module_of(result.baseline.model).state_dict(), plain_weights)
    assert result.baseline.history == plain_run[0].history
    rows = {r["role"]: r for r in result.comparison}
    t, s, b = rows["teacher"]["accuracy"], rows["student"]["accuracy"], rows["baseline"]["accuracy"]
    if t > b:
        assert result.gap_closed == pytest.approx((s - b) / (t - b), abs=1e-12)
    else:
        assert result.gap_closed is None


# == REQ-KD23 ======================================================================================
@pytest.mark.req("REQ-KD23")
@pytest.mark.parametrize(("teacher", "pairs"), [("lenet", (("hidden1", "conv2"),)), ("mlp", ())])
def test_cross_family_and_self_distillation_complete_with_finite_losses(teachers, teacher, pairs):
    student = ModelSpec("mlp", "small") if teacher == "mlp" else STUDENT
    config = DistillConfig(feature_pairs=pairs, feature_weight=0.5 if pairs else 0.0)
    result, events = run(request(teachers[teacher], student=student, distill=config))
    GrammarChecker.check(events)
    assert result.train.status == "finished" and result.train.epochs_run == 2
    steps = [e for e in events if isinstance(e, StepStats)]
    assert steps and all(math.isfinite(e.loss) and math.isfinite(e.metrics["soft_loss"]) for e in steps)
    if pairs:
        assert all(math.isfinite(e.metrics["feature_loss/hidden1->conv2"]) for e in steps)


@pytest.mark.req("REQ-KD12", "REQ-KD13", "REQ-KD14")
@pytest.mark.parametrize(("teacher", "student", "data", "config"), [
    ("mlp", STUDENT, DataSpec(), DistillConfig(method="dkd", method_options={"nontarget_weight": 4.0})),
    ("mlp", STUDENT, DataSpec(), DistillConfig(feature_loss="hint-cosine", feature_pairs=(("hidden1", "hidden2"),),
                                               feature_weight=1.0)),
    ("lenet", ModelSpec("lenet", hparams={"channels": [2, 4], "hidden": [16]}), DataSpec(),
     DistillConfig(feature_loss="attention", feature_pairs=(("conv1", "conv1"), ("conv2", "conv1")),
                   feature_weight=1.0)),
    ("breast_cancer", STUDENT, DataSpec(name="breast_cancer"), DistillConfig()),
])
def test_each_method_and_feature_loss_runs_end_to_end(teachers, tmp_path, teacher, student, data, config):
    if teacher == "breast_cancer":  # a binary task: each logit distilled as the pair [0, z]
        path = tmp_path / "binary.safetensors"
        train_and_save(path, ModelSpec("mlp", "small"), TrainConfig(epochs=3, lr=3e-3), data)
        teacher_ref = str(path)
    else:
        teacher_ref = teachers[teacher]
    result, events = run(request(teacher_ref, student=student, data=data, config=TrainConfig(epochs=1), distill=config))
    GrammarChecker.check(events)
    steps = [e for e in events if isinstance(e, StepStats)]
    assert result.train.status == "finished"
    assert all(math.isfinite(v) for e in steps for v in e.metrics.values())
    assert 0.0 <= result.train.final_metrics["val_agreement"] <= 1.0


# == REQ-KD24 ======================================================================================
@pytest.mark.req("REQ-KD24")
def test_a_resumed_distillation_equals_the_uninterrupted_one_bit_for_bit(resumed):
    whole, second = resumed["whole"], resumed["second"]
    assert second.train.status == "finished" and second.train.steps == whole.train.steps == 36
    assert_state_equal(module_of(second.train.model).state_dict(), module_of(whole.train.model).state_dict())
    assert_state_equal(module_of(second.baseline.model).state_dict(), module_of(whole.baseline.model).state_dict())
    assert_state_equal(tensors_of(resumed["part_ckpt"], "state/adapters/"),
                       tensors_of(resumed["whole_ckpt"], "state/adapters/"))
    assert second.train.history == whole.train.history
    assert second.baseline.history == whole.baseline.history


@pytest.mark.req("REQ-KD24")
def test_the_checkpoint_records_the_teacher_by_path_and_hash_and_holds_none_of_its_tensors(resumed):
    meta = ser.read_metadata(resumed["part_ckpt"])["distillation"]
    assert meta["teacher_sha256"] == file_sha256(resumed["teacher"])
    assert meta["teacher_path"] == str(resumed["teacher"].absolute())
    teacher = model_files.load_trained(str(resumed["teacher"])).module.state_dict()
    stored = tensors_of(resumed["part_ckpt"])
    for name, tensor in teacher.items():
        assert not any(t.shape == tensor.shape and torch.equal(t, tensor) for t in stored.values()), name


@pytest.mark.req("REQ-KD24")
def test_a_changed_teacher_file_is_refused_on_resume(resumed, teachers):
    teacher = resumed["folder"] / "changing.safetensors"
    shutil.copy(resumed["teacher"], teacher)
    checkpoint = resumed["folder"] / "changing-run.safetensors"
    shutil.copy(resumed["after_first"], checkpoint)
    with pytest.raises(DistillError) as info:  # recorded for the original teacher file
        distill(resume_request(teachers["mlp"], checkpoint, checkpoint))
    assert info.value.code == "distill.teacher_changed"
    before = checkpoint.read_bytes()
    shutil.copy(teachers["mlp"], teacher)
    with pytest.raises(StudioError) as again:
        distill(resume_request(str(teacher), checkpoint, checkpoint))
    assert again.value.code == "distill.teacher_changed" and checkpoint.read_bytes() == before


# == REQ-KD25 ======================================================================================
@pytest.mark.req("REQ-KD25")
def test_the_distilled_student_saves_and_loads_without_its_teacher(teachers, tmp_path):
    teacher = tmp_path / "teacher.safetensors"
    shutil.copy(teachers["lenet"], teacher)
    config = DistillConfig(temperature=3.0, hard_weight=0.5, soft_weight=2.0, feature_weight=0.1,
                           feature_pairs=(("hidden1", "fc1"),))
    result, _ = run(request(str(teacher), distill=config))
    saved = handlers.save(SaveRequest(model=result.train.model, path=str(tmp_path / "student.safetensors")))
    sha = file_sha256(teacher)
    teacher.unlink()
    loaded = handlers.load(LoadRequest(path=saved.path))
    inputs = torch.rand(5, 1, 8, 8).tolist()
    before = handlers.predict(PredictRequest(model=result.train.model, inputs=inputs))
    after = handlers.predict(PredictRequest(model=loaded.model, inputs=inputs))
    assert before.probabilities == after.probabilities
    fresh = model_lib.build_model(STUDENT, (1, 8, 8), 10, seed=0)
    assert set(module_of(loaded.model).state_dict()) == set(fresh.state_dict())
    block = ser.read_metadata(saved.path)["distillation"]
    assert block["teacher_sha256"] == sha and block["teacher_path"] == str(teacher.absolute())
    assert (block["method"], block["temperature"], block["hard_weight"], block["soft_weight"],
            block["feature_weight"]) == ("kd", 3.0, 0.5, 2.0, 0.1)
    assert block["schedules"] == {} and loaded.metadata["distillation"] == block


# == REQ-KD26 ======================================================================================
def load_benchmark():
    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "distill_digits.py"
    spec = importlib.util.spec_from_file_location("distill_digits_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.req("REQ-KD26")
def test_a_distilled_small_student_beats_the_same_student_alone_on_few_labels():
    bench = load_benchmark()
    data = bench.load_splits()
    teacher, teacher_prep, teacher_accuracy = bench.train_teacher(data, config=TrainConfig(epochs=12, batch_size=64))
    assert teacher_accuracy > 0.95
    rows = [bench.run_seed(data, teacher, teacher_prep, seed, epochs=150, split="heldout") for seed in (0, 1)]
    summary = bench.summarise(rows)
    assert summary["distilled_error_mean"] < summary["alone_error_mean"], rows
