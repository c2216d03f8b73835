"""Property-based fuzzing of every file reader a person can point Studio at (REQ-H11, REQ-D02, REQ-D04, REQ-S05, REQ-U13).

The CSV and NumPy loaders (``load_data``), the checkpoint loader behind the ``load`` handler
(``model_files.load_trained``) and the project-file reader (``load_project``) are fed random bytes
and mutated valid files (bytes flipped, inserted, deleted, duplicated, cut). Checkpoints are also
mutated one level up, in their JSON documents, and rewritten with valid checksums, which is where a
deliberately edited file lands. The property: only ``StudioError`` subclasses escape, with a code
of the reader's own area (``data.*``, ``checkpoint.*``, ``project.*``).

Example counts: each test runs ``STUDIO_FUZZ_EXAMPLES`` examples, 60 by default (derandomised, so CI
runs the same examples every time). A longer, random run for a manual check::

    STUDIO_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/reliability/fuzz_loaders_test.py -p no:randomly
"""

from __future__ import annotations

import io
import json
import os
import pathlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from studio.backend.core.errors import StudioError
from studio.backend.core.requests import DataSpec, SaveRequest
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import model_files
from studio.backend.pytorch.serialization import container

EXAMPLES = int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "60"))
settings.register_profile("studio-fuzz", max_examples=EXAMPLES, deadline=None, database=None,
                          derandomize=EXAMPLES <= 100, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
FUZZ = settings(settings.get_profile("studio-fuzz"))

# -- inputs ------------------------------------------------------------------------------------------

EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.sampled_from("set insert delete dup cut")),
                 min_size=1, max_size=8)


def mutate(data: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    """Apply byte-level edits: set, insert or delete a byte, duplicate a chunk, cut the file."""
    b = bytearray(data)
    for pos, value, op in edits:
        i = pos % (len(b) + 1)
        if op == "set" and i < len(b):
            b[i] = value
        elif op == "insert":
            b.insert(i, value)
        elif op == "delete" and i < len(b):
            del b[i]
        elif op == "dup":
            b[i:i] = b[i:i + value]
        elif op == "cut" and value < 16:  # rarely: most mutated files should keep their length
            del b[i:]
    return bytes(b)


def expect_studio_error(load: Callable[[], object], areas: tuple[str, ...]) -> object:
    """Run ``load``; a failure must be a StudioError of one of ``areas``. Returns the result or the error."""
    try:
        return load()
    except StudioError as exc:
        assert exc.code.startswith(areas), (exc.code, exc.message)
        assert exc.message, exc
        return exc


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("fuzz")


# -- CSV -------------------------------------------------------------------------------------------

CSV_SEEDS = [
    b"sepal,petal,label\n5.1,1.4,setosa\n4.9,1.5,setosa\n6.2,4.5,versicolor\n5.9,4.2,versicolor\n",
    b"a;b;c;y\n1;2;3;0\n4;5;6;1\n7;8;9;0\n1;1;1;1\n",
    b'name,size,colour,price\n"box, large",3,red,9.5\n"tin",1,"blue",2.25\nbag,2,,4\n',
    b"\xef\xbb\xbfx1,x2,target\r\n0.5,1e3,1\r\nNA,2,0\r\n3,-4,1\r\n",
    b"1,2,3\n4,5,6\n7,8,9\n",
]


def _load_csv(path: pathlib.Path) -> object:
    def load() -> object:
        data = data_lib.load_data(DataSpec(source="csv", path=str(path), options={"missing": "mean"}))
        assert data.x.shape[0] == data.y.shape[0] > 0
        return data

    return expect_studio_error(load, ("data.", "request."))


@pytest.mark.req("REQ-H11", "REQ-D02")
@FUZZ
@given(content=st.binary(max_size=400))
def test_random_bytes_as_a_csv_file_give_only_data_errors(folder: pathlib.Path, content: bytes) -> None:
    path = folder / "random.csv"
    path.write_bytes(content)
    _load_csv(path)


@pytest.mark.req("REQ-H11", "REQ-D02")
@FUZZ
@given(seed=st.sampled_from(CSV_SEEDS), edits=EDITS)
def test_mutated_csv_files_load_or_give_data_errors(folder: pathlib.Path, seed: bytes, edits) -> None:  # noqa: ANN001
    path = folder / "mutated.csv"
    path.write_bytes(mutate(seed, edits))
    _load_csv(path)


@pytest.mark.req("REQ-H11", "REQ-D02")
@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list('0123456789,;\t\n\r"., -eEinfaNx')), max_size=300))
def test_csv_like_text_loads_or_gives_data_errors(folder: pathlib.Path, text: str) -> None:
    path = folder / "text.csv"
    path.write_text(text, encoding="utf-8", newline="")
    _load_csv(path)


