"""The preflight before Qt: no display, a display that cannot be opened, missing plugin libraries, Wayland
first with X11 as its fallback, and the install command of each distribution.

Each case goes through the check's own seam (:class:`studio.preflight.System`: the environment, the
library finder, the display probes, the os-release); the probes and the loader are also run for real
against sockets and libraries of this machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.preflight import System, check, displays, libraries

DEBIAN = {"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


def system(env: dict[str, str], *, absent: tuple[str, ...] = (), x11: str | None = None, wayland: str | None = None,
           release: dict[str, str] | None = None, platform: str = "linux", as_root: bool = False) -> System:
    """A machine with the given environment, missing ``absent`` sonames, whose probes answer ``x11``/``wayland``."""
    return System(env=env, platform=platform, has_library=lambda name: name not in absent,
                  probe_x11=lambda display: x11, probe_wayland=lambda name, runtime: wayland,
                  os_release=lambda: dict(DEBIAN if release is None else release), as_root=as_root)


def test_no_display_at_all_says_so_and_how_to_go_on() -> None:
    outcome = check(system({}))
    assert not outcome.ok and outcome.problem.code == "preflight.no_display"
    text = outcome.text()
    assert "there is no display" in text and "DISPLAY" in text and "WAYLAND_DISPLAY" in text
    assert "xvfb-run studio" in text and "command line" in text and "studio train" in text


def test_a_display_that_cannot_be_opened_is_named_with_the_reason() -> None:
    outcome = check(system({"DISPLAY": ":7"}, x11="no X server listens at /tmp/.X11-unix/X7 (No such file)"))
    assert outcome.problem.code == "preflight.display_unavailable"
    assert "':7'" in outcome.text() and "/tmp/.X11-unix/X7" in outcome.text() and "xvfb-run" in outcome.text()


def test_missing_plugin_libraries_are_listed_with_the_command_that_installs_them() -> None:
    outcome = check(system({"DISPLAY": ":0"}, absent=("libxcb-cursor.so.0", "libxcb-icccm.so.4")))
    problem = outcome.problem
    assert problem.code == "preflight.missing_libraries"
    assert problem.missing == ("libxcb-cursor.so.0", "libxcb-icccm.so.4")
    assert problem.install == "sudo apt-get install libxcb-cursor0 libxcb-icccm4"
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in outcome.text()
    assert "    sudo apt-get install libxcb-cursor0 libxcb-icccm4" in outcome.text().splitlines()


def test_as_root_the_command_has_no_sudo() -> None:
    outcome = check(system({"DISPLAY": ":0"}, absent=("libxcb-keysyms.so.1",), as_root=True))
    assert outcome.problem.install == "apt-get install libxcb-keysyms1"


def test_a_working_x11_display_starts_the_xcb_plugin() -> None:
    outcome = check(system({"DISPLAY": ":0"}))
    assert outcome.ok and outcome.platform == "xcb" and outcome.text() == ""


@pytest.mark.parametrize("release,command", [
    ({"ID": "ubuntu", "ID_LIKE": "debian"}, "sudo apt-get install libx11-xcb1 libxcb-cursor0 libxcb-icccm4"),
    ({"ID": "linuxmint", "ID_LIKE": "ubuntu debian"}, "sudo apt-get install libx11-xcb1 libxcb-cursor0 libxcb-icccm4"),
    ({"ID": "fedora"}, "sudo dnf install libX11-xcb xcb-util-cursor xcb-util-wm"),
    ({"ID": "rocky", "ID_LIKE": "rhel centos fedora"}, "sudo dnf install libX11-xcb xcb-util-cursor xcb-util-wm"),
    ({"ID": "arch"}, "sudo pacman -S --needed libx11 xcb-util-cursor xcb-util-wm"),
    ({"ID": "manjaro", "ID_LIKE": "arch"}, "sudo pacman -S --needed libx11 xcb-util-cursor xcb-util-wm"),
    ({"ID": "opensuse-tumbleweed", "ID_LIKE": "opensuse suse"},
     "sudo zypper install libX11-xcb1 libxcb-cursor0 libxcb-icccm4"),
], ids=["ubuntu", "mint", "fedora", "rocky", "arch", "manjaro", "opensuse"])
def test_each_distribution_gets_its_own_install_command(release: dict[str, str], command: str) -> None:
    outcome = check(system({"DISPLAY": ":0"}, absent=("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libX11-xcb.so.1"),
                           release=release))
    assert outcome.problem.install == command


def test_packages_holding_several_missing_libraries_are_named_once() -> None:
    absent = ("libxcb-randr.so.0", "libxcb-shape.so.0", "libxcb-xkb.so.1")
    assert libraries.install_command(absent, {"ID": "fedora"}) == "sudo dnf install libxcb"
    assert libraries.install_command(absent, {"ID": "debian"}) == \
        "sudo apt-get install libxcb-randr0 libxcb-shape0 libxcb-xkb1"


def test_an_unknown_distribution_lists_the_files_instead_of_a_command() -> None:
    outcome = check(system({"DISPLAY": ":0"}, absent=("libxcb-icccm.so.4",), release={"ID": "gentoo"}))
    assert outcome.problem.install is None
    assert "libxcb-icccm.so.4" in outcome.text() and "packages of your distribution" in outcome.text()


def test_every_library_a_plugin_needs_has_a_package_everywhere() -> None:
    for plugin in ("xcb", "wayland", "offscreen"):
        for soname in libraries.needed(plugin):
            assert all(libraries.PACKAGES[soname]), soname


def test_under_wayland_the_wayland_plugin_comes_first_and_x11_is_the_fallback() -> None:
    env = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert check(system(env)).platform == "wayland;xcb"
    assert check(system(env, wayland="no Wayland compositor listens at /run/user/1000/wayland-0")).platform == "xcb"
    assert check(system(env, absent=("libwayland-cursor.so.0",))).platform == "xcb"
    assert check(system(env, absent=("libxcb-cursor.so.0",))).platform == "wayland"
    assert check(system({"WAYLAND_DISPLAY": "wayland-0"})).platform == "wayland"


def test_when_neither_wayland_nor_its_x11_fallback_can_start_both_reasons_are_given() -> None:
    env = {"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":0"}
    outcome = check(system(env, wayland="no Wayland compositor listens there", absent=("libxcb-icccm.so.4",)))
    assert [p.code for p in outcome.problems] == ["preflight.display_unavailable", "preflight.missing_libraries"]
    assert "'wayland-1'" in outcome.text() and "sudo apt-get install libxcb-icccm4" in outcome.text()


def test_a_requested_platform_is_kept_and_checked() -> None:
    assert check(system({"QT_QPA_PLATFORM": "offscreen"})).ok
    assert check(system({"QT_QPA_PLATFORM": "offscreen"})).platform is None  # left as the person set it
    missing_gui = check(system({"QT_QPA_PLATFORM": "offscreen"}, absent=("libEGL.so.1",)))
    assert missing_gui.problem.install == "sudo apt-get install libegl1"
    no_x = check(system({"QT_QPA_PLATFORM": "xcb"}))
    assert no_x.problem.code == "preflight.no_display" and "QT_QPA_PLATFORM" in no_x.text()
    assert check(system({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, wayland="down")).ok


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_macos_and_windows_need_no_display_server(platform: str) -> None:
    assert check(system({}, platform=platform, absent=tuple(libraries.PACKAGES))).ok


def test_the_loader_is_asked_for_the_exact_soname() -> None:
    assert libraries.loadable("libc.so.6") if sys.platform.startswith("linux") else True
    assert not libraries.loadable("libstudio-no-such-library.so.9")


def test_os_release_is_read_with_quotes_and_comments(tmp_path: Path) -> None:
    file = tmp_path / "os-release"
    file.write_text('# comment\nNAME="Fedora Linux"\nID=fedora\nID_LIKE=\'rhel centos\'\n\nVERSION_ID=40\n')
    release = libraries.read_os_release([str(tmp_path / "missing"), str(file)])
    assert release == {"NAME": "Fedora Linux", "ID": "fedora", "ID_LIKE": "rhel centos", "VERSION_ID": "40"}
    assert libraries.package_manager(release) == "dnf"
    assert libraries.read_os_release([str(tmp_path / "missing")]) == {}


# -- the real probes -------------------------------------------------------------------------------------

def _free_x_number() -> int:
    return next(n for n in range(180, 400) if not os.path.exists(f"/tmp/.X11-unix/X{n}")
                and not os.path.exists(f"/tmp/.X{n}-lock"))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_probing_an_x_display_nobody_serves_names_the_socket() -> None:
    n = _free_x_number()
    reason = displays.probe_x11(f":{n}")
    assert reason is not None and f"/tmp/.X11-unix/X{n}" in reason


def test_probing_an_x_display_over_tcp_names_host_and_port() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if port < 6000:
        pytest.skip("the free port is below X11's base port")
    reason = displays.probe_x11(f"127.0.0.1:{port - 6000}")
    assert reason is not None and f"127.0.0.1, port {port}" in reason


def test_a_malformed_display_name_is_refused_without_a_connection() -> None:
    assert "not an X display name" in displays.probe_x11("nonsense")
    assert displays.parse_x11("host:10.0") == ("host", 10) and displays.parse_x11(":1") == ("", 1)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_the_wayland_probe_connects_to_the_compositor_socket(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "wayland-test"))
        server.listen(1)
        assert displays.probe_wayland("wayland-test", str(tmp_path)) is None
        assert displays.probe_wayland(str(tmp_path / "wayland-test"), None) is None
    assert "no Wayland compositor listens at" in displays.probe_wayland("wayland-gone", str(tmp_path))
    assert "XDG_RUNTIME_DIR" in displays.probe_wayland("wayland-0", None)


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A real X server (Xvfb) on a free display number, when this machine has one."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    n = _free_x_number()
    server = subprocess.Popen(["Xvfb", f":{n}", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.skip("Xvfb did not start")
            time.sleep(0.05)
        yield f":{n}"
    finally:
        server.terminate()
        server.wait(10)


def test_a_real_x_server_opens_and_the_libraries_decide(xvfb: str) -> None:
    assert displays.probe_x11(xvfb) is None
    outcome = check(System(env={"DISPLAY": xvfb}))
    absent = libraries.missing("xcb")
    if absent:
        assert outcome.problem.code == "preflight.missing_libraries" and list(outcome.problem.missing) == absent
    else:
        assert outcome.ok and outcome.platform == "xcb"


def test_the_preflight_imports_neither_qt_nor_torch_nor_anything_outside_the_standard_library() -> None:
    code = ("import sys, studio.preflight as p; p.check(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'shiboken6', 'torch', 'numpy', "
            "'platformdirs'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
