"""PySide6 and Qt without importing them: versions from the package metadata, the platform plugins on disk,
and the plugin the window would use (from the preflight's decision)."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

from studio.doctor.extras import installed_version
from studio.preflight import Preflight, System

__all__ = ["qt_section", "platform_plugins", "plugin_to_load"]


def platform_plugins() -> list[str]:
    """The platform plugins PySide6 ships here (``xcb``, ``wayland``, ``offscreen``, ``cocoa``, ``windows`` ...)."""
    spec = importlib.util.find_spec("PySide6")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
    found = []
    for sub in ("Qt/plugins/platforms", "plugins/platforms"):
        for file in sorted((folder / sub).glob("*")):
            stem = file.name.split(".", 1)[0]
            if file.suffix in (".so", ".dll", ".dylib"):
                found.append(stem[4:] if stem.startswith("libq") else stem[1:] if stem.startswith("q") else stem)
    return found


def plugin_to_load(outcome: Preflight, system: System) -> str | None:
    if not system.needs_display_server:
        return "cocoa" if system.platform == "darwin" else "windows"
    if not outcome.ok:
        return None
    return outcome.platform or system.env.get("QT_QPA_PLATFORM") or None


def qt_section(outcome: Preflight, system: System) -> dict[str, Any]:
    pyside = installed_version("PySide6-Essentials") or installed_version("PySide6")
    return {
        "pyside6": pyside,
        "shiboken6": installed_version("shiboken6"),
        "qt": pyside,  # PySide6's wheels bundle the Qt of their own version
        "plugin": plugin_to_load(outcome, system),
        "plugins_available": platform_plugins(),
    }