# -- NumPy -----------------------------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


X = np.arange(24, dtype=np.float32).reshape(8, 3)
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
NUMPY_SEEDS = {
    "X.npy": [_npy(X), _npy(X.astype(np.uint8).reshape(8, 3, 1)), _npy(np.ones((8, 1, 4, 4), dtype=np.float64))],
    "data.npz": [_npz(X=X, y=Y), _npz(X=X, y=Y.astype(np.float32)), np.lib.format.magic(1, 0) + b"\x00" * 8],
}


def _load_numpy(path: pathlib.Path) -> object:
    def load() -> object:
        data = data_lib.load_data(DataSpec(source="numpy", path=str(path)))
        assert data.x.shape[0] == data.y.shape[0] > 0
        return data

    return expect_studio_error(load, ("data.", "request."))


@pytest.mark.req("REQ-H11", "REQ-D04")
@pytest.mark.filterwarnings("ignore::UserWarning")  # numpy: "created on Python 2" for some mangled headers
@FUZZ
@given(name=st.sampled_from(sorted(NUMPY_SEEDS)), content=st.binary(max_size=400))
def test_random_bytes_as_numpy_files_give_only_data_errors(folder: pathlib.Path, name: str, content: bytes) -> None:
    (folder / "y.npy").write_bytes(_npy(Y))
    path = folder / name
    path.write_bytes(content)
    _load_numpy(path)


@pytest.mark.req("REQ-H11", "REQ-D04")
@pytest.mark.filterwarnings("ignore::UserWarning")
@FUZZ
@given(name=st.sampled_from(sorted(NUMPY_SEEDS)), which=st.integers(0, 2), edits=EDITS, y_edits=EDITS,
       damage_y=st.booleans())
def test_mutated_numpy_files_load_or_give_data_errors(folder: pathlib.Path, name: str, which: int, edits,  # noqa: ANN001
                                                      y_edits, damage_y: bool) -> None:  # noqa: ANN001
    (folder / "y.npy").write_bytes(mutate(_npy(Y), y_edits) if damage_y else _npy(Y))
    path = folder / name
    path.write_bytes(mutate(NUMPY_SEEDS[name][which], edits))
    _load_numpy(path)


# -- checkpoints -----------------------------------------------------------------------------------


class Saved(list):
    """(bytes, tensors, metadata) of a model and of a training checkpoint; a short repr for failure reports."""

    def __repr__(self) -> str:
        return "<a model and a training checkpoint>"

    _repr_pretty_ = None  # hypothesis prints arguments with its pretty printer: use __repr__


@pytest.fixture(scope="module")
def saved(registry, trained, tmp_path_factory) -> Saved:
    """A model and a training checkpoint: (bytes, tensors, metadata) of each."""
    folder = tmp_path_factory.mktemp("valid")
    out = Saved()
    for training_state in (False, True):
        path = folder / f"valid{int(training_state)}.safetensors"
        registry.call("pytorch", "save", SaveRequest(model=trained.model, path=str(path),
                                                     training_state=training_state))
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
            meta = dict(f.metadata())
        out.append((path.read_bytes(), tensors, meta))
    return out


