"""Checkpoints, atomic writes and resumable training state (PT-SERIAL-001, REQ-T22).

Real files in ``tmp_path``, small modules defined here; the model builder is the
``build(spec) -> nn.Module`` callable the handlers pass in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import pickle
import random
import signal
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from torch import nn

import studio
from studio.backend.core.errors import CheckpointError, RuntimeConfigError, StudioError, ValidationError
from studio.backend.pytorch.serialization import (
    FORMAT_VERSION,
    atomic_write,
    container,
    import_state_dict,
    load_model,
    load_training_checkpoint,
    read_metadata,
    save_model,
    save_training_checkpoint,
    write_model_card,
)
from studio.backend.pytorch.serialization import checkpoint as checkpoint_module
from studio.backend.pytorch.serialization import metadata as metadata_module
from studio.backend.pytorch.serialization.atomic import TMP_MARKER

# -- models and helpers ---------------------------------------------------------------------------


class Net(nn.Module):
    """A small classifier with a batch-norm buffer and dropout (so RNG state matters)."""

    def __init__(self, features: int = 6, hidden: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(features, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.drop = nn.Dropout(0.2)
        self.mid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.mid(self.drop(torch.relu(self.bn(self.inp(x)))))))


class TiedNet(nn.Module):
    """Encoder/decoder sharing one weight, as language models tie embeddings and output layers."""

    def __init__(self, n: int = 8, tie_on_build: bool = True) -> None:
        super().__init__()
        self.a = nn.Linear(n, n)
        self.b = nn.Linear(n, n, bias=False)
        if tie_on_build:
            self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


class Buffers(nn.Module):
    """Every storable dtype and awkward shapes, as buffers."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        cpu = torch.device("cpu")  # explicit: these values are made on the CPU even inside a meta-device build
        g = torch.Generator().manual_seed(seed)
        base = torch.randn(5, 7, generator=g, dtype=torch.float64, device=cpu)
        self.register_buffer("f64", base)
        self.register_buffer("f32", base.float())
        self.register_buffer("f16", base.half())
        self.register_buffer("bf16", base.bfloat16())
        self.register_buffer("i64", torch.randint(-2**62, 2**62, (3, 2), generator=g, device=cpu))
        self.register_buffer("i32", torch.randint(-2**31, 2**31 - 1, (4,), generator=g, dtype=torch.int32, device=cpu))
        self.register_buffer("i16", torch.randint(-2**15, 2**15 - 1, (2, 2, 2), generator=g, dtype=torch.int16, device=cpu))
        self.register_buffer("i8", torch.randint(-128, 127, (9,), generator=g, dtype=torch.int8, device=cpu))
        self.register_buffer("u8", torch.randint(0, 255, (3, 3), generator=g, dtype=torch.uint8, device=cpu))
        self.register_buffer("flag", torch.rand(6, generator=g, device=cpu) > 0.5)
        self.register_buffer("c64", torch.randn(3, generator=g, dtype=torch.complex64, device=cpu))
        self.register_buffer("scalar", torch.tensor(3.25, device=cpu))
        self.register_buffer("empty", torch.empty(0, 4, device=cpu))
        self.register_buffer("strided", base.float().t())  # non-contiguous
        special = torch.tensor([math.nan, -0.0, math.inf, -math.inf, 1e-45, 0.0], device=cpu)
        special[0:1].view(torch.int32).bitwise_or_(0x0012_3456)  # a NaN with a payload
        self.register_buffer("special", special)


def build(spec: dict) -> nn.Module:
    kinds = {"net": Net, "tied": TiedNet, "buffers": Buffers}
    spec = dict(spec)
    return kinds[spec.pop("kind", "net")](**spec)


META = {
    "model": {"kind": "net", "features": 6, "hidden": 16, "classes": 3},
    "task": "classification",
    "class_names": ["cat", "dog", "émeu"],
    "preprocessing": {"mean": [0.5] * 6, "std": [2.0] * 6},
    "training_config": {"optimizer": "adam", "lr": 0.01, "epochs": 3},
    "metrics": {"accuracy": 0.875, "loss": 0.3125},
}


def make_net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():  # non-trivial batch-norm statistics
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.num_batches_tracked.fill_(7)
    return net.eval()


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's raw bytes, so NaN payloads and -0.0 compare exactly."""
    return t.contiguous().reshape(-1).view(torch.uint8)


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        assert sa[name].shape == sb[name].shape, name
        assert torch.equal(bits(sa[name]), bits(sb[name])), name


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_MARKER in p.name)


def expect_error(cls: type[StudioError], code: str | set[str], fn, *args, **kwargs) -> StudioError:
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    codes = {code} if isinstance(code, str) else code
    assert info.value.code in codes, info.value
    assert info.value.message.endswith(".") and len(info.value.message) > 20
    return info.value


