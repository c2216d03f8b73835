"""The environment of a ``studio`` subprocess in an integration test: one CPU thread, logs in tmp, no torchrun."""

from __future__ import annotations

import os
from pathlib import Path


def studio_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", STUDIO_LOG_DIR=str(tmp / "logs"), PYTHONWARNINGS="ignore")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(key, None)  # never inherit a torchrun environment
    return env
