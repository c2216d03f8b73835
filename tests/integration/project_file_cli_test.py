"""REQ-X02: a project saved the way the window saves it runs unchanged with ``studio train``, and the
checkpoint is the window's format, bit-identical to an in-process run of the same request."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from studio.backend.core.project import Project, load_project, project_text, save_project
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import (
    DataSpec,
    LoadRequest,
    ModelSpec,
    RuntimeConfig,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)
from studio.cli import run

pytestmark = pytest.mark.req("REQ-X02")

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "example.studio.json"


def window_request() -> TrainRequest:
    """What the window's Train button sends for spirals, a small MLP and two epochs on one CPU thread."""
    return TrainRequest(data=DataSpec(source="builtin", name="spirals"),
                        model=ModelSpec(name="mlp", hparams={"hidden": [16]}),
                        config=TrainConfig(epochs=2, batch_size=32, lr=0.01),
                        runtime=RuntimeConfig(device="cpu", seed=5, threads=1))


def studio_doc(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["studio"])


def test_a_window_project_runs_unchanged_and_matches_an_in_process_run(studio, tmp_path: Path) -> None:
    project_path = save_project(tmp_path / "spirals.studio.json",
                                Project.from_request(window_request(), output=str(tmp_path / "spirals.safetensors")))
    proc = studio("train", str(project_path))
    assert proc.returncode == 0, proc.stderr
    cli_file = tmp_path / "spirals.safetensors"  # the project's own output, written relative to its folder
    assert cli_file.is_file()

    registry = default_registry()
    loaded = registry.get("pytorch", "load")(LoadRequest(path=str(cli_file)))
    assert loaded.metadata["model"]["spec"]["hparams"] == {"hidden": [16]}

    threads = torch.get_num_threads()
    try:
        result = registry.get("pytorch", "train")(load_project(project_path).to_request())
    finally:
        torch.set_num_threads(threads)
    here = tmp_path / "in-process.safetensors"
    registry.get("pytorch", "save")(SaveRequest(model=result.model, path=str(here)))

    cli_doc, here_doc = studio_doc(cli_file), studio_doc(here)
    assert set(cli_doc) == set(here_doc)  # the same metadata fields as a window-saved checkpoint
    for doc in (cli_doc, here_doc):
        doc.pop("created_utc")
    assert cli_doc == here_doc
    a, b = load_file(cli_file), load_file(here)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_bad_project_file_exits_2_naming_the_key_and_its_line(studio, tmp_path: Path) -> None:
    text = project_text(Project.from_request(window_request())).replace('"batch_size"', '"batchsize"')
    (tmp_path / "bad.studio.json").write_text(text)
    proc = studio("train", "bad.studio.json", "--out", "m.safetensors")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"batchsize"' in row)
    assert proc.returncode == 2
    assert f"line {line}" in proc.stderr and "'batchsize'" in proc.stderr and "Did you mean 'batch_size'?" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "logs") == ["bad.studio.json"]


def test_flags_override_the_project_and_run_follows_its_operation(tmp_path: Path) -> None:
    project_path = save_project(tmp_path / "p.studio.json", Project.from_request(window_request()))
    out, err = io.StringIO(), io.StringIO()
    code = run(["run", str(project_path), "--epochs", "1", "--hidden", "4", "--json",
                "--out", str(tmp_path / "m.safetensors")], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    started = lines[0]
    assert started["kind"] == "RunStarted" and started["total_epochs"] == 1 and started["config"]["lr"] == 0.01
    doc = studio_doc(tmp_path / "m.safetensors")
    assert doc["model"]["spec"]["hparams"] == {"hidden": [4]}


def test_the_shipped_example_project_runs(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["train", str(EXAMPLE), "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "ex.safetensors")],
               stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert (tmp_path / "ex.safetensors").is_file()
