"""REQ-X01: the sub-commands run the window's handlers headless, show progress as plain lines off a
terminal (JSON lines with --json), and their exit codes tell success, bad input and failure apart.

Real ``python -m studio`` subprocesses on tiny built-in data for the exit codes a shell sees (0, 1,
130; 2 in tests/integration) and the plain output; the other sub-commands and the bad-input cases,
which stop before any work, run in-process through ``studio.cli.run`` (the same code that
``python -m studio`` runs, without the start-up cost).
"""

from __future__ import annotations

import ast
import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import studio_env

from studio.backend.core.contract import decode_any
from studio.backend.core.events import EpochStats, GrammarChecker, RunStarted, StepStats
from studio.backend.core.registry import HandlerRegistry, default_registry
from studio.backend.core.requests import LoadRequest
from studio.cli import run
from studio.cli.exit_codes import BAD_INPUT, FAILED, INTERRUPTED, OK, RunFailure, exit_code_for

pytestmark = pytest.mark.req("REQ-X01")

ANSI = re.compile(r"\x1b\[|\r")
TINY = ["--data", "spirals", "--model", "mlp", "--hidden", "16", "--threads", "1"]  # generated: no sklearn to import


def cli(*args: str, registry: HandlerRegistry | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), stdout=out, stderr=err, registry=registry)
    return code, out.getvalue(), err.getvalue()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "logs")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``studio train`` on spirals for two epochs, stdout a pipe (not a terminal)."""
    folder = tmp_path_factory.mktemp("trained")
    out = folder / "spirals.safetensors"
    proc = subprocess.run([sys.executable, "-m", "studio", "train", *TINY, "--epochs", "2", "--out", str(out)],
                          cwd=folder, env=studio_env(folder), capture_output=True, text=True, timeout=240)
    assert proc.returncode == OK, proc.stderr
    return proc, out


# -- train: progress, exit code, checkpoint --------------------------------------------------------------

def test_train_off_a_terminal_prints_one_plain_line_per_epoch_and_exits_0(trained) -> None:
    proc, out = trained
    assert not ANSI.search(proc.stdout), "no control characters when stdout is not a terminal"
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert all("train_loss" in line and "val_accuracy" in line for line in epoch_lines)
    assert f"Saved the model to {out}" in proc.stdout
    assert out.is_file()


def test_the_saved_checkpoint_is_the_windows_format_and_loads_through_the_load_handler(trained) -> None:
    _, out = trained
    loaded = default_registry().get("pytorch", "load")(LoadRequest(path=str(out)))
    assert loaded.metadata["model"]["spec"]["hparams"] == {"hidden": [16]}
    assert loaded.metadata["data"]["name"] == "spirals"
    assert loaded.metadata["training_config"]["epochs"] == 2


def test_json_prints_every_event_as_one_object_per_line_then_the_results(tmp_path: Path) -> None:
    code, out, err = cli("train", *TINY, "--epochs", "2", "--json", "--out", str(tmp_path / "m.safetensors"))
    assert code == OK, err
    objects = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    kinds = [o["kind"] for o in objects]
    assert kinds[-2:] == ["TrainResult", "FileResult"]
    events = [decode_any(json.dumps(o)) for o in objects[:-2]]
    GrammarChecker.check(events)
    assert isinstance(events[0], RunStarted)
    assert sum(isinstance(e, EpochStats) for e in events) == 2
    assert any(isinstance(e, StepStats) for e in events)
    assert objects[-1]["path"] == str(tmp_path / "m.safetensors")


# -- the other sub-commands ------------------------------------------------------------------------------

def test_evaluate_measures_the_saved_model_on_its_own_validation_split(studio, trained) -> None:
    _, out = trained
    proc = studio("evaluate", str(out), "--json")
    assert proc.returncode == OK, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["kind"] == "EvaluateResult" and result["split"] == "val" and result["num_samples"] == 180
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0


def test_predict_answers_in_input_order_with_the_top_k_classes(trained, monkeypatch) -> None:
    _, out = trained
    rows = [[0.1, 0.2], [-0.5, 0.3], [0.7, -0.6]]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(rows)))
    code, text, err = cli("predict", str(out), "-", "--top-k", "2", "--json")  # rows from stdin
    assert code == OK, err
    result = json.loads(text)
    assert result["kind"] == "PredictResult" and len(result["labels"]) == 3
    assert all(len(top) == 2 for top in result["top_k"])
    assert set(result["labels"]) <= {"arm 1", "arm 2", "arm 3"}
    code, text, err = cli("predict", str(out), json.dumps(rows[:1]))  # inline rows, plain output
    assert code == OK and text.startswith("row 0\t") and len(text.splitlines()) == 1


def test_export_writes_a_checked_torchscript_file(trained, tmp_path: Path) -> None:
    _, out = trained
    code, text, err = cli("export", str(out), "--format", "torchscript", "--out", str(tmp_path / "m.pt"))
    assert code == OK, err
    assert (tmp_path / "m.pt").is_file()
    assert "largest difference from the model" in text
    code, text, err = cli("export", str(out), "--format", "onnx", "--out", str(tmp_path / "m.pt"))
    assert code == BAD_INPUT and "must end in .onnx" in err


def test_distill_teaches_a_smaller_student_from_a_saved_teacher_on_the_teachers_data(trained, tmp_path) -> None:
    _, teacher = trained
    student = tmp_path / "student.safetensors"
    code, text, err = cli("distill", "--teacher", str(teacher), "--hidden", "4", "--epochs", "1", "--temperature",
                          "2", "--threads", "1", "--json", "--out", str(student))
    assert code == OK, err
    objects = [json.loads(line) for line in text.splitlines()]
    assert [o["kind"] for o in objects[-2:]] == ["DistillResult", "FileResult"]
    loaded = default_registry().get("pytorch", "load")(LoadRequest(path=str(student)))
    assert loaded.metadata["data"]["name"] == "spirals"  # no --data: the teacher's own data
    assert loaded.metadata["model"]["spec"]["hparams"] == {"hidden": [4]}
    code, _, err = cli("distill", "--hidden", "4", "--out", str(tmp_path / "x.safetensors"))
    assert code == BAD_INPUT and "needs a teacher" in err


def test_inspect_describes_data_models_checkpoints_and_the_catalogue(trained) -> None:
    _, out = trained
    code, text, _ = cli("inspect", "data", "--data", "wine")
    assert code == OK and "wine: classification" in text and "splits: train" in text
    code, text, _ = cli("inspect", "model", "--model", "lenet", "--preset", "tiny", "--data", "digits", "--json")
    summary = json.loads(text)
    assert code == OK and summary["kind"] == "ModelSummary" and summary["name"] == "lenet"
    code, text, _ = cli("inspect", "checkpoint", str(out))
    assert code == OK and "mlp" in text and "trained on: spirals" in text
    code, text, _ = cli("inspect", "catalogue")
    assert code == OK and "resnet" in text and "--width" in text


# -- the same handlers as the window -----------------------------------------------------------------------

class SpyRegistry(HandlerRegistry):
    """Hands out the default registry's handlers and records which ones."""

    def __init__(self) -> None:
        super().__init__(discover_entry_points=False)
        self.handed_out: list[tuple[str, str, object]] = []

    def get(self, backend: str, operation: str):  # type: ignore[override]
        handler = default_registry().get(backend, operation)
        self.handed_out.append((backend, operation, handler))
        return handler