def _load_checkpoint(path: pathlib.Path) -> object:
    from studio.backend.pytorch.model_store import store

    before = dict(store._models)
    result = expect_studio_error(lambda: model_files.load_trained(str(path)), ("checkpoint.",))
    assert dict(store._models) == before
    return result


@pytest.mark.req("REQ-H11", "REQ-S05")
@FUZZ
@given(content=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x80\x04", b"PK\x03\x04", b"{"]))
def test_random_bytes_as_a_checkpoint_give_only_checkpoint_errors(folder: pathlib.Path, content: bytes,
                                                                  prefix: bytes) -> None:
    path = folder / "random.safetensors"
    path.write_bytes(prefix + content)
    assert isinstance(_load_checkpoint(path), StudioError)


@pytest.mark.req("REQ-H11", "REQ-S05")
@FUZZ
@given(which=st.integers(0, 1), edits=EDITS)
def test_mutated_checkpoints_load_or_give_checkpoint_errors(folder: pathlib.Path, saved, which: int,  # noqa: ANN001
                                                            edits) -> None:  # noqa: ANN001
    path = folder / "mutated.safetensors"
    path.write_bytes(mutate(saved[which][0], edits))
    _load_checkpoint(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**4) | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _edit_json(doc: object, data: st.DataObject) -> object:
    """Replace or delete a few entries anywhere in a JSON document."""
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(_paths(doc)), label="path")
        value = data.draw(JSON, label="value")
        if not path:
            return value
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        if not isinstance(doc, (dict, list)):
            break
    return doc


@pytest.mark.req("REQ-H11", "REQ-S05", "REQ-S07")
@FUZZ
@given(which=st.integers(0, 1), data=st.data())
def test_checkpoints_with_edited_documents_and_valid_checksums_load_or_give_checkpoint_errors(
        folder: pathlib.Path, saved, which: int, data: st.DataObject) -> None:  # noqa: ANN001
    _, tensors, meta = saved[which]
    meta = {k: v for k, v in meta.items() if k != container.INTEGRITY_KEY}
    key = data.draw(st.sampled_from(sorted(meta)), label="document")
    meta[key] = json.dumps(_edit_json(json.loads(meta[key]), data))
    path = folder / "edited.safetensors"
    path.write_bytes(b"")
    container.write_file(path, tensors, meta)
    _load_checkpoint(path)


# -- project files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_module():
    return pytest.importorskip("studio.backend.core.project")


def _load_project(project_module, path: pathlib.Path) -> object:  # noqa: ANN001
    return expect_studio_error(lambda: project_module.load_project(path), ("project.",))


@pytest.mark.req("REQ-H11", "REQ-U13")
@FUZZ
@given(content=st.binary(max_size=300))
def test_random_bytes_as_a_project_file_give_only_project_errors(folder: pathlib.Path, project_module,  # noqa: ANN001
                                                                 content: bytes) -> None:
    path = folder / "random.studio.json"
    path.write_bytes(content)
    assert isinstance(_load_project(project_module, path), StudioError)


@pytest.mark.req("REQ-H11", "REQ-U13")
@FUZZ
@given(edits=EDITS, distill=st.booleans())
def test_mutated_project_files_load_or_give_project_errors(folder: pathlib.Path, project_module, edits,  # noqa: ANN001
                                                           distill: bool) -> None:
    project = project_module.Project(operation="distill", teacher="teacher.safetensors") if distill \
        else project_module.Project(output="model.safetensors")
    path = folder / "mutated.studio.json"
    path.write_bytes(mutate(project_module.project_text(project).encode(), edits))
    _load_project(project_module, path)


@pytest.mark.req("REQ-H11", "REQ-U13")
@FUZZ
@given(data=st.data())
def test_edited_project_documents_load_or_give_project_errors(folder: pathlib.Path, project_module,  # noqa: ANN001
                                                              data: st.DataObject) -> None:
    doc = json.loads(project_module.project_text(project_module.Project(output="m.safetensors")))
    path = folder / "edited.studio.json"
    path.write_text(json.dumps(_edit_json(doc, data), indent=2), encoding="utf-8")
    _load_project(project_module, path)
