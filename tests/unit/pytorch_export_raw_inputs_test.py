"""Exports usable without Studio (issue 22, point 1): by default the exported ONNX and TorchScript graphs
take the values as they are in the user's files, because the training preprocessing is inside them;
the files name their classes, preprocessing, input layout and Studio version; the printed loader code
runs as printed.

Real runs: ``studio train`` on a CSV file and on a folder of PNGs written here, ``studio predict`` on
the same files, ``studio export``, then onnxruntime and ``torch.jit.load`` fed the files' raw values
read with the csv module and Pillow, never with Studio's readers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli import run
from studio.cli.exit_codes import OK

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
import onnxruntime as ort  # noqa: E402

pytestmark = [pytest.mark.req("REQ-T23"), pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]

CLASSES = ("dark", "light")


def cli(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), stdout=out, stderr=err)
    assert code == OK, err.getvalue()
    return out.getvalue()


def _write_csv(path: Path) -> None:
    """Three classes far from zero and on different scales, so raw and normalised inputs differ a lot."""
    gen = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mass_g", "length_mm", "kind"])
        for i in range(150):
            k = i % 3
            w.writerow([f"{1000 + 40 * k + gen.normal(0, 8):.2f}", f"{50 + 5 * k + gen.normal(0, 1):.3f}", f"k{k}"])


def _write_pngs(root: Path) -> None:
    gen = np.random.default_rng(1)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(12):
            base = 60 + 120 * k
            pixels = np.clip(base + gen.normal(0, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{name}_{i:02d}.png")


def _onnx(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _jit(path: Path, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.jit.load(str(path))(torch.from_numpy(x)).numpy()


def _export(model: Path, out: Path, *flags: str) -> str:
    fmt = "onnx" if out.suffix == ".onnx" else "torchscript"
    return cli("export", str(model), "--format", fmt, "--out", str(out), *flags)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("csv")
    data, model = folder / "parts.csv", folder / "parts.safetensors"
    _write_csv(data)
    cli("train", "--data", str(data), "--model", "mlp", "--hidden", "16", "--epochs", "30", "--lr", "0.01",
        "--threads", "1", "--out", str(model))
    return data, model, json.loads(cli("predict", str(model), str(data), "--json"))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("images")
    data, model = folder / "photos", folder / "photos.safetensors"
    _write_pngs(data)
    cli("train", "--data", str(data), "--model", "mlp", "--hidden", "16", "--epochs", "3", "--data-option", "size=16",
        "--threads", "1", "--out", str(model))
    return data, model, json.loads(cli("predict", str(model), str(data), "--json"))


def _classes(model: Path) -> list[str]:
    return json.loads(cli("inspect", "checkpoint", str(model), "--json"))["metadata"]["class_names"]


def _raw_csv_features(path: Path) -> np.ndarray:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return np.array([[float(v) for v in row[:-1]] for row in rows], dtype=np.float32)  # the target column dropped


def _raw_pixels(folder: Path, names: list[str]) -> np.ndarray:
    """The PNGs as a user's code reads them: uint8 RGB from Pillow, channels first."""
    return np.stack([np.asarray(Image.open(folder / n).convert("RGB")).transpose(2, 0, 1) for n in names])


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_an_export_fed_raw_csv_values_predicts_what_studio_predict_does(csv_run, tmp_path: Path, suffix: str) -> None:
    data, model, predicted = csv_run
    out = tmp_path / f"parts{suffix}"
    _export(model, out)
    features = _raw_csv_features(data)
    readme_way = np.loadtxt(data, delimiter=",", skiprows=1, usecols=[0, 1], dtype=np.float32)  # README's line
    np.testing.assert_array_equal(readme_way, features)
    logits = (_onnx if suffix == ".onnx" else _jit)(out, features)
    classes = _classes(model)
    assert [classes[i] for i in logits.argmax(axis=1)] == predicted["labels"]
    assert len(set(predicted["labels"])) == 3  # a real model, not one class for everything


