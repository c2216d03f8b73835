"""The sample files of resources/samples load through ``load_data`` as documented, and tools/make_samples.py
still makes exactly them (PT-DATA-001)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.backend.core.requests import DataSpec
from studio.backend.pytorch.data import load_data

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "resources" / "samples"


def make_samples():
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.req("REQ-D02")
def test_fruit_csv_has_a_header_a_categorical_column_and_named_classes():
    path = SAMPLES / "fruit.csv"
    assert path.stat().st_size < 50_000
    data = load_data(DataSpec(source="csv", path=str(path)))
    assert (data.task, data.input_kind, data.num_samples) == ("classification", "vector", 320)
    assert data.class_names == ("apple", "banana", "lemon", "orange") and data.num_outputs == 4
    assert data.feature_names == ("weight_g", "diameter_cm", "colour=green", "colour=orange", "colour=red",
                                  "colour=yellow", "skin=dimpled", "skin=smooth", "sweetness")
    assert data.input_shape == (9,) and data.x.dtype == torch.float32
    assert torch.bincount(data.y).min() >= 50  # every class well represented
    onehot = data.x[:, 2:8]
    assert set(onehot.sum(dim=1).tolist()) == {2.0}  # one colour and one skin per fruit
    assert data.info["reader"] == "arrow-text"  # text columns: Arrow's second step


@pytest.mark.req("REQ-D04")
def test_waves_npz_is_a_three_class_sequence_dataset():
    data = load_data(DataSpec(source="numpy", path=str(SAMPLES / "waves.npz")))
    assert (data.task, data.input_kind, data.input_shape, data.num_outputs) == ("classification", "sequence", (40, 1), 3)
    assert data.num_samples == 180 and data.class_names == ("0", "1", "2")
    assert torch.bincount(data.y).tolist() == [60, 60, 60] and torch.isfinite(data.x).all()


@pytest.mark.req("REQ-D03")
def test_shapes_folder_is_three_classes_of_twelve_images():
    data = load_data(DataSpec(source="images", path=str(SAMPLES / "shapes")))
    assert (data.task, data.input_kind, data.input_shape) == ("classification", "image", (3, 32, 32))
    assert data.class_names == ("circle", "square", "triangle") and data.y.tolist() == [0] * 12 + [1] * 12 + [2] * 12
    assert data.info["skipped_files"] == 0 and 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
    gray = load_data(DataSpec(source="images", path=str(SAMPLES / "shapes"), options={"grayscale": True, "size": 28}))
    assert gray.input_shape == (1, 28, 28)


@pytest.mark.req("REQ-D02", "REQ-D03", "REQ-D04")
def test_the_script_makes_exactly_the_committed_samples(tmp_path):
    make_samples().main(tmp_path)
    assert (tmp_path / "fruit.csv").read_bytes() == (SAMPLES / "fruit.csv").read_bytes()
    with np.load(tmp_path / "waves.npz") as new, np.load(SAMPLES / "waves.npz") as old:
        assert sorted(new.files) == sorted(old.files) == ["X", "y"]
        for key in ("X", "y"):
            np.testing.assert_array_equal(new[key], old[key])
    made = sorted(p.relative_to(tmp_path) for p in (tmp_path / "shapes").rglob("*.png"))
    assert made == sorted(p.relative_to(SAMPLES) for p in (SAMPLES / "shapes").rglob("*.png")) and len(made) == 36
    for rel in made:
        assert Image.open(SAMPLES / rel).size == (32, 32)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / rel).convert("RGB")),
                                      np.asarray(Image.open(SAMPLES / rel).convert("RGB")))
