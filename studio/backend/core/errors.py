"""The error hierarchy every handler speaks (REQ-H11).

Each error carries a stable machine ``code`` (``area.reason``), a one-sentence ``message`` a
non-programmer can act on (what was wrong, where, what to do), and optionally the offending
``field`` and ``value`` and a ``hint``. Errors survive a JSON round trip, so the command line,
the window and a log file all show the same thing. Nothing here imports torch or Qt.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "StudioError",
    "ValidationError",
    "RegistryError",
    "UnknownBackendError",
    "UnknownOperationError",
    "DuplicateHandlerError",
    "RuntimeConfigError",
    "DeviceUnavailableError",
    "OutOfMemoryError",
    "DataError",
    "ModelError",
    "TrainingError",
    "CheckpointError",
    "ExportError",
    "DistillError",
    "CancelledByUser",
    "error_from_dict",
]


class StudioError(Exception):
    """Base of every error that leaves a handler.

    ``code`` is stable across releases and safe to match on; ``message`` is for people.
    """

    default_code: ClassVar[str] = "studio.error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        value: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.value = value
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint and self.hint not in text:
            text = f"{text} {self.hint}"
        return f"[{self.code}] {text}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description; ``value`` is kept only when JSON can hold it."""
        value = self.value
        if not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = repr(value)
        return {
            "type": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "value": value,
            "hint": self.hint,
        }


class ValidationError(StudioError):
    """A request, configuration or argument is not acceptable; nothing was changed."""

    default_code = "request.invalid"


class RegistryError(StudioError):
    default_code = "registry.error"


class UnknownBackendError(RegistryError):
    default_code = "registry.unknown_backend"


class UnknownOperationError(RegistryError):
    default_code = "registry.unknown_operation"


class DuplicateHandlerError(RegistryError):
    default_code = "registry.duplicate"


class RuntimeConfigError(ValidationError):
    default_code = "runtime.invalid"


class DeviceUnavailableError(RuntimeConfigError):
    default_code = "runtime.device_unavailable"


class OutOfMemoryError(StudioError):
    default_code = "runtime.out_of_memory"


class DataError(StudioError):
    default_code = "data.invalid"


class ModelError(StudioError):
    default_code = "model.invalid"


class TrainingError(StudioError):
    default_code = "train.failed"


class CheckpointError(StudioError):
    default_code = "checkpoint.corrupt"


class ExportError(StudioError):
    default_code = "export.failed"


class DistillError(StudioError):
    default_code = "distill.invalid"


class CancelledByUser(StudioError):
    """Raised inside a loop to unwind after a cancel request; handlers turn it into a result."""

    default_code = "run.cancelled"


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_from_dict(data: dict[str, Any]) -> StudioError:
    """Rebuild an error from :meth:`StudioError.to_dict`; unknown types become ``StudioError``."""
    by_name = {c.__name__: c for c in _all_subclasses(StudioError)}
    cls = by_name.get(str(data.get("type")), StudioError)
    return cls(
        str(data.get("message", "")),
        code=data.get("code"),
        field=data.get("field"),
        value=data.get("value"),
        hint=data.get("hint"),
    )
