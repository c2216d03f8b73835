"""Studio's CSV loading against ``pandas.read_csv`` on a large all-numeric file (REQ-D02).

Writes a CSV of 1,000,000 rows x 20 numeric columns (19 features and a continuous target, six
decimals, a header line) to a temporary folder, then times, alternating A B A B after one
warm-up of each:

- A: ``pandas.read_csv(path)`` (the reference; a DataFrame of float64 columns);
- B: ``load_data(DataSpec(source="csv", path=path))`` (Studio: header detection, the numeric
  fast path of ``pyarrow.csv`` with its threads, the target split off, a float32 feature tensor
  and a regression target, every value checked to be finite);
- C (detail only): pandas producing what Studio produces, ``read_csv`` then the features as one
  row-major float32 array and the target as float32 (``like_for_like_ratio`` = C / B).

The figure is the ratio of the medians of wall-clock times, pandas / Studio (above 1: Studio is
faster). Both readers use more than one thread (pandas 3.1's CPU seconds exceed its wall time
too), so the figure depends on how many cores are free: the detail also gives each side's
process CPU seconds and the load average, to tell a slow run from a busy machine. pandas is only
the reference here; Studio does not need it.

    .venv/bin/python benchmarks/csv_load.py [--quick] [--repeats N]
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


def _timed(fn) -> tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _pandas_arrays(pd, path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path)
    x = np.ascontiguousarray(frame.iloc[:, :-1].to_numpy(dtype=np.float32))
    return x, frame.iloc[:, -1].to_numpy(dtype=np.float32)


def run(quick: bool = False, repeats: int | None = None) -> dict:
    import pandas as pd
    import pyarrow as pa

    rows = 1_000_000
    repeats = repeats or (3 if quick else 7)
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
        load_before = os.getloadavg()
        pandas_runs, studio_runs, arrays_runs = [], [], []
        for _ in range(repeats):
            pandas_runs.append(_timed(lambda: pd.read_csv(path)))
            studio_runs.append(_timed(lambda: load_data(spec)))
            arrays_runs.append(_timed(lambda: _pandas_arrays(pd, path)))
        load_after = os.getloadavg()
        size_mb = path.stat().st_size / 2**20
    pandas_s, studio_s, arrays_s = (statistics.median(t for t, _ in runs)
                                    for runs in (pandas_runs, studio_runs, arrays_runs))
    return {"csv_load_ratio": {
        "value": pandas_s / studio_s, "unit": "x", "goal": ">= 1.0", "reference": "pandas.read_csv",
        "detail": {"rows": rows, "columns": 20, "file_mb": round(size_mb, 1), "repeats": repeats,
                   "pandas_s": round(pandas_s, 3), "studio_s": round(studio_s, 3),
                   "pandas_to_arrays_s": round(arrays_s, 3), "like_for_like_ratio": round(arrays_s / studio_s, 3),
                   "pandas_runs": [round(t, 3) for t, _ in pandas_runs], "studio_runs": [round(t, 3) for t, _ in studio_runs],
                   "pandas_cpu_s": round(statistics.median(c for _, c in pandas_runs), 3),
                   "studio_cpu_s": round(statistics.median(c for _, c in studio_runs), 3),
                   "studio_reader": "pyarrow.csv.read_csv, float64 columns, use_threads=True, 1 MiB blocks",
                   "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                   "cpus": os.cpu_count(), "pandas": pd.__version__, "pyarrow": pa.__version__, "numpy": np.__version__},
    }}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None, help="timed A B pairs (default 7, 3 with --quick)")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, repeats=args.repeats), indent=2))
