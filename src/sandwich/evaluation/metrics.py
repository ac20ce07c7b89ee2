"""Image quality metrics on uint8 arrays or 0..255 tensors."""

from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all samples, in 0..255 units squared."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all samples (RGB PSNR for (H, W, 3) arrays); capped at 100 dB."""
    m = mse(a, b)
    return 100.0 if m <= 1e-10 else 10.0 * math.log10(peak * peak / m)
