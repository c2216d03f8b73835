"""The ``studio`` command: with no arguments it opens the window; a sub-command runs headless.

``studio`` alone starts the desktop window (``studio.ui.app.run_window``) once the preflight
(:mod:`studio.preflight`) has found that Qt can open one here; ``studio train ...``
and the other sub-commands run the command line (:mod:`studio.cli`), which never imports Qt.
"""

from __future__ import annotations

import sys

from studio import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        return _window()
    if args == ["--version"]:
        print(f"studio {__version__}")
        return 0
    if args == ["--preflight"]:
        from studio.preflight import main as preflight

        return preflight()
    from studio.cli import run

    return run(args)


def _window() -> int:
    """The window, after the preflight (before Qt is imported: Qt aborts the process when it cannot start)."""
    import os

    from studio.preflight import EXIT_CODE, check

    outcome = check()
    if not outcome.ok:
        print(outcome.text(), file=sys.stderr)
        return EXIT_CODE
    if outcome.platform:
        os.environ["QT_QPA_PLATFORM"] = outcome.platform  # e.g. "wayland;xcb": Qt falls back in that order
    try:
        from studio.ui.app import run_window
    except ImportError as exc:  # a broken or partial PySide6 install
        print(f"studio: error [preflight.qt_unavailable]: Studio cannot open its window: Qt (PySide6) cannot be "
              f"loaded: {exc}.\nReinstall it (pip install -c constraints.txt -e .); studio doctor says what it sees.",
              file=sys.stderr)
        return EXIT_CODE
    return run_window()


if __name__ == "__main__":
    raise SystemExit(main())
