"""Run the real ``studio`` command in a subprocess (``python -m studio``), one CPU thread, logs in tmp."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Studio = Callable[..., subprocess.CompletedProcess]


def studio_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", STUDIO_LOG_DIR=str(tmp / "logs"), PYTHONWARNINGS="ignore")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(key, None)  # never inherit a torchrun environment
    return env


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    """``studio(*args, stdin=None)`` -> CompletedProcess of ``python -m studio *args`` run in ``tmp_path``."""

    def run(*args: str, stdin: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studio", *args], cwd=tmp_path, env=studio_env(tmp_path),
                              input=stdin, capture_output=True, text=True, timeout=timeout)

    return run