class Counter:
    """A build callable that counts calls, to show a failed load builds nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, spec: dict) -> nn.Module:
        self.calls += 1
        return build(spec)


# -- REQ-S01: one file, tensors plus a metadata header ----------------------------------------------


@pytest.mark.req("REQ-S01")
def test_a_checkpoint_is_one_safetensors_file_with_the_full_metadata_header(tmp_path: Path) -> None:
    net = make_net()
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    info = save_model(tmp_path / "model.safetensors", net, META)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert info.path == str(tmp_path / "model.safetensors")
    assert info.size_bytes == (tmp_path / "model.safetensors").stat().st_size
    with safe_open(info.path, framework="pt") as f:
        assert set(f.keys()) == set(net.state_dict())
        doc = json.loads(f.metadata()["studio"])
    assert doc["format"] == "studio.checkpoint" and doc["format_version"] == FORMAT_VERSION == "1.0"
    assert doc["kind"] == "model"
    for key in ("model", "task", "class_names", "preprocessing", "training_config", "metrics"):
        assert doc[key] == META[key], key
    assert doc["versions"]["torch"] == torch.__version__
    assert doc["versions"]["studio"] == studio.__version__
    assert doc["versions"]["safetensors"] == safetensors.__version__
    created = dt.datetime.fromisoformat(doc["created_utc"])
    assert created.utcoffset() == dt.timedelta(0)
    assert before <= created <= dt.datetime.now(dt.timezone.utc)
    assert read_metadata(info.path) == doc


@pytest.mark.req("REQ-S01")
def test_read_metadata_reads_the_header_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_model(tmp_path / "m.safetensors", make_net(), META).path

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("tensor data was read")

    monkeypatch.setattr(checkpoint_module, "verify_tensors", forbidden)
    monkeypatch.setattr(checkpoint_module, "safe_open", forbidden)
    assert read_metadata(path)["class_names"] == META["class_names"]


@pytest.mark.req("REQ-S01")
@pytest.mark.parametrize("bad, field", [
    ({k: v for k, v in META.items() if k != "model"}, "metadata.model"),
    ({**META, "format_version": "9.9"}, "metadata.format_version"),
    ({**META, "metrics": {"accuracy": torch.tensor(1.0)}}, "metadata.metrics.accuracy"),
    ({**META, "class_names": "cat,dog"}, "metadata.class_names"),
    ({**META, "preprocessing": {1: "x"}}, "metadata.preprocessing"),
])
def test_bad_metadata_is_refused_before_anything_is_written(tmp_path: Path, bad: dict, field: str) -> None:
    err = expect_error(ValidationError, "request.invalid", save_model, tmp_path / "m.safetensors", make_net(), bad)
    assert err.field == field
    assert list(tmp_path.iterdir()) == []


@pytest.mark.req("REQ-S01")
def test_non_finite_metrics_and_extra_keys_are_kept_as_json(tmp_path: Path) -> None:
    meta = {**META, "metrics": {"loss": math.inf, "r2": math.nan}, "data": {"name": "digits", "sizes": (8, 2)}}
    path = save_model(tmp_path / "m.safetensors", make_net(), meta).path
    doc = read_metadata(path)
    assert doc["metrics"] == {"loss": "inf", "r2": "nan"}
    assert doc["data"] == {"name": "digits", "sizes": [8, 2]}


# -- REQ-S02: bit-exact round trip ----------------------------------------------------------------


@pytest.mark.req("REQ-S02")
def test_round_trip_is_bit_exact_and_predicts_identically(tmp_path: Path) -> None:
    net = make_net(3)
    path = save_model(tmp_path / "m.safetensors", net, META).path
    loaded, meta = load_model(path, build)
    assert type(loaded) is Net and not loaded.training
    assert meta["model"] == META["model"]
    assert_same_state(net, loaded)
    x = torch.randn(32, 6)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


@pytest.mark.req("REQ-S02")
def test_every_dtype_shape_and_special_value_survives(tmp_path: Path) -> None:
    original = Buffers(seed=5)
    path = save_model(tmp_path / "b.safetensors", original, {"model": {"kind": "buffers", "seed": 1}}).path
    loaded, _ = load_model(path, build)  # built with another seed: every value must come from the file
    assert_same_state(original, loaded)
    assert loaded.scalar.shape == () and loaded.empty.shape == (0, 4) and loaded.strided.shape == (7, 5)
    assert math.copysign(1.0, loaded.special[1].item()) == -1.0


@pytest.mark.req("REQ-S02")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.uint8,
                                           torch.bool, torch.float64]),
                          st.lists(st.integers(0, 5), max_size=3)), min_size=1, max_size=6),
       st.integers(0, 2**31 - 1))
def test_random_tensor_sets_round_trip(tmp_path: Path, specs: list, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    module = nn.Module()
    for i, (dtype, shape) in enumerate(specs):
        raw = torch.randint(0, 256, (math.prod(shape) * dtype.itemsize,), generator=g, dtype=torch.uint8)
        module.register_buffer(f"t{i}", raw.view(dtype).reshape(shape) if dtype != torch.bool else raw.reshape(
            shape) > 127)

    def rebuild(spec: dict) -> nn.Module:
        m = nn.Module()
        for i, (dtype, shape) in enumerate(specs):
            m.register_buffer(f"t{i}", torch.zeros(shape, dtype=dtype))
        return m

    path = save_model(tmp_path / "r.safetensors", module, {"model": {}}).path
    assert_same_state(module, load_model(path, rebuild)[0])


def _families() -> list[tuple[str, dict]]:
    models = pytest.importorskip("studio.backend.pytorch.models")
    shapes = {"vector": (8,), "image": (1, 28, 28), "sequence": (16, 4)}
    out = []
    for info in models.list_models():
        kind = info.input_kinds[0]
        shape = info.example_shapes.get(kind) or shapes[kind]
        out.append((info.name, models.resolve_spec({"name": info.name}, shape, 3)))
    return out


@pytest.mark.req("REQ-S02", "REQ-S10")
def test_every_registered_family_round_trips_and_loads_with_plain_safetensors(tmp_path: Path) -> None:
    from studio.backend.pytorch.models import dummy_input, rebuild

    families = _families()
    assert len(families) >= 5
    for name, resolved in families:
        model = rebuild(resolved, seed=1).eval()
        path = save_model(tmp_path / f"{name}.safetensors", model, {"model": resolved, "task": "classification"}).path
        loaded, meta = load_model(path, rebuild)
        assert meta["model"] == resolved, name
        assert_same_state(model, loaded)
        x = dummy_input(resolved["input_shape"], 4)
        with torch.no_grad():
            assert torch.equal(model(x), loaded(x)), name
        plain = rebuild(resolved, seed=2)
        plain.load_state_dict(safetensors.torch.load_file(path), strict=True)
        with torch.no_grad():
            assert torch.equal(model(x), plain.eval()(x)), name


@pytest.mark.req("REQ-S02")
def test_a_bfloat16_model_stays_bfloat16(tmp_path: Path) -> None:
    net = make_net().to(torch.bfloat16)
    path = save_model(tmp_path / "bf16.safetensors", net, META).path
    loaded, _ = load_model(path, build)  # built in float32; the file decides
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert_same_state(net, loaded)
    x = torch.randn(5, 6, dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


@pytest.mark.req("REQ-S02")
def test_a_dtype_the_format_cannot_hold_is_refused_before_writing(tmp_path: Path) -> None:
    module = nn.Module()
    module.register_buffer("z", torch.zeros(2, dtype=torch.complex128))
    err = expect_error(ValidationError, "checkpoint.bad_dtype", save_model, tmp_path / "z.safetensors", module,
                       {"model": {}})
    assert err.field == "z" and "complex128" in err.message
    assert list(tmp_path.iterdir()) == []


# -- REQ-S03: no code runs on load; pickles refused; explicit weights-only import -------------------


class Evil:
    """Unpickling this creates a marker folder: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.req("REQ-S03")
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch's restricted unpickler notes it
@pytest.mark.parametrize("name, how", [("evil.pt", "torch"), ("evil.pth", "pickle"), ("evil.bin", "torch"),
                                       ("evil.ckpt", "pickle"), ("evil.safetensors", "pickle"),
                                       ("evil.safetensors", "torch"), ("evil.weights", "pickle")])
