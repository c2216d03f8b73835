"""Suite-wide set-up: headless Qt, quiet torch threads, and the `req` marker check.

`QT_QPA_PLATFORM=offscreen` must be set before Qt is imported anywhere, so it is set here,
at the top of the first file pytest imports. The `req` marker names requirement IDs; an ID
that the specs in `specs/` do not define is a collection error, so a typo cannot hide a gap.
"""

from __future__ import annotations

import faulthandler
import os
import pathlib
import re
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_LOG_DIR", str(pathlib.Path(__file__).resolve().parent.parent / ".pytest_cache" / "logs"))

import pytest  # noqa: E402

SPECS = pathlib.Path(__file__).resolve().parent.parent / "specs"
_HEADING = re.compile(r"^#{2,4}\s+(REQ-(?:KD\d\da?|[A-Z]\d\d))\b", re.MULTILINE)


def known_requirement_ids() -> set[str]:
    ids: set[str] = set()
    for spec in SPECS.glob("*.md"):
        if spec.name != "TRACEABILITY.md":
            ids.update(_HEADING.findall(spec.read_text(encoding="utf-8")))
    return ids


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = known_requirement_ids()
    bad = []
    for item in items:
        for mark in item.iter_markers("req"):
            if not mark.args:
                bad.append(f"{item.nodeid}: req() names no requirement")
            bad.extend(f"{item.nodeid}: unknown requirement {rid!r}" for rid in mark.args if rid not in known)
    if bad:
        raise pytest.UsageError(
            "Unknown requirement IDs in @pytest.mark.req (IDs are defined by headings in specs/*.md):\n  "
            + "\n  ".join(bad)
        )


#: Where the watchdog writes every thread's stack when a test hangs past its timeout (``make test`` prints it).
HANG_REPORT = pathlib.Path(__file__).resolve().parent.parent / ".pytest_cache" / "hang.txt"
#: Seconds past a test's own timeout before the watchdog ends the process.
HANG_GRACE_S = 90.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201 - a hook wrapper
    """A hard backstop for pytest-timeout's signal method, which cannot interrupt a thread stuck in C code.

    A test blocked inside Qt or torch (a deadlock) never returns to the interpreter, so SIGALRM's
    handler never runs and the run would hang until CI's own limit. faulthandler's watchdog is a C
    thread: past the test's timeout plus a grace period it writes the stack of every thread to
    ``HANG_REPORT`` and ends the process with exit status 1, so the run fails in minutes, with the place.
    """
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker is not None and marker.args else float(item.config.getini("timeout") or 0)
    report = None
    if limit > 0:
        HANG_REPORT.parent.mkdir(parents=True, exist_ok=True)
        report = open(HANG_REPORT, "w", encoding="utf-8")  # noqa: SIM115 - held open for the C watchdog
        report.write(f"hang in {item.nodeid} (no end after {limit + HANG_GRACE_S:.0f} s); stacks of all threads:\n")
        report.flush()
        faulthandler.dump_traceback_later(limit + HANG_GRACE_S, exit=True, file=report)
    try:
        yield
    finally:
        _collect_like_the_window()
        if report is not None:
            faulthandler.cancel_dump_traceback_later()
            report.close()
            HANG_REPORT.unlink(missing_ok=True)


def _collect_like_the_window() -> None:
    """After a test: what the window's GUI-thread collector does once a second (it turns automatic
    collection off for the process; tests that never spin the event loop must not pile up cycles)."""
    gui_gc = sys.modules.get("studio.ui.gui_gc")
    collector = gui_gc.collector() if gui_gc is not None else None
    if collector is not None:
        collector.check()


@pytest.fixture
def one_torch_thread():  # noqa: ANN201 - a generator fixture
    """Torch on one intra-op thread for the test (exact, steady timings on a 2-core machine), then restored."""
    import torch  # here, not at the top: UI tests never import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--traceability", metavar="PATH", default=None,
                     help="write the requirement traceability table (specs/TRACEABILITY.md) from this run")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--traceability")
    if target:
        from traceability import TraceabilityPlugin

        config.pluginmanager.register(TraceabilityPlugin(pathlib.Path(target), SPECS), "studio-traceability")
