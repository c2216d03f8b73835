"""Studio's folders, whether each can be written, and the free space where they are."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from typing import Any

from studio import paths

__all__ = ["folders", "writable", "free_space"]


def _nearest_existing(path: pathlib.Path) -> pathlib.Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def writable(folder: pathlib.Path) -> bool:
    """Whether a file can be made in ``folder`` (or, when it does not exist yet, whether it can be created)."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        return False
    try:
        with tempfile.TemporaryFile(dir=base):
            return True
    except OSError:
        return False


def free_space(path: pathlib.Path) -> dict[str, Any]:
    base = _nearest_existing(path)
    try:
        usage = shutil.disk_usage(base)
    except OSError as exc:
        return {"path": str(path), "error": exc.strerror or str(exc)}
    return {"path": str(path), "free_bytes": int(usage.free), "total_bytes": int(usage.total)}


def folders(settings_file: str | None = None) -> list[dict[str, Any]]:
    """settings, state, logs and cache: path, whether it exists, whether it can be written."""
    settings = pathlib.Path(settings_file) if settings_file else paths.settings_file()
    table = [("settings", settings.parent, str(settings)), ("state", paths.state_dir(), None),
             ("logs", paths.log_dir(), None), ("cache", paths.cache_dir(), None)]
    return [{"name": name, "path": str(folder), "file": file, "exists": folder.is_dir(), "writable": writable(folder)}
            for name, folder, file in table]
