"""Before the window: can Qt open one here, and if not, exactly what is missing (standard library only).

``studio`` runs :func:`check` before it imports Qt; ``studio --preflight`` and
``python -m studio.preflight`` run it alone (``make studio`` does, before it installs anything).
"""

from studio.preflight.check import NO_DISPLAY_HINT, Preflight, Problem, System, check, plugin_problem

__all__ = ["NO_DISPLAY_HINT", "Preflight", "Problem", "System", "check", "plugin_problem", "EXIT_CODE", "main"]

EXIT_CODE = 2  # the command line's "bad input": nothing was started


def main(argv: list[str] | None = None) -> int:
    """Print the outcome; 0 when the window can start, 2 (with what to do) when it cannot."""
    import sys

    outcome = check()
    if not outcome.ok:
        print(outcome.text(), file=sys.stderr)
        return EXIT_CODE
    plugin = outcome.platform or System().env.get("QT_QPA_PLATFORM") or "the system's own"
    print(f"studio: the window can start here (Qt platform plugin: {plugin}).")
    return 0
