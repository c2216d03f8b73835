"""The ``studio`` command: with no arguments it opens the window."""

from __future__ import annotations

import argparse
import sys

from studio import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Studio: train, watch, distil, save and export PyTorch models. "
        "With no arguments, the desktop window opens.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _parser().parse_args(args)
    from studio.ui.app import run_window

    return run_window()


if __name__ == "__main__":
    raise SystemExit(main())
