"""Saving survives kills, exceptions and a TMPDIR on another file system (REQ-S04, REQ-H15, REQ-T13).

The serialisation unit tests kill a forked ``save_model`` loop at random moments. Here the saving
process goes through the real ``save`` handler (model and training checkpoints of a trained digits
model) and is killed with SIGKILL at chosen points of the write (24 trials): at a random byte offset of
the file being written (data or header, including the final rewrite of the header with its checksums),
before the fsync, before the rename and just after it; then at random moments of a saving loop (12
trials). After every kill the previous checkpoint is byte-identical (or, after the rename, the new one
is complete) and loads through the ``load`` handler; the temporary file the kill left behind is gone
after the next save (or load). An exception raised in the middle of a save, by the handler or by
the autosave of a running ``train``, leaves the previous file intact, and the run resumes from it to
the same weights as an uninterrupted run.
"""

from __future__ import annotations

import functools
import os
import pathlib
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import pytest
import torch
from pytorch_serialization_unit_test import temps
from reliability_helpers import handler_error

from studio.backend.core.requests import LoadRequest, SaveRequest, TrainConfig, TrainRequest
from studio.backend.pytorch.model_store import store
from studio.backend.pytorch.serialization import atomic, container

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork, SIGKILL and /proc")

KILL_TRIALS = 24  # at chosen points of the write
RANDOM_KILLS = 12  # at random moments of a saving loop


@pytest.fixture(scope="module")
def model(registry) -> str:
    """A handle of its own (the tests write generations into its weights)."""
    torch.set_num_threads(1)
    return registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=1, batch_size=256))).model


def set_generation(handle: str, generation: int) -> None:
    with torch.no_grad():
        for p in store.get(handle).module.parameters():
            p.fill_(float(generation))


def generation_of(registry, path: pathlib.Path) -> int:  # noqa: ANN001
    """Load ``path`` through the handler; every weight holds the generation that wrote it."""
    loaded = registry.call("pytorch", "load", LoadRequest(path=str(path)))
    values = {float(v) for p in store.get(loaded.model).module.parameters() for v in p.detach().unique()}
    store.drop(loaded.model)
    assert len(values) == 1, f"a checkpoint mixing generations: {sorted(values)[:5]}"
    return int(values.pop())


