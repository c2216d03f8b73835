"""Turn any exception from a handler into the dict the window shows (REQ-U10).

A :class:`StudioError` already says what went wrong, where and what to do; anything else is a
bug, shown as a generic sentence while its traceback goes to the log file.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from studio.backend.core.errors import StudioError

__all__ = ["error_dict", "error_text"]

log = logging.getLogger(__name__)


def error_dict(exc: BaseException, what: str = "run") -> dict[str, Any]:
    """``StudioError.to_dict()``, or a ``studio.internal`` error for anything else (logged with its traceback)."""
    if isinstance(exc, StudioError):
        log.warning("%s failed: %s", what, exc, exc_info=exc)
        return exc.to_dict()
    log.error("unexpected error in %s", what, exc_info=exc)
    return {
        "type": type(exc).__name__, "code": "studio.internal",
        "message": f"Something went wrong inside Studio: {exc}. Details are in the log file.",
        "field": None, "value": None, "hint": None,
        "trace": "".join(traceback.format_exception(exc)),
    }


def error_text(error: dict[str, Any]) -> str:
    """One readable paragraph: the message, the hint when it adds something, and the code."""
    message = str(error.get("message") or "Something went wrong.")
    hint = error.get("hint")
    if hint and hint not in message:
        message = f"{message} {hint}"
    return f"{message}  (code: {error.get('code', 'studio.error')})"
