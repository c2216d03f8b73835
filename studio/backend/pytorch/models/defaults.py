"""One-click picks: the default student and teacher for each input kind (REQ-M07, REQ-M10)."""

from __future__ import annotations

from studio.backend.core.errors import ModelError
from studio.backend.core.requests import ModelSpec
from studio.backend.pytorch.models.registry import INPUT_KINDS

__all__ = ["DEFAULT_STUDENTS", "DEFAULT_TEACHERS", "default_model", "default_student"]

DEFAULT_STUDENTS: dict[str, ModelSpec] = {
    "vector": ModelSpec(name="mlp", preset="small"),
    "image": ModelSpec(name="mobilenet", preset="small"),
    "sequence": ModelSpec(name="cnn1d", preset="small"),
}
DEFAULT_TEACHERS: dict[str, ModelSpec] = {
    "vector": ModelSpec(name="mlp", preset="base"),
    "image": ModelSpec(name="resnet", preset="base"),
    "sequence": ModelSpec(name="transformer", preset="small"),
}


def default_model(input_kind: str, role: str = "student") -> ModelSpec:
    """The spec Studio proposes for data of ``input_kind``; ``role`` is ``student`` or ``teacher``."""
    table = {"student": DEFAULT_STUDENTS, "teacher": DEFAULT_TEACHERS}.get(role)
    if table is None or input_kind not in INPUT_KINDS:
        raise ModelError(
            f"No default model for role {role!r} and input kind {input_kind!r}; roles are student and teacher, "
            f"kinds are {', '.join(INPUT_KINDS)}.",
            code="model.bad_spec",
        )
    return table[input_kind]


def default_student(input_kind: str) -> str:
    """Name of the default student for ``input_kind``: ``mobilenet`` for images."""
    return default_model(input_kind, "student").name
