"""How much memory the Studio process uses, for the live readout on CPU runs (REQ-U14)."""

from __future__ import annotations

import os

__all__ = ["process_memory_bytes"]


def process_memory_bytes() -> int | None:
    """Resident memory of this process in bytes (Linux ``/proc``; peak RSS elsewhere), or None."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None
