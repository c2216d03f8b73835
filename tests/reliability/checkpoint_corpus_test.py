"""A corpus of malformed ``.safetensors`` files, refused by the ``load`` handler (REQ-S05, REQ-H11, REQ-H15).

``tests/unit/pytorch_serialization_unit_test.py`` feeds hand-made headers to ``load_model`` with a toy
builder. Here every file is a real Studio checkpoint (a model checkpoint and a training checkpoint
saved by the ``save`` handler) damaged in one way, and it goes through the handlers a person reaches:
``load``, and for training checkpoints ``train(resume_from=...)``. Each must be refused with a
``checkpoint.*`` code naming the file, and the model store must be unchanged (no partial model).
The metadata cases include documents with a valid checksum that are not Studio's, or are Studio's
with entries of the wrong type, since a checksum is no protection against a file edited on purpose.

Two things people do with files they got from others close the module: save a loaded checkpoint
again, and keep using it while another program rewrites the file in place (loading maps the file; a
model still mapped from it would die with SIGBUS, so that case runs in a forked child).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable

import pytest
import safetensors.torch
import torch
from reliability_helpers import handler_error, stored_models
from safetensors import safe_open

from studio.backend.core.requests import (
    EvaluateRequest,
    LoadRequest,
    PredictRequest,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)
from studio.backend.pytorch.serialization import container

Edit = Callable[[bytes, pathlib.Path], bytes]


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join(header: dict | bytes, body: bytes) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _tensors(header: dict) -> list[str]:
    """Tensor names in file order."""
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])


def _edit_header(change: Callable[[dict], object]) -> Edit:
    def edit(data: bytes, _: pathlib.Path) -> bytes:
        header, body = _split(data)
        change(header)
        return _join(header, body)

    return edit


def _shift(delta: int, extra: bytes = b"") -> Edit:
    """Move the second tensor's bytes by ``delta``: overlap (< 0) or a gap (> 0)."""

    def edit(data: bytes, _: pathlib.Path) -> bytes:
        header, body = _split(data)
        name = _tensors(header)[1]
        a, b = header[name]["data_offsets"]
        header[name]["data_offsets"] = [a + delta, b + delta]
        return _join(header, body + extra)

    return edit


def _duplicated(data: bytes) -> bytes:
    """The first tensor's entry written twice (JSON allows it; a checkpoint must not)."""
    header, body = _split(data)
    items = [*header.items(), (_tensors(header)[0], header[_tensors(header)[0]])]
    text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items) + "}"
    return _join(text.encode(), body)


SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "U8": 1, "I8": 1, "BOOL": 1}


def _retype(same_size: bool) -> Edit:
    """Give the first tensor another known dtype of the same element size (or of another size)."""

    def change(header: dict) -> None:
        entry = header[_tensors(header)[0]]
        size = SIZES[entry["dtype"]]
        entry["dtype"] = next(d for d, n in SIZES.items() if d != entry["dtype"] and (n == size) == same_size)

    return _edit_header(change)


def _set_dtype(dtype: str) -> Edit:
    def change(header: dict) -> None:
        header[_tensors(header)[0]]["dtype"] = dtype

    return _edit_header(change)


def _raw(data: bytes, _: pathlib.Path, *, at: str, make: Callable[[bytes], bytes]) -> bytes:
    """Replace the bytes of ``at`` (first occurrence inside the header) keeping the header's length."""
    (n,) = struct.unpack("<Q", data[:8])
    head = data[8:8 + n]
    i = head.index(at.encode())
    new = make(head[i:i + len(at)])
    assert len(new) == len(at)
    return data[:8] + head[:i] + new + head[i + len(at):] + data[8 + n:]


def _rewrite(document: Callable[[dict], object] | None = None, state: Callable[[dict], object] | None = None,
             metadata: Callable[[dict], object] | None = None) -> Edit:
    """Rewrite the file through the container writer, so the damaged document has a valid checksum.

    ``document`` and ``state`` return the new Studio document and training-state document.
    """

    def edit(data: bytes, path: pathlib.Path) -> bytes:
        tensors, meta = _contents(data, path)
        meta.pop(container.INTEGRITY_KEY)
        if document is not None:
            doc = document(json.loads(meta["studio"]))
            meta["studio"] = doc if isinstance(doc, str) else json.dumps(doc)
        if state is not None:
            meta["studio.state"] = json.dumps(state(json.loads(meta["studio.state"])))
        if metadata is not None:
            metadata(meta)
        path.write_bytes(b"")
        container.write_file(path, tensors, meta)
        return path.read_bytes()

    return edit


