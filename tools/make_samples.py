"""Write the small sample data files of ``resources/samples/``: ``python tools/make_samples.py [OUT_DIR]``.

One file (or folder) per data loader, for trying Studio from the window's file dialogs:

- ``fruit.csv``: 320 fruits measured (weight, size, sweetness) and described (colour, skin), a
  header line and a named class target ``fruit`` (apple, banana, lemon, orange): numbers, two
  categorical columns to one-hot encode, text class labels.
- ``waves.npz``: arrays ``X`` float32 ``(180, 40, 1)`` (180 noisy signals of 40 steps, one
  channel) and ``y`` int64 ``(180,)``: 0 sine, 1 square, 2 sawtooth wave.
- ``shapes/``: an image folder with one sub-folder per class (``circle``, ``square``,
  ``triangle``), 12 PNG images of 32x32 pixels each, a shape of random colour, size, position
  and angle on a light background.

Everything comes from fixed seeds, so running this again gives the same numbers and pixels.
It needs NumPy and Pillow only.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"

# name: (weight g, diameter cm, sweetness 0..10) means and spreads, colours and skins with their weights
FRUITS = {
    "apple": ((170, 25), (7.5, 0.7), (6.5, 1.2), {"red": 5, "green": 3, "yellow": 1}, {"smooth": 1}),
    "banana": ((120, 20), (3.5, 0.4), (7.5, 1.0), {"yellow": 6, "green": 2}, {"smooth": 1}),
    "lemon": ((100, 15), (6.0, 0.5), (2.0, 0.8), {"yellow": 1}, {"dimpled": 3, "smooth": 1}),
    "orange": ((200, 30), (8.0, 0.6), (6.0, 1.0), {"orange": 5, "yellow": 1}, {"dimpled": 1}),
}


def _pick(rng: np.random.Generator, weights: dict[str, int]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def write_fruit_csv(path: Path, rows: int = 320, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    names = list(FRUITS)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["weight_g", "diameter_cm", "colour", "skin", "sweetness", "fruit"])
        for i in range(rows):
            fruit = names[i % len(names)] if i < len(names) else names[int(rng.integers(len(names)))]
            (wm, ws), (dm, ds), (sm, ss), colours, skins = FRUITS[fruit]
            writer.writerow([f"{max(20.0, rng.normal(wm, ws)):.1f}", f"{max(1.0, rng.normal(dm, ds)):.2f}",
                             _pick(rng, colours), _pick(rng, skins), f"{min(10.0, max(0.0, rng.normal(sm, ss))):.1f}",
                             fruit])


def make_waves(samples: int = 180, length: int = 40, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(samples, dtype=np.int64) % 3
    rng.shuffle(y)
    t = np.arange(length, dtype=np.float64)
    x = np.empty((samples, length, 1), dtype=np.float32)
    for i, label in enumerate(y):
        period = rng.uniform(8.0, 20.0)
        phase = (t / period + rng.uniform(0.0, 1.0)) % 1.0
        wave = (np.sin(2 * np.pi * phase), np.where(phase < 0.5, 1.0, -1.0), 2.0 * phase - 1.0)[label]
        x[i, :, 0] = rng.uniform(0.6, 1.4) * wave + rng.normal(0.0, 0.15, length)
    return x, y


def write_waves_npz(path: Path) -> None:
    x, y = make_waves()
    np.savez_compressed(path, X=x, y=y)


def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3}[kind]
    return [(cx + r * math.cos(angle + 2 * math.pi * k / corners), cy + r * math.sin(angle + 2 * math.pi * k / corners))
            for k in range(corners)]


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(200, 256, 3))
    colour = tuple(int(v) for v in rng.integers(0, 160, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.22, 0.4) * size
    cx, cy = (rng.uniform(r + 1, size - r - 1) for _ in range(2))
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon(_shape_points(kind, cx, cy, r, rng.uniform(0.0, 2 * math.pi)), fill=colour)
    return image


def write_shape_folder(root: Path, per_class: int = 12, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    for kind in ("circle", "square", "triangle"):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        for i in range(per_class):
            draw_shape(kind, rng).save(folder / f"{kind}_{i:02d}.png", optimize=True)


def main(out: Path = SAMPLES) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_fruit_csv(out / "fruit.csv")
    write_waves_npz(out / "waves.npz")
    write_shape_folder(out / "shapes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES)
