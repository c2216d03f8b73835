"""``studio doctor``: what a bug report needs and what is wrong, for the command line and the Help menu.

Imports neither torch nor Qt (the backend's part comes from its ``environment`` handler), so it runs
where the window cannot.
"""

from studio.doctor.report import collect, problems
from studio.doctor.text import format_report

__all__ = ["collect", "problems", "format_report"]