def _contents(data: bytes, path: pathlib.Path) -> tuple[dict, dict]:
    """Tensors (copied out of the file's memory map) and metadata of a checkpoint's bytes."""
    source = path.with_name(path.name + ".source")
    source.write_bytes(data)
    with safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
        meta = dict(f.metadata())
    return tensors, meta


def _plain(data: bytes, path: pathlib.Path) -> bytes:
    """The same tensors written by plain safetensors: no Studio metadata at all."""
    tensors, _ = _contents(data, path)
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt", "producer": "someone else"})
    return path.read_bytes()


def _set(key: str, value: object) -> Callable[[dict], dict]:
    return lambda doc: {**doc, key: value}


def _without(key: str) -> Callable[[dict], dict]:
    return lambda doc: {k: v for k, v in doc.items() if k != key}


def _spec(change: dict) -> Callable[[dict], dict]:
    return lambda doc: {**doc, "model": {**doc["model"], "spec": {**doc["model"]["spec"], **change}}}


def _trainer(change: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """Edit the trainer's part of a training-state document."""
    return lambda s: {**s, "extra": {**s["extra"], "trainer": change(dict(s["extra"]["trainer"]))}}


def _optimizer_slot(value: object) -> Callable[[dict], dict]:
    """Replace the optimiser's state of its first parameter (a ``$dict`` of ``[id, slot]`` pairs)."""

    def edit(s: dict) -> dict:
        s["optimizer"]["state"]["$dict"][0][1] = value
        return s

    return edit


# name -> (edit, the codes it may raise); every case is applied to a model and to a training checkpoint
CORPUS: dict[str, tuple[Edit, set[str]]] = {
    "header_larger_than_file": (lambda d, p: struct.pack("<Q", len(d)) + d[8:], {"checkpoint.corrupt"}),
    "header_length_absurd": (lambda d, p: struct.pack("<Q", 2**63 + 5) + d[8:], {"checkpoint.corrupt"}),
    "header_length_one": (lambda d, p: struct.pack("<Q", 1) + d[8:], {"checkpoint.corrupt"}),
    "empty": (lambda d, p: b"", {"checkpoint.corrupt"}),
    "truncated_in_length": (lambda d, p: d[:5], {"checkpoint.corrupt"}),
    "truncated_in_header": (lambda d, p: d[:8 + struct.unpack("<Q", d[:8])[0] // 3], {"checkpoint.corrupt"}),
    "truncated_after_header": (lambda d, p: d[:8 + struct.unpack("<Q", d[:8])[0]], {"checkpoint.corrupt"}),
    "truncated_in_data": (lambda d, p: d[:len(d) - len(d) // 3], {"checkpoint.corrupt"}),
    "truncated_by_one_byte": (lambda d, p: d[:-1], {"checkpoint.corrupt"}),
    "trailing_bytes": (lambda d, p: d + b"\x00" * 16, {"checkpoint.corrupt"}),
    "trailing_garbage_in_header": (lambda d, p: _raw(d, p, at='"__metadata__"', make=lambda b: b"\x00" * len(b)),
                                   {"checkpoint.corrupt"}),
    "not_utf8": (lambda d, p: _raw(d, p, at="studio.checkpoint", make=lambda b: b"\xff\xfe" + b[2:]),
                 {"checkpoint.corrupt"}),
    "bad_json": (lambda d, p: _raw(d, p, at='":', make=lambda b: b'";'), {"checkpoint.corrupt"}),
    "header_not_an_object": (lambda d, p: _join(b"[1, 2, 3]", _split(d)[1]), {"checkpoint.corrupt"}),
    "duplicate_tensor_name": (lambda d, p: _duplicated(d), {"checkpoint.corrupt"}),
    "overlapping_offsets": (_shift(-4), {"checkpoint.corrupt"}),
    "gapped_offsets": (_shift(+4, extra=b"\x00" * 4), {"checkpoint.corrupt"}),
    "begin_after_end": (_edit_header(lambda h: h[_tensors(h)[0]].update(data_offsets=[8, 4])), {"checkpoint.corrupt"}),
    "negative_shape": (_edit_header(lambda h: h[_tensors(h)[0]].update(shape=[-1])), {"checkpoint.corrupt"}),
    "wrong_dtype_size": (_retype(same_size=False), {"checkpoint.corrupt"}),
    "same_size_other_dtype": (_retype(same_size=True), {"checkpoint.corrupt"}),
    "unknown_dtype": (_set_dtype("F24"), {"checkpoint.corrupt"}),
    "metadata_not_texts": (_edit_header(lambda h: h["__metadata__"].update(studio={"format": "studio.checkpoint"})),
                           {"checkpoint.corrupt"}),
    "integrity_removed": (_edit_header(lambda h: h["__metadata__"].pop(container.INTEGRITY_KEY)),
                          {"checkpoint.corrupt"}),
    # metadata that is not Studio's, or Studio's damaged; rewritten with valid checksums
    "plain_safetensors": (_plain, {"checkpoint.not_studio"}),
    "another_programs_document": (_rewrite(document=lambda d: {"format": "their.tool", "version": 3}),
                                  {"checkpoint.not_studio"}),
    "document_not_json": (_rewrite(document=lambda d: "{not json"), {"checkpoint.corrupt"}),
    "document_a_list": (_rewrite(document=lambda d: [d]), {"checkpoint.not_studio"}),
    "newer_major_format": (_rewrite(document=_set("format_version", "2.0")), {"checkpoint.too_new"}),
    "unreadable_format_version": (_rewrite(document=_set("format_version", "one")), {"checkpoint.corrupt"}),
    "ancient_format": (_rewrite(document=_set("format_version", "0.1")), {"checkpoint.too_old"}),
    "no_model_entry": (_rewrite(document=_without("model")), {"checkpoint.bad_spec"}),
    "model_entry_a_text": (_rewrite(document=_set("model", "mlp")), {"checkpoint.bad_spec"}),
    "unknown_architecture": (_rewrite(document=_spec({"name": "no-such-net"})), {"checkpoint.bad_spec"}),
    "impossible_hyperparameter": (_rewrite(document=_spec({"hparams": {"hidden": "big"}})), {"checkpoint.bad_spec"}),
    "unknown_spec_key": (_rewrite(document=_spec({"colour": "red"})), {"checkpoint.bad_spec"}),
    "other_architecture": (_rewrite(document=_spec({"name": "linear", "hparams": {}})), {"checkpoint.mismatch"}),
    "class_names_a_text": (_rewrite(document=_set("class_names", "0123456789")), {"checkpoint.corrupt"}),
    "class_names_numbers": (_rewrite(document=_set("class_names", list(range(10)))), {"checkpoint.corrupt"}),
    "unknown_task": (_rewrite(document=_set("task", "astrology")), {"checkpoint.corrupt"}),
    "preprocessing_a_number": (_rewrite(document=_set("preprocessing", 7)), {"checkpoint.corrupt"}),
    "metrics_a_list": (_rewrite(document=_set("metrics", [1, 2])), {"checkpoint.corrupt"}),
    "aliases_a_list": (_rewrite(document=_set("aliases", [["a", "b"]])), {"checkpoint.corrupt"}),
    "aliases_a_number": (_rewrite(document=_set("aliases", 5)), {"checkpoint.corrupt"}),
    "alias_to_a_list": (_rewrite(document=_set("aliases", {"extra.weight": ["head.weight"]})),
                        {"checkpoint.corrupt"}),
    "alias_to_nothing": (_rewrite(document=_set("aliases", {"extra.weight": "nowhere"})), {"checkpoint.corrupt"}),
    "training_config_invalid": (_rewrite(document=_set("training_config", {"epochs": "many"})),
                                {"checkpoint.corrupt"}),
    "data_spec_unknown_key": (_rewrite(document=_set("data", {"source": "builtin", "colour": 1})),
                              {"checkpoint.corrupt"}),
}

# damage to the training state of a training checkpoint (valid checksums)
TRAINING_CORPUS: dict[str, tuple[Edit, set[str]]] = {
    "state_not_json": (_rewrite(metadata=lambda m: m.update({"studio.state": "{oops"})), {"checkpoint.corrupt"}),
    "state_missing": (_rewrite(metadata=lambda m: m.pop("studio.state")), {"checkpoint.no_training_state"}),
    "state_without_optimizer": (_rewrite(state=_without("optimizer")), {"checkpoint.corrupt"}),
    "state_tag_of_wrong_shape": (_rewrite(state=_set("optimizer", {"$dict": [None]})), {"checkpoint.corrupt"}),
    "state_refers_to_missing_tensor": (_rewrite(state=_set("rng", {"$tensor": "state/rng/nowhere"})),
                                       {"checkpoint.corrupt"}),
    "trainer_state_without_loop": (_rewrite(state=_trainer(_without("loop"))), {"checkpoint.corrupt"}),
    "trainer_state_of_wrong_type": (_rewrite(state=_trainer(_set("early_stopping", 3))), {"checkpoint.corrupt"}),
    "trainer_seed_a_list": (_rewrite(state=_trainer(_set("seed", [1]))), {"checkpoint.corrupt"}),
    "trainer_task_changed": (_rewrite(state=_trainer(_set("task", "regression"))), {"checkpoint.incompatible"}),
    "optimizer_slot_a_list": (_rewrite(state=_optimizer_slot([])), {"checkpoint.corrupt"}),
    "training_kind_without_config": (_rewrite(document=_set("training_config", None)), {"checkpoint.corrupt"}),
}


@pytest.fixture(scope="module")
def checkpoints(registry, trained, tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("valid")
    out = {}
    for kind, training_state in (("model", False), ("training", True)):
        path = folder / f"{kind}.safetensors"
        registry.call("pytorch", "save", SaveRequest(model=trained.model, path=str(path),
                                                     training_state=training_state))
        out[kind] = path.read_bytes()
    return out


def _refused(registry, path: pathlib.Path, codes: set[str], request) -> None:  # noqa: ANN001
    before = stored_models()
    err = handler_error(registry, "load" if isinstance(request, LoadRequest) else "train", request)
    assert err.code in codes, (path.name, err.code, err.message)
    assert err.code.startswith("checkpoint."), err
    assert path.name in err.message or path.name in str(err.value), err.message
    assert stored_models() == before, "a failed load left a model in the store"


@pytest.mark.req("REQ-S05", "REQ-H11", "REQ-H15")
@pytest.mark.parametrize("kind", ["model", "training"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_a_malformed_checkpoint_is_refused_by_the_load_handler_and_builds_no_model(
        registry, checkpoints, tmp_path: pathlib.Path, case: str, kind: str) -> None:
    edit, codes = CORPUS[case]
    path = tmp_path / f"{case}.safetensors"
    damaged = edit(checkpoints[kind], path)
    assert damaged != checkpoints[kind]
    path.write_bytes(damaged)
    _refused(registry, path, codes, LoadRequest(path=str(path)))
    if kind == "training":  # the other way in: resuming a run from it
        _refused(registry, path, codes | {"checkpoint.no_training_state"},
                 TrainRequest(config=TrainConfig(epochs=2, batch_size=256), resume_from=str(path)))


@pytest.mark.req("REQ-S05", "REQ-S07", "REQ-T13")
@pytest.mark.parametrize("case", sorted(TRAINING_CORPUS))
def test_a_damaged_training_state_is_refused_when_loading_and_resuming(
        registry, checkpoints, tmp_path: pathlib.Path, case: str) -> None:
    edit, codes = TRAINING_CORPUS[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(edit(checkpoints["training"], path))
    if case != "state_missing":  # without training state it is still a loadable model checkpoint
        _refused(registry, path, codes, LoadRequest(path=str(path)))
    _refused(registry, path, codes | {"checkpoint.no_training_state"},
             TrainRequest(config=TrainConfig(epochs=2, batch_size=256), resume_from=str(path)))


@pytest.mark.req("REQ-S05", "REQ-H15")
def test_the_undamaged_checkpoints_of_the_corpus_load(registry, checkpoints, tmp_path: pathlib.Path) -> None:
    """The control: the files every case starts from load, so each refusal above is the damage's doing."""
    for kind, data in checkpoints.items():
        path = tmp_path / f"{kind}.safetensors"
        path.write_bytes(data)
        result = registry.call("pytorch", "load", LoadRequest(path=str(path)))
        assert result.metadata["task"] == "classification" and result.size_bytes == len(data)
    rewritten = tmp_path / "rewritten.safetensors"
    rewritten.write_bytes(_rewrite(document=lambda d: d)(checkpoints["training"], rewritten))
    registry.call("pytorch", "load", LoadRequest(path=str(rewritten)))  # the rewriting itself damages nothing


@pytest.mark.req("REQ-S05")
def test_a_folder_named_like_a_checkpoint_is_not_found(registry, tmp_path: pathlib.Path) -> None:
    (tmp_path / "folder.safetensors").mkdir()
    _refused(registry, tmp_path / "folder.safetensors", {"checkpoint.not_found"},
             LoadRequest(path=str(tmp_path / "folder.safetensors")))


@pytest.mark.req("REQ-H15", "REQ-S01")
@pytest.mark.parametrize("kind", ["model", "training"])
def test_a_loaded_checkpoint_saves_again_and_the_copy_loads(registry, checkpoints, tmp_path, kind) -> None:
    path = tmp_path / "received.safetensors"
    path.write_bytes(checkpoints[kind])
    loaded = registry.call("pytorch", "load", LoadRequest(path=str(path)))
    copy = tmp_path / "copy.safetensors"
    saved = registry.call("pytorch", "save", SaveRequest(model=loaded.model, path=str(copy),
                                                         training_state=kind == "training"))
    again = registry.call("pytorch", "load", LoadRequest(path=saved.path))
    ignore = {"created_utc", "versions"}
    assert {k: v for k, v in again.metadata.items() if k not in ignore} == \
        {k: v for k, v in loaded.metadata.items() if k not in ignore}


def _in_child(work: Callable[[], None], timeout_s: float = 120.0) -> int:
    """Run ``work`` in a forked child; its exit status (a signal shows as -signum), so a crash fails one test."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            torch.set_num_threads(1)
            work()
            code = 0
        except BaseException:  # shown in the test's captured output
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the child hung")


@pytest.mark.req("REQ-S09", "REQ-S05")
@pytest.mark.skipif(sys.platform != "linux", reason="fork")
@pytest.mark.parametrize("kind", ["model", "training"])
def test_a_loaded_checkpoint_survives_its_file_being_rewritten_in_place(registry, checkpoints, tmp_path, kind) -> None:
    """Another program (a script's ``save_file``, ``cp``) overwrites the file Studio has loaded.

    Loading maps the file; a model still mapped from it would die with SIGBUS on its next use.
    """
    path = tmp_path / "shared.safetensors"
    path.write_bytes(checkpoints[kind])
    rows = [[0.5] * 64, [1.0] * 64]

    def work() -> None:
        loaded = registry.call("pytorch", "load", LoadRequest(path=str(path)))
        before = registry.call("pytorch", "predict", PredictRequest(model=loaded.model, inputs=rows))
        with open(path, "r+b") as f:  # truncated in place, then rewritten by someone else's tool
            f.truncate(0)
        safetensors.torch.save_file({"w": torch.zeros(3)}, str(path))
        after = registry.call("pytorch", "predict", PredictRequest(model=loaded.model, inputs=rows))
        assert after.probabilities == before.probabilities
        registry.call("pytorch", "evaluate", EvaluateRequest(model=loaded.model))
        registry.call("pytorch", "save", SaveRequest(model=loaded.model, path=str(tmp_path / "copy.safetensors"),
                                                     training_state=kind == "training"))
        if kind == "training":  # the optimiser state was mapped too: train on from it
            registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=2, batch_size=256),
                                                           continue_from=loaded.model))

    assert _in_child(work) == 0, "the loaded model did not survive its file being rewritten (SIGBUS is -7)"
