"""The training loop (PT-TRAINER-001 REQ-T01..T16; REQ-H08, REQ-H09, REQ-H13, REQ-H22).

Tiny models on 256 random samples keep every run in the tens of milliseconds. Exactness claims
(reproducibility, pause, resume) are checked with ``torch.equal`` on every parameter, never a
tolerance; thread tests synchronise on events, never on sleeps.
"""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from studio.backend.core.contract import decode_any
from studio.backend.core.errors import CheckpointError, StudioError, TrainingError, ValidationError
from studio.backend.core.events import (
    EpochStats,
    GrammarChecker,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    RunWarning,
    StepStats,
)
from studio.backend.core.handler import RunControl
from studio.backend.core.requests import TrainConfig
from studio.backend.core.stats_delivery import EventStream
from studio.backend.pytorch.trainer import (
    FORMAT,
    Callback,
    EpochPlan,
    TaskLoss,
    Trainer,
    autocast_supported,
    epoch_order,
    join_tensors,
    split_tensors,
)
from studio.backend.pytorch.trainer import precision as precision_module

N, FEATURES, CLASSES = 256, 8, 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest and most steadily on one thread; other modules get theirs back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- helpers -----------------------------------------------------------------------------------
def make_data(n: int = N, seed: int = 0, task: str = "classification") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=g)
    w = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(99))
    scores = x @ w
    if task == "classification":
        return x, scores.argmax(1)
    if task == "regression":
        return x, scores[:, 0]
    if task == "binary":
        return x, (scores[:, 0] > 0).float()
    return x, (scores > 0).float()  # multilabel


TRAIN = make_data(seed=0)
VAL = make_data(n=64, seed=1)


def mlp(seed: int = 0, dropout: float = 0.0, outputs: int = CLASSES) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, outputs))


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, CLASSES))


def cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 1e-2}
    base.update(kw)
    return TrainConfig(**base)


def run(model: nn.Module, config: TrainConfig, train=TRAIN, val=VAL, task: str = "classification", **kw):
    events = EventStream()
    trainer = Trainer(model, task, config, events=events, **kw)
    result = trainer.fit(train, val)
    return trainer, result, events.drain()


def state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def steps_of(events) -> list[StepStats]:
    return [e for e in events if isinstance(e, StepStats)]


class Recorder(Callback):
    """Records events and, on request, a copy of the weights after every step and epoch."""

    def __init__(self, trainer_ref: list | None = None) -> None:
        self.events: list = []
        self.step_states: dict[int, dict[str, torch.Tensor]] = {}
        self.epoch_states: dict[int, dict[str, torch.Tensor]] = {}
        self.trainer_ref = trainer_ref

    def on_step(self, event: StepStats) -> None:
        self.events.append(event)
        if self.trainer_ref:
            self.step_states[event.step] = self.trainer_ref[0].last_state()

    def on_epoch(self, event: EpochStats) -> None:
        self.events.append(event)
        if self.trainer_ref:
            self.epoch_states[event.epoch] = self.trainer_ref[0].last_state()


def recording_trainer(model, config, task="classification", **kw):
    ref: list = []
    rec = Recorder(ref)
    trainer = Trainer(model, task, config, callbacks=[rec], **kw)
    ref.append(trainer)
    return trainer, rec


class AtStep(Callback):
    """Calls ``action()`` after step ``step``."""

    def __init__(self, step: int, action) -> None:
        self.step, self.action = step, action

    def on_step(self, event: StepStats) -> None:
        if event.step == self.step:
            self.action()


class ScriptedVal(nn.Module):
    """Trains like a linear regressor; in eval mode predicts ``sqrt(script[k])`` on the k-th validation
    pass, so with zero validation targets ``val_loss`` (MSE) follows ``script`` exactly."""

    def __init__(self, script: list[float]) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(FEATURES, 1)
        self.script = script
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.lin(x)
        value = math.sqrt(self.script[self.calls])
        self.calls += 1
        return self.lin(x) * 0 + value


REG_TRAIN = make_data(seed=0, task="regression")
ZERO_VAL = (torch.randn(16, FEATURES), torch.zeros(16))  # one validation batch per epoch


def scripted_run(script, early_stopping=None, epochs=None, monitor_mode="min"):
    model = ScriptedVal(script)
    config = cfg(epochs=epochs or len(script), early_stopping=early_stopping, monitor_mode=monitor_mode)
    trainer, rec = recording_trainer(model, config, task="regression")
    result = trainer.fit(REG_TRAIN, ZERO_VAL)
    return trainer, rec, result, model


# -- REQ-T01 -----------------------------------------------------------------------------------
class Spy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))
        self.log: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


@pytest.mark.req("REQ-T01")
def test_training_forwards_run_in_train_mode_with_grad_and_validation_in_eval_mode_without():
    model = Spy()
    model.eval()  # the trainer must hand the model back in the mode it got it
    _, result, _ = run(model, cfg(epochs=2, batch_size=64))
    steps_per_epoch, val_batches = N // 64, 1
    expected = ([(True, True)] * steps_per_epoch + [(False, False)] * val_batches) * 2
    assert model.log == expected
    assert result.steps == 2 * steps_per_epoch
    assert model.training is False


