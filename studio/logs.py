"""The rotating log file every front end writes details to (REQ-U10)."""

from __future__ import annotations

import logging
import os
import pathlib
from logging.handlers import RotatingFileHandler

__all__ = ["log_dir", "setup_logging"]

_configured: pathlib.Path | None = None


def log_dir() -> pathlib.Path:
    """``$STUDIO_LOG_DIR``, else ``$XDG_STATE_HOME/studio/logs``, else ``~/.local/state/studio/logs``."""
    if os.environ.get("STUDIO_LOG_DIR"):
        return pathlib.Path(os.environ["STUDIO_LOG_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(pathlib.Path.home() / ".local" / "state")
    return pathlib.Path(base) / "studio" / "logs"


def setup_logging(level: int = logging.INFO) -> pathlib.Path:
    """Attach a 1 MiB x 5 rotating file handler to the ``studio`` logger (once); returns the file."""
    global _configured
    if _configured is not None:
        return _configured
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "studio.log"
    handler = RotatingFileHandler(path, maxBytes=1 << 20, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    logger = logging.getLogger("studio")
    logger.addHandler(handler)
    logger.setLevel(level)
    _configured = path
    return path