def test_the_bare_network_is_still_there_behind_a_switch_and_takes_normalised_inputs(csv_run, tmp_path) -> None:
    data, model, predicted = csv_run
    out = tmp_path / "bare.onnx"
    text = _export(model, out, "--bare")
    assert "normalised" in text
    meta = json.loads(ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map["studio.preprocessing"])
    x = (_raw_csv_features(data) - np.array(meta["x_mean"], np.float32)) / np.array(meta["x_std"], np.float32)
    classes = _classes(model)
    assert [classes[i] for i in _onnx(out, x.astype(np.float32)).argmax(axis=1)] == predicted["labels"]


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_an_export_fed_the_pngs_pixels_gives_studio_predicts_probabilities(image_run, tmp_path, suffix) -> None:
    data, model, predicted = image_run
    pixels = _raw_pixels(data, predicted["names"])
    runner = _onnx if suffix == ".onnx" else _jit
    unit = tmp_path / f"unit{suffix}"
    _export(model, unit, "--softmax")  # pixels 0..1, as Studio's image reader gives them
    probs = runner(unit, pixels.astype(np.float32) / 255)
    np.testing.assert_allclose(probs, np.array(predicted["probabilities"]), atol=1e-4)
    byte = tmp_path / f"byte{suffix}"
    _export(model, byte, "--softmax", "--pixels", "0..255")  # pixels as Pillow gives them
    np.testing.assert_allclose(runner(byte, pixels.astype(np.float32)), np.array(predicted["probabilities"]),
                               atol=1e-4)
    assert [CLASSES[i] for i in probs.argmax(axis=1)] == predicted["labels"]


def test_the_files_name_classes_preprocessing_layout_and_version(image_run, tmp_path: Path) -> None:
    from studio import __version__

    _, model, _ = image_run
    _export(model, tmp_path / "m.onnx")
    props = ort.InferenceSession(str(tmp_path / "m.onnx")).get_modelmeta().custom_metadata_map
    assert json.loads(props["studio.class_names"]) == list(CLASSES)
    assert props["studio.input_layout"] == "NCHW" and props["studio.version"] == __version__
    prep = json.loads(props["studio.preprocessing"])
    assert prep["input_shape"] == [3, 16, 16] and len(prep["x_mean"]) == 3
    assert json.loads(props["studio"])["preprocessing_in_graph"] is True
    _export(model, tmp_path / "m.pt")
    extra = {"studio.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    doc = json.loads(extra["studio.json"])
    assert doc["class_names"] == list(CLASSES) and doc["input"]["layout"] == "NCHW"
    assert doc["preprocessing"] == prep and doc["studio_version"] == __version__


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_the_printed_loader_code_runs_as_printed(image_run, tmp_path: Path, suffix: str) -> None:
    _, model, _ = image_run
    text = _export(model, tmp_path / f"m{suffix}")
    snippet = text.split("Load it with:\n", 1)[1]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "snippet", "exec"), {})  # noqa: S102 - the code the command printed
    shown = eval(printed.getvalue())  # noqa: S307 - a printed list of class names
    assert len(shown) == 2 and set(shown) <= set(CLASSES)


def _readme_block(heading: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_onnxruntime_snippet_runs_on_a_photo_as_written(image_run, tmp_path: Path, monkeypatch) -> None:
    data, model, predicted = image_run
    snippet = _readme_block("### Exports that run without Studio")
    _export(model, tmp_path / "photos.onnx", "--softmax")  # the command the README's first line shows
    first = predicted["names"][0]
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    (tmp_path / "photos" / "cat" / "cat_01.png").write_bytes((data / first).read_bytes())
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102 - the README's code, as written
    label, probability = printed.getvalue().split()
    assert label == predicted["labels"][0]
    assert float(probability) == pytest.approx(max(predicted["probabilities"][0]), abs=1e-4)


@pytest.mark.parametrize("kind,shape,task,softmax", [
    ("vector", (5,), "regression", False), ("sequence", (7, 3), "classification", True),
    ("image", (2, 6, 6), "binary", True), ("image", (3, 4, 4), "multilabel", False)])
def test_the_exported_graph_computes_what_predict_computes_for_every_kind_of_input(kind, shape, task, softmax):
    from studio.backend.pytorch.data.preprocessing import Preprocessing
    from studio.backend.pytorch.deploy import RawInputModel
    from studio.backend.pytorch.inference import probabilities

    gen = torch.Generator().manual_seed(0)
    channels = shape[0] if kind == "image" else shape[-1]
    outputs = 2 if task == "regression" else 4
    prep = Preprocessing(input_kind=kind, input_shape=shape, x_mean=tuple(torch.rand(channels, generator=gen).tolist()),
                         x_std=tuple((torch.rand(channels, generator=gen) + 0.5).tolist()),
                         y_mean=(10.0, -3.0) if task == "regression" else (),
                         y_std=(2.0, 0.5) if task == "regression" else ())
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(shape)), outputs)).eval()
    x = torch.rand((5, *shape), generator=gen) * 3
    with torch.no_grad():
        want = net(prep.apply(x))  # what the predict handler computes from the inputs its readers return
        want = prep.inverse_target(want) if task == "regression" else probabilities(task, want) if softmax else want
        got = RawInputModel(net, prep, task, probabilities=softmax)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
