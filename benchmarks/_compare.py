"""Each figure beside a previous run's, a move beyond its noise band flagged.

``python -m benchmarks --compare OLD.json`` runs the benchmarks, then prints this table against
OLD; ``python -m benchmarks._compare OLD.json NEW.json`` compares two saved runs without running.

A figure's noise band is its own ``noise`` (a relative half-width its benchmark measured from the
spread of its repeats) when it gives one, else :data:`DEFAULT_NOISE`. The wider of the old and
the new band counts. A move is judged by the figure's goal: towards a ``>=`` goal's side (up) or
a ``<=`` goal's side (down) is "better", the other way "WORSE"; a figure without a goal direction
reads "moved".
"""

from __future__ import annotations

import json
import pathlib
import sys

#: The relative noise assumed for a figure that does not measure its own (5%: the spread most of
#: this suite's ratios showed between two quick runs on a quiet 2-core machine).
DEFAULT_NOISE = 0.05


def noise_band(figure: dict) -> float:
    noise = figure.get("noise")
    return float(noise) if isinstance(noise, (int, float)) and noise > 0 else DEFAULT_NOISE


def verdict(old: dict, new: dict) -> str:
    before, after = old.get("value"), new.get("value")
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return "n/a"
    band = max(noise_band(old), noise_band(new))
    scale = max(abs(before), 1e-12)
    if abs(after - before) / scale <= band:
        return "same"
    goal = str(new.get("goal") or old.get("goal") or "")
    if goal.startswith(">="):
        return "better" if after > before else "WORSE"
    if goal.startswith("<="):
        return "better" if after < before else "WORSE"
    return "moved"


def _shown(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "-"


def compare_table(old: dict, new: dict) -> list[str]:
    """Lines of the comparison; figures only one side has are listed as added or gone."""
    names = sorted((set(old) | set(new)) - {"_meta"})
    lines = [f"{'name':28} {'before':>10} {'after':>10} {'change':>8} {'band':>6}  verdict"]
    for name in names:
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            lines.append(f"{name:28} {_shown((a or {}).get('value')):>10} {_shown((b or {}).get('value')):>10}"
                         f" {'':>8} {'':>6}  {'added' if a is None else 'gone'}")
            continue
        before, after = a.get("value"), b.get("value")
        change = (f"{(after - before) / abs(before):+.1%}" if isinstance(before, (int, float)) and before
                  and isinstance(after, (int, float)) else "")
        band = f"{max(noise_band(a), noise_band(b)):.0%}"
        lines.append(f"{name:28} {_shown(before):>10} {_shown(after):>10} {change:>8} {band:>6}  {verdict(a, b)}")
    return lines


def load(path: str | pathlib.Path) -> dict:
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read benchmark results {path}: {exc}. Give a file written by python -m benchmarks "
                         "(benchmarks/results/latest.json).") from exc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks._compare OLD.json NEW.json", file=sys.stderr)
        return 2
    print("\n".join(compare_table(load(args[0]), load(args[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
