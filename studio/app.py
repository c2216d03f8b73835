"""The ``studio`` command: with no arguments it opens the window; a sub-command runs headless.

``studio`` alone starts the desktop window (``studio.ui.app.run_window``); ``studio train ...``
and the other sub-commands run the command line (:mod:`studio.cli`), which never imports Qt.
"""

from __future__ import annotations

import sys

from studio import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        from studio.ui.app import run_window

        return run_window()
    if args == ["--version"]:
        print(f"studio {__version__}")
        return 0
    from studio.cli import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