@pytest.mark.req("REQ-T01")
def test_each_step_runs_forward_backward_optimiser_step_and_clears_the_gradients():
    model = mlp()
    trainer = Trainer(model, "classification", cfg(epochs=1, batch_size=64))
    order: list[str] = []

    def forward_pre(module, args):
        if module.training:
            assert all(p.grad is None for p in module.parameters()), "gradients were not cleared"
            order.append("forward")

    def forward_post(module, args, out):
        if module.training:
            out.register_hook(lambda grad: order.append("backward"))

    model.register_forward_pre_hook(forward_pre)
    model.register_forward_hook(forward_post)
    trainer.optimizer.register_step_post_hook(lambda opt, args, kwargs: order.append("step"))
    trainer.fit(TRAIN)
    assert order == ["forward", "backward", "step"] * (N // 64)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.req("REQ-T01")
def test_one_epoch_is_bit_identical_to_a_hand_written_loop():
    config = cfg(epochs=1, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.9)
    trained = mlp()
    run(trained, config, val=None)

    by_hand = mlp()
    opt = torch.optim.SGD(by_hand.parameters(), lr=0.1, momentum=0.9)
    x, y = TRAIN
    order = epoch_order(0, 0, len(x))
    for start in range(0, len(x), 32):
        idx = order[start:start + 32]
        loss = F.cross_entropy(by_hand(x[idx]), y[idx])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    assert state_equal(trained.state_dict(), by_hand.state_dict())


# -- REQ-T02 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T02")
@pytest.mark.parametrize(
    ("name", "cls", "settings"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
        ("adam", torch.optim.Adam, {"weight_decay": 0.01}),
        ("adamw", torch.optim.AdamW, {"weight_decay": 0.05}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0.5, "weight_decay": 0.01}),
    ],
)
def test_each_optimiser_is_built_with_its_settings_and_lowers_the_loss(name, cls, settings):
    trainer, result, _ = run(mlp(), cfg(optimizer=name, lr=0.02, epochs=4, **settings))
    assert type(trainer.optimizer) is cls
    group = trainer.optimizer.param_groups[0]
    assert group["lr"] == 0.02
    for key, value in settings.items():
        assert group[key] == value
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.req("REQ-T02")
def test_adam_uses_the_fused_kernel_and_falls_back_to_foreach_where_there_is_none(monkeypatch):
    from studio.backend.pytorch.trainer.optimizers import build_optimizer

    group = build_optimizer(mlp().parameters(), cfg(optimizer="adam")).param_groups[0]
    assert group["fused"] is True and not group["foreach"]
    fused = [run(mlp(), cfg(epochs=2))[0].model.state_dict() for _ in range(2)]
    assert state_equal(*fused)  # the fused kernel is deterministic: equal seeds, equal bits

    class NoFusedKernel(torch.optim.AdamW):  # an older PyTorch, or a device without the kernel
        def __init__(self, *args, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on a supported device")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", NoFusedKernel)
    trainer, result, _ = run(mlp(), cfg(optimizer="adamw", epochs=3))
    group = trainer.optimizer.param_groups[0]
    assert group["foreach"] is True and not group["fused"]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.req("REQ-T02")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"momentum": 1.0}, "momentum"),
        ({"optimizer": "sgd", "momentum": 0.0, "nesterov": True}, "nesterov"),
    ],
)
def test_bad_optimiser_settings_are_refused_before_any_work(change, field):
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValidationError) as info:
        Trainer(model, "classification", cfg(**change))
    assert info.value.field == field
    assert info.value.code == "request.invalid"
    if field == "optimizer":
        assert "sgd, adam, adamw, rmsprop" in info.value.message
    assert state_equal(model.state_dict(), before)


# -- REQ-T03 -----------------------------------------------------------------------------------
def _lrs(config: TrainConfig, val=VAL) -> list[float]:
    _, _, events = run(mlp(), config, val=val)
    return [e.lr for e in steps_of(events)]


