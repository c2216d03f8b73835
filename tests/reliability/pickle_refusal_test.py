"""A pickle that would run code, under every name a person could give it, through the handlers (REQ-S03).

``tests/unit/pytorch_serialization_unit_test.py`` shows the serialisation functions refuse such files.
Here the file goes through every handler that opens a checkpoint path: ``load``, ``load`` with the
explicit ``import_state_dict`` (the one place ``torch.load(weights_only=True)`` is allowed), and
``train(resume_from=...)``. Its payload creates a marker file when unpickled (a control shows the trap
is armed). The marker must never appear, ``torch.load`` must only ever be called with
``weights_only=True`` and at most once per explicit import (no retry), and ``pickle`` itself is never
called.
"""

from __future__ import annotations

import pathlib
import pickle

import pytest
import torch
from reliability_helpers import handler_error, stored_models

from studio.backend.core.requests import LoadRequest, TrainConfig, TrainRequest

NAMES = ("weights.pt", "weights.pth", "pytorch_model.bin", "last.ckpt", "model.safetensors", "model")
FORMATS = ("torch-zip", "torch-legacy", "pickle-0", "pickle-2", "pickle-4", "pickle-5")
# every name a person could give it (as torch.save writes it), and every format under a torch name and renamed
CASES = sorted({(name, "torch-zip") for name in NAMES} | {(name, fmt) for fmt in FORMATS
                                                          for name in ("weights.pt", "model.safetensors")})


class MarkerFile:
    """Unpickling this opens (creates) ``marker`` for writing: proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def write_payload(path: pathlib.Path, fmt: str, marker: pathlib.Path) -> None:
    payload = {"weight": torch.zeros(3), "bias": torch.zeros(1), "trap": MarkerFile(marker)}
    if fmt == "torch-zip":
        torch.save(payload, path)
    elif fmt == "torch-legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(fmt.split("-")[1])))


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record every ``torch.load`` call; make every plain ``pickle`` entry point fail the test."""
    calls: list[dict] = []
    real_load = torch.load

    def load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(dict(kwargs))
        assert kwargs.get("weights_only") is True, f"torch.load called without weights_only=True: {kwargs}"
        return real_load(*args, **kwargs)

    def forbidden(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("plain pickle was used to read a file")

    monkeypatch.setattr(torch, "load", load)
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    return calls


@pytest.mark.req("REQ-S03", "REQ-H11")
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's restricted unpickler notes old protocols
@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_a_code_running_pickle_is_refused_by_every_handler_and_never_unpickled(
        registry, trained, tmp_path: pathlib.Path, spies: list[dict], name: str, fmt: str) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / name
    write_payload(path, fmt, marker)
    before = stored_models()

    err = handler_error(registry, "load", LoadRequest(path=str(path)))
    assert err.code in ("checkpoint.not_safetensors", "checkpoint.corrupt"), err
    assert spies == [], "the default load called torch.load"
    if err.code == "checkpoint.not_safetensors":
        assert "import" in str(err)  # it says what to do instead

    err = handler_error(registry, "train", TrainRequest(config=TrainConfig(epochs=1, batch_size=256),
                                                        resume_from=str(path)))
    assert err.code.startswith("checkpoint."), err
    assert spies == []

    err = handler_error(registry, "load", LoadRequest(path=str(path), import_state_dict=True, into=trained.model))
    assert err.code in ("checkpoint.unsafe_pickle", "checkpoint.corrupt"), err
    assert len(spies) <= 1, f"torch.load was retried: {spies}"  # once, weights only (checked by the spy)
    if name.endswith(".safetensors") and fmt in ("pickle-0",):  # not recognisable as a pickle: never opened as one
        assert spies == []

    assert not marker.exists(), "unpickling ran code"
    assert stored_models() == before


@pytest.mark.req("REQ-S03")
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_trap_is_armed(tmp_path: pathlib.Path, fmt: str) -> None:
    """The control: an unrestricted load of the same file does create the marker."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "weights.pt"
    write_payload(path, fmt, marker)
    if fmt.startswith("torch"):
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())  # noqa: S301 - the point of the control
    assert marker.exists()


@pytest.mark.req("REQ-S03", "REQ-H15")
def test_a_plain_state_dict_is_still_imported_explicitly_with_weights_only(registry, trained, tmp_path,
                                                                         spies: list[dict]) -> None:
    """The safe way in keeps working: a .pt of plain tensors imports into the model's architecture."""
    from studio.backend.pytorch.model_store import store

    weights = {k: v.clone() + 1 for k, v in store.get(trained.model).module.state_dict().items()}
    for name in ("weights.pt", "weights.bin"):
        path = tmp_path / name
        torch.save(weights, path)
        loaded = registry.call("pytorch", "load", LoadRequest(path=str(path), import_state_dict=True,
                                                              into=trained.model))
        module = store.get(loaded.model).module
        assert all(torch.equal(module.state_dict()[k], v) for k, v in weights.items())
    assert len(spies) == 2 and all(call["weights_only"] is True for call in spies)
