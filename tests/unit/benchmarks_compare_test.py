"""`python -m benchmarks --compare OLD.json`: a figure beside a previous run's, moves beyond noise flagged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import _compare

ROOT = Path(__file__).resolve().parents[2]


def _fig(value: float, goal: str, noise: float | None = None) -> dict:
    fig = {"value": value, "unit": "x", "goal": goal}
    if noise is not None:
        fig["noise"] = noise
    return fig


def test_a_move_inside_the_noise_band_is_the_same_and_beyond_it_follows_the_goal_direction() -> None:
    assert _compare.verdict(_fig(1.00, ">= 0.9"), _fig(1.04, ">= 0.9")) == "same"
    assert _compare.verdict(_fig(1.00, ">= 0.9"), _fig(0.90, ">= 0.9")) == "WORSE"
    assert _compare.verdict(_fig(1.00, ">= 0.9"), _fig(1.10, ">= 0.9")) == "better"
    assert _compare.verdict(_fig(30.0, "<= 50"), _fig(20.0, "<= 50")) == "better"
    assert _compare.verdict(_fig(30.0, "<= 50"), _fig(40.0, "<= 50")) == "WORSE"
    # a figure that measured a wide spread of its own repeats is judged by that band, not the default
    assert _compare.verdict(_fig(1.00, ">= 0.9", noise=0.2), _fig(0.85, ">= 0.9")) == "same"


def test_compare_two_saved_runs_lists_added_and_gone_figures(tmp_path: Path) -> None:
    old = {"a": _fig(1.0, ">= 1"), "gone_one": _fig(2.0, "<= 3"), "_meta": {"date": "x"}}
    new = {"a": _fig(0.5, ">= 1"), "new_one": _fig(3.0, ">= 1"), "_meta": {"date": "y"}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    done = subprocess.run([sys.executable, "-m", "benchmarks._compare", str(tmp_path / "old.json"),
                           str(tmp_path / "new.json")], cwd=ROOT, capture_output=True, text=True, check=True)
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert rows["a"].endswith("WORSE") and "-50.0%" in rows["a"]
    assert rows["gone_one"].endswith("gone") and rows["new_one"].endswith("added")
    assert "_meta" not in rows


def test_an_unreadable_baseline_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "benchmarks._compare", str(tmp_path / "bad.json"),
                           str(tmp_path / "bad.json")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "cannot read benchmark results" in done.stderr