@pytest.mark.req("REQ-T03")
def test_constant_and_step_schedules_report_the_rate_of_every_step():
    spe = N // 32
    assert _lrs(cfg(epochs=2)) == [1e-2] * (2 * spe)
    lrs = _lrs(cfg(epochs=3, schedule="step", schedule_options={"step_size": 1, "gamma": 0.5}))
    assert lrs == [1e-2 * 0.5 ** (i // spe) for i in range(3 * spe)]


@pytest.mark.req("REQ-T03")
def test_cosine_warms_up_linearly_then_follows_half_a_cosine_to_min_lr():
    total, warm, base, floor = 2 * (N // 32), 4, 1e-2, 1e-4
    lrs = _lrs(cfg(schedule="cosine", schedule_options={"warmup_steps": warm, "min_lr": floor}))
    expected = [base * (s + 1) / warm for s in range(warm)]
    expected += [floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
                 for s in range(warm, total)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=0)
    assert lrs[warm - 1] == pytest.approx(base) and min(lrs[warm:]) > floor


@pytest.mark.req("REQ-T03")
def test_one_cycle_matches_torch_onecyclelr():
    options = {"max_lr": 0.05, "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0}
    lrs = _lrs(cfg(epochs=3, schedule="one_cycle", schedule_options=options))
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=len(lrs), cycle_momentum=False, **options)
    expected = []
    for _ in lrs:
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.req("REQ-T03")
def test_reduce_on_plateau_lowers_the_rate_after_patience_epochs_without_improvement():
    # min_delta so large that nothing after the first epoch counts as an improvement
    options = {"factor": 0.5, "patience": 1, "min_delta": 1e9}
    model = ScriptedVal([1.0] * 6)
    _, _, events = run(model, cfg(epochs=6, schedule="reduce_on_plateau", schedule_options=options),
                       train=REG_TRAIN, val=ZERO_VAL, task="regression")
    per_epoch = [e.lr for e in events if isinstance(e, EpochStats)]
    assert per_epoch == [1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3]


@pytest.mark.req("REQ-T03")
@pytest.mark.parametrize(
    ("schedule", "options", "field"),
    [
        ("linear", {}, "schedule"),
        ("cosine", {"warmup": 3}, "schedule_options.warmup"),
        ("step", {"gamma": 0.0}, "schedule_options.gamma"),
        ("cosine", {"min_lr": 1.0}, "schedule_options.min_lr"),
        ("reduce_on_plateau", {"monitor": "val_f1"}, "schedule_options.monitor"),
    ],
)
def test_unknown_schedules_and_bad_options_are_refused(schedule, options, field):
    with pytest.raises(ValidationError) as info:
        Trainer(mlp(), "classification", cfg(schedule=schedule, schedule_options=options))
    assert info.value.field == field


# -- REQ-T04 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T04")
def test_each_loss_equals_the_functional_reference():
    g = torch.Generator().manual_seed(3)
    logits, labels = torch.randn(10, 3, generator=g), torch.randint(0, 3, (10,), generator=g)
    weights = (0.5, 2.0, 1.0)
    ce = TaskLoss("classification", cfg(label_smoothing=0.1, class_weights=weights))
    assert torch.equal(ce(logits, labels),
                       F.cross_entropy(logits, labels, weight=torch.tensor(weights), label_smoothing=0.1))
    out, target = torch.randn(10, 1, generator=g), torch.randn(10, generator=g)  # (N, 1) output, (N,) target
    for name, fn in (("mse", F.mse_loss), ("l1", F.l1_loss), ("huber", F.huber_loss)):
        assert torch.equal(TaskLoss("regression", cfg(loss=name))(out, target), fn(out, target.view(10, 1)))
    bits = (torch.rand(10, generator=g) > 0.5).float()
    assert torch.equal(TaskLoss("binary", cfg())(out, bits), F.binary_cross_entropy_with_logits(out, bits.view(10, 1)))
    multi_out, multi = torch.randn(10, 4, generator=g), (torch.rand(10, 4, generator=g) > 0.5).float()
    assert torch.equal(TaskLoss("multilabel", cfg())(multi_out, multi),
                       F.binary_cross_entropy_with_logits(multi_out, multi))
    assert TaskLoss("regression", cfg()).name == "mse" and TaskLoss("classification", cfg()).name == "cross_entropy"


@pytest.mark.req("REQ-T04")
@pytest.mark.parametrize(
    ("task", "change", "field"),
    [
        ("regression", {"loss": "cross_entropy"}, "loss"),
        ("classification", {"loss": "mse"}, "loss"),
        ("classification", {"label_smoothing": 1.0}, "label_smoothing"),
        ("regression", {"label_smoothing": 0.1}, "label_smoothing"),
        ("regression", {"class_weights": (1.0, 2.0)}, "class_weights"),
        ("classification", {"class_weights": (1.0, -2.0)}, "class_weights"),
        ("ranking", {}, "task"),
    ],
)
def test_losses_that_do_not_fit_the_task_are_refused(task, change, field):
    with pytest.raises(ValidationError) as info:
        Trainer(mlp(), task, cfg(**change))
    assert info.value.field == field


@pytest.mark.req("REQ-T04")
@pytest.mark.parametrize(
    ("task", "outputs", "loss", "metric"),
    [
        ("classification", CLASSES, None, "accuracy"),
        ("regression", 1, "huber", "mae"),
        ("binary", 1, None, "accuracy"),
        ("multilabel", CLASSES, None, "accuracy"),
    ],
)
def test_every_task_trains_with_its_loss_and_metric(task, outputs, loss, metric):
    train, val = make_data(task=task), make_data(n=64, seed=1, task=task)
    _, result, _ = run(mlp(outputs=outputs), cfg(epochs=4, loss=loss), train=train, val=val, task=task)
    first, last = result.history[0], result.history[-1]
    assert {f"train_{metric}", f"val_{metric}"} <= last.keys()
    assert last["train_loss"] < first["train_loss"]


# -- REQ-T05 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T05", "REQ-H22")
def test_validation_metrics_of_every_epoch_equal_an_independent_evaluation():
    trainer, rec = recording_trainer(mlp(), cfg(epochs=3, batch_size=32))
    result = trainer.fit(TRAIN, (VAL[0][:50], VAL[1][:50]))  # 50 = 32 + 18: uneven batches
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    epoch_events = [e for e in rec.events if isinstance(e, EpochStats)]
    x, y = VAL[0][:50], VAL[1][:50]
    for row, event in zip(result.history, epoch_events):
        model = mlp()
        model.load_state_dict(rec.epoch_states[row["epoch"]])
        model.eval()
        with torch.no_grad():
            out = model(x)
        assert row["val_loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)
        assert row["val_accuracy"] == pytest.approx((out.argmax(1) == y).float().mean().item(), rel=1e-6)
        assert event.val == {"loss": row["val_loss"], "accuracy": row["val_accuracy"]}
        assert event.train == {"loss": row["train_loss"], "accuracy": row["train_accuracy"]}


@pytest.mark.req("REQ-T05")
def test_without_validation_data_the_monitor_falls_back_to_training_with_a_warning():
    _, result, events = run(mlp(), cfg(), val=None)
    warnings = [e for e in events if isinstance(e, RunWarning)]
    assert [w.code for w in warnings] == ["train.monitor_fallback"]
    assert result.monitor == "train_loss"
    assert not any(k.startswith("val_") for k in result.history[0])


# -- REQ-T06 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T06")
@pytest.mark.parametrize(
    ("script", "options", "mode", "epochs_run", "best_epoch"),
    [
        ([5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 2.0], {"patience": 2}, "min", 4, 1),
        ([5.0, 4.95, 4.9, 4.0, 3.0], {"patience": 2, "min_delta": 0.1}, "min", 3, 0),
        ([1.0, 2.0, 3.0, 2.5, 2.9, 4.0, 5.0], {"patience": 2}, "max", 5, 2),
        ([1.0, 2.0, 3.0, 2.5, 2.9, 4.0, 5.0], {"patience": 2, "mode": "max"}, "min", 5, 2),
        ([3.0, 2.0, 1.0, 0.5], {"patience": 0}, "min", 4, 3),
    ],
)
def test_early_stopping_stops_after_patience_epochs_without_improvement(script, options, mode, epochs_run,
                                                                        best_epoch):
    _, _, result, _ = scripted_run(script, early_stopping=options, monitor_mode=mode)
    assert result.epochs_run == epochs_run
    assert result.stopped_early is (epochs_run < len(script))
    assert result.best_epoch == best_epoch
    assert [h["val_loss"] for h in result.history] == pytest.approx(script[:epochs_run], rel=1e-6)


@pytest.mark.req("REQ-T06")
@pytest.mark.parametrize("restore", [True, False])
def test_restore_best_puts_back_the_weights_of_the_best_epoch(restore):
    trainer, rec, result, model = scripted_run([3.0, 1.0, 2.0, 2.5], early_stopping={"patience": 2, "restore_best": restore})
    assert result.stopped_early and result.best_epoch == 1
    wanted = rec.epoch_states[1] if restore else rec.epoch_states[3]
    assert state_equal(model.state_dict(), wanted)
    assert state_equal(trainer.last_state(), rec.epoch_states[3])


@pytest.mark.req("REQ-T06")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"early_stopping": {"patiance": 3}}, "early_stopping.patiance"),
        ({"early_stopping": {"patience": -1}}, "early_stopping.patience"),
        ({"early_stopping": {"mode": "up"}}, "early_stopping.mode"),
        ({"monitor": "val_f1"}, "monitor"),
        ({"early_stopping": {"monitor": "val_mae"}}, "monitor"),
    ],
)
def test_bad_early_stopping_settings_are_refused(change, field):
    with pytest.raises(ValidationError) as info:
        Trainer(mlp(), "classification", cfg(**change))
    assert info.value.field == field
    if field == "monitor":
        assert "val_accuracy" in info.value.message


