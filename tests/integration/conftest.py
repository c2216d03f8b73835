"""Run the real ``studio`` command in a subprocess (``python -m studio``), one CPU thread, logs in tmp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from integration_helpers import studio_env


@pytest.fixture
def studio(tmp_path: Path):
    """``studio(*args, stdin=None)`` -> CompletedProcess of ``python -m studio *args`` run in ``tmp_path``."""

    def run(*args: str, stdin: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studio", *args], cwd=tmp_path, env=studio_env(tmp_path),
                              input=stdin, capture_output=True, text=True, timeout=timeout)

    return run
