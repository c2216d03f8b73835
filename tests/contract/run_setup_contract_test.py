"""Training and distillation share one run set-up: the same autosave (throttled, rank 0 only), the same
error wrapper and the same result conversion, so a fix to one reaches both."""

from __future__ import annotations

import pathlib

import pytest

from studio.backend.core.errors import OutOfMemoryError, TrainingError, ValidationError
from studio.backend.core.requests import DataSpec, DistillRequest, ModelSpec, SaveRequest, TrainConfig, TrainRequest
from studio.backend.pytorch import distributed, model_files, run_setup
from studio.backend.pytorch.distill import handler as distill_handler

DATA = DataSpec(name="iris")


@pytest.fixture(scope="module")
def teacher_path(registry, tmp_path_factory) -> str:  # noqa: ANN001
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    result = registry.call("pytorch", "train", TrainRequest(data=DATA, model=ModelSpec("mlp", "small"),
                                                            config=TrainConfig(epochs=2)))
    registry.call("pytorch", "save", SaveRequest(model=result.model, path=str(path)))
    return str(path)


def _record_writes(monkeypatch: pytest.MonkeyPatch, folder: pathlib.Path) -> list[str]:
    """The checkpoint writes into ``folder`` (distillation also saves models to a temporary folder to size them)."""
    written: list[str] = []
    for module, name in ((model_files, "save_trained"), (distill_handler, "save_distill_checkpoint")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda path, *a, _real=real, **k: (written.append(path) if str(path).startswith(str(folder)) else None)
                            or _real(path, *a, **k))
    return written


def _request(operation: str, teacher: str, **changes):  # noqa: ANN202
    if operation == "train":
        return TrainRequest(data=DATA, config=TrainConfig(epochs=3), **changes)
    return DistillRequest(teacher=teacher, student=ModelSpec("mlp", "small"), data=DATA,
                          config=TrainConfig(epochs=3), **changes)


@pytest.mark.req("REQ-U04")
@pytest.mark.parametrize("operation", ["train", "distill"])
def test_both_runs_autosave_after_the_first_epoch_then_at_most_every_interval(
        registry, teacher_path, operation, monkeypatch, tmp_path: pathlib.Path) -> None:  # noqa: ANN001
    written = _record_writes(monkeypatch, tmp_path)
    path = str(tmp_path / "auto.safetensors")
    registry.call("pytorch", operation, _request(operation, teacher_path, checkpoint_path=path,
                                                 checkpoint_interval_s=3600))
    assert written == [path] and pathlib.Path(path).is_file()
    written.clear()
    registry.call("pytorch", operation, _request(operation, teacher_path, checkpoint_path=path))
    assert written == [path] * 3
    with pytest.raises(ValidationError, match="checkpoint_interval_s"):
        registry.call("pytorch", operation, _request(operation, teacher_path, checkpoint_path=path,
                                                     checkpoint_interval_s=-1))


class _Rank1:
    is_writer = False


@pytest.mark.parametrize("operation", ["train", "distill"])
def test_under_torchrun_only_rank_zero_writes_the_autosave(registry, teacher_path, operation, monkeypatch,
                                                           tmp_path: pathlib.Path) -> None:  # noqa: ANN001
    written = _record_writes(monkeypatch, tmp_path)
    monkeypatch.setattr(distributed, "current", lambda: _Rank1())
    path = tmp_path / "auto.safetensors"
    registry.call("pytorch", operation, _request(operation, teacher_path, checkpoint_path=str(path)))
    assert written == [] and not path.exists()


def test_one_error_wrapper_names_the_operation_and_chains_the_cause() -> None:
    import torch

    @run_setup.handler_errors("distill", oom_hint="Try a smaller student.")
    def out_of_memory(request):  # noqa: ANN001, ANN202
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    @run_setup.handler_errors("train")
    def broken(request):  # noqa: ANN001, ANN202
        raise KeyError("x")

    with pytest.raises(OutOfMemoryError, match="during distill") as oom:
        out_of_memory(None)
    assert oom.value.hint == "Try a smaller student." and isinstance(oom.value.__cause__, torch.cuda.OutOfMemoryError)
    with pytest.raises(TrainingError) as failed:
        broken(None)
    assert failed.value.code == "train.failed" and isinstance(failed.value.__cause__, KeyError)