def fork(child: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        code = 3
        try:
            torch.set_num_threads(1)
            child()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def reap(pid: int, timeout_s: float = 60.0) -> int:
    """Wait for the child; its exit status, or -signal."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the saving child hung")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, offset: int) -> None:
    """In the child: SIGKILL this process at ``point`` of the next save (``write`` at byte ``offset``)."""
    if point == "write":
        real, left = container._write_all, [offset]

        def write_all(f, data) -> None:  # noqa: ANN001
            view = memoryview(data).cast("B")
            if view.nbytes >= left[0]:
                real(f, view[:left[0]])
                os.fsync(f.fileno())  # the bytes are on disk: the kill lands mid-file, not mid-buffer
                die()
            left[0] -= view.nbytes
            real(f, view)

        container._write_all = write_all
    elif point == "fsync":
        atomic._fsync_path = lambda path: die()
    elif point == "rename":
        os.replace = lambda src, dst: die()
    elif point == "renamed":  # after the rename, before the folder's fsync
        atomic._fsync_dir = lambda folder: die()


def _save_and_die(registry, model: str, path: pathlib.Path, generation: int, training_state: bool,  # noqa: ANN001
                  point: str, offset: int) -> None:
    """The child of a trial: save a new generation through the handler, dying at ``point``."""
    arm(point, offset)
    set_generation(model, generation)
    registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=training_state))


def _save_forever(registry, model: str, path: pathlib.Path, generation: int, read: int, write: int) -> None:  # noqa: ANN001
    os.close(read)
    os.write(write, b"r")
    while True:
        generation += 1
        set_generation(model, generation)
        registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=generation % 2 == 0))


@pytest.mark.req("REQ-S04", "REQ-H15")
def test_a_save_killed_at_any_point_keeps_the_previous_checkpoint(registry, model, tmp_path: pathlib.Path) -> None:
    rng = random.Random(20240611)
    path = tmp_path / "model.safetensors"
    # data and header are written, then the header again with the checksums: "rewrite" dies in that last write
    points = ["write"] * (KILL_TRIALS - 8) + ["fsync", "rename", "renamed"] * 2 + ["rewrite", "rewrite"]
    generation = 1
    for trial, point in enumerate(points):
        training_state = trial % 2 == 1
        set_generation(model, generation)
        registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=training_state))
        previous = path.read_bytes()
        offset = rng.randrange(len(previous))  # the new file has the same size: anywhere in it
        if point == "rewrite":
            point, offset = "write", len(previous) + rng.randrange(struct.unpack("<Q", previous[:8])[0])
        new = generation + 1
        status = reap(fork(functools.partial(_save_and_die, registry, model, path, new, training_state, point, offset)))
        assert status == -signal.SIGKILL, f"trial {trial} ({point} at {offset}): the child was not killed ({status})"
        left = temps(tmp_path)
        if point == "renamed":
            assert generation_of(registry, path) == new and left == []  # the new file is complete
        else:
            assert path.read_bytes() == previous, f"trial {trial}: {point} at byte {offset} changed the checkpoint"
            assert len(left) == 1, f"trial {trial}: the kill left {left}"
            if trial % 3:
                generation += 1  # the next save, in this process, removes the dead writer's temporary file
                set_generation(model, generation)
                registry.call("pytorch", "save", SaveRequest(model=model, path=str(path)))
                assert temps(tmp_path) == [] and generation_of(registry, path) == generation
            else:
                assert generation_of(registry, path) == generation  # the previous file loads; loading cleans up
                assert temps(tmp_path) == []
        generation += 2


@pytest.mark.req("REQ-S04", "REQ-H15")
def test_a_saving_loop_killed_at_random_moments_leaves_a_whole_checkpoint(registry, model,
                                                                          tmp_path: pathlib.Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "loop.safetensors"
    set_generation(model, 1)
    registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=True))
    last, mid_write = 1, 0
    for trial in range(RANDOM_KILLS):
        base = (trial + 1) * 1000  # this trial's child writes generations base+1, base+2, ...
        read, write = os.pipe()
        pid = fork(functools.partial(_save_forever, registry, model, path, base, read, write))
        os.close(write)
        os.read(read, 1)
        os.close(read)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        assert reap(pid) == -signal.SIGKILL
        mid_write += bool(temps(tmp_path))
        got = generation_of(registry, path)  # a whole checkpoint of one generation; the load cleans up
        assert got == last or base < got < base + 1000, f"trial {trial}: generation {got}"
        assert temps(tmp_path) == []
        last = got
    assert mid_write > 0, "no kill landed mid-write; the test exercised nothing"


@pytest.mark.req("REQ-S04", "REQ-H15")
def test_an_exception_in_the_middle_of_a_save_keeps_the_previous_checkpoint(
        registry, model, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    set_generation(model, 5)
    registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=True))
    previous = path.read_bytes()
    real, calls = container._write_all, []

    def failing(f, data) -> None:  # noqa: ANN001
        calls.append(1)
        if len(calls) == 2:  # the header is written; the first tensor is not
            raise RuntimeError("the storage controller reset")
        real(f, data)

    monkeypatch.setattr(container, "_write_all", failing)
    set_generation(model, 6)
    err = handler_error(registry, "save", SaveRequest(model=model, path=str(path), training_state=True))
    assert err.code == "checkpoint.write_failed" and isinstance(err.__cause__, RuntimeError)
    assert "previous file" in err.message and str(path) in err.message
    assert path.read_bytes() == previous and temps(tmp_path) == []
    assert generation_of(registry, path) == 5


@pytest.mark.req("REQ-S04", "REQ-T13", "REQ-T14")
def test_a_failed_autosave_keeps_the_last_one_and_the_run_resumes_from_it_exactly(
        registry, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(epochs=3, batch_size=256)
    full = registry.call("pytorch", "train", TrainRequest(config=config))
    autosave = tmp_path / "run.safetensors"
    registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=1, batch_size=256),
                                                   checkpoint_path=str(autosave)))
    first_epoch = autosave.read_bytes()
    real, calls = container._write_all, []

    def failing(f, data) -> None:  # noqa: ANN001
        calls.append(1)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        real(f, data)

    monkeypatch.setattr(container, "_write_all", failing)
    err = handler_error(registry, "train", TrainRequest(config=config, resume_from=str(autosave),
                                                        checkpoint_path=str(autosave)))
    assert err.code == "train.callback_failed", err
    assert err.__cause__ is not None and getattr(err.__cause__, "code", "") == "checkpoint.unwritable"
    assert autosave.read_bytes() == first_epoch and temps(tmp_path) == []
    monkeypatch.undo()
    resumed = registry.call("pytorch", "train", TrainRequest(config=config, resume_from=str(autosave),
                                                             checkpoint_path=str(autosave)))
    a, b = store.get(full.model).module.state_dict(), store.get(resumed.model).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs from the uninterrupted one"
    assert resumed.history == full.history


def _other_filesystem(path: pathlib.Path) -> pathlib.Path | None:
    shm = pathlib.Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    return shm if shm.stat().st_dev != path.stat().st_dev else None


@pytest.mark.req("REQ-S04", "REQ-H15", "REQ-U13")
@pytest.mark.parametrize("where", ["tmpdir elsewhere", "target elsewhere"])
def test_saving_works_when_tmpdir_is_on_another_file_system(registry, model, tmp_path: pathlib.Path,
                                                            monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    shm = _other_filesystem(tmp_path)
    if shm is None:
        pytest.skip("no second file system (/dev/shm) to put TMPDIR on")
    other = pathlib.Path(tempfile.mkdtemp(prefix="studio-reliability-", dir=shm))
    try:
        tmpdir, target = (other, tmp_path) if where == "tmpdir elsewhere" else (tmp_path / "tmp", other)
        tmpdir.mkdir(exist_ok=True)
        monkeypatch.setenv("TMPDIR", str(tmpdir))
        monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches its folder
        assert pathlib.Path(tempfile.gettempdir()).stat().st_dev != target.stat().st_dev
        set_generation(model, 11)
        for training_state in (False, True):
            path = target / f"m{int(training_state)}.safetensors"
            registry.call("pytorch", "save", SaveRequest(model=model, path=str(path), training_state=training_state,
                                                         model_card=True))
            assert generation_of(registry, path) == 11
        autosave = target / "autosave.safetensors"
        registry.call("pytorch", "train", TrainRequest(config=TrainConfig(epochs=2, batch_size=512),
                                                       checkpoint_path=str(autosave)))
        registry.call("pytorch", "load", LoadRequest(path=str(autosave)))
        from studio.backend.core.project import Project, load_project, save_project

        save_project(target / "run.studio.json", Project(output=str(target / "m0.safetensors")))
        assert load_project(target / "run.studio.json").output == str(target / "m0.safetensors")
        leftovers = [p.name for p in target.iterdir() if p.name.startswith(".")]
        assert leftovers == [] and temps(target) == []
        assert list(tmpdir.iterdir()) == [], "a save wrote into TMPDIR"
    finally:
        for p in sorted(other.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        other.rmdir()
