"""Suite-wide set-up: headless Qt, quiet torch threads, and the `req` marker check.

`QT_QPA_PLATFORM=offscreen` must be set before Qt is imported anywhere, so it is set here,
at the top of the first file pytest imports. The `req` marker names requirement IDs; an ID
that the specs in `specs/` do not define is a collection error, so a typo cannot hide a gap.
"""

from __future__ import annotations

import os
import pathlib
import re

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--traceability", metavar="PATH", default=None,
                     help="write the requirement traceability table (specs/TRACEABILITY.md) from this run")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--traceability")
    if target:
        from traceability import TraceabilityPlugin

        config.pluginmanager.register(TraceabilityPlugin(pathlib.Path(target), SPECS), "studio-traceability")
