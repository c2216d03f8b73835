"""What a new user trips over on the command line (issue 22, points 3 to 5): the data given where a
user writes it first, predictions that say which file they are for, and errors that name a command.

In-process ``studio.cli.run`` on the sample image folder (``resources/samples/shapes``, PNGs in one
sub-folder per class) and a model trained on it once for the module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

from studio.backend.core.registry import default_registry
from studio.backend.core.requests import LoadRequest
from studio.backend.pytorch.model_store import store
from studio.cli import run
from studio.cli.exit_codes import BAD_INPUT, OK

pytestmark = pytest.mark.req("REQ-X01")

SHAPES = Path(__file__).resolve().parents[2] / "resources" / "samples" / "shapes"
SMALL = ["--data-option", "size=16", "--threads", "1"]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shapes") / "shapes.safetensors"
    code, _, err = cli("train", "--data", str(SHAPES), "--model", "mlp", "--hidden", "16", "--epochs", "1", *SMALL,
                       "--out", str(out))
    assert code == OK, err
    return out


def _listed(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


# -- 3. the data where a user writes it first ------------------------------------------------------------

def test_inspect_data_takes_a_folder_as_its_first_argument_like_the_data_flag() -> None:
    code, positional, err = cli("inspect", "data", str(SHAPES), "--json", *SMALL[:2])
    assert code == OK, err
    code, flagged, err = cli("inspect", "data", "--data", str(SHAPES), "--json", *SMALL[:2])
    assert code == OK, err
    assert json.loads(positional) == json.loads(flagged)
    assert json.loads(positional)["class_names"] == ["circle", "square", "triangle"]


def test_evaluate_takes_the_data_as_the_argument_after_the_model(shapes_model: Path) -> None:
    code, text, err = cli("evaluate", str(shapes_model), str(SHAPES), "--split", "train", "--json")
    assert code == OK, err
    assert json.loads(text)["num_samples"] > 0


def test_a_folder_where_a_project_file_goes_names_the_data_flag(tmp_path: Path) -> None:
    code, _, err = cli("train", str(SHAPES), "--epochs", "1", "--out", str(tmp_path / "m.safetensors"))
    assert code == BAD_INPUT
    assert f"--data {SHAPES}" in err and "not a project file" in err
    assert not (tmp_path / "m.safetensors").exists()


# -- 4. predictions name their files ---------------------------------------------------------------------

def test_predict_on_a_folder_starts_each_row_with_its_file_in_listed_order(shapes_model: Path) -> None:
    code, text, err = cli("predict", str(shapes_model), str(SHAPES), "--top-k", "1")
    assert code == OK, err
    rows = [line.split("\t") for line in text.splitlines()]
    assert [r[0] for r in rows] == _listed(SHAPES)  # "circle/circle_00.png", ... relative to the folder
    assert {r[1].split()[0] for r in rows} <= {"circle", "square", "triangle"}


def test_predict_json_carries_the_paths_and_out_writes_them_to_a_csv(shapes_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "predictions.csv"
    code, text, err = cli("predict", str(shapes_model), str(SHAPES), "--json", "--out", str(target))
    assert code == OK, err
    result = json.loads(text)
    assert result["names"] == _listed(SHAPES)
    with open(target, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["input", "label", "probability", "p_circle", "p_square", "p_triangle"]
    assert [row[0] for row in table[1:]] == result["names"]
    assert [row[1] for row in table[1:]] == result["labels"]
    for row, probs in zip(table[1:], result["probabilities"]):
        assert [float(v) for v in row[3:]] == pytest.approx(probs)
        assert float(row[2]) == pytest.approx(max(probs))
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]  # written atomically: no temporary left


def test_predict_refuses_an_out_path_that_is_not_a_csv_before_any_work(shapes_model: Path, tmp_path: Path) -> None:
    code, _, err = cli("predict", str(shapes_model), str(SHAPES), "--out", str(tmp_path / "p.txt"))
    assert code == BAD_INPUT and ".csv" in err
    assert not list(tmp_path.iterdir())


# -- 5. errors name a command, not a Python function ---------------------------------------------------

def _weights_of(checkpoint: Path) -> dict[str, torch.Tensor]:
    handle = default_registry().get("pytorch", "load")(LoadRequest(path=str(checkpoint))).model
    weights = {k: v.detach().clone() for k, v in store.get(handle).module.state_dict().items()}
    return {k: v + 1.0 for k, v in weights.items()}  # different from the checkpoint's own


def _command_in(err: str) -> list[str]:
    found = re.search(r"studio (import-weights .*?--out \S+?\.safetensors)", err)
    assert found is not None, err
    return found.group(1).split()


@pytest.mark.parametrize("name", ["weights.pth", "plain.safetensors"])
def test_a_plain_weights_file_gets_a_command_to_run_and_that_command_imports_it(shapes_model: Path, tmp_path: Path,
                                                                               name: str) -> None:
    weights = _weights_of(shapes_model)
    path = tmp_path / name
    if name.endswith(".pth"):
        torch.save(weights, path)
    else:
        safetensors.torch.save_file(weights, path)
    shutil.copy(shapes_model, tmp_path / "MODEL.safetensors")
    code, _, err = cli("inspect", "checkpoint", str(path))
    assert code == BAD_INPUT
    assert "import_state_dict" not in err
    if name.endswith(".pth"):
        assert f"studio convert {name}" in err
    command = _command_in(err)  # studio import-weights FILE --into MODEL.safetensors --out NEW.safetensors
    assert command[:2] == ["import-weights", name]
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, text, err = cli(*command)
    finally:
        os.chdir(here)
    assert code == OK, err
    imported = tmp_path / "NEW.safetensors"
    handle = default_registry().get("pytorch", "load")(LoadRequest(path=str(imported))).model
    got = store.get(handle).module.state_dict()
    assert all(torch.equal(got[k].cpu(), v) for k, v in weights.items())
    meta = default_registry().get("pytorch", "load")(LoadRequest(path=str(imported))).metadata
    assert meta["class_names"] == ["circle", "square", "triangle"]  # the checkpoint's classes are kept


def test_predict_out_writes_a_regression_models_values_by_line(tmp_path: Path) -> None:
    data = tmp_path / "prices.csv"
    rows = ["area,rooms,price"] + [f"{50 + i},{1 + i % 4},{1000 + 10 * i + 3 * (i % 4)}" for i in range(40)]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    model = tmp_path / "prices.safetensors"
    code, _, err = cli("train", "--data", str(data), "--model", "mlp", "--hidden", "8", "--epochs", "1",
                       "--threads", "1", "--out", str(model))
    assert code == OK, err
    code, text, err = cli("predict", str(model), str(data), "--json", "--out", str(tmp_path / "p.csv"))
    assert code == OK, err
    result = json.loads(text)
    assert result["task"] == "regression" and result["names"][:2] == ["line 2", "line 3"]  # line 1 is the header
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["input", "value"]
    assert [(r[0], float(r[1])) for r in table[1:]] == [(n, pytest.approx(v[0])) for n, v in
                                                        zip(result["names"], result["values"])]
