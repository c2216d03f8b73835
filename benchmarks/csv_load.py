"""Studio's CSV loading against the fastest reader a user would pick (REQ-D02).

Writes a CSV of 1,000,000 rows x 20 numeric columns (19 features and a continuous target, six
decimals, a header line) to a temporary folder. Every reader produces the same thing Studio's
trainer needs: the features as one C-contiguous float32 matrix (rows x 19) and the target as a
float32 vector. Timed interleaved, one warm-up each, the order rotated every round:

- Studio: ``load_data(DataSpec(source="csv", path=path))`` (header detection, the numeric fast
  path of ``pyarrow.csv``, every value checked to be finite, float32 tensors);
- pandas with its C engine, pandas with its pyarrow engine, polars, and ``pyarrow.csv.read_csv``
  followed by ``to_numpy`` and a float32 cast.

``csv_load_vs_fastest`` is the median time of the fastest of those four over Studio's (1.0:
as fast as the fastest; the goal allows 10% for Studio's checks). The detail also gives the
scale: Studio's time at 100k, 1M and (full run) 10M rows, each in a fresh process, with the
peak memory the load added over the matrix it returns.

    .venv/bin/python benchmarks/csv_load.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.backend.core.requests import DataSpec
from studio.backend.pytorch.data import load_data

COLUMNS = 20
_BLOCK_ROWS = 100_000
Arrays = tuple[np.ndarray, np.ndarray]


def write_csv(path: Path, rows: int, cols: int = COLUMNS, seed: int = 0) -> None:
    """A header and ``rows`` lines; blocks of 100,000 distinct rows repeat past the first million."""
    rng = np.random.default_rng(seed)
    header = ",".join([f"f{j}" for j in range(cols - 1)] + ["target"])
    blocks: list[bytes] = []
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii") + b"\n")
        for start in range(0, rows, _BLOCK_ROWS):
            count = min(_BLOCK_ROWS, rows - start)
            if len(blocks) < 10 or count < _BLOCK_ROWS:
                block = rng.standard_normal((count, cols)) * 10
                buffer = _savetxt(block)
                if count == _BLOCK_ROWS:
                    blocks.append(buffer)
            else:
                buffer = blocks[(start // _BLOCK_ROWS) % len(blocks)]
            fh.write(buffer)


def _savetxt(block: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.savetxt(out, block, fmt="%.6f", delimiter=",")
    return out.getvalue()


def _split(matrix: np.ndarray) -> Arrays:
    return np.ascontiguousarray(matrix[:, :-1], dtype=np.float32), np.ascontiguousarray(matrix[:, -1], dtype=np.float32)


def readers(path: Path) -> dict[str, Callable[[], Arrays]]:
    """Each reader, producing (features float32 rows x 19, target float32)."""
    import pandas as pd
    import pyarrow.csv as pacsv

    spec = DataSpec(source="csv", path=str(path))

    def studio() -> Arrays:
        data = load_data(spec)
        return data.x.numpy(), data.y.numpy().reshape(-1)

    def pyarrow_csv() -> Arrays:
        table = pacsv.read_csv(path)
        return _split(np.column_stack([c.to_numpy() for c in table.columns]))

    found = {
        "studio": studio,
        "pandas_c": lambda: _split(pd.read_csv(path, engine="c").to_numpy(dtype=np.float32)),
        "pandas_pyarrow": lambda: _split(pd.read_csv(path, engine="pyarrow").to_numpy(dtype=np.float32)),
        "pyarrow_csv": pyarrow_csv,
    }
    try:
        import polars as pl

        found["polars"] = lambda: _split(pl.read_csv(path).to_numpy().astype(np.float32, copy=False))
    except ImportError:  # polars is in the bench extra; without it the fastest of the others counts
        pass
    return found


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], Arrays]], repeats: int) -> dict[str, list[float]]:
    names = list(fns)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            runs[name].append(_timed(fns[name]))
    return runs


def check_same(fns: dict[str, Callable[[], Arrays]]) -> None:
    """Every reader gives Studio's matrix (to float32 rounding), so the race is like for like."""
    x0, y0 = fns["studio"]()
    for name, fn in fns.items():
        x, y = fn()
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == x0.shape, name
        assert np.allclose(x, x0, atol=1e-4) and np.allclose(y, y0, atol=1e-4), name