def test_commands_take_their_handlers_from_the_default_registry_the_window_uses(monkeypatch, tmp_path) -> None:
    spy = SpyRegistry()
    monkeypatch.setattr("studio.cli.context.default_registry", lambda: spy)
    code, _, err = cli("train", *TINY, "--epochs", "1", "--out", str(tmp_path / "m.safetensors"))
    assert code == OK, err
    used = {op: handler for _, op, handler in spy.handed_out}
    assert {"catalogue", "train", "save"} <= set(used)
    from studio.backend.pytorch import handlers

    for op, handler in used.items():
        assert handler is default_registry().get("pytorch", op) is handlers.HANDLERS[op]


def test_the_command_line_never_imports_qt() -> None:
    qt = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "qtpy", "superqt")
    root = Path(__file__).resolve().parents[2] / "studio" / "cli"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in qt or n.startswith("studio.ui")], path


# -- help ----------------------------------------------------------------------------------------------------

def test_help_of_train_lists_every_training_setting_and_the_models_hyperparameters() -> None:
    import dataclasses

    from studio.backend.core.requests import RuntimeConfig, TrainConfig

    code, text, _ = cli("train", "--help")
    assert code == OK
    for f in (*dataclasses.fields(TrainConfig), *dataclasses.fields(RuntimeConfig)):
        assert "--" + f.name.replace("_", "-") in text
    assert "hyperparameters of mlp" in text and "--hidden N,N,..." in text
    code, text, _ = cli("train", "--model", "resnet", "--help")
    assert code == OK and "hyperparameters of resnet" in text
    section = text.split("hyperparameters of resnet")[1].split("\ntraining:")[0]
    assert "--width N" in section and "--blocks N,N,..." in section and "--hidden" not in section


