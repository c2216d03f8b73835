"""The ``studio doctor`` report: everything a bug report needs, and what is wrong, as one JSON-able dict.

:func:`collect` imports neither torch nor Qt: the backend's part (framework, build, devices) is the
answer of its ``environment`` handler, passed in by the caller (the command line calls the handler;
the window gets it from its worker thread), and the window adds what only a running Qt knows.
"""

from __future__ import annotations

import pathlib
import platform
import sys
from collections.abc import Mapping
from typing import Any

import studio
from studio import paths
from studio.doctor.extras import extras
from studio.doctor.folders import folders, free_space
from studio.doctor.qt_info import qt_section
from studio.preflight import Preflight, System, check, libraries

__all__ = ["collect", "problems", "LOW_DISK_BYTES"]

LOW_DISK_BYTES = 1 << 30  # below 1 GiB free, checkpoints and exports may fail to write
_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE")


def collect(backend: Mapping[str, Any] | BaseException | None, *, system: System | None = None,
            qt: Mapping[str, Any] | None = None, settings_file: str | None = None) -> dict[str, Any]:
    """``backend``: the ``environment`` handler's answer as a dict (or the exception it raised, or
    ``{"pending": text}`` while it is asked);
    ``qt``: overrides of the Qt section by a running application (exact Qt version, the loaded plugin)."""
    system = system or System()
    outcome = check(system)
    release = system.os_release() if system.needs_display_server else {}
    report: dict[str, Any] = {
        "studio": {"version": studio.__version__, "location": str(pathlib.Path(studio.__file__).parent)},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "system": {"os": platform.platform(), "machine": platform.machine(),
                   "distribution": release.get("PRETTY_NAME")},
        "backend": _backend(backend),
        "qt": {**qt_section(outcome, system), **(qt or {})},
        "display": _display(outcome, system),
        "libraries": _libraries(system, release),
        "folders": folders(settings_file),
        "extras": extras(),
        "disk": [free_space(paths.state_dir()), free_space(pathlib.Path.cwd())],
    }
    report["problems"] = problems(report)
    return report


def _backend(backend: Mapping[str, Any] | BaseException | None) -> dict[str, Any]:
    if backend is None:
        return {"error": "not asked"}
    if isinstance(backend, BaseException):
        return {"error": f"{type(backend).__name__}: {backend}"}
    return {k: v for k, v in backend.items() if k != "kind"}


def _display(outcome: Preflight, system: System) -> dict[str, Any]:
    env = {name: system.env.get(name) for name in _ENV}
    if not system.needs_display_server:
        return {**env, "ok": True, "problems": []}
    return {**env, "ok": outcome.ok, "problems": [{"code": p.code, "message": p.message, "install": p.install}
                                                  for p in outcome.problems]}


def _libraries(system: System, release: Mapping[str, str]) -> dict[str, Any]:
    """For each display-server plugin: the sonames missing here and the command that installs them."""
    if not system.needs_display_server:
        return {}
    out = {}
    for plugin in ("xcb", "wayland"):
        absent = libraries.missing(plugin, system.has_library)
        out[plugin] = {"missing": absent,
                       "install": libraries.install_command(absent, release, as_root=system.as_root) if absent else None}
    return out


def problems(report: Mapping[str, Any]) -> list[str]:
    """What is wrong, one sentence each (empty when all is well)."""
    found = []
    display = report["display"]
    for problem in display["problems"]:
        found.append(problem["message"] + (f" Install them with: {problem['install']}" if problem["install"] else ""))
    xcb = report["libraries"].get("xcb", {})
    if not display["ok"] and xcb.get("missing") and not any(
            p["code"] == "preflight.missing_libraries" for p in display["problems"]):
        found.append(f"Qt's xcb platform plugin (X11, also under xvfb-run) needs libraries that are not installed: "
                     f"{', '.join(xcb['missing'])}." + (f" Install them with: {xcb['install']}" if xcb["install"] else ""))
    if "error" in report["backend"]:
        found.append(f"The backend did not start: {report['backend']['error']}.")
    for folder in report["folders"]:
        if not folder["writable"]:
            found.append(f"The {folder['name']} folder {folder['path']} cannot be written.")
    for disk in report["disk"]:
        if "error" not in disk and disk["free_bytes"] < LOW_DISK_BYTES:
            found.append(f"Less than 1 GiB is free at {disk['path']}.")
    return found
