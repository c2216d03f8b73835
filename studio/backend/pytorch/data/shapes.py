"""Generated images of circles, squares and triangles (the built-in ``shapes`` dataset).

Each image is one white shape on a black background at a random size, position and rotation,
drawn with Pillow at twice the size and scaled down for smooth edges. The same seed always
gives the same images.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SHAPE_NAMES", "draw_shape", "generate_shapes"]

SHAPE_NAMES = ("circle", "square", "triangle")


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size`` x ``size`` float32 image (values 0..1) of ``kind`` drawn at random scale, place, angle."""
    big = size * 2
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.18, 0.38) * big
    margin = radius + 1
    cx = rng.uniform(margin, big - margin)
    cy = rng.uniform(margin, big - margin)
    angle = rng.uniform(0.0, 2 * math.pi)
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    else:
        corners = 4 if kind == "square" else 3
        points = [
            (cx + radius * math.cos(angle + 2 * math.pi * k / corners), cy + radius * math.sin(angle + 2 * math.pi * k / corners))
            for k in range(corners)
        ]
        draw.polygon(points, fill=255)
    small = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255.0


def generate_shapes(samples: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` images ``(N, 1, size, size)`` and labels ``(N,)`` cycling circle, square, triangle."""
    rng = np.random.default_rng(seed)
    labels = np.arange(samples, dtype=np.int64) % len(SHAPE_NAMES)
    rng.shuffle(labels)
    images = np.empty((samples, 1, size, size), dtype=np.float32)
    for i, label in enumerate(labels):
        images[i, 0] = draw_shape(SHAPE_NAMES[label], size, rng)
    return images, labels
