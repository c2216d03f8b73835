"""REQ-X02 (and the file format of REQ-U13): project files round-trip, resolve their paths against
their folder, are written atomically, and every defect is reported with its key and line."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from studio.backend.core.project import (
    FORMAT_VERSION,
    Project,
    ProjectError,
    load_project,
    parse_project,
    project_text,
    save_project,
)
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    ModelSpec,
    RuntimeConfig,
    TrainConfig,
    TrainRequest,
)

pytestmark = pytest.mark.req("REQ-X02")

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "example.studio.json"


def a_project(**changes) -> Project:
    base = dict(data=DataSpec(source="csv", name="plants", path="data/plants.csv", target="species",
                              options={"missing": "drop"}),
                model=ModelSpec(name="mlp", preset="tiny", hparams={"hidden": [32, 16]}),
                config=TrainConfig(epochs=3, lr=0.01, class_weights=(1.0, 2.0), early_stopping={"patience": 2}),
                runtime=RuntimeConfig(device="cpu", seed=7, threads=1), output="out/model.safetensors")
    base.update(changes)
    return Project(**base)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_a_saved_project_opens_as_the_same_project_with_paths_resolved(tmp_path: Path) -> None:
    path = save_project(tmp_path / "run.studio.json", a_project())
    loaded = load_project(path)
    assert loaded.data.path == str(tmp_path / "data" / "plants.csv")
    assert loaded.output == str(tmp_path / "out" / "model.safetensors")
    original = a_project()
    assert loaded == dataclasses.replace(original, data=dataclasses.replace(original.data, path=loaded.data.path),
                                         output=loaded.output)
    # saving the loaded project writes the paths inside the folder relative again: the folder can move
    save_project(path, loaded)
    written = json.loads(path.read_text())
    assert written["data"]["path"] == "data/plants.csv" and written["output"] == "out/model.safetensors"
    assert "kind" not in path.read_text()  # plain, hand-editable JSON


def test_a_project_gives_the_request_the_window_sends_and_back() -> None:
    request = TrainRequest(data=DataSpec(name="wine"), model=ModelSpec(name="mlp", hparams={"hidden": [8]}),
                           config=TrainConfig(epochs=2), runtime=RuntimeConfig(seed=3))
    assert Project.from_request(request).to_request() == request
    distill = DistillRequest(teacher="/t.safetensors", student=ModelSpec(name="linear"),
                             distill=DistillConfig(temperature=2.0), teachers=("/u.safetensors",))
    project = Project.from_request(distill, output="/s.safetensors")
    assert project.operation == "distill" and project.to_request() == distill
    assert parse_project(project_text(project)) == project


def test_every_key_may_be_left_out() -> None:
    assert parse_project("{}") == Project()
    assert parse_project('{"config": {"epochs": 2}}').config == TrainConfig(epochs=2)


def test_the_shipped_example_is_a_valid_project() -> None:
    project = load_project(EXAMPLE)
    assert project.operation == "train" and project.model.name == "mlp"


@pytest.mark.parametrize("edit, key, fragment, words", [
    (('"epochs": 3', '"epoch": 3'), "config.epoch", '"epoch": 3', "Did you mean 'epochs'?"),
    (('"epochs": 3', '"epochs": "three"'), "config.epochs", '"epochs": "three"', "must be a whole number"),
    (('"seed": 7', '"seed": 7.5'), "runtime.seed", '"seed": 7.5', "must be a whole number"),
    (('"preset": "tiny"', '"preset": "tiny", "colour": "red"'), "model.colour", '"colour"', "no setting 'colour'"),
    (('"operation": "train"', '"operation": "fly"'), "operation", '"operation"', "must be one of train, distill"),
    (('"version": 1', '"version": 99'), "version", '"version"', "newer than this Studio reads"),
    (('"format": "studio.project"', '"format": "other"'), "format", '"format"', "not a Studio project file"),
])
def test_a_bad_setting_is_reported_with_its_key_and_line(tmp_path: Path, edit, key, fragment, words) -> None:
    text = project_text(a_project()).replace(*edit)
    path = tmp_path / "bad.studio.json"
    path.write_text(text)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    err = info.value
    assert err.field == key and err.line == line_of(text, fragment)
    assert f"line {err.line}" in str(err) and words in str(err) and str(path) in str(err)


def test_text_that_is_not_json_is_reported_with_its_line(tmp_path: Path) -> None:
    text = project_text(a_project()).replace('"epochs": 3,', '"epochs": 3')
    path = tmp_path / "bad.studio.json"
    path.write_text(text)
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert info.value.code == "project.bad_json" and info.value.line == line_of(text, '"batch_size"')


def test_a_missing_file_and_a_distillation_without_teacher_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "none.studio.json")
    with pytest.raises(ProjectError) as info:
        parse_project('{\n  "operation": "distill"\n}')
    assert info.value.code == "project.missing_teacher" and info.value.line == 2


def test_saving_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_project(tmp_path / "p.studio.json", a_project())
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ProjectError) as info:
        save_project(path, a_project(config=TrainConfig(epochs=50)))
    assert info.value.code == "project.unwritable"
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.studio.json"]


def test_the_format_version_is_written() -> None:
    assert json.loads(project_text(Project()))["version"] == FORMAT_VERSION
