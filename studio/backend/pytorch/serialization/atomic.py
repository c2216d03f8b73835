"""Atomic, durable file writes (REQ-S04, REQ-H15).

:func:`atomic_write` reserves a temporary file *in the target's directory* (so the final rename
never crosses a file system), lets the caller write it by path, fsyncs it, optionally checks it,
renames it over the target with :func:`os.replace` and fsyncs the directory so the rename itself
survives a power cut. On any exception, ``KeyboardInterrupt`` included, the temporary file is
removed and the previous target is untouched.

A process killed mid-write cannot clean up, so temporary files carry a recognisable name,
``.{target}.studio-tmp-{pid}-{token}``, and :func:`clean_stale_temps` (run by every save and load
in a directory) removes the ones whose writer is gone: on POSIX the writing process no longer
exists; elsewhere the file has not been touched for ten minutes.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.backend.core.errors import CheckpointError, StudioError, ValidationError

__all__ = ["FileInfo", "atomic_write", "clean_stale_temps", "check_target", "TMP_MARKER"]

TMP_MARKER = ".studio-tmp-"
_STALE_AFTER_S = 600.0  # where process liveness cannot be asked (Windows)
_active: set[str] = set()  # temporary files this process is writing right now
_active_lock = threading.Lock()


@dataclass(frozen=True)
class FileInfo:
    """What a save or export wrote: the final path and its size in bytes."""

    path: str
    size_bytes: int


_REASONS = {errno.ENOSPC: "the disk is full", errno.EACCES: "permission was denied",
            errno.EPERM: "permission was denied", errno.EROFS: "the file system is read-only"}


def _area(error_cls: type[StudioError]) -> str:
    return error_cls.default_code.split(".")[0]


def check_target(path: str | os.PathLike[str], *, suffixes: tuple[str, ...] = (),
                 error_cls: type[StudioError] = CheckpointError) -> Path:
    """Validate a path to write before any work is done; returns it as an absolute ``Path``."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValidationError(f"The file path must be a non-empty text, not {path!r}.", code="path.invalid",
                              field="path", value=repr(path))
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ValidationError(f"{str(target)!r} is a folder; choose a file name inside it.",
                              code="path.is_folder", field="path", value=str(target))
    if suffixes and not target.name.lower().endswith(suffixes):
        raise ValidationError(
            f"The file name {target.name!r} must end in {' or '.join(suffixes)}.",
            code="path.bad_suffix", field="path", value=str(target),
            hint=f"Choose a name such as {target.stem or 'model'}{suffixes[0]}.")
    if not target.parent.is_dir():
        raise ValidationError(f"The folder {str(target.parent)!r} does not exist; create it or choose another.",
                              code="path.missing_folder", field="path", value=str(target))
    if not os.access(target.parent, os.W_OK):
        raise error_cls(f"The folder {str(target.parent)!r} is not writable; choose another folder.",
                        code=f"{_area(error_cls)}.unwritable", field="path", value=str(target))
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 asks whether the process exists; nothing is sent
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to someone else
        return True
    return True


def _is_stale(path: Path) -> bool:
    with _active_lock:
        if str(path) in _active:
            return False
    try:
        pid = int(path.name.rsplit(TMP_MARKER, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        pid = -1
    if os.name == "posix" and pid > 0:
        return pid == os.getpid() or not _pid_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > _STALE_AFTER_S
    except OSError:
        return False


def clean_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files left in ``directory`` by interrupted writes; returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and TMP_MARKER in entry.name:
            path = Path(entry.path)
            if _is_stale(path):
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows; NTFS journals renames
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename has happened anyway
        pass
    finally:
        os.close(fd)


def _reserve(target: Path) -> Path:
    for _ in range(100):
        tmp = target.with_name(f".{target.name}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not reserve a temporary name beside {target}")


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[Path], object], *,
                 verify_fn: Callable[[Path], object] | None = None, suffixes: tuple[str, ...] = (),
                 error_cls: type[StudioError] = CheckpointError) -> FileInfo:
    """Write ``path`` atomically: ``write_fn(tmp_path)`` fills a reserved temporary file.

    ``verify_fn(tmp_path)``, when given, runs after the data is durable and before the rename;
    if it raises, the target keeps its previous content. Errors from the file system become
    ``error_cls`` with code ``<area>.unwritable``; :class:`StudioError` passes through unchanged.
    """
    target = check_target(path, suffixes=suffixes, error_cls=error_cls)
    clean_stale_temps(target.parent)
    area = _area(error_cls)
    tmp: Path | None = None
    renamed = False
    try:
        tmp = _reserve(target)
        with _active_lock:
            _active.add(str(tmp))
        write_fn(tmp)
        _fsync_path(tmp)
        if verify_fn is not None:
            verify_fn(tmp)
        os.replace(tmp, target)
        renamed = True
        _fsync_dir(target.parent)
        return FileInfo(str(target), target.stat().st_size)
    except StudioError:
        raise
    except OSError as exc:
        reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
        raise error_cls(f"Could not write {str(target)!r}: {reason}; the previous file, if any, is unchanged.",
                        code=f"{area}.unwritable", field="path", value=str(target),
                        hint="Choose another folder or free some space.") from exc
    except Exception as exc:
        raise error_cls(f"Writing {str(target)!r} failed ({type(exc).__name__}: {exc}); "
                        "the previous file, if any, is unchanged.",
                        code=f"{area}.write_failed", field="path", value=str(target)) from exc
    finally:
        if tmp is not None:
            if not renamed:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            with _active_lock:
                _active.discard(str(tmp))
