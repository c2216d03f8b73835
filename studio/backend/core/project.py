"""Project files (``.studio.json``): the whole set-up of a run, shared by the window and the command line.

A project holds what a run needs — data, model, training configuration, runtime, and for a
distillation the distillation settings and the teacher checkpoint — plus where the results go.
The window saves and opens it (REQ-U13); ``studio train project.studio.json`` runs it unchanged
(REQ-X02). The file is plain, hand-editable JSON::

    {
      "format": "studio.project",
      "version": 1,
      "operation": "train",
      "data": {"source": "builtin", "name": "digits", ...},
      "model": {"name": "mlp", "preset": null, "hparams": {"hidden": [128, 64]}, ...},
      "config": {"epochs": 10, "batch_size": 64, ...},
      "runtime": {"device": "auto", "seed": 0, ...},
      "distill": null,
      "teacher": null,
      "output": "digits-mlp.safetensors",
      "checkpoint": null
    }

Every key may be left out (its default applies); an unknown key, a value of the wrong type, a
file that is not JSON or a newer format version raises a :class:`ProjectError` naming the key
and its line. Relative paths (``data.path``, ``teacher``, ``teachers``, ``output``,
``checkpoint``) are relative to the project file's folder: :func:`load_project` makes them
absolute, :func:`save_project` writes those inside the folder relative again, so a project
folder can be moved as a whole. Writes are atomic. Nothing here imports torch or Qt.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import json
import os
import re
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.backend.core.contract import Contract
from studio.backend.core.errors import ValidationError
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    ModelSpec,
    RuntimeConfig,
    TrainConfig,
    TrainRequest,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SUFFIX",
    "OPERATIONS",
    "Project",
    "ProjectError",
    "load_project",
    "save_project",
    "parse_project",
    "project_text",
    "key_line",
    "project_lines",
]

FORMAT = "studio.project"
FORMAT_VERSION = 1
SUFFIX = ".studio.json"
OPERATIONS = ("train", "distill")


class ProjectError(ValidationError):
    """A project file cannot be read or written; ``field`` is the dotted key, ``line`` its line (or None)."""

    default_code = "project.invalid"

    def __init__(self, message: str, *, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.line = line


@dataclass(frozen=True)
class Project(Contract):
    """The set-up of one run; :meth:`to_request` gives the request the window or the CLI sends."""

    format: str = FORMAT
    version: int = FORMAT_VERSION
    operation: str = "train"  # train or distill
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)  # the student of a distillation
    config: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    distill: DistillConfig | None = None
    teacher: str | None = None  # teacher checkpoint (.safetensors) of a distillation
    teachers: tuple[str, ...] = ()  # further teachers (an ensemble)
    output: str | None = None  # where the trained model is saved (.safetensors)
    checkpoint: str | None = None  # training checkpoint written after each epoch (resumable)

    def to_request(self) -> TrainRequest | DistillRequest:
        """The ``TrainRequest`` (operation ``train``) or ``DistillRequest`` (``distill``) of this project."""
        if self.operation == "distill":
            if not self.teacher:
                raise ProjectError("A distillation project needs a teacher checkpoint; set \"teacher\".",
                                   code="project.missing_teacher", field="teacher")
            return DistillRequest(teacher=self.teacher, student=self.model, data=self.data, config=self.config,
                                  distill=self.distill or DistillConfig(), runtime=self.runtime,
                                  teachers=self.teachers, checkpoint_path=self.checkpoint)
        return TrainRequest(data=self.data, model=self.model, config=self.config, runtime=self.runtime,
                            checkpoint_path=self.checkpoint)

    @classmethod
    def from_request(cls, request: TrainRequest | DistillRequest, *, output: str | None = None) -> Project:
        """The project that reproduces ``request`` (what the window saves)."""
        if isinstance(request, DistillRequest):
            return cls(operation="distill", data=request.data, model=request.student, config=request.config,
                       runtime=request.runtime, distill=request.distill, teacher=request.teacher,
                       teachers=request.teachers, output=output, checkpoint=request.checkpoint_path)
        if isinstance(request, TrainRequest):
            return cls(operation="train", data=request.data, model=request.model, config=request.config,
                       runtime=request.runtime, output=output, checkpoint=request.checkpoint_path)
        raise ValidationError(f"A project is made from a TrainRequest or a DistillRequest, not "
                              f"{type(request).__name__}.", field="request", value=type(request).__name__)


# -- reading ----------------------------------------------------------------------------------------

def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file; relative paths in it become absolute (against the file's folder)."""
    where = Path(path).expanduser()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"The project file {str(where)!r} does not exist.", code="project.not_found",
                           field="path", value=str(where), hint="Check the path.") from None
    except IsADirectoryError:
        raise ProjectError(f"{str(where)!r} is a folder, not a project file.", code="project.not_found",
                           field="path", value=str(where), hint=f"Give a {SUFFIX} file; a folder of data is given with --data FOLDER.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"The project file {str(where)!r} cannot be read: {exc}.", code="project.unreadable",
                           field="path", value=str(where)) from exc
    project = parse_project(text, source=str(where))
    return _map_paths(project, lambda p: _absolute(p, where.absolute().parent))