def test_pickle_files_are_refused_and_never_unpickled(tmp_path: Path, name: str, how: str) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / name
    payload = {"weight": torch.zeros(2), "trap": Evil(marker)}
    if how == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    for loader in (lambda: load_model(path, build), lambda: read_metadata(path),
                   lambda: load_training_checkpoint(path, build)):
        err = expect_error(CheckpointError, "checkpoint.not_safetensors", loader)
        assert f"studio import-weights {name}" in str(err)  # a command a user can run
    expect_error(CheckpointError, "checkpoint.unsafe_pickle", import_state_dict, path)
    assert not marker.exists(), "unpickling ran code"


@pytest.mark.req("REQ-S03")
def test_a_plain_state_dict_is_refused_by_default_and_imported_explicitly(tmp_path: Path) -> None:
    net = make_net(4)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    torch.save({"epoch": 3, "model_state_dict": net.state_dict()}, tmp_path / "trainer.pth")
    expect_error(CheckpointError, "checkpoint.not_safetensors", load_model, tmp_path / "weights.pt", build)
    for name in ("weights.pt", "trainer.pth"):
        imported = import_state_dict(tmp_path / name)
        fresh = Net()
        fresh.load_state_dict(imported, strict=True)
        assert_same_state(net, fresh.eval())
    torch.save([1, 2, 3], tmp_path / "list.pt")
    expect_error(CheckpointError, "checkpoint.no_state_dict", import_state_dict, tmp_path / "list.pt")


@pytest.mark.req("REQ-S03")
def test_loading_uses_no_pickle_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = make_net()
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 6)).sum().backward()
    opt.step()
    path = save_model(tmp_path / "m.safetensors", net, META).path
    tpath = save_training_checkpoint(tmp_path / "t.safetensors", net, opt, {"epoch": 1}, META).path

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used on the load path")

    for target, attr in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(target, attr, forbidden)
    assert_same_state(net, load_model(path, build)[0])
    assert load_training_checkpoint(tpath, build, restore_rng=False)[1]["epoch"] == 1