@pytest.mark.parametrize("command", ["distill", "evaluate", "predict", "export", "inspect", "run"])
def test_every_command_has_help(command: str) -> None:
    code, text, _ = cli(command, "--help") if command not in ("inspect", "run") else cli(command)
    if command == "run":
        assert code == BAD_INPUT
        return
    assert text.startswith("usage: studio"), text[:200]


def test_top_level_help_lists_the_commands_and_the_exit_codes() -> None:
    code, text, _ = cli("--help")
    assert code == OK
    for command in ("train", "distill", "evaluate", "predict", "export", "inspect"):
        assert command in text
    assert "130" in text and "torchrun" in text


# -- bad input: exit 2, a clear message, nothing written -------------------------------------------------

def test_an_unknown_model_exits_2_with_a_suggestion_and_writes_nothing(tmp_path: Path) -> None:
    code, out, err = cli("train", "--model", "resnett", "--out", str(tmp_path / "m.safetensors"))
    assert code == BAD_INPUT
    assert "no model named 'resnett'" in err and "Did you mean 'resnet'?" in err and "Nothing was written." in err
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("args, expected", [
    (["trian"], "Did you mean 'train'?"),
    (["train", "--epocs", "3"], "Did you mean '--epochs'?"),
    (["train", "--model", "resnet", "--hidden", "8"], "hyperparameter of lenet and mlp, not of resnet"),
    (["train", "--optimizer", "adma"], "Did you mean 'adam'?"),
    (["train", "--hidden", "0"], "must be a list of 0 to 8 whole numbers from 1 to 8192"),
    (["train", "--epochs", "many"], "expected a whole number"),
    (["inspect", "modle"], "Did you mean 'model'?"),
    (["train", "--data", "digts"], "Did you mean 'digits'?"),
])
def test_usage_errors_exit_2_with_the_closest_suggestion(args: list[str], expected: str) -> None:
    code, out, err = cli(*args)
    assert code == BAD_INPUT
    assert expected in err
    assert "Traceback" not in err


def test_an_output_path_that_cannot_be_written_exits_2_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target, reason in [(blocker / "m.safetensors", "is a file, not a folder"),
                           (tmp_path / "missing" / "m.safetensors", "does not exist"),
                           (tmp_path / "m.pt", "must end in .safetensors"),
                           (tmp_path, "is a folder")]:
        code, out, err = cli("train", *TINY, "--epochs", "1", "--out", str(target))
        assert code == BAD_INPUT and reason in err
        assert "epoch" not in out  # training never started
    assert files_in(tmp_path) == ["a-file"]


def test_nproc_without_torchrun_explains_how_to_launch_it(tmp_path: Path) -> None:
    code, out, err = cli("train", *TINY, "--nproc", "2", "--out", str(tmp_path / "m.safetensors"))
    assert code == BAD_INPUT
    assert "torchrun --standalone --nproc_per_node 2 -m studio train" in err and "--nproc 2 " not in err.split("Run:")[1]
    assert files_in(tmp_path) == []


def test_a_missing_project_file_exits_2(tmp_path: Path) -> None:
    code, _, err = cli("train", str(tmp_path / "nowhere.studio.json"))
    assert code == BAD_INPUT and "does not exist" in err


