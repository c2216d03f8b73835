"""Studio's CSV loading against ``pandas.read_csv`` on a large all-numeric file (REQ-D02).

Writes a CSV of 1,000,000 rows x 20 numeric columns (19 features and a continuous target, six
decimals, a header line) to a temporary folder, then times, alternating A B A B after one
warm-up of each:

- A: ``pandas.read_csv(path)`` (the reference; a DataFrame of float64 columns);
- B: ``load_data(DataSpec(source="csv", path=path))`` (Studio: header detection, the numeric
  fast path, the target split off, a float32 feature tensor and a regression target).

The figure is the ratio of the medians, pandas / Studio (above 1: Studio is faster).
pandas is only the reference here; Studio's reader needs NumPy alone.

    .venv/bin/python benchmarks/csv_load.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from studio.backend.core.requests import DataSpec
from studio.backend.pytorch.data import load_data


def write_csv(path: Path, rows: int, cols: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    header = ",".join([f"f{j}" for j in range(cols - 1)] + ["target"])
    with open(path, "w", encoding="ascii") as fh:
        fh.write(header + "\n")
        for start in range(0, rows, 100_000):
            block = rng.standard_normal((min(100_000, rows - start), cols)) * 10
            np.savetxt(fh, block, fmt="%.6f", delimiter=",")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    import pandas as pd

    rows = 1_000_000
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numeric.csv"
        write_csv(path, rows)
        spec = DataSpec(source="csv", path=str(path))
        data = load_data(spec)  # warm-up and a sanity check of what is being timed
        assert data.num_samples == rows and data.input_shape == (19,) and data.task == "regression"
        assert data.info["fast_path"]
        reference = pd.read_csv(path)
        assert np.allclose(reference.to_numpy()[:, :19], data.x.numpy(), atol=1e-5)
        del data, reference
        pandas_times, studio_times = [], []
        for _ in range(repeats):
            pandas_times.append(_timed(lambda: pd.read_csv(path)))
            studio_times.append(_timed(lambda: load_data(spec)))
        size_mb = path.stat().st_size / 2**20
    pandas_s, studio_s = statistics.median(pandas_times), statistics.median(studio_times)
    return {"csv_load_ratio": {
        "value": pandas_s / studio_s, "unit": "x", "goal": ">= 1.0", "reference": "pandas.read_csv",
        "detail": {"rows": rows, "columns": 20, "file_mb": round(size_mb, 1), "repeats": repeats,
                   "pandas_s": round(pandas_s, 3), "studio_s": round(studio_s, 3),
                   "pandas_runs": [round(t, 3) for t in pandas_times], "studio_runs": [round(t, 3) for t in studio_times],
                   "studio_reader": "NumPy vectorised fast path (csv_numeric), threads over 1 MiB blocks",
                   "cpus": os.cpu_count(), "pandas": pd.__version__, "numpy": np.__version__},
    }}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))
