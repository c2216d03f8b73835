"""Exit codes of the ``studio`` command (REQ-X01).

- ``0`` success
- ``2`` bad input: a usage error, or an error that says the request, its data, model, project or
  input files are not acceptable; nothing was written
- ``1`` a failure during the run (training diverged, out of memory, an export that did not check,
  a save that failed after training, anything unexpected)
- ``130`` interrupted by Ctrl-C (or SIGTERM) after a clean stop
"""

from __future__ import annotations

from studio.backend.core.errors import CancelledByUser, StudioError, ValidationError

__all__ = ["OK", "FAILED", "BAD_INPUT", "INTERRUPTED", "RunFailure", "exit_code_for", "BAD_INPUT_CODES"]

OK = 0
FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130

# Error codes (or ``area.`` prefixes) that mean "the input was wrong", as opposed to a failure during the run.
BAD_INPUT_CODES = (
    "usage.", "request.", "registry.", "project.", "path.", "data.", "model.", "checkpoint.",
    "runtime.invalid", "runtime.device_unavailable", "runtime.bad_seed",
    "distill.invalid", "distill.incompatible",
)
# Codes that are failures of the run even when raised as a ValidationError.
RUN_FAILURE_CODES = ("train.", "runtime.out_of_memory", "export.")


class RunFailure(StudioError):
    """An error after the run started (or while saving what it trained): exit 1 whatever its code."""

    default_code = "run.failed"


def exit_code_for(error: BaseException) -> int:
    """The exit code for an error that ended a command before or during its run."""
    if isinstance(error, (KeyboardInterrupt, CancelledByUser)):
        return INTERRUPTED
    if isinstance(error, RunFailure) or not isinstance(error, StudioError):
        return FAILED
    code = error.code or ""
    if code.startswith(RUN_FAILURE_CODES):
        return FAILED
    if code.startswith(BAD_INPUT_CODES) or isinstance(error, ValidationError):
        return BAD_INPUT
    return FAILED