@pytest.mark.req("REQ-S03")
def test_a_header_length_that_looks_like_a_pickle_opcode_is_still_safetensors(tmp_path: Path) -> None:
    tiny = nn.Linear(3, 2)
    path = tmp_path / "t.safetensors"
    save_model(path, tiny, {"model": {}, "note": ""})
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    target = next(t for t in (0x280, 0x380, 0x480, 0x580) if t >= n)  # 80 02 .. 80 05: pickle protocols 2-5
    save_model(path, tiny, {"model": {}, "note": "x" * (target - n)})
    assert path.read_bytes()[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
    assert_same_state(tiny, load_model(path, lambda spec: nn.Linear(3, 2))[0])


@pytest.mark.req("REQ-S03")
def test_the_package_never_asks_for_unsafe_unpickling() -> None:
    package = Path(checkpoint_module.__file__).parent
    sources = {p.name: p.read_text(encoding="utf-8") for p in package.glob("*.py")}
    assert "interop.py" in sources
    for name, text in sources.items():
        compact = text.replace(" ", "")
        assert "weights_only=False" not in compact, name
        assert "importpickle" not in compact or name == "interop.py", name  # only to name the error it catches
        assert "pickle.load" not in text and "Unpickler" not in text, name
    assert "weights_only=True" in sources["interop.py"].replace(" ", "")


# -- REQ-S04: atomic, durable writes ----------------------------------------------------------------


@pytest.mark.req("REQ-S04")
def test_a_failing_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "notes.json"
    target.write_text("previous")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("new but incomp")
        raise RuntimeError("disk unplugged")

    expect_error(CheckpointError, "checkpoint.write_failed", atomic_write, target, half_then_fail)
    assert target.read_text() == "previous" and temps(tmp_path) == []

    def interrupted(tmp: Path) -> None:
        tmp.write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "previous" and temps(tmp_path) == []
    info = atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and info.size_bytes == 3 and temps(tmp_path) == []


@pytest.mark.req("REQ-S04")
def test_a_checkpoint_save_failing_midway_keeps_the_previous_checkpoint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    old = make_net(1)
    save_model(path, old, META)
    before = path.read_bytes()
    real_write_all = container._write_all
    calls = []

    def fail_on_third_write(f, data) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write_all(f, data)

    monkeypatch.setattr(container, "_write_all", fail_on_third_write)
    err = expect_error(CheckpointError, "checkpoint.unwritable", save_model, path, make_net(2), META)
    assert "disk is full" in err.message
    assert path.read_bytes() == before and temps(tmp_path) == []
    assert_same_state(old, load_model(path, build)[0])


@pytest.mark.req("REQ-S04")
def test_a_failing_rename_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    old = make_net(1)
    save_model(path, old, META)

    def no_rename(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", no_rename)
    expect_error(CheckpointError, "checkpoint.unwritable", save_model, path, make_net(2), META)
    monkeypatch.undo()
    assert temps(tmp_path) == []
    assert_same_state(old, load_model(path, build)[0])


@pytest.mark.req("REQ-S04")
def test_missing_folder_folder_target_and_wrong_suffix_are_clear_errors(tmp_path: Path) -> None:
    net = make_net()
    err = expect_error(ValidationError, "path.missing_folder", save_model, tmp_path / "nope" / "m.safetensors", net,
                       META)
    assert err.field == "path"
    expect_error(ValidationError, "path.is_folder", save_model, tmp_path, net, META)
    expect_error(ValidationError, "path.bad_suffix", save_model, tmp_path / "m.pt", net, META)
    expect_error(ValidationError, "path.invalid", save_model, "", net, META)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.req("REQ-S04")
def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:  # root writes anywhere; the injected refusal below covers that case
        folder.chmod(0o500)
        try:
            expect_error(CheckpointError, "checkpoint.unwritable", save_model, folder / "m.safetensors", make_net(),
                         META)
        finally:
            folder.chmod(0o700)
    real_open = os.open

    def refuse(path, flags, *args):
        if TMP_MARKER in str(path) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    err = expect_error(CheckpointError, "checkpoint.unwritable", save_model, folder / "m.safetensors", make_net(),
                       META)
    assert "permission was denied" in err.message
    assert list(folder.iterdir()) == []


@pytest.mark.req("REQ-S04")
def test_stale_temporary_files_are_removed_by_the_next_load_or_save(tmp_path: Path) -> None:
    path = save_model(tmp_path / "m.safetensors", make_net(), META).path
    dead = tmp_path / f".m.safetensors{TMP_MARKER}999999999-dead"  # above any pid_max: no such process
    alive = tmp_path / f".other.safetensors{TMP_MARKER}{os.getppid()}-busy"  # a live writer's file stays
    dead.write_bytes(b"partial")
    alive.write_bytes(b"in progress")
    load_model(path, build)
    assert temps(tmp_path) == [alive.name]
    dead.write_bytes(b"partial")
    save_model(path, make_net(), META)
    assert temps(tmp_path) == [alive.name]


def _saver(path: Path, pipe_w: int) -> None:  # runs in a forked child until killed
    torch.set_num_threads(1)
    net = nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 512))
    generation = 0
    os.write(pipe_w, b"r")
    while True:
        generation += 1
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(generation)
        save_model(path, net, {"model": {"generation": generation}})


def _build_seq(spec: dict) -> nn.Module:
    return nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 512))


@pytest.mark.req("REQ-S04")
@pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL")
def test_a_save_killed_at_random_moments_never_damages_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, _build_seq({}), {"model": {"generation": 0}})
    rng = random.Random(1234)
    leftovers = 0
    for _ in range(20):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(r)
                _saver(path, w)
            finally:
                os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        leftovers += bool(temps(tmp_path))
        model, meta = load_model(path, _build_seq)  # always a whole checkpoint: the old or a new one
        generation = meta["model"]["generation"]
        assert all(torch.equal(p, torch.full_like(p, generation)) for p in model.parameters())
        assert temps(tmp_path) == []  # the load removed what the killed writer left
    assert leftovers > 0, "no kill landed mid-write; the test did not exercise anything"


# -- REQ-S05: corrupt, truncated, foreign files ------------------------------------------------------

CORRUPT = {"checkpoint.corrupt", "checkpoint.not_studio", "checkpoint.not_safetensors", "checkpoint.too_new",
           "checkpoint.too_old", "checkpoint.mismatch"}


