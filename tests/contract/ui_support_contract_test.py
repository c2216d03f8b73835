"""Backend contract the window relies on: per-sample evaluation, previews by index, throttled autosave."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from studio.backend.core.errors import ValidationError
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import (
    DataSpec,
    EvaluateRequest,
    InspectDataRequest,
    TrainConfig,
    TrainRequest,
)


@pytest.fixture(scope="module")
def backend():  # noqa: ANN201
    return default_registry()


@pytest.mark.req("REQ-U09")
def test_evaluate_gives_each_sample_its_index_truth_prediction_and_confidence(backend) -> None:  # noqa: ANN001
    trained = backend.get("pytorch", "train")(TrainRequest(config=TrainConfig(epochs=1)))
    result = backend.get("pytorch", "evaluate")(EvaluateRequest(model=trained.model))
    n = result.num_samples
    assert len(result.sample_indices) == len(result.targets) == len(result.predicted) == len(result.confidence) == n
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (np.array(result.targets), np.array(result.predicted)), 1)
    assert confusion.tolist() == [list(r) for r in result.confusion]
    assert all(0.1 <= c <= 1.0 for c in result.confidence)  # the top of ten probabilities
    assert len(set(result.sample_indices)) == n and max(result.sample_indices) < 1797


@pytest.mark.req("REQ-U09")
def test_inspect_data_previews_exactly_the_samples_asked_for(backend) -> None:  # noqa: ANN001
    inspect = backend.get("pytorch", "inspect_data")
    images = inspect(InspectDataRequest(indices=(7, 3, 1000)))
    assert images.preview["indices"] == [7, 3, 1000] and len(images.preview["images"]) == 3
    first = inspect(InspectDataRequest(preview_rows=10)).preview
    assert images.preview["images"][1] == first["images"][3] and images.preview["labels"][1] == first["labels"][3]
    table = inspect(InspectDataRequest(data=DataSpec(name="iris"), indices=(149, 0)))
    assert [row[-1] for row in table.preview["rows"]] == ["virginica", "setosa"]
    with pytest.raises(ValidationError, match="outside the data"):
        inspect(InspectDataRequest(data=DataSpec(name="iris"), indices=(150,)))


@pytest.mark.req("REQ-U04")
def test_a_checkpoint_interval_saves_after_the_first_epoch_then_at_most_that_often(
        backend, monkeypatch, tmp_path: pathlib.Path) -> None:  # noqa: ANN001
    from studio.backend.pytorch import model_files

    saved = []
    real = model_files.save_trained
    monkeypatch.setattr(model_files, "save_trained", lambda *a, **k: saved.append(a[0]) or real(*a, **k))
    path = tmp_path / "auto.safetensors"
    train = backend.get("pytorch", "train")
    train(TrainRequest(config=TrainConfig(epochs=3), checkpoint_path=str(path), checkpoint_interval_s=3600))
    assert saved == [str(path)] and path.is_file()  # the first epoch only
    saved.clear()
    train(TrainRequest(config=TrainConfig(epochs=3), checkpoint_path=str(path)))
    assert len(saved) == 3  # the default: every epoch
    with pytest.raises(ValidationError, match="checkpoint_interval_s"):
        train(TrainRequest(config=TrainConfig(epochs=1), checkpoint_path=str(path), checkpoint_interval_s=-1))