def parse_project(text: str, *, source: str = "the project file") -> Project:
    """Parse the text of a project file (paths unchanged); errors name the key and its line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                           code="project.bad_json", line=exc.lineno, value=source,
                           hint="Fix the JSON syntax (a missing comma or quote is the usual cause).") from exc
    if not isinstance(data, dict):
        raise ProjectError(f"{source} must hold a JSON object {{...}}, not {type(data).__name__}.",
                           code="project.bad_json", line=1, value=source)
    lines = _key_lines(text)
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise _at(source, lines, ("format",), f"\"format\" must be {FORMAT!r}, not {fmt!r}: this is not a "
                  "Studio project file", code="project.not_project")
    version = data.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _at(source, lines, ("version",), f"\"version\" must be a whole number from 1, not {version!r}",
                  code="project.bad_value")
    if version > FORMAT_VERSION:
        raise _at(source, lines, ("version",), f"the file has format version {version}, newer than this Studio "
                  f"reads ({FORMAT_VERSION})", code="project.newer_version",
                  hint="Update Studio to open it.")
    _check(data, Project, (), source, lines)
    project = Project.from_dict(data)
    if project.operation not in OPERATIONS:
        raise _at(source, lines, ("operation",), f"\"operation\" must be one of {', '.join(OPERATIONS)}, "
                  f"not {project.operation!r}", code="project.bad_value")
    if project.operation == "distill" and not project.teacher:
        raise _at(source, lines, ("teacher",) if "teacher" in data else ("operation",),
                  "a distillation project needs a teacher checkpoint in \"teacher\"",
                  code="project.missing_teacher")
    return project


def _check(data: dict[str, Any], cls: type[Contract], path: tuple[Any, ...], source: str,
           lines: dict[tuple[Any, ...], int]) -> None:
    """Check ``data`` key by key against ``cls``, so an error can name the exact key."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key, value in data.items():
        here = (*path, key)
        if key == "kind":
            continue
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            owner = f"\"{'.'.join(map(str, path))}\"" if path else "a project"
            raise _at(source, lines, here, f"{owner} has no setting {key!r}", code="project.unknown_key",
                      hint=(f"Did you mean {close[0]!r}?" if close else f"Known settings: {', '.join(names)}."))
        nested = _contract_of(hints[key])
        if nested is not None and isinstance(value, dict):
            _check(value, nested, here, source, lines)
            continue
        try:
            cls.from_dict({key: value})
        except ValidationError as exc:
            inner = exc.message.rstrip(".")
            named = inner.replace(f"{cls.__name__}.{key}", f"\"{_dotted(here)}\"", 1)
            what = named if named != inner else f"\"{_dotted(here)}\" has a bad value: {inner}"
            raise _at(source, lines, here, what, code="project.bad_value") from exc


def _contract_of(hint: Any) -> type[Contract] | None:
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, Contract):
            return arg
    return None


def _at(source: str, lines: dict[tuple[Any, ...], int], key: tuple[Any, ...], what: str, *, code: str,
        hint: str | None = None) -> ProjectError:
    line = key_line(lines, key)
    where = f"{source}, line {line}" if line else source
    return ProjectError(f"{where}: {what}.", code=code, field=_dotted(key), line=line, hint=hint,
                        value=source)


def _dotted(key: tuple[Any, ...]) -> str:
    return ".".join(str(k) for k in key)