# -- REQ-T07 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T07")
def test_best_state_is_the_best_epoch_and_last_state_the_final_weights():
    trainer, rec, result, model = scripted_run([3.0, 2.0, 0.5, 1.0, 1.5])
    assert result.best_epoch == 2 and result.best_metrics == result.history[2]
    assert result.final_metrics == result.history[-1]
    assert state_equal(trainer.best_state(), rec.epoch_states[2])
    assert state_equal(trainer.last_state(), rec.epoch_states[4])
    assert state_equal(model.state_dict(), rec.epoch_states[4])  # no restore without early stopping
    assert not state_equal(rec.epoch_states[2], rec.epoch_states[4])


@pytest.mark.req("REQ-T07")
def test_best_state_is_none_before_the_first_epoch_and_a_copy_after():
    trainer = Trainer(mlp(), "classification", cfg())
    assert trainer.best_state() is None
    trainer.fit(TRAIN, VAL)
    best = trainer.best_state()
    next(iter(best.values())).add_(1.0)
    assert not state_equal(best, trainer.best_state())


# -- REQ-T08 -----------------------------------------------------------------------------------
def _one_full_batch_step(**clip):
    """One SGD step (lr 1) over the whole training set: the weight change is minus the applied gradient."""
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = mlp()
    F.cross_entropy(reference(TRAIN[0]), TRAIN[1]).backward()
    hand_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in reference.parameters()])).item()
    _, _, events = run(model, cfg(epochs=1, batch_size=N, optimizer="sgd", lr=1.0, momentum=0.0, **clip), val=None)
    applied = [before[k] - v for k, v in model.state_dict().items()]
    return steps_of(events)[0].grad_norm, hand_norm, applied


@pytest.mark.req("REQ-T08")
def test_clip_norm_bounds_the_applied_gradient_and_the_pre_clip_norm_is_reported():
    reported, hand_norm, applied = _one_full_batch_step(clip_norm=0.1)
    assert hand_norm > 0.2  # clipping really happens
    assert reported == pytest.approx(hand_norm, rel=1e-5)
    applied_norm = torch.linalg.vector_norm(torch.stack([a.norm() for a in applied])).item()
    assert applied_norm <= 0.1 + 1e-6
    assert applied_norm == pytest.approx(0.1, rel=1e-4)


@pytest.mark.req("REQ-T08")
def test_clip_value_bounds_every_gradient_entry():
    reported, hand_norm, applied = _one_full_batch_step(clip_value=0.01)
    assert reported == pytest.approx(hand_norm, rel=1e-5)
    largest = max(a.abs().max().item() for a in applied)
    assert largest <= 0.01 + 1e-7
    assert largest == pytest.approx(0.01, rel=1e-4)  # some entries were clipped


@pytest.mark.req("REQ-T08")
def test_grad_norm_is_reported_every_step_without_clipping_and_clip_settings_must_be_positive():
    _, _, events = run(mlp(), cfg(epochs=1))
    assert all(e.grad_norm is not None and e.grad_norm > 0 for e in steps_of(events))
    for field in ("clip_norm", "clip_value"):
        with pytest.raises(ValidationError) as info:
            Trainer(mlp(), "classification", cfg(**{field: 0.0}))
        assert info.value.field == field


# -- REQ-T09 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T09")
@pytest.mark.parametrize("weights", [None, (0.5, 2.0, 1.0)])
def test_accumulating_micro_batches_matches_one_larger_batch(weights):
    n = 200  # 3 full steps of 64 and a short one of 8
    train = (TRAIN[0][:n], TRAIN[1][:n])
    common = {"epochs": 1, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "class_weights": weights,
              "label_smoothing": 0.1}
    big, accumulated = mlp(), mlp()
    _, _, big_events = run(big, cfg(batch_size=64, **common), train=train, val=None)
    _, _, acc_events = run(accumulated, cfg(batch_size=16, accumulate=4, **common), train=train, val=None)
    assert [e.batch_size for e in steps_of(acc_events)] == [64, 64, 64, 8] == [e.batch_size for e in steps_of(big_events)]
    for a, b in zip(steps_of(acc_events), steps_of(big_events)):
        assert a.loss == pytest.approx(b.loss, abs=1e-5)
    for name, value in big.state_dict().items():
        torch.testing.assert_close(accumulated.state_dict()[name], value, atol=1e-5, rtol=0)


