"""Training and evaluation on image folders read from disk (REQ-D03): ``DiskImageInputs`` and the handlers.

Every test writes a real PNG folder to ``tmp_path`` with Pillow and trains a real LeNet for a few
steps. Exactness (same seed, in memory versus on disk, pause, resume) is checked with
``torch.equal`` on every parameter, never a tolerance.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.backend.core.errors import DataError, DistillError, StudioError
from studio.backend.core.events import RunPaused, StepStats
from studio.backend.core.handler import RunControl
from studio.backend.core.requests import (
    DataSpec,
    DistillRequest,
    EvaluateRequest,
    ModelSpec,
    RuntimeConfig,
    TrainConfig,
    TrainRequest,
)
from studio.backend.pytorch import handlers
from studio.backend.pytorch.data import (
    DiskImageData,
    DiskImageInputs,
    LoadedData,
    fit_preprocessing,
    load_data,
    split_data,
    split_inputs,
)
from studio.backend.pytorch.distill import distill
from studio.backend.pytorch.model_store import store

CONFIG = TrainConfig(epochs=4, batch_size=8, lr=3e-3)
MODEL = ModelSpec(name="lenet")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shapes_folder(root: Path, per_class: int = 8, size: int = 20) -> Path:
    """Three learnable classes of noisy RGB PNGs (a bright left half, right half or centre), not square."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("left", "right", "centre")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size + 4, 3)).astype(np.uint8)
            w = size + 4
            region = (slice(None), slice(0, w // 2)) if k == 0 else (slice(None), slice(w // 2, w)) if k == 1 \
                else (slice(size // 4, 3 * size // 4), slice(w // 4, 3 * w // 4))
            img[region] += 150
            Image.fromarray(img, "RGB").save(root / cls / f"{i}.png")
    return root


def spec(root: Path, on_disk: bool, **kw) -> DataSpec:
    return DataSpec(source="images", path=str(root), val_fraction=0.25, seed=3,
                    options={"size": 16, "on_disk": on_disk, **kw})


def train(data: DataSpec, config: TrainConfig = CONFIG, **kwargs):
    request = TrainRequest(data=data, model=MODEL, config=config, runtime=RuntimeConfig(seed=5),
                           **{k: v for k, v in kwargs.items() if k in ("resume_from", "checkpoint_path")})
    result = handlers.train(request, **{k: v for k, v in kwargs.items() if k in ("events", "control")})
    return result, store.get(result.model).module


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def assert_checkpoint_resume_is_exact(data: DataSpec, tmp_path: Path) -> None:
    """Train ``CONFIG`` straight through, and again as one epoch checkpointed then resumed: the same run."""
    full, a = train(data)
    ck = tmp_path / "run.safetensors"
    train(data, TrainConfig(epochs=1, batch_size=8, lr=3e-3), checkpoint_path=str(ck))
    resumed, b = train(data, resume_from=str(ck))
    assert resumed.steps == full.steps and resumed.history == full.history
    assert_same_weights(a, b)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return shapes_folder(tmp_path / "shapes")


@pytest.mark.req("REQ-D03")
def test_disk_inputs_decode_exactly_the_normalised_in_memory_tensor(folder: Path) -> None:
    memory = load_data(spec(folder, False))
    disk = load_data(spec(folder, True))
    assert isinstance(memory, LoadedData) and isinstance(disk, DiskImageData)
    s = split_data(disk, 0.25, 0.0, 3)
    prep = fit_preprocessing(memory, s.train)
    expected = split_inputs(memory, s.train, prep)
    lazy = split_inputs(disk, s.train, prep)
    assert isinstance(expected, torch.Tensor) and isinstance(lazy, DiskImageInputs)
    assert len(lazy) == len(expected) and lazy.shape == expected.shape and lazy.dim() == 4
    assert lazy.dtype == torch.float32 and lazy.device == torch.device("cpu") and lazy.is_floating_point()
    pick = torch.tensor([5, 0, 17, 5])
    assert torch.equal(lazy.index_select(0, pick), expected.index_select(0, pick))
    assert torch.equal(lazy[pick], expected[pick])
    assert torch.equal(lazy[3:11], expected[3:11]) and torch.equal(lazy[16:100], expected[16:])
    assert torch.equal(lazy[-1], expected[-1]) and lazy[5:5].shape == (0, 3, 16, 16)
    wide = lazy.to(torch.float64)
    assert wide.dtype == torch.float64 and torch.equal(wide[0:2], expected[0:2].double())
    assert lazy.to(torch.float32) is lazy and lazy.cpu() is lazy
    with pytest.raises(IndexError, match="outside this split of 18 images"):
        lazy.index_select(0, torch.tensor([18]))
    with pytest.raises(TypeError):
        lazy.to("cuda")  # type: ignore[arg-type]
    # in-memory data keeps its tensor (no adapter in the fast path)
    assert torch.equal(split_inputs(memory, s.val, prep), prep.apply(memory.x[s.val]))


@pytest.mark.req("REQ-D03", "REQ-H05")
def test_training_on_disk_finishes_and_lowers_the_loss(folder: Path) -> None:
    result, _ = train(spec(folder, True), TrainConfig(epochs=8, batch_size=8, lr=3e-3))
    assert result.status == "finished" and result.epochs_run == 8 and result.steps == 8 * 3
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.final_metrics["val_accuracy"] >= 0.5


@pytest.mark.req("REQ-D03")
def test_the_same_seed_on_disk_gives_bit_identical_weights(folder: Path) -> None:
    first, a = train(spec(folder, True))
    second, b = train(spec(folder, True))
    assert_same_weights(a, b)
    assert first.history == second.history


@pytest.mark.req("REQ-D03")
def test_on_disk_training_is_bit_identical_to_in_memory_training(folder: Path) -> None:
    """Same pipeline: the same decode, the same train-only statistics, element-wise normalisation and
    the trainer's own seeded batch order, so the weights are equal, not just close."""
    memory, a = train(spec(folder, False))
    disk, b = train(spec(folder, True))
    assert_same_weights(a, b)
    assert memory.history == disk.history


@pytest.mark.req("REQ-D03", "REQ-H06")
def test_evaluate_on_disk_equals_evaluate_in_memory(folder: Path) -> None:
    result, _ = train(spec(folder, True))
    for split in ("val", "train"):
        on_disk = handlers.evaluate(EvaluateRequest(model=result.model, data=spec(folder, True), split=split,
                                                    batch_size=5))
        in_memory = handlers.evaluate(EvaluateRequest(model=result.model, data=spec(folder, False), split=split))
        assert on_disk.num_samples == in_memory.num_samples == (6 if split == "val" else 18)
        assert on_disk.metrics == in_memory.metrics and on_disk.confusion == in_memory.confusion
        assert on_disk.predicted == in_memory.predicted and on_disk.sample_indices == in_memory.sample_indices


@pytest.mark.req("REQ-D03", "REQ-H09")
def test_a_paused_and_resumed_run_on_disk_is_bit_identical(folder: Path) -> None:
    _, plain = train(spec(folder, True))
    control = RunControl()
    seen: list[int] = []

    def sink(event) -> None:
        if isinstance(event, StepStats) and event.step == 5:
            control.pause()
        if isinstance(event, RunPaused):
            seen.append(event.step)
            threading.Thread(target=control.resume).start()

    _, paused = train(spec(folder, True), events=sink, control=control)
    assert seen == [5]
    assert_same_weights(plain, paused)


@pytest.mark.req("REQ-D03", "REQ-T13")
def test_resuming_an_on_disk_run_from_its_checkpoint_matches_an_uninterrupted_run(folder: Path,
                                                                                tmp_path: Path) -> None:
    assert_checkpoint_resume_is_exact(spec(folder, True), tmp_path)


@pytest.mark.req("REQ-D03", "REQ-H11")
def test_an_image_damaged_after_loading_stops_training_naming_the_file(folder: Path) -> None:
    data = spec(folder, True)
    damaged = folder / "right" / "3.png"

    def sink(event) -> None:
        if isinstance(event, StepStats) and event.step == 1:
            damaged.write_bytes(b"not a png any more")

    with pytest.raises(DataError) as info:
        train(data, events=sink)
    assert info.value.code == "data.bad_image" and str(damaged) in info.value.message
    assert "replace or remove it" in info.value.message


@pytest.mark.req("REQ-D03", "REQ-H11")
def test_distillation_refuses_an_on_disk_folder_clearly(folder: Path) -> None:
    request = DistillRequest(teacher=str(folder / "teacher.safetensors"), student=MODEL, data=spec(folder, True))
    with pytest.raises(StudioError) as info:
        distill(request)
    err = info.value
    assert isinstance(err, DistillError) and err.code == "distill.data_on_disk" and err.field == "data"
    assert "'shapes'" in err.message and "on_disk" in (err.hint or "")


# -- REQ-D09 through the train handler -----------------------------------------------------------
def augmented(root: Path, on_disk: bool) -> DataSpec:
    return DataSpec(source="images", path=str(root), val_fraction=0.25, seed=3, augment=True,
                    options={"size": 16, "on_disk": on_disk, "augment": {"rotation": 15.0, "noise": 0.05}})


@pytest.mark.req("REQ-D09")
@pytest.mark.parametrize("on_disk", [False, True])
def test_train_augments_training_batches_only_and_the_same_seed_repeats_it_exactly(folder: Path,
                                                                                   on_disk: bool) -> None:
    plain_result, plain = train(spec(folder, on_disk))
    first_result, first = train(augmented(folder, on_disk))
    second_result, second = train(augmented(folder, on_disk))
    assert_same_weights(first, second)  # seeded by (run seed, epoch, step, micro-batch)
    assert first_result.history == second_result.history
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), plain.state_dict().values()))
    assert first_result.history[-1]["train_loss"] != plain_result.history[-1]["train_loss"]


@pytest.mark.req("REQ-D09", "REQ-T13")
def test_an_augmented_run_resumed_from_its_checkpoint_matches_an_uninterrupted_one(folder: Path,
                                                                                  tmp_path: Path) -> None:
    assert_checkpoint_resume_is_exact(augmented(folder, False), tmp_path)


@pytest.mark.req("REQ-D09", "REQ-T01")
def test_the_trainer_augments_each_training_micro_batch_once_and_never_validation() -> None:
    from studio.backend.pytorch.trainer import Trainer

    calls: list[tuple[int, int, int, int]] = []

    def augment(x: torch.Tensor, epoch: int, step: int, part: int) -> torch.Tensor:
        assert x.device.type == "cpu"
        calls.append((epoch, step, part, len(x)))
        return x + 1.0

    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 2, (40,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    config = TrainConfig(epochs=2, batch_size=10, accumulate=2)
    Trainer(model, "classification", config, augment=augment).fit((x, y), (x[:10], y[:10]))
    assert calls == [(e, s, p, 10) for e in range(2) for s in range(2) for p in range(2)]  # 2 micro-batches a step