@pytest.mark.req("REQ-S05")
def test_truncated_files_are_corrupt_and_build_nothing(tmp_path: Path) -> None:
    data = Path(save_model(tmp_path / "m.safetensors", make_net(), META).path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    for cut in (0, 3, 8, 8 + n // 2, 8 + n, 8 + n + 17, len(data) - 1):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        counter = Counter()
        expect_error(CheckpointError, "checkpoint.corrupt", load_model, broken, counter)
        assert counter.calls == 0


@pytest.mark.req("REQ-S05")
def test_every_single_bit_flip_is_detected(tmp_path: Path) -> None:
    tiny = nn.Sequential(nn.Linear(3, 2))
    path = Path(save_model(tmp_path / "t.safetensors", tiny, {"model": {}}).path)
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    undetected = []
    for i in range(len(data)):
        data[i] ^= 1 << (i % 8)
        flipped.write_bytes(data)
        data[i] ^= 1 << (i % 8)
        try:
            load_model(flipped, lambda spec: nn.Sequential(nn.Linear(3, 2)))
            undetected.append(i)
        except CheckpointError as exc:
            assert exc.code in CORRUPT, (i, exc)
    assert undetected == []


@pytest.mark.req("REQ-S05")
def test_foreign_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    net = make_net()
    cases = {
        "empty.safetensors": (b"", "checkpoint.corrupt"),
        "random.safetensors": (bytes(random.Random(0).getrandbits(8) for _ in range(4096)), "checkpoint.corrupt"),
        "image.safetensors": (b"\x89PNG\r\n\x1a\n" + bytes(100), "checkpoint.corrupt"),
        "text.safetensors": (b'{"model": "not really"}', "checkpoint.corrupt"),
        "huge_header.safetensors": (struct.pack("<Q", 2**40) + b"{}", "checkpoint.corrupt"),
        "not_json.safetensors": (struct.pack("<Q", 8) + b"{nope!!}", "checkpoint.corrupt"),
        "gap.safetensors": (_raw_safetensors({"a": ("F32", [1], [0, 4]), "b": ("F32", [1], [8, 12])}, 12),
                            "checkpoint.corrupt"),
        "overlap.safetensors": (_raw_safetensors({"a": ("F32", [2], [0, 8]), "b": ("F32", [1], [4, 8])}, 8),
                                "checkpoint.corrupt"),
        "wrong_size.safetensors": (_raw_safetensors({"a": ("F32", [3], [0, 8])}, 8), "checkpoint.corrupt"),
        "bad_dtype.safetensors": (_raw_safetensors({"a": ("F31", [2], [0, 8])}, 8), "checkpoint.corrupt"),
    }
    for name, (content, code) in cases.items():
        (tmp_path / name).write_bytes(content)
        err = expect_error(CheckpointError, code, load_model, tmp_path / name, build)
        assert name in err.message
    safetensors.torch.save_file(net.state_dict(), tmp_path / "plain.safetensors")
    err = expect_error(CheckpointError, "checkpoint.not_studio", load_model, tmp_path / "plain.safetensors", build)
    assert "studio import-weights plain.safetensors" in str(err)
    imported = import_state_dict(tmp_path / "plain.safetensors")  # the explicit way in still works
    assert set(imported) == set(net.state_dict())
    safetensors.torch.save_file(net.state_dict(), tmp_path / "badmeta.safetensors", metadata={"studio": "{oops"})
    expect_error(CheckpointError, "checkpoint.corrupt", load_model, tmp_path / "badmeta.safetensors", build)
    expect_error(CheckpointError, "checkpoint.not_found", load_model, tmp_path / "absent.safetensors", build)

    path = save_model(tmp_path / "whole.safetensors", net, META).path  # a Studio file with one tensor removed
    with safe_open(path, framework="pt") as f:
        header_meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if k != "out.bias"}
    safetensors.torch.save_file(tensors, tmp_path / "removed.safetensors", metadata=header_meta)
    expect_error(CheckpointError, "checkpoint.corrupt", load_model, tmp_path / "removed.safetensors", build)
    del header_meta["studio.integrity"]
    safetensors.torch.save_file(tensors, tmp_path / "stripped.safetensors", metadata=header_meta)
    expect_error(CheckpointError, "checkpoint.corrupt", load_model, tmp_path / "stripped.safetensors", build)


def _raw_safetensors(entries: dict, data_len: int) -> bytes:
    header = {k: {"dtype": d, "shape": s, "data_offsets": o} for k, (d, s, o) in entries.items()}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data_len)


@pytest.mark.req("REQ-S05")
def test_tensors_that_do_not_match_the_spec_are_a_mismatch(tmp_path: Path) -> None:
    path = save_model(tmp_path / "m.safetensors", make_net(), META).path
    wrong_width = lambda spec: Net(hidden=32)  # noqa: E731
    err = expect_error(CheckpointError, "checkpoint.mismatch", load_model, path, wrong_width)
    assert "inp.weight" in err.message and "(16, 6)" in err.message and "(32, 6)" in err.message
    other = lambda spec: nn.Sequential(nn.Linear(6, 3))  # noqa: E731
    err = expect_error(CheckpointError, "checkpoint.mismatch", load_model, path, other)
    assert "missing 0.bias" in err.message and "unexpected" in err.message

    def broken(spec: dict) -> nn.Module:
        raise KeyError("no architecture called " + str(spec.get("kind")))

    expect_error(CheckpointError, "checkpoint.bad_spec", load_model, path, broken)

    def studio_refusal(spec: dict) -> nn.Module:
        raise ValidationError("There is no model architecture called 'net'.", code="model.unknown")

    expect_error(ValidationError, "model.unknown", load_model, path, studio_refusal)