@pytest.mark.req("REQ-T09")
def test_epoch_plan_groups_micro_batches_into_steps():
    plan = EpochPlan(n=10, batch_size=3, accumulate=2)
    assert (plan.micro_batches, plan.steps) == (4, 2)
    steps = [[idx.tolist() for idx in step] for step in plan.step_batches(torch.arange(10))]
    assert steps == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9]]]
    assert [[idx.tolist() for idx in s] for s in plan.step_batches(torch.arange(10), start=1)] == steps[1:]


# -- REQ-T10 -----------------------------------------------------------------------------------
def _activation_dtypes(model: nn.Module) -> list[torch.dtype]:
    dtypes: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, a, out: dtypes.append(out.dtype) if m.training else None)
    return dtypes


@pytest.mark.req("REQ-T10")
def test_bf16_runs_under_autocast_on_cpu():
    model = mlp()
    dtypes = _activation_dtypes(model)
    _, result, events = run(model, cfg(precision="bf16"))
    assert result.precision == "bf16"
    assert set(dtypes) == {torch.bfloat16}
    assert not [e for e in events if isinstance(e, RunWarning)]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.req("REQ-T10")
def test_fp16_uses_loss_scaling_where_supported():
    # PyTorch >= 2.3 supports fp16 autocast and a GradScaler on CPU: Studio then uses them as asked.
    if not autocast_supported(torch.device("cpu"), torch.float16):
        pytest.skip("this PyTorch has no fp16 autocast on CPU (the fallback is tested below)")
    model = mlp()
    dtypes = _activation_dtypes(model)
    trainer, result, events = run(model, cfg(precision="fp16"))
    assert result.precision == "fp16" and set(dtypes) == {torch.float16}
    assert not [e for e in events if isinstance(e, RunWarning)]
    scaler = trainer.state_dict()["scaler"]
    assert scaler is not None and scaler["scale"] > 0
    assert math.isfinite(result.history[-1]["train_loss"])


@pytest.mark.req("REQ-T10")
@pytest.mark.parametrize("requested", ["fp16", "bf16"])
def test_unsupported_precision_falls_back_to_fp32_with_exactly_one_warning(monkeypatch, requested):
    monkeypatch.setattr(precision_module, "autocast_supported", lambda device, dtype: False)
    fallback = mlp()
    dtypes = _activation_dtypes(fallback)
    trainer, result, events = run(fallback, cfg(precision=requested))
    warnings = [e for e in events if isinstance(e, RunWarning)]
    assert [w.code for w in warnings] == ["train.precision_fallback"]
    assert requested in warnings[0].message
    assert result.status == "finished" and result.precision == "fp32"
    assert set(dtypes) == {torch.float32} and trainer.state_dict()["scaler"] is None
    plain = mlp()
    run(plain, cfg(precision="fp32"))
    assert state_equal(fallback.state_dict(), plain.state_dict())


# -- REQ-T11 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T11")
def test_a_nan_sample_stops_the_run_at_the_step_that_reads_it_keeping_the_last_finite_state(tmp_path):
    x, y = TRAIN[0].clone(), TRAIN[1]
    order = epoch_order(0, 0, N)
    k = 3  # the poisoned sample sits in the third batch of epoch 0
    x[order[2 * 32 + 5]] = float("nan")
    events = EventStream()
    ref: list = []
    rec = Recorder(ref)
    trainer = Trainer(mlp(), "classification", cfg(batch_size=32), events=events, callbacks=[rec])
    ref.append(trainer)
    with pytest.raises(TrainingError) as info:
        trainer.fit((x, y), VAL)
    err = info.value
    assert err.code == "train.nonfinite_loss" and err.field == "step" and err.value == k
    assert f"step {k}" in err.message and "epoch 0" in err.message and err.hint
    drained = events.drain()
    assert isinstance(drained[-1], RunFailed) and drained[-1].error["code"] == "train.nonfinite_loss"
    assert max(e.step for e in steps_of(drained)) == k - 1
    GrammarChecker.check(drained)
    last = trainer.last_state()
    assert state_equal(last, rec.step_states[k - 1])
    assert all(torch.isfinite(v).all() for v in last.values())
    assert trainer.state_dict()["loop"]["global_step"] == k - 1
    path = tmp_path / "last_finite.safetensors"
    save_file(last, str(path))
    assert state_equal(load_file(str(path)), last)


