"""The preflight: can Qt open a window here? Decided before Qt is imported, so it never aborts.

Qt ends the process with SIGABRT (exit 134, a core dump) when no platform plugin can start: no
display, a display it cannot open, or a system library its plugin needs is missing. :func:`check`
finds each of these first and says what to do; :class:`System` is the seam through which tests
give it an environment, a library finder, display probes and an os-release.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from studio.preflight import displays, libraries

__all__ = ["System", "Problem", "Preflight", "check", "NO_DISPLAY_HINT"]

NO_DISPLAY_HINT = ("Run it on a virtual display: xvfb-run studio (or xvfb-run make studio). "
                   "Or use the command line, which needs no display: studio --help, studio train --data digits.")
# platform plugins that need no display server, only QtGui's own libraries
_HEADLESS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay", "minimalegl")
_NAMES = {"xcb": "X11", "wayland": "Wayland", "wayland-egl": "Wayland"}


@dataclass(frozen=True)
class System:
    """What the preflight looks at. Every field defaults to the real machine."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    platform: str = sys.platform
    has_library: Callable[[str], bool] = libraries.loadable
    probe_x11: Callable[[str], str | None] = displays.probe_x11
    probe_wayland: Callable[[str, str | None], str | None] = displays.probe_wayland
    os_release: Callable[[], Mapping[str, str]] = libraries.read_os_release
    as_root: bool = field(default_factory=libraries.is_root)

    @property
    def needs_display_server(self) -> bool:
        """macOS and Windows draw through their own window system, which is always there."""
        return not (self.platform in ("darwin", "win32", "cygwin") or self.platform.startswith("win"))


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    hint: str = ""
    missing: tuple[str, ...] = ()  # sonames, for preflight.missing_libraries
    install: str | None = None  # the command that installs them here

    def text(self) -> str:
        lines = [f"studio: error [{self.code}]: {self.message}"]
        if self.install:
            lines += ["Install them with:", "", f"    {self.install}", ""]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


@dataclass(frozen=True)
class Preflight:
    """``platform``: the value for ``QT_QPA_PLATFORM`` (a ``;`` list Qt tries in order), None to leave it."""

    platform: str | None = None
    problems: tuple[Problem, ...] = ()  # one per plugin tried, in order, when none can start

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def text(self) -> str:
        """What to tell the person: every plugin's problem (the preferred one first)."""
        return "\n\n".join(p.text() for p in self.problems)


def check(system: System | None = None) -> Preflight:
    """Whether the window can start here, and with which platform plugin."""
    system = system or System()
    if not system.needs_display_server:
        return Preflight()
    requested = system.env.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        plugins = [p.split(":", 1)[0].strip() for p in requested.split(";") if p.strip()]
    else:
        plugins = (["wayland"] if system.env.get("WAYLAND_DISPLAY") else []) + (
            ["xcb"] if system.env.get("DISPLAY") else [])
    if not plugins:
        return Preflight(problems=(Problem(
            "preflight.no_display", "Studio cannot open its window: there is no display "
            "(neither DISPLAY nor WAYLAND_DISPLAY is set).", NO_DISPLAY_HINT),))
    problems = [(plugin, plugin_problem(plugin, system)) for plugin in plugins]
    usable = [plugin for plugin, problem in problems if problem is None]
    if not usable:
        return Preflight(problems=tuple(problem for _, problem in problems if problem is not None))
    return Preflight(platform=None if requested else ";".join(usable))


def plugin_problem(plugin: str, system: System) -> Problem | None:
    """Why ``plugin`` cannot start here (the display first, then its libraries), or None."""
    problem = _display_problem(plugin, system)
    if problem is not None:
        return problem
    if plugin not in _NAMES and plugin not in _HEADLESS:
        return None  # a plugin Studio does not know: Qt itself will say what it needs
    absent = libraries.missing(plugin, system.has_library)
    if not absent:
        return None
    install = libraries.install_command(absent, system.os_release(), as_root=system.as_root)
    where = "Install the packages of your distribution that provide them, then start Studio again." \
        if install is None else "Then start Studio again. The command line (studio --help) needs none of them."
    return Problem("preflight.missing_libraries",
                   f"Studio cannot open its window: Qt's {plugin} platform plugin needs system libraries that are "
                   f"not installed: {', '.join(absent)}.", where, tuple(absent), install)


def _display_problem(plugin: str, system: System) -> Problem | None:
    env = system.env
    if plugin == "xcb":
        name, variable = env.get("DISPLAY", ""), "DISPLAY"
        if not name:
            return Problem("preflight.no_display", "Studio cannot open its window: QT_QPA_PLATFORM asks for the "
                           "X11 plugin (xcb), but there is no X display (DISPLAY is not set).", NO_DISPLAY_HINT)
        failed = system.probe_x11(name)
    elif plugin in ("wayland", "wayland-egl"):
        name, variable = env.get("WAYLAND_DISPLAY", "") or "wayland-0", "WAYLAND_DISPLAY"
        failed = system.probe_wayland(name, env.get("XDG_RUNTIME_DIR"))
    else:
        return None
    if failed is None:
        return None
    return Problem("preflight.display_unavailable",
                   f"Studio cannot open its window: the {_NAMES[plugin]} display {name!r} ({variable}) cannot be "
                   f"opened: {failed}.", "Check that the display server runs and that this user may use it. "
                   + NO_DISPLAY_HINT)