# -- REQ-S06: format version --------------------------------------------------------------------------


@pytest.mark.req("REQ-S06")
def test_a_version_0_9_file_is_migrated(tmp_path: Path) -> None:
    net = make_net(2)
    old_doc = {"format": "studio.checkpoint", "format_version": "0.9", "spec": META["model"],
               "task": "classification", "classes": ["a", "b", "c"], "config": {"lr": 0.1},
               "metrics": {"accuracy": 0.5}, "torch_version": "2.1.0", "created": "2024-01-02T03:04:05+00:00"}
    path = tmp_path / "old.safetensors"
    safetensors.torch.save_file(net.state_dict(), path, metadata={"studio": json.dumps(old_doc)})
    loaded, meta = load_model(path, build)
    assert_same_state(net, loaded)
    assert meta["format_version"] == "1.0" and meta["migrated_from"] == "0.9"
    assert meta["model"] == META["model"] and meta["class_names"] == ["a", "b", "c"]
    assert meta["training_config"] == {"lr": 0.1} and meta["versions"] == {"torch": "2.1.0"}
    assert meta["created_utc"] == "2024-01-02T03:04:05+00:00" and meta["kind"] == "model"
    assert "spec" not in meta and "classes" not in meta
    assert read_metadata(path) == meta


@pytest.mark.req("REQ-S06")
def test_newer_major_is_refused_newer_minor_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for version in ("2.0", "1.9", "0.5"):
        with monkeypatch.context() as m:
            m.setattr(metadata_module, "FORMAT_VERSION", version)
            save_model(tmp_path / f"v{version}.safetensors", make_net(), META)
    err = expect_error(CheckpointError, "checkpoint.too_new", load_model, tmp_path / "v2.0.safetensors", build)
    assert "Upgrade Studio" in str(err) and "2.0" in err.message
    expect_error(CheckpointError, "checkpoint.too_new", read_metadata, tmp_path / "v2.0.safetensors")
    expect_error(CheckpointError, "checkpoint.too_old", load_model, tmp_path / "v0.5.safetensors", build)
    _, meta = load_model(tmp_path / "v1.9.safetensors", build)
    assert meta["format_version"] == "1.9"


# -- REQ-S07 / REQ-T22: training checkpoints that resume bit-identically -------------------------------

OPTIMISERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.005, momentum=0.5),
}
SCHEDULES = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "cosine_warmup": lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, lambda s: min(1.0, (s + 1) / 4) * 0.5 * (1 + math.cos(math.pi * min(s, 10) / 10))),
    "one_cycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=12),
    "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5),
}
X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(1))


class Run:
    """Model, optimiser, schedule and scaler of one training run, drawing from every global RNG."""

    def __init__(self, optimiser: str, schedule: str, model: nn.Module | None = None) -> None:
        self.model = model if model is not None else Net()
        self.opt = OPTIMISERS[optimiser](self.model.parameters())
        self.sched = SCHEDULES[schedule](self.opt)
        self.scaler = torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2)
        self.step = 0
        self.history: list[float] = []
        self.best = math.inf

    def train(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            idx = torch.randperm(64)[:16]  # torch RNG: data order
            noise = torch.from_numpy(np.random.normal(0, 0.01, (16, 6)).astype(np.float32))  # NumPy RNG
            scale = 1.0 + random.random() * 0.1  # Python RNG
            loss = nn.functional.cross_entropy(self.model(X[idx] * scale + noise), Y[idx])  # dropout: torch RNG
            self.opt.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.sched.step(loss.item())
            else:
                self.sched.step()
            self.step += 1
            self.history.append(loss.item())
            self.best = min(self.best, loss.item())

    def extra_state(self) -> dict:
        return {"scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "step": self.step,
                "epoch": self.step // 4, "history": self.history,
                "early_stopping": {"best": self.best, "bad_epochs": 0, "mode": "min"}}

    def restore(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer_state_dict"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.history = state["step"], state["history"]
        self.best = state["early_stopping"]["best"]


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@pytest.mark.req("REQ-T22", "REQ-S07")
@pytest.mark.parametrize("optimiser, schedule", [("sgd", "step"), ("adam", "cosine_warmup"), ("adamw", "one_cycle"),
                                                 ("rmsprop", "plateau"), ("adam", "plateau"), ("sgd", "one_cycle")])
def test_a_saved_run_continues_exactly_like_an_uninterrupted_one(tmp_path: Path, optimiser: str,
                                                                  schedule: str) -> None:
    _seed(7)
    straight = Run(optimiser, schedule)
    straight.train(10)

    _seed(7)
    first = Run(optimiser, schedule)
    first.train(5)
    path = save_training_checkpoint(tmp_path / "run.safetensors", first.model, first.opt, first.extra_state(),
                                    {**META, "model": {"kind": "net"}}).path
    saved_optimiser = first.opt.state_dict()
    del first
    _seed(999)  # anything in between must not matter
    torch.rand(100), np.random.rand(7), random.random()

    model, state = load_training_checkpoint(path, build)
    loaded_optimiser = state["optimizer_state_dict"]
    assert loaded_optimiser["param_groups"] == saved_optimiser["param_groups"]
    assert loaded_optimiser["state"].keys() == saved_optimiser["state"].keys()
    for pid, slots in saved_optimiser["state"].items():
        for key, value in slots.items():
            got = loaded_optimiser["state"][pid][key]
            assert (torch.equal(got, value) and got.dtype == value.dtype) if torch.is_tensor(value) else got == value
    resumed = Run(optimiser, schedule, model=model)
    resumed.restore(state)
    resumed.train(5)

    assert resumed.step == straight.step == 10
    assert resumed.history == straight.history
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    sa, sb = straight.opt.state_dict(), resumed.opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for pid, slots in sa["state"].items():
        for key, value in slots.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][pid][key])), (pid, key)
    assert straight.sched.state_dict() == resumed.sched.state_dict()
    assert straight.scaler.state_dict() == resumed.scaler.state_dict()


