"""The system libraries Qt's platform plugins load, and the command that installs them here.

PySide6's wheels bring Qt itself but not the X11 / Wayland client libraries that Qt's GUI and its
``xcb`` and ``wayland`` platform plugins link against, and a fresh desktop often lacks some of them
(``libxcb-cursor0`` since Qt 6.5, ``libxcb-icccm4``, ...). Without them Qt aborts the process (a
core dump) after "no Qt platform plugin could be initialized". The sonames below are the plugins'
own dynamic dependencies (``readelf -d`` of ``libQt6Gui.so.6``, ``libqxcb.so``,
``libQt6XcbQpa.so.6``, ``libqwayland.so`` and ``libQt6WaylandClient.so.6`` of Qt 6.11), less Qt's
own libraries and the C runtime. Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterable, Mapping

__all__ = ["GUI", "XCB", "WAYLAND", "PACKAGES", "MANAGERS", "needed", "missing", "loadable", "read_os_release",
           "package_manager", "install_command", "is_root"]

# what QtGui itself needs, whichever plugin draws the window
GUI = ("libGL.so.1", "libEGL.so.1", "libfontconfig.so.1", "libfreetype.so.6", "libglib-2.0.so.0",
       "libgthread-2.0.so.0", "libxkbcommon.so.0", "libX11.so.6")
XCB = ("libX11-xcb.so.1", "libxcb.so.1", "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-util.so.1",
       "libxcb-image.so.0", "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render.so.0",
       "libxcb-render-util.so.0", "libxcb-shape.so.0", "libxcb-shm.so.0", "libxcb-sync.so.1",
       "libxcb-xfixes.so.0", "libxcb-xkb.so.1", "libxkbcommon-x11.so.0")
WAYLAND = ("libwayland-client.so.0", "libwayland-cursor.so.0")

MANAGERS = ("apt", "dnf", "pacman", "zypper")
# soname -> the package that holds it, for (apt, dnf, pacman, zypper)
PACKAGES: dict[str, tuple[str, str, str, str]] = {
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd", "libGL1"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd", "libEGL1"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig", "libfontconfig1"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2", "libfreetype6"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2", "libglib-2_0-0"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2", "glib2", "libgthread-2_0-0"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon", "libxkbcommon0"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11", "libX11-6"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11", "libX11-xcb1"),
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb", "libxcb1"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor", "libxcb-cursor0"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm", "libxcb-icccm4"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util", "xcb-util", "libxcb-util1"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image", "libxcb-image0"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms", "libxcb-keysyms1"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb", "libxcb-randr0"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb", "libxcb-render0"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil",
                                "libxcb-render-util0"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb", "libxcb-shape0"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb", "libxcb-shm0"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb", "libxcb-sync1"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb", "libxcb-xfixes0"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb", "libxcb-xkb1"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11", "libxkbcommon-x11-0"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client", "wayland", "libwayland-client0"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor", "wayland", "libwayland-cursor0"),
}

# os-release IDs (ID, then each of ID_LIKE) -> package manager
_FAMILIES = {
    "debian": "apt", "ubuntu": "apt", "linuxmint": "apt", "pop": "apt", "raspbian": "apt", "elementary": "apt",
    "fedora": "dnf", "rhel": "dnf", "centos": "dnf", "rocky": "dnf", "almalinux": "dnf", "amzn": "dnf",
    "arch": "pacman", "manjaro": "pacman", "endeavouros": "pacman",
    "suse": "zypper", "opensuse": "zypper", "opensuse-leap": "zypper", "opensuse-tumbleweed": "zypper",
    "sles": "zypper",
}
_INSTALL = {"apt": "apt-get install", "dnf": "dnf install", "pacman": "pacman -S --needed",
            "zypper": "zypper install"}


def needed(plugin: str) -> tuple[str, ...]:
    """The sonames the named platform plugin needs (only QtGui's own for plugins without a display server)."""
    extra = {"xcb": XCB, "wayland": WAYLAND, "wayland-egl": WAYLAND}.get(plugin, ())
    return GUI + extra


def loadable(soname: str) -> bool:
    """Whether the dynamic loader finds ``soname`` (the exact name the plugin asks for, version included)."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing(plugin: str, has_library: Callable[[str], bool] = loadable) -> list[str]:
    return [name for name in needed(plugin) if not has_library(name)]


def read_os_release(paths: Iterable[str] = ("/etc/os-release", "/usr/lib/os-release")) -> dict[str, str]:
    """The ``KEY=value`` lines of os-release(5); empty when there is none (not Linux, or a minimal container)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            continue
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                out[key.strip()] = value.strip().strip("'\"")
        return out
    return {}


def package_manager(os_release: Mapping[str, str]) -> str | None:
    ids = [os_release.get("ID", "")] + os_release.get("ID_LIKE", "").split()
    for distro in ids:
        manager = _FAMILIES.get(distro.strip().lower())
        if manager is not None:
            return manager
    return None


def install_command(sonames: Iterable[str], os_release: Mapping[str, str], *, as_root: bool = False) -> str | None:
    """The one command that installs the packages holding ``sonames`` here, or None for an unknown distribution."""
    manager = package_manager(os_release)
    if manager is None:
        return None
    column = MANAGERS.index(manager)
    packages = list(dict.fromkeys(PACKAGES[name][column] for name in sonames if name in PACKAGES))
    if not packages:
        return None
    prefix = "" if as_root else "sudo "
    return f"{prefix}{_INSTALL[manager]} {' '.join(packages)}"


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid is not None and geteuid() == 0)