_SCALE_PROBE = """
import json, sys, time
from studio.backend.core.requests import DataSpec
from studio.backend.pytorch.data import load_data
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
load_data(DataSpec(source='csv', path=sys.argv[2]))  # imports and thread pools are not the file's cost
before = status('VmRSS:')
t0 = time.perf_counter()
data = load_data(DataSpec(source='csv', path=sys.argv[1]))
seconds = time.perf_counter() - t0
matrix = data.x.numpy().nbytes + data.y.numpy().nbytes
print(json.dumps({'seconds': seconds, 'matrix_bytes': matrix, 'peak_added_bytes': status('VmHWM:') - before}))
"""


def scale(tmp: Path, sizes: list[int]) -> dict[str, dict]:
    """Studio's time and peak added memory per size, each in a fresh process (Linux: /proc for memory)."""
    out: dict[str, dict] = {}
    for rows in sizes:
        path, warm = tmp / f"scale_{rows}.csv", tmp / "warm.csv"
        write_csv(path, rows)
        write_csv(warm, 1000)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        done = subprocess.run([sys.executable, "-c", _SCALE_PROBE, str(path), str(warm)], capture_output=True, text=True,
                              env=env, check=True)
        probe = json.loads(done.stdout.strip().splitlines()[-1])
        out[str(rows)] = {"seconds": round(probe["seconds"], 3), "file_mb": round(path.stat().st_size / 2**20, 1),
                          "us_per_row": round(probe["seconds"] / rows * 1e6, 3),
                          "peak_memory_over_matrix": round(probe["peak_added_bytes"] / probe["matrix_bytes"], 2)}
        path.unlink()
    return out


def _half_spread(times: list[float]) -> float:
    """Half the range of the repeats over their median: the figure's relative noise band."""
    return (max(times) - min(times)) / 2 / statistics.median(times)


def run(quick: bool = False, repeats: int | None = None) -> dict:
    rows = 1_000_000
    repeats = repeats or (3 if quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numeric.csv"
        write_csv(path, rows)
        fns = readers(path)
        check_same(fns)  # also the warm-up of each reader
        load_before = os.getloadavg()
        runs = interleaved(fns, repeats)
        load_after = os.getloadavg()
        size_mb = path.stat().st_size / 2**20
        path.unlink()
        sizes = [100_000, 1_000_000] + ([] if quick else [10_000_000])
        scaling = scale(Path(tmp), sizes) if sys.platform.startswith("linux") else {}
    medians = {name: statistics.median(times) for name, times in runs.items()}
    fastest = min((name for name in medians if name != "studio"), key=medians.__getitem__)
    return {"csv_load_vs_fastest": {
        "value": round(medians[fastest] / medians["studio"], 4), "unit": "x", "goal": ">= 0.9",
        "noise": round(max(_half_spread(runs["studio"]), _half_spread(runs[fastest])), 4),
        "reference": f"fastest of pandas (C), pandas (pyarrow), polars, pyarrow.csv: {fastest}",
        "detail": {"rows": rows, "columns": COLUMNS, "file_mb": round(size_mb, 1), "repeats": repeats,
                   "median_s": {name: round(s, 3) for name, s in sorted(medians.items())},
                   "runs_s": {name: [round(t, 3) for t in times] for name, times in sorted(runs.items())},
                   "scale": scaling, "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                   "cpus": os.cpu_count()},
    }}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7, 3 with --quick)")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, repeats=args.repeats), indent=2))