def test_exit_codes_follow_the_error_codes() -> None:
    from studio.backend.core.errors import CheckpointError, DataError, OutOfMemoryError, TrainingError

    assert exit_code_for(DataError("x")) == BAD_INPUT
    assert exit_code_for(CheckpointError("x", code="checkpoint.not_found")) == BAD_INPUT
    assert exit_code_for(TrainingError("x", code="train.nonfinite_loss")) == FAILED
    assert exit_code_for(OutOfMemoryError("x")) == FAILED
    assert exit_code_for(KeyboardInterrupt()) == INTERRUPTED
    assert exit_code_for(RunFailure("x", code="checkpoint.unwritable")) == FAILED


def test_a_save_that_fails_after_training_exits_1(tmp_path: Path) -> None:
    from studio.backend.core.errors import CheckpointError

    class FullDisk(SpyRegistry):
        def get(self, backend: str, operation: str):  # type: ignore[override]
            if operation != "save":
                return super().get(backend, operation)

            def save(request, **_):
                raise CheckpointError("The disk is full.", code="checkpoint.unwritable")

            return save

    code, _, err = cli("train", *TINY, "--epochs", "1", "--out", str(tmp_path / "m.safetensors"), registry=FullDisk())
    assert code == FAILED and "could not be saved: The disk is full." in err


# -- failure during the run, interruption -----------------------------------------------------------------

def test_a_loss_that_becomes_nan_exits_1_and_writes_nothing(studio, tmp_path: Path) -> None:
    proc = studio("train", *TINY, "--epochs", "3", "--optimizer", "sgd", "--lr", "1e30", "--out", "m.safetensors")
    assert proc.returncode == FAILED, proc.stderr
    assert "train.nonfinite_loss" in proc.stderr
    assert files_in(tmp_path) == []


def test_ctrl_c_stops_cleanly_saves_the_state_reached_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", *TINY, "--epochs", "100000", "--out", str(out)],
                            cwd=tmp_path, env=studio_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 180
        line = ""
        while not line.startswith("epoch 2/") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == INTERRUPTED, stderr
    assert "Stopped at step" in stdout and "Saved the state reached when stopped" in stdout
    assert files_in(tmp_path) == ["m.safetensors"]  # complete file, no temporary left behind
    loaded = default_registry().get("pytorch", "load")(LoadRequest(path=str(out)))
    assert loaded.metadata["data"]["name"] == "spirals"


# -- progress renderers ----------------------------------------------------------------------------------

def a_run_of_events(steps: int = 3) -> list:
    from studio.backend.core.events import RunFinished

    events: list = [RunStarted("r", "train", 2, steps)]
    for epoch in range(2):
        for i in range(steps):
            events.append(StepStats("r", epoch * steps + i + 1, epoch, 1.0 / (i + 1), 8, 0.01, 0.01, 800.0,
                                    metrics={"accuracy": 0.5}))
        events.append(EpochStats("r", epoch, (epoch + 1) * steps, {"loss": 0.5, "accuracy": 0.75},
                                 {"loss": 0.6, "accuracy": 0.7}, 0.01, 0.05, 480.0))
    events.append(RunFinished("r", 2 * steps, 2))
    return events


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar_and_a_pipe_plain_lines() -> None:
    from studio.cli.progress import LineProgress, TerminalProgress, choose_progress

    assert isinstance(choose_progress(False, stream=FakeTerminal()), TerminalProgress)
    assert isinstance(choose_progress(False, stream=io.StringIO()), LineProgress)
    screen = FakeTerminal()
    bar = TerminalProgress(screen)
    for event in a_run_of_events():
        bar(event)
    text = screen.getvalue()
    assert "\x1b[" in text  # drawn with terminal control sequences
    assert "epoch 1/2  train_loss 0.5000  train_accuracy 0.7500  val_loss 0.6000" in text
    assert "epoch 2/2" in text


def test_plain_lines_are_one_per_epoch_and_at_most_one_every_10_s_within_an_epoch() -> None:
    from studio.cli.progress import LineProgress

    now = [0.0]
    out = io.StringIO()
    lines = LineProgress(out, clock=lambda: now[0])
    for event in a_run_of_events(steps=30):
        if isinstance(event, StepStats):
            now[0] += 1.0  # one second a step: a progress line every ten steps at most
        lines(event)
    text = out.getvalue().splitlines()
    assert sum(line.startswith("epoch ") and "step " not in line for line in text) == 2
    assert 4 <= sum("step " in line for line in text) <= 6
    assert not ANSI.search(out.getvalue())