class SqrtAtZero(nn.Module):
    """Finite loss, but the gradient of sqrt at 0 is infinite (times 0: NaN)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(FEATURES, CLASSES)
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + 0.0 * torch.sqrt(self.p)


@pytest.mark.req("REQ-T11")
def test_a_non_finite_gradient_with_a_finite_loss_stops_the_run_too():
    model = SqrtAtZero()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingError) as info:
        Trainer(model, "classification", cfg()).fit(TRAIN, VAL)
    assert info.value.code == "train.nonfinite_loss" and info.value.value == 1
    assert "gradient" in info.value.message
    assert state_equal(model.state_dict(), before)


# -- REQ-T12 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T12")
def test_same_seed_gives_bit_identical_weights_and_history_and_another_seed_does_not():
    config = cfg(epochs=2, optimizer="adamw", schedule="cosine", schedule_options={"warmup_steps": 3})
    results = []
    for draws, seed in ((1, 7), (50, 7), (1, 8)):
        model = mlp(dropout=0.3)
        torch.rand(draws)  # the global generators differ before each run: the trainer must seed them
        _, result, _ = run(model, config, seed=seed)
        results.append((model.state_dict(), result.history))
    assert state_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]
    assert not state_equal(results[0][0], results[2][0])


@pytest.mark.req("REQ-T12")
def test_a_cnn_with_batch_norm_is_reproducible_including_its_buffers():
    g = torch.Generator().manual_seed(5)
    images, labels = torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, CLASSES, (96,), generator=g)
    states, histories = [], []
    for _ in range(2):
        model = cnn()
        _, result, _ = run(model, cfg(epochs=2, batch_size=16), train=(images, labels), val=(images[:32], labels[:32]))
        states.append(model.state_dict())
        histories.append(result.history)
    assert "1.running_mean" in states[0] and state_equal(states[0], states[1])
    assert histories[0] == histories[1]


# -- REQ-T13 / REQ-H09 / REQ-T15 ------------------------------------------------------------
RESUME_CONFIG = cfg(epochs=4, batch_size=32, optimizer="adam", lr=5e-3, schedule="cosine",
                    schedule_options={"warmup_steps": 5}, early_stopping={"patience": 10})
K = 2 * (N // 32) + 3  # a step in the middle of epoch 2


def _uninterrupted():
    model = mlp(dropout=0.2)
    _, result, events = run(model, RESUME_CONFIG, seed=3)
    return model.state_dict(), result, events


def _json_round_trip(state: dict) -> dict:
    tensors, skeleton = split_tensors(state)
    text = json.dumps(skeleton, allow_nan=False)
    return join_tensors(json.loads(text), {k: v.clone() for k, v in tensors.items()})


@pytest.mark.req("REQ-T13", "REQ-H08")
def test_resume_from_a_mid_epoch_state_in_a_fresh_trainer_is_bit_identical():
    reference, ref_result, _ = _uninterrupted()

    control = RunControl()
    first = Trainer(mlp(dropout=0.2), "classification", RESUME_CONFIG, control=control, seed=3,
                    callbacks=[AtStep(K, control.cancel)])
    cancelled = first.fit(TRAIN, VAL)
    assert (cancelled.status, cancelled.steps, cancelled.epochs_run) == ("cancelled", K, 2)
    state = _json_round_trip(first.state_dict())
    assert state["loop"] == {"epoch": 2, "step_in_epoch": 3, "global_step": K}

    torch.rand(1000)  # whatever happens to the global generators in between must not matter
    events = EventStream()
    second = Trainer(mlp(seed=123, dropout=0.2), "classification", RESUME_CONFIG, events=events, seed=0)
    second.load_state_dict(state)
    resumed = second.fit(TRAIN, VAL)
    assert resumed.status == "finished" and resumed.steps == ref_result.steps
    assert state_equal(second.model.state_dict(), reference)
    assert resumed.history == ref_result.history
    drained = events.drain()
    GrammarChecker.check(drained)
    started = drained[0]
    assert isinstance(started, RunStarted) and (started.start_epoch, started.start_step) == (2, K)
    assert steps_of(drained)[0].step == K + 1


@pytest.mark.req("REQ-H09", "REQ-T15")
def test_pause_and_resume_from_another_thread_is_bit_identical():
    reference, ref_result, _ = _uninterrupted()
    control = RunControl()
    paused, seen = threading.Event(), []

    def sink(event):
        seen.append(event)
        if isinstance(event, RunPaused):
            paused.set()

    trainer = Trainer(mlp(dropout=0.2), "classification", RESUME_CONFIG, events=sink, control=control, seed=3,
                      callbacks=[AtStep(K, control.pause)])
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(trainer.fit(TRAIN, VAL)))
    worker.start()
    assert paused.wait(timeout=60)
    held = len(seen)
    assert trainer.global_step == K and steps_of(seen)[-1].step == K
    worker.join(timeout=0.2)  # give a misbehaving loop the chance to run on
    assert worker.is_alive() and len(seen) == held
    control.resume()
    worker.join(timeout=60)
    assert outcome and outcome[0].status == "finished"
    assert state_equal(trainer.model.state_dict(), reference)
    assert outcome[0].history == ref_result.history
    assert [(type(e), e.step) for e in seen if isinstance(e, (RunPaused, RunResumed))] == [(RunPaused, K),
                                                                                          (RunResumed, K)]
    GrammarChecker.check(seen)


@pytest.mark.req("REQ-T15", "REQ-T13")
def test_cancel_then_continue_on_the_same_trainer_is_bit_identical():
    reference, ref_result, _ = _uninterrupted()
    control = RunControl()
    trainer = Trainer(mlp(dropout=0.2), "classification", RESUME_CONFIG, control=control, seed=3,
                      callbacks=[AtStep(K, control.cancel)])
    assert trainer.fit(TRAIN, VAL).status == "cancelled"
    torch.rand(1000)
    trainer.control = RunControl()
    result = trainer.fit(TRAIN, VAL)
    assert result.status == "finished"
    assert state_equal(trainer.model.state_dict(), reference) and result.history == ref_result.history


@pytest.mark.req("REQ-T13")
def test_state_dict_holds_only_tensors_and_json_values_in_the_documented_layout():
    trainer, _, _ = run(mlp(), cfg(precision="fp16", early_stopping={"patience": 3}))
    state = trainer.state_dict()
    assert set(state) == {"format", "task", "seed", "config", "model", "optimizer", "schedule", "scaler",
                          "precision", "rng", "loop", "epoch_stats", "early_stopping", "best", "history"}
    assert state["format"] == FORMAT
    tensors, skeleton = split_tensors(state)
    json.dumps(skeleton, allow_nan=False)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    assert {"rng.torch", "rng.numpy.keys", "rng.python.state", "model.0.weight",
            "optimizer.state.0.exp_avg", "best.model.0.weight"} <= tensors.keys()
    # a copy: training on does not change a state already taken
    weight = state["model"]["0.weight"].clone()
    trainer.model[0].weight.data.add_(1.0)
    assert torch.equal(state["model"]["0.weight"], weight)


@pytest.mark.req("REQ-T13")
@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s.update(format="other/1"), "format"),
        (lambda s: s.update(task="regression"), "task"),
        (lambda s: s["config"].update(batch_size=64), "batch_size"),
        (lambda s: s["config"].update(accumulate=2), "accumulate"),
    ],
)
def test_a_state_of_another_format_task_or_batching_is_refused(edit, field):
    trainer, _, _ = run(mlp(), cfg(epochs=1))
    state = trainer.state_dict()
    edit(state)
    with pytest.raises(CheckpointError) as info:
        Trainer(mlp(), "classification", cfg()).load_state_dict(state)
    assert info.value.code == "checkpoint.incompatible" and info.value.field == field


# -- REQ-T14 -----------------------------------------------------------------------------------
@pytest.mark.req("REQ-T14")
def test_callbacks_see_every_step_and_epoch_in_order():
    class StepsOnly:  # duck-typed: no Callback base, one hook
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_step(self, event: StepStats) -> None:
            self.steps.append(event.step)

    rec, steps_only = Recorder(), StepsOnly()
    Trainer(mlp(), "classification", cfg(epochs=2), callbacks=[rec, steps_only]).fit(TRAIN, VAL)
    spe = N // 32
    kinds = [(type(e).__name__, e.step) for e in rec.events]
    expected = [("StepStats", s) for s in range(1, spe + 1)] + [("EpochStats", spe)]
    expected += [("StepStats", s) for s in range(spe + 1, 2 * spe + 1)] + [("EpochStats", 2 * spe)]
    assert kinds == expected
    assert steps_only.steps == list(range(1, 2 * spe + 1))


class Exploding(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, event: StepStats) -> None:
        if event.step == self.step:
            raise ZeroDivisionError("boom")


@pytest.mark.req("REQ-T14")
def test_a_raising_callback_stops_the_run_naming_it_with_the_state_of_that_step():
    control = RunControl()
    undisturbed = Trainer(mlp(), "classification", cfg(), control=control, callbacks=[AtStep(3, control.cancel)])
    undisturbed.fit(TRAIN, VAL)
    events = EventStream()
    trainer = Trainer(mlp(), "classification", cfg(), events=events, callbacks=[Exploding(3)])
    with pytest.raises(TrainingError) as info:
        trainer.fit(TRAIN, VAL)
    err = info.value
    assert err.code == "train.callback_failed" and err.value == "Exploding"
    assert "Exploding.on_step" in err.message and "step 3" in err.message
    assert isinstance(err.__cause__, ZeroDivisionError)
    drained = events.drain()
    assert isinstance(drained[-1], RunFailed) and drained[-1].error["code"] == "train.callback_failed"
    GrammarChecker.check(drained)
    assert trainer.global_step == 3
    assert state_equal(trainer.model.state_dict(), undisturbed.model.state_dict())
    mine, theirs = split_tensors(trainer.state_dict()["optimizer"])[0], split_tensors(undisturbed.state_dict()["optimizer"])[0]
    assert state_equal(mine, theirs)


@pytest.mark.req("REQ-T14")
def test_a_raising_epoch_hook_stops_the_run_after_the_completed_epoch():
    class BadEpoch:
        def on_epoch(self, event: EpochStats) -> None:
            raise RuntimeError("disk full")

    trainer = Trainer(mlp(), "classification", cfg(epochs=3), callbacks=[BadEpoch()])
    with pytest.raises(TrainingError) as info:
        trainer.fit(TRAIN, VAL)
    assert info.value.code == "train.callback_failed" and "BadEpoch.on_epoch" in info.value.message
    assert len(trainer.history) == 1 and trainer.state_dict()["loop"] == {"epoch": 1, "step_in_epoch": 0,
                                                                         "global_step": N // 32}


# -- REQ-T15 / REQ-H08 -------------------------------------------------------------------------
class Gate(nn.Module):
    """Blocks the forward of training step ``step`` until released (a slow step)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(FEATURES, CLASSES)
        self.step, self.calls = step, 0
        self.entered, self.release = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.step:
                self.entered.set()
                assert self.release.wait(timeout=60)
        return self.lin(x)


