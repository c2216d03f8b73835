"""``studio doctor``: the report a bug report needs (:mod:`studio.doctor`), as text or ``--json``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from studio.cli.context import Context

__all__ = ["add_doctor", "cmd_doctor", "DESCRIPTION"]

DESCRIPTION = ("What a bug report needs and what is wrong: Studio, Python, torch and its CUDA/MPS build, GPUs "
               "with memory, PySide6/Qt and the platform plugin the window would use, the display, missing system "
               "libraries with the command that installs them, Studio's folders and whether they can be written, "
               "the optional extras installed, and free disk space. Needs no display.\n\nexample:\n"
               "  studio doctor\n  studio doctor --json")


def add_doctor(parser: argparse.ArgumentParser, ctx: Context, model: Any) -> None:
    parser.add_argument("--json", action="store_true", help="The report as one JSON object on stdout.")


def backend_environment(ctx: Context) -> dict[str, Any] | BaseException:
    """The backend's ``environment`` answer, or what stopped it (a broken torch must not stop the report)."""
    from studio.backend.core.environment import EnvironmentRequest

    try:
        return ctx.handler("environment")(EnvironmentRequest()).to_dict()
    except Exception as exc:  # noqa: BLE001 - the report says what failed instead
        return exc


def cmd_doctor(args: argparse.Namespace, ctx: Context, model: Any) -> int:
    from studio.doctor import collect, format_report

    report = collect(backend_environment(ctx))
    ctx.out(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
