"""The rotating log file every front end writes details to (REQ-U10)."""

from __future__ import annotations

import logging
import pathlib
from logging.handlers import RotatingFileHandler

from studio.paths import log_dir

__all__ = ["log_dir", "setup_logging"]

_configured: pathlib.Path | None = None


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