def key_line(lines: dict[tuple[Any, ...], int], key: tuple[Any, ...] | str) -> int | None:
    """The line of ``key`` (a path tuple or a dotted name); the nearest enclosing key if it is absent.

    A dotted name that is not a full path (``epochs``) matches the one key path it ends with.
    """
    if isinstance(key, str):
        parts = tuple(key.split("."))
        ends = [k for k in lines if tuple(map(str, k[-len(parts):])) == parts and len(k) >= len(parts)]
        if len(ends) == 1:
            return lines[ends[0]]
        key = parts
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None


def project_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Every key path of a JSON text (list items by index) and the line it is on."""
    return _key_lines(text)


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """A small scan of already valid JSON: the line of each key path, e.g. ``("config", "epochs") -> 7``.

    List items are recorded by index (``("teachers", 0)``)."""
    scan = json.decoder.scanstring  # type: ignore[attr-defined]
    breaks = [m.start() for m in re.finditer("\n", text)]
    out: dict[tuple[Any, ...], int] = {}
    stack: list[list[Any]] = []  # per open container: its bracket and the current key or index

    def line(pos: int) -> int:
        return bisect.bisect_left(breaks, pos) + 1

    def value_at(pos: int) -> None:
        if stack and stack[-1][0] == "[":
            stack[-1][1] += 1
            out[tuple(s[1] for s in stack)] = line(pos)

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n,:":
            i += 1
        elif ch == '"':
            value, end = scan(text, i + 1)
            after = end
            while after < n and text[after] in " \t\r\n":
                after += 1
            if stack and stack[-1][0] == "{" and after < n and text[after] == ":":
                stack[-1][1] = value
                out[tuple(s[1] for s in stack)] = line(i)
                i = after + 1
            else:
                value_at(i)
                i = end
        elif ch in "{[":
            value_at(i)
            stack.append([ch, None if ch == "{" else -1])
            i += 1
        elif ch in "}]":
            if stack:
                stack.pop()
            i += 1
        else:  # a number, true, false or null
            value_at(i)
            while i < n and text[i] not in ",]} \t\r\n":
                i += 1
    return out


# -- writing ----------------------------------------------------------------------------------------

def project_text(project: Project) -> str:
    """The JSON text of a project: indented, keys in a fixed order, no ``kind`` tags."""
    return json.dumps(_untag(project.to_dict()), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def save_project(path: str | os.PathLike[str], project: Project) -> Path:
    """Write ``project`` atomically; paths inside the file's folder are written relative to it."""
    if not isinstance(project, Project):
        raise ValidationError(f"save_project takes a Project, not {type(project).__name__}.", field="project")
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ProjectError(f"{str(target)!r} is a folder; choose a file name such as run{SUFFIX}.",
                           code="project.unwritable", field="path", value=str(target))
    folder = target.parent
    text = project_text(_map_paths(project, lambda p: _relative(p, folder)))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ProjectError(f"Cannot write the project file {str(target)!r}: {exc.strerror or exc}.",
                           code="project.unwritable", field="path", value=str(target),
                           hint="Choose a folder you can write to.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ProjectError(f"Cannot write the project file {str(target)!r}: {exc.strerror or exc}.",
                               code="project.unwritable", field="path", value=str(target)) from exc
        raise
    _fsync_dir(folder)
    return target


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untag(v) for k, v in value.items() if k != "kind"}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


# -- paths ------------------------------------------------------------------------------------------

def _map_paths(project: Project, fn: typing.Callable[[str], str]) -> Project:
    """``project`` with ``fn`` applied to every file path it holds."""
    def opt(p: str | None) -> str | None:
        return fn(p) if p else p

    data = dataclasses.replace(project.data, path=opt(project.data.path))
    return dataclasses.replace(project, data=data, teacher=opt(project.teacher),
                               teachers=tuple(fn(t) for t in project.teachers),
                               output=opt(project.output), checkpoint=opt(project.checkpoint))


def _absolute(path: str, folder: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (folder / p).resolve())


def _relative(path: str, folder: Path) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute():
        return path
    try:
        return p.relative_to(folder.resolve()).as_posix()
    except ValueError:
        try:
            return p.relative_to(folder).as_posix()
        except ValueError:
            return path
