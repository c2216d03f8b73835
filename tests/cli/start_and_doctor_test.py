"""``studio`` where no window can open exits 2 with what to do (never Qt's abort, 134), and ``studio doctor``.

Real subprocesses of the installed ``studio`` command (``python -m studio`` where the script is absent).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import studio_env

from studio.preflight import libraries

SCRIPT = Path(sys.executable).with_name("studio.exe" if os.name == "nt" else "studio")
STUDIO = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "studio"]


def run(args: list[str], tmp: Path, *, unset: tuple[str, ...] = (), timeout: int = 120,
        **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in studio_env(tmp).items() if k not in unset}
    environment.update(STUDIO_STATE_DIR=str(tmp / "state"), STUDIO_CACHE_DIR=str(tmp / "cache"),
                       XDG_CONFIG_HOME=str(tmp / "config"), **env)
    return subprocess.run([*STUDIO, *args], cwd=tmp, env=environment, capture_output=True, text=True,
                          timeout=timeout)


NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def test_studio_without_a_display_exits_2_with_the_message_not_qt_s_abort(tmp_path: Path) -> None:
    proc = run([], tmp_path, unset=NO_DISPLAY)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])  # 134 / -6 was Qt's SIGABRT
    assert "studio: error [preflight.no_display]" in proc.stderr
    assert "xvfb-run studio" in proc.stderr and "command line" in proc.stderr
    assert "Qt platform plugin" not in proc.stderr and "Aborted" not in proc.stderr


def test_studio_with_a_display_nobody_serves_exits_2_naming_it(tmp_path: Path) -> None:
    number = next(n for n in range(190, 400) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    proc = run([], tmp_path, unset=NO_DISPLAY, DISPLAY=f":{number}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "preflight.display_unavailable" in proc.stderr and f"':{number}'" in proc.stderr


def test_preflight_alone_says_whether_the_window_can_start(tmp_path: Path) -> None:
    bad = run(["--preflight"], tmp_path, unset=NO_DISPLAY)
    assert bad.returncode == 2 and "preflight.no_display" in bad.stderr
    good = run(["--preflight"], tmp_path, unset=NO_DISPLAY, QT_QPA_PLATFORM="offscreen")
    assert good.returncode == 0 and "the window can start here (Qt platform plugin: offscreen)" in good.stdout


@pytest.mark.skipif(shutil.which("xvfb-run") is None or not libraries.missing("xcb"),
                    reason="needs xvfb-run and a machine that lacks some of the xcb plugin's libraries")
def test_under_xvfb_run_missing_libraries_get_the_install_command(tmp_path: Path) -> None:
    proc = subprocess.run(["xvfb-run", "-a", *STUDIO], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in studio_env(tmp_path).items() if k not in NO_DISPLAY})
    assert proc.returncode == 2, proc.stderr[-2000:]
    command = libraries.install_command(libraries.missing("xcb"), libraries.read_os_release(),
                                        as_root=libraries.is_root())
    assert "preflight.missing_libraries" in proc.stderr
    if command:
        assert f"    {command}" in proc.stderr.splitlines()


def test_doctor_prints_the_report(tmp_path: Path) -> None:
    proc = run(["doctor"], tmp_path, unset=NO_DISPLAY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for label in ("Studio", "Python", "Backend", "Devices", "Qt", "Plugin", "Display", "Libraries", "Folders",
                  "Extras", "Disk", "Problems"):
        assert any(line.startswith(label + " ") for line in out.splitlines()), label
    assert "pytorch: torch " in out and "cpu: " in out and "PySide6 " in out
    assert f"state    {tmp_path / 'state'}" in out
    assert "no display" in out  # no display here: the first problem


def test_doctor_json_is_one_object_with_every_part(tmp_path: Path) -> None:
    proc = run(["doctor", "--json"], tmp_path, unset=NO_DISPLAY, QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["backend"]["framework"] == "torch" and report["backend"]["devices"][0]["id"] == "cpu"
    assert report["qt"]["plugin"] == "offscreen" and report["display"]["ok"]
    assert {f["name"]: f["path"] for f in report["folders"]} == {
        "settings": str(tmp_path / "config" / "Studio"), "state": str(tmp_path / "state"),
        "logs": str(tmp_path / "logs"), "cache": str(tmp_path / "cache")}
    assert any(e["name"] == "export" for e in report["extras"])
    assert report["disk"][0]["free_bytes"] > 0
    assert isinstance(report["problems"], list)


def test_doctor_imports_no_qt(tmp_path: Path) -> None:
    code = ("import io, sys; from studio.cli import run; out = io.StringIO(); "
            "assert run(['doctor', '--json'], stdout=out) == 0; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=studio_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_qt_that_cannot_be_loaded_exits_2_with_what_to_do(tmp_path: Path) -> None:
    broken = tmp_path / "broken" / "PySide6"  # a PySide6 whose Qt libraries are gone, first on the path
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("libQt6Core.so.6: cannot open shared object file")\n')
    path = os.pathsep.join([str(broken.parent), *[p for p in sys.path if p]])
    proc = run([], tmp_path, unset=NO_DISPLAY, QT_QPA_PLATFORM="offscreen", PYTHONPATH=path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "preflight.qt_unavailable" in proc.stderr and "libQt6Core.so.6" in proc.stderr
