"""The ``studio`` command line (STUDIO-CLI-001): the window's operations, headless.

``studio train|distill|evaluate|predict|export|inspect|run ...`` call the same handlers as the
window through ``default_registry()``. :func:`run` takes the arguments after ``studio`` and
returns the exit code; nothing here imports Qt.
"""

from studio.cli.main import run

__all__ = ["run"]