@pytest.mark.req("REQ-T15", "REQ-H08")
def test_a_cancel_during_a_step_stops_the_run_after_that_step():
    model, control, events = Gate(step=4), RunControl(), EventStream()
    trainer = Trainer(model, "classification", cfg(epochs=3), events=events, control=control)
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(trainer.fit(TRAIN, VAL)))
    worker.start()
    assert model.entered.wait(timeout=60)
    control.cancel()
    model.release.set()
    worker.join(timeout=60)
    result = outcome[0]
    assert (result.status, result.steps) == ("cancelled", 4)
    drained = events.drain()
    assert max(e.step for e in steps_of(drained)) == 4
    assert isinstance(drained[-1], RunCancelled) and drained[-1].step == 4
    GrammarChecker.check(drained)


@pytest.mark.req("REQ-T15", "REQ-H09")
def test_a_pause_requested_during_a_step_holds_the_loop_before_the_next_one():
    model, control, events = Gate(step=2), RunControl(), EventStream()
    trainer = Trainer(model, "classification", cfg(epochs=1), events=events, control=control)
    worker = threading.Thread(target=trainer.fit, args=(TRAIN, VAL))
    worker.start()
    assert model.entered.wait(timeout=60)
    control.pause()
    model.release.set()
    while not control.paused or trainer.global_step < 2:  # the step in flight completes
        worker.join(timeout=0.01)
    worker.join(timeout=0.2)
    assert worker.is_alive() and trainer.global_step == 2
    control.resume()
    worker.join(timeout=60)
    drained = events.drain()
    assert [(type(e).__name__, e.step) for e in drained if isinstance(e, (RunPaused, RunResumed))] == [
        ("RunPaused", 2), ("RunResumed", 2)]
    assert isinstance(drained[-1], RunFinished) and drained[-1].step == N // 32


@pytest.mark.req("REQ-T15", "REQ-H08")
def test_a_run_cancelled_before_it_starts_does_no_step():
    control = RunControl()
    control.cancel()
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    events = EventStream()
    result = Trainer(model, "classification", cfg(), events=events, control=control).fit(TRAIN, VAL)
    assert (result.status, result.steps, result.epochs_run) == ("cancelled", 0, 0)
    assert [type(e) for e in events.drain()] == [RunStarted, RunCancelled]
    assert state_equal(model.state_dict(), before)


