"""Small generated datasets: two moons, spirals and a noisy sine series."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["two_moons", "spirals", "sine_windows"]


def two_moons(samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in 2-D, labels 0 and 1 (scikit-learn's ``make_moons``)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=samples, noise=noise, random_state=seed)
    return x.astype(np.float32), y.astype(np.int64)


def spirals(samples: int, arms: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``arms`` interleaved spiral arms in 2-D, one class per arm, ``samples`` points in all."""
    rng = np.random.default_rng(seed)
    labels = np.arange(samples, dtype=np.int64) % arms
    t = rng.uniform(0.0, 1.0, samples)
    radius = 0.05 + 0.95 * t
    theta = labels * (2 * math.pi / arms) + t * 1.75 * 2 * math.pi + rng.normal(0.0, noise, samples)
    x = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    return x.astype(np.float32), labels


def sine_windows(samples: int, window: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(N, window, 1)`` of a noisy sine series and the value that follows each ``(N, 1)``."""
    rng = np.random.default_rng(seed)
    steps = np.arange(samples + window, dtype=np.float64)
    series = np.sin(2 * math.pi * steps / 50.0) + 0.5 * np.sin(2 * math.pi * steps / 13.0)
    series = series + rng.normal(0.0, noise, series.shape)
    index = np.arange(window)[None, :] + np.arange(samples)[:, None]
    x = series[index][..., None]
    y = series[window : window + samples][:, None]
    return x.astype(np.float32), y.astype(np.float32)
