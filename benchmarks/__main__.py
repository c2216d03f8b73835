"""``python -m benchmarks [--quick] [--only NAME ...]``: run every benchmark, print a table,
write ``benchmarks/results/latest.json`` and regenerate ``docs/benchmarks.md``.

A figure is ``{"value": number, "unit": str, "goal": str, "reference": str, "detail": {...}}``.
Comparisons are measured interleaved in one process after a warm-up and reported as medians;
ratios are what we quote, since absolute times on shared machines drift.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pathlib
import platform
import sys
import time
import traceback

from benchmarks import _compare

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
MODULES = [p.stem for p in sorted(HERE.glob("*.py")) if not p.stem.startswith("_")]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def met(figure: dict) -> str:
    goal = str(figure.get("goal", ""))
    value = figure.get("value")
    if not isinstance(value, (int, float)):
        return "n/a"
    for op in (">=", "<="):
        if goal.startswith(op):
            try:
                bound = float(goal[2:].split()[0].rstrip(";,"))
            except ValueError:
                return "?"
            return "yes" if (value >= bound if op == ">=" else value <= bound) else "NO"
    return "?"


def write_atomic(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_docs(results: dict, meta: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {meta['date']} on {meta['machine']}.",
        "",
        f"Command: `{meta['command']}` (total {meta['seconds']:.0f} s). Comparisons are interleaved in one process",
        "after a warm-up; values are medians; ratios are quoted because absolute times drift on shared machines.",
        "",
        "| name | value | unit | goal | met | reference |",
        "|---|---|---|---|---|---|",
    ]
    for name, fig in sorted(results.items()):
        value = fig.get("value")
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        lines.append(f"| `{name}` | {shown} | {fig.get('unit', '')} | {fig.get('goal', '')} | {met(fig)} | "
                     f"{fig.get('reference', '')} |")
    lines += ["", "Details per benchmark are in `benchmarks/results/latest.json`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (under 5 minutes)")
    parser.add_argument("--only", nargs="*", default=None, help=f"modules to run: {', '.join(MODULES)}")
    parser.add_argument("--compare", metavar="OLD.json", default=None,
                        help="after the run, print each figure beside OLD's and flag moves beyond the noise band")
    args = parser.parse_args(argv)
    baseline = _compare.load(args.compare) if args.compare else None
    started = time.perf_counter()
    results: dict[str, dict] = {}
    failed = []
    for name in args.only or MODULES:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            if not hasattr(module, "run"):
                continue
            results.update(module.run(quick=args.quick))
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed.append(name)
            traceback.print_exc()
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "seconds": time.perf_counter() - started,
    }
    print(f"\n{'name':28} {'value':>12} {'unit':8} {'goal':22} met")
    for name, fig in sorted(results.items()):
        value = fig.get("value")
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        print(f"{name:28} {shown:>12} {fig.get('unit', ''):8} {fig.get('goal', ''):22} {met(fig)}")
    out = HERE / "results" / "latest.json"
    previous = json.loads(out.read_text()) if out.exists() and args.only else {}
    previous.pop("_meta", None)
    write_atomic(out, json.dumps({**previous, **results, "_meta": meta}, indent=2, sort_keys=True) + "\n")
    merged = {**previous, **results}
    write_atomic(ROOT / "docs" / "benchmarks.md", render_docs(merged, meta))
    if baseline is not None:
        print(f"\nagainst {args.compare}:")
        print("\n".join(_compare.compare_table(baseline, results)))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
