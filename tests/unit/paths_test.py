"""Studio's folders follow each system's conventions (platformdirs), and the variables that move them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import logs, paths
from studio.ui import autosave

MOVERS = ("STUDIO_STATE_DIR", "STUDIO_LOG_DIR", "STUDIO_CACHE_DIR")


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in MOVERS:
        monkeypatch.delenv(name, raising=False)
    for name in ("STATE", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    return tmp_path


@pytest.mark.req("REQ-U10")
@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the Unix (XDG) layout")
def test_on_unix_the_folders_are_where_they_always_were(plain: Path) -> None:
    assert paths.state_dir() == plain / "state" / "studio"
    assert paths.log_dir() == logs.log_dir() == plain / "state" / "studio" / "logs"
    assert autosave.autosave_dir() == plain / "state" / "studio" / "autosave"
    assert paths.cache_dir() == plain / "cache" / "studio"
    assert paths.settings_file() == plain / "config" / "Studio" / "Studio.ini"


def test_the_studio_variables_move_each_folder(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MOVERS:
        monkeypatch.setenv(name, str(plain / name))
    assert paths.state_dir() == plain / "STUDIO_STATE_DIR"
    assert autosave.autosave_dir() == plain / "STUDIO_STATE_DIR" / "autosave"
    assert paths.log_dir() == plain / "STUDIO_LOG_DIR"
    assert paths.cache_dir() == plain / "STUDIO_CACHE_DIR"


def test_settings_file_is_the_one_qsettings_writes(tmp_path: Path) -> None:
    code = ("from PySide6.QtCore import QSettings; print(QSettings(QSettings.Format.IniFormat, "
            "QSettings.Scope.UserScope, 'Studio', 'Studio').fileName())")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "APPDATA": str(tmp_path / "appdata")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    here = subprocess.run([sys.executable, "-c", "from studio import paths; print(paths.settings_file())"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert Path(out.stdout.strip()) == Path(here.stdout.strip())