@pytest.mark.req("REQ-S07")
def test_a_training_checkpoint_holds_everything_in_one_safetensors_file(tmp_path: Path) -> None:
    _seed(3)
    run = Run("adam", "plateau")
    run.train(3)
    gen = torch.Generator().manual_seed(5)
    extra = {**run.extra_state(), "sampler": gen.get_state(), "order": np.arange(6, dtype=np.int64),
             "pairs": {(1, 2): "tuple key", 3: (4.5, None)}}
    path = save_training_checkpoint(tmp_path / "t.safetensors", run.model, run.opt, extra, META).path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.safetensors"]
    with safe_open(path, framework="pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    model_keys = set(run.model.state_dict())
    assert model_keys <= keys
    assert {k for k in keys - model_keys} == {k for k in keys if k.startswith(("optim/", "state/"))}
    assert any(k.startswith("optim/state/") for k in keys) and "state/rng/torch" in keys
    assert json.loads(meta["studio"])["kind"] == "training" and "studio.state" in meta

    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    model, state = load_training_checkpoint(path, build, restore_rng=False)
    assert torch.equal(torch.rand(3), expected_next)  # without restore_rng, loading leaves the RNG alone
    assert state["early_stopping"]["best"] == run.best and state["scheduler"]["best"] == run.sched.best
    assert state["scheduler"]["mode_worse"] == math.inf
    assert torch.equal(state["sampler"], gen.get_state())
    assert isinstance(state["order"], np.ndarray) and state["order"].tolist() == list(range(6))
    assert state["pairs"] == {(1, 2): "tuple key", 3: (4.5, None)}
    assert state["metadata"]["class_names"] == META["class_names"]

    plain = safetensors.torch.load_file(path)
    fresh = Net()
    fresh.load_state_dict({k: v for k, v in plain.items() if not k.startswith(("optim/", "state/"))}, strict=True)
    assert_same_state(run.model, fresh)
    assert_same_state(run.model, load_model(path, build)[0])  # a training checkpoint also loads as a model


@pytest.mark.req("REQ-S07")
def test_rng_states_are_restored_to_the_moment_of_saving(tmp_path: Path) -> None:
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    _seed(11)
    path = save_training_checkpoint(tmp_path / "t.safetensors", net, opt, {}, META).path
    after = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    _seed(12)
    _, state = load_training_checkpoint(path, build)
    assert sorted(state["rng"]) == sorted(["torch", "numpy", "python"])
    assert torch.equal(torch.rand(4), after[0])
    assert np.array_equal(np.random.rand(4), after[1])
    assert [random.random() for _ in range(4)] == after[2]


@pytest.mark.req("REQ-S07")
def test_unstorable_training_state_is_refused_and_model_checkpoints_cannot_resume(tmp_path: Path) -> None:
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    err = expect_error(ValidationError, "checkpoint.unstorable", save_training_checkpoint, tmp_path / "t.safetensors",
                       net, opt, {"callback": lambda: None}, META)
    assert err.field == "callback"
    expect_error(ValidationError, "request.invalid", save_training_checkpoint, tmp_path / "t.safetensors", net, opt,
                 {"rng": 1}, META)
    assert list(tmp_path.iterdir()) == []
    path = save_model(tmp_path / "m.safetensors", net, META).path
    expect_error(CheckpointError, "checkpoint.no_training_state", load_training_checkpoint, path, build)


# -- REQ-S08: tied weights ----------------------------------------------------------------------------


@pytest.mark.req("REQ-S08")
@pytest.mark.parametrize("tie_on_build", [True, False])
def test_tied_weights_are_stored_once_and_tied_again(tmp_path: Path, tie_on_build: bool) -> None:
    torch.manual_seed(0)
    original = TiedNet()
    assert original.a.weight is original.b.weight
    path = save_model(tmp_path / "tied.safetensors", original, {"model": {"kind": "tied"}}).path
    with safe_open(path, framework="pt") as f:
        assert sorted(f.keys()) == ["a.bias", "a.weight"]
    assert read_metadata(path)["aliases"] == {"b.weight": "a.weight"}

    loaded, _ = load_model(path, lambda spec: TiedNet(tie_on_build=tie_on_build))
    assert loaded.a.weight is loaded.b.weight
    assert_same_state(original, loaded)
    assert len(list(loaded.parameters())) == 2
    opt = torch.optim.SGD(loaded.parameters(), lr=0.1)
    before = loaded.a.weight.detach().clone()
    loaded(torch.randn(3, 8)).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(loaded.a.weight, before) and torch.equal(loaded.b.weight, loaded.a.weight)

    fresh = TiedNet()  # plain safetensors understands the tie through its load_model
    safetensors.torch.load_model(fresh, path, strict=True)
    assert_same_state(original, fresh)


@pytest.mark.req("REQ-S08")
def test_ties_survive_a_training_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TiedNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    path = save_training_checkpoint(tmp_path / "t.safetensors", model, opt, {}, {"model": {"kind": "tied"}}).path
    loaded, state = load_training_checkpoint(path, lambda spec: TiedNet(tie_on_build=False))
    assert loaded.a.weight is loaded.b.weight
    opt2 = torch.optim.Adam(loaded.parameters(), lr=0.01)
    opt2.load_state_dict(state["optimizer_state_dict"])  # the same two parameters as when saved
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.req("REQ-S08")
def test_overlapping_views_are_stored_as_copies(tmp_path: Path) -> None:
    class Views(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            base = torch.arange(10.0)
            self.register_buffer("base", base)
            self.register_buffer("head", base[:4])

    path = save_model(tmp_path / "v.safetensors", Views(), {"model": {}}).path
    loaded, _ = load_model(path, lambda spec: Views())
    assert torch.equal(loaded.head, torch.arange(4.0)) and torch.equal(loaded.base, torch.arange(10.0))


# -- REQ-S09: memory-mapped loading onto a device ------------------------------------------------------


@pytest.mark.req("REQ-S09")
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_loading_memory_maps_the_file(tmp_path: Path) -> None:
    path = save_model(tmp_path / "mapped.safetensors", make_net(), META).path
    model, _ = load_model(path, build)
    maps = Path("/proc/self/maps").read_text()
    assert path in maps, "the checkpoint is not memory-mapped"
    assert all(p.device.type == "cpu" for p in model.parameters())
    with torch.no_grad():  # mapped copy-on-write: the model can still be trained
        model.inp.weight.add_(1)
    assert not torch.equal(model.inp.weight, load_model(path, build)[0].inp.weight)


@pytest.mark.req("REQ-S09")
def test_tensors_land_on_the_requested_device(tmp_path: Path) -> None:
    net = make_net()
    path = save_model(tmp_path / "m.safetensors", net, META).path
    model, _ = load_model(path, build, device=torch.device("cpu"))
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"cpu"}
    expect_error(RuntimeConfigError, "runtime.device_unavailable", load_model, path, build, device="cuda:7")
    if torch.cuda.is_available():
        model, _ = load_model(path, build, device="cuda")
        assert {t.device.type for t in model.state_dict().values()} == {"cuda"}
        assert_same_state(net, model.cpu())


@pytest.mark.req("REQ-S09")
def test_no_random_initialisation_runs_while_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_model(tmp_path / "m.safetensors", make_net(), META).path
    real_uniform = torch.Tensor.uniform_
    touched = []

    def spy(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        touched.append(self.is_meta)
        return real_uniform(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "uniform_", spy)
    Net()
    assert touched and not any(touched)  # the spy sees a normal build's random initialisation
    touched.clear()
    torch.manual_seed(21)
    expected = torch.rand(2)
    torch.manual_seed(21)
    load_model(path, build)
    assert touched and all(touched)  # only on the meta device: no values were drawn
    assert torch.equal(torch.rand(2), expected)  # and the global generator did not move


@pytest.mark.req("REQ-S09")
def test_models_that_cannot_be_built_on_the_meta_device_still_load(tmp_path: Path) -> None:
    class Positional(nn.Module):  # a non-persistent buffer computed at build time is not in the file
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.register_buffer("table", torch.arange(4.0) * 2, persistent=False)
            self.scale = torch.tensor(3.0)  # a plain tensor attribute

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x + self.table) * self.scale

    original = Positional()
    path = save_model(tmp_path / "p.safetensors", original, {"model": {}}).path
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    loaded, _ = load_model(path, lambda spec: Positional())  # built for real, with random initialisation...
    assert torch.equal(torch.rand(2), expected)  # ...that does not move the caller's generator
    assert not loaded.table.is_meta and not loaded.scale.is_meta
    x = torch.randn(2, 4)
    assert torch.equal(original(x), loaded(x))


# -- REQ-S10: plain safetensors interoperability and the model card -------------------------------------


@pytest.mark.req("REQ-S10")
def test_plain_safetensors_loads_the_weights_strictly(tmp_path: Path) -> None:
    net = make_net(8)
    path = save_model(tmp_path / "m.safetensors", net, META).path
    fresh = build(read_metadata(path)["model"])
    fresh.load_state_dict(safetensors.torch.load_file(path), strict=True)
    assert_same_state(net, fresh.eval())


@pytest.mark.req("REQ-S10")
def test_a_readable_model_card_is_written_beside(tmp_path: Path) -> None:
    net = make_net()
    path = save_model(tmp_path / "digits.safetensors", net, META).path
    info = write_model_card(path)
    assert info.path == str(tmp_path / "digits.card.json")
    text = Path(info.path).read_text(encoding="utf-8")
    assert "\n  " in text and "émeu" in text  # indented, readable, not escaped
    card = json.loads(text)
    assert card["file"] == "digits.safetensors" and card["task"] == "classification"
    assert card["classes"] == META["class_names"] and card["metrics"] == META["metrics"]
    assert card["model"] == META["model"] and card["versions"]["torch"] == torch.__version__
    assert card["values_stored"] == sum(t.numel() for t in net.state_dict().values())
    assert "load_model" in card["how_to_load"]["studio"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.card.json", "digits.safetensors"]
