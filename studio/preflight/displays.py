"""Can the display be reached? Each probe returns None when it can, else why not (one clause).

X11: a socket probe with a timeout first (``XOpenDisplay`` on a host that does not answer can wait a
long time), then libX11's own ``XOpenDisplay``, which also checks that this user may use the server.
Wayland: a connection to the compositor's socket. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import time

__all__ = ["parse_x11", "probe_x11", "probe_wayland", "TIMEOUT_S"]

TIMEOUT_S = 2.0
_X11_TCP_BASE = 6000
_X_OPEN_TRIES = 4


def parse_x11(display: str) -> tuple[str, int] | None:
    """``[host]:number[.screen]`` -> (host, number); None when it is not an X display name."""
    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return None
    return host, int(number)


def _connect(family: int, address: object) -> str | None:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect(address)  # type: ignore[arg-type]
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _x11_socket(display: str, host: str, number: int) -> str | None:
    unix = getattr(socket, "AF_UNIX", None)
    if host.startswith("/") and unix is not None:  # XQuartz names the socket's path itself
        path = f"{host}:{number}"
        failed = _connect(unix, path)
        return None if failed is None else f"nothing answers at {path} ({failed})"
    if host in ("", "unix") and unix is not None:
        path = f"/tmp/.X11-unix/X{number}"
        failed = _connect(unix, path)
        if failed is not None and sys.platform.startswith("linux"):  # servers may listen on the abstract socket only
            failed = failed if _connect(unix, "\0" + path) is not None else None
        return None if failed is None else f"no X server listens at {path} ({failed})"
    port = _X11_TCP_BASE + number
    failed = _connect(socket.AF_INET if ":" not in host else socket.AF_INET6, (host or "localhost", port))
    return None if failed is None else f"no X server answers at {host or 'localhost'}, port {port} ({failed})"


def _x_open(display: str) -> str | None:
    try:
        xlib = ctypes.CDLL("libX11.so.6")
    except OSError:
        return None  # the library check reports libX11 itself; the server did answer
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    for attempt in range(_X_OPEN_TRIES):  # a busy server drops a connection now and then; a refusal is steady
        handle = xlib.XOpenDisplay(display.encode())
        if handle:
            xlib.XCloseDisplay(handle)
            return None
        time.sleep(0.05 * (attempt + 1))
    return "the X server refused the connection (is this user allowed to use it? see xauth and xhost)"


def probe_x11(display: str) -> str | None:
    parsed = parse_x11(display)
    if parsed is None:
        return "it is not an X display name (one looks like ':0' or 'host:10.0')"
    failed = _x11_socket(display, *parsed)
    return failed if failed is not None else _x_open(display)


def probe_wayland(name: str, runtime_dir: str | None) -> str | None:
    """``name`` is ``$WAYLAND_DISPLAY`` (a socket name in ``$XDG_RUNTIME_DIR``, or an absolute path)."""
    unix = getattr(socket, "AF_UNIX", None)
    if unix is None:
        return "this system has no Unix sockets"
    if os.path.isabs(name):
        path = name
    elif runtime_dir:
        path = os.path.join(runtime_dir, name)
    else:
        return "XDG_RUNTIME_DIR is not set, so its socket cannot be found"
    failed = _connect(unix, path)
    return None if failed is None else f"no Wayland compositor listens at {path} ({failed})"
