"""Where Studio keeps its files, by each system's own conventions (platformdirs).

========  ==============================  ==================================  ==============================
folder    Linux and other Unix            macOS                               Windows
========  ==============================  ==================================  ==============================
state     ``~/.local/state/studio``       ``~/Library/Application Support/``  ``%LOCALAPPDATA%\\studio``
logs      ``<state>/logs``                ``~/Library/Logs/studio``           ``%LOCALAPPDATA%\\studio\\Logs``
cache     ``~/.cache/studio``             ``~/Library/Caches/studio``         ``%LOCALAPPDATA%\\studio\\Cache``
settings  ``~/.config/Studio/Studio.ini`` ``~/.config/Studio/Studio.ini``     ``%APPDATA%\\Studio\\Studio.ini``
========  ==============================  ==================================  ==============================

The XDG variables (``XDG_STATE_HOME``, ``XDG_CACHE_HOME``, ``XDG_CONFIG_HOME``) move them on Unix;
``STUDIO_STATE_DIR``, ``STUDIO_LOG_DIR`` and ``STUDIO_CACHE_DIR`` move them anywhere (tests do).
The settings file is the one ``QSettings`` in INI format writes (:mod:`studio.ui.settings`).
"""

from __future__ import annotations

import os
import pathlib
import sys

import platformdirs

__all__ = ["APP", "state_dir", "log_dir", "cache_dir", "settings_file"]

APP = "studio"


def _unix_like() -> bool:
    return not (sys.platform == "darwin" or sys.platform.startswith("win"))


def state_dir() -> pathlib.Path:
    """Autosaved runs and other state that outlives a session."""
    if os.environ.get("STUDIO_STATE_DIR"):
        return pathlib.Path(os.environ["STUDIO_STATE_DIR"])
    return platformdirs.user_state_path(APP, appauthor=False)


def log_dir() -> pathlib.Path:
    """The rotating log file's folder (``STUDIO_STATE_DIR`` does not move it; ``STUDIO_LOG_DIR`` does)."""
    if os.environ.get("STUDIO_LOG_DIR"):
        return pathlib.Path(os.environ["STUDIO_LOG_DIR"])
    if _unix_like():  # as it always was there: beside the state, as "logs"
        return platformdirs.user_state_path(APP, appauthor=False) / "logs"
    return platformdirs.user_log_path(APP, appauthor=False)


def cache_dir() -> pathlib.Path:
    """Files Studio can make again (downloaded or computed); safe to delete."""
    if os.environ.get("STUDIO_CACHE_DIR"):
        return pathlib.Path(os.environ["STUDIO_CACHE_DIR"])
    return platformdirs.user_cache_path(APP, appauthor=False)


def settings_file() -> pathlib.Path:
    """Where ``QSettings(IniFormat, UserScope, "Studio", "Studio")`` keeps the window's settings."""
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or str(pathlib.Path.home() / "AppData" / "Roaming")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or str(pathlib.Path.home() / ".config")
    return pathlib.Path(base) / "Studio" / "Studio.ini"