# -- REQ-T16 -----------------------------------------------------------------------------------
class NoPerSample(torch.Tensor):
    """A tensor that refuses per-sample access and counts gathers."""

    gathers = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.__iter__, torch.Tensor.unbind, torch.Tensor.tolist, torch.Tensor.numpy):
            raise AssertionError(f"per-sample access through {func.__name__}")
        if func is torch.Tensor.__getitem__ and isinstance(args[1], int):
            raise AssertionError("per-sample indexing")
        if func is torch.Tensor.index_select:
            cls.gathers += 1
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)


@pytest.mark.req("REQ-T16")
def test_batches_are_gathered_by_one_index_select_per_tensor_without_per_sample_access():
    x, y = TRAIN[0].as_subclass(NoPerSample), TRAIN[1].as_subclass(NoPerSample)
    NoPerSample.gathers = 0
    config = cfg(epochs=2, batch_size=16, accumulate=2)
    result = Trainer(mlp(), "classification", config).fit((x, y), VAL)
    micro_batches = 2 * (N // 16)
    assert result.steps == micro_batches // 2
    assert NoPerSample.gathers == 2 * micro_batches  # one for x and one for y, per micro-batch


@pytest.mark.req("REQ-T16", "REQ-T12")
def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    first = epoch_order(4, 1, 100)
    torch.manual_seed(1234)
    torch.rand(10)
    assert torch.equal(first, epoch_order(4, 1, 100))
    assert torch.equal(first.sort().values, torch.arange(100))
    assert not torch.equal(first, epoch_order(4, 2, 100)) and not torch.equal(first, epoch_order(5, 1, 100))


@pytest.mark.req("REQ-T16")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_move_from_pinned_memory_without_blocking(monkeypatch):
    copies: list[tuple[bool, bool]] = []
    original = torch.Tensor.to

    def spy(self, *args, **kwargs):
        if self.device.type == "cpu" and args and str(args[0]).startswith("cuda"):
            copies.append((self.is_pinned(), kwargs.get("non_blocking", False)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    Trainer(mlp(), "classification", cfg(epochs=1), device="cuda").fit(TRAIN, VAL)
    assert copies and all(pinned and non_blocking for pinned, non_blocking in copies)


# -- REQ-H13 / REQ-H22 -------------------------------------------------------------------------
@pytest.mark.req("REQ-H13")
def test_finished_cancelled_and_failed_runs_follow_the_event_grammar():
    _, _, finished = run(mlp(), cfg(epochs=2))
    control = RunControl()
    _, _, cancelled = run(mlp(), cfg(epochs=2), control=control, callbacks=[AtStep(5, control.cancel)])
    failing = EventStream()
    with pytest.raises(TrainingError):
        Trainer(mlp(), "classification", cfg(), events=failing, callbacks=[Exploding(2)]).fit(TRAIN, VAL)
    spe = N // 32
    for events, terminal, steps, epochs in ((finished, RunFinished, 2 * spe, 2), (cancelled, RunCancelled, 5, 0),
                                            (failing.drain(), RunFailed, 2, 0)):
        GrammarChecker.check(events)
        assert sum(isinstance(e, RunStarted) for e in events) == 1 and isinstance(events[0], RunStarted)
        assert isinstance(events[-1], terminal)
        assert sum(isinstance(e, (RunFinished, RunCancelled, RunFailed)) for e in events) == 1
        assert [e.step for e in steps_of(events)] == list(range(1, steps + 1))
        assert [e.epoch for e in events if isinstance(e, EpochStats)] == list(range(epochs))
        for event in events:  # every event survives the JSON contract
            assert decode_any(event.to_json()) == event


@pytest.mark.req("REQ-H22")
def test_epoch_statistics_are_exact_batch_size_weighted_means_reset_every_epoch():
    n = 100  # batches of 32, 32, 32 and 4
    _, result, events = run(mlp(), cfg(epochs=2, batch_size=32), train=(TRAIN[0][:n], TRAIN[1][:n]))
    steps, epochs = steps_of(events), [e for e in events if isinstance(e, EpochStats)]
    for epoch in epochs:
        mine = [s for s in steps if s.epoch == epoch.epoch]
        assert [s.batch_size for s in mine] == [32, 32, 32, 4]
        weight = sum(s.batch_size for s in mine)
        assert epoch.train["loss"] == pytest.approx(sum(s.loss * s.batch_size for s in mine) / weight, rel=1e-12)
        assert epoch.train["accuracy"] == pytest.approx(
            sum(s.metrics["accuracy"] * s.batch_size for s in mine) / weight, rel=1e-12)
        assert epoch.lr == mine[-1].lr and epoch.extra["grad_norm"] == mine[-1].grad_norm
        # throughput over the whole epoch (data, steps, validation: issue 22), which holds every step
        assert epoch.duration_s >= sum(s.step_time_s for s in mine)
        assert epoch.samples_per_s == pytest.approx(weight / epoch.duration_s, rel=1e-9)
        assert epoch.extra["mean_step_time_s"] == pytest.approx(sum(s.step_time_s for s in mine) / len(mine))
        assert all(s.samples_per_s == pytest.approx(s.batch_size / s.step_time_s) for s in mine)
    assert [h["train_loss"] for h in result.history] == [e.train["loss"] for e in epochs]


@pytest.mark.req("REQ-H11")
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_or_unknown_device_is_a_clear_error_not_a_torch_exception():
    with pytest.raises(StudioError) as info:
        Trainer(mlp(), "classification", cfg(), device="cuda")
    assert info.value.code == "runtime.device_unavailable" and info.value.field == "device"
    with pytest.raises(ValidationError) as info:
        Trainer(mlp(), "classification", cfg(), device="gpu0")
    assert info.value.field == "device"
