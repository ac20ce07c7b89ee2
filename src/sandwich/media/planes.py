"""Several bottleneck planes in one image: stacked vertically, so one standard JPEG carries them.

A multi-plane bottleneck (``Scenario.planes`` = P > 1) is P images of C channels each (C = 3 for
a colour JPEG). The networks see them side by side as channels, (N, P*C, h, w); the codec sees
them one above the other, (N, C, P*h, w): plane p is rows p*h..(p+1)*h of the JPEG. Every
function here is exact (a reshape), and ``unstack`` inverts ``stack``.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

MAX_JPEG_SIDE = 65535  # a JPEG frame stores its height and width in 16 bits


def stack(b: Tensor, planes: int) -> Tensor:
    """(N, P*C, h, w) -> (N, C, P*h, w): plane p (channels p*C..p*C+C-1) at rows p*h.."""
    if planes == 1:
        return b
    n, pc, h, w = b.shape
    c = pc // planes
    return b.reshape(n, planes, c, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, planes * h, w)


def unstack(y: Tensor, planes: int) -> Tensor:
    """(N, C, P*h, w) -> (N, P*C, h, w), the inverse of :func:`stack`."""
    if planes == 1:
        return y
    n, c, ph, w = y.shape
    h = ph // planes
    return y.reshape(n, c, planes, h, w).permute(0, 2, 1, 3, 4).reshape(n, planes * c, h, w)


def stack_array(image: np.ndarray, planes: int, fill: int = 128) -> np.ndarray:
    """(H, W, N) array -> (P*H, W, C) with C = ceil(N / P): channel group g (channels g*C..)
    becomes the rows g*H..(g+1)*H; missing channels of the last group are ``fill``."""
    h, w, n = image.shape
    c = -(-n // planes)
    if n < planes * c:
        pad = np.full((h, w, planes * c - n), fill, dtype=image.dtype)
        image = np.concatenate([image, pad], axis=2)
    return np.concatenate([image[:, :, g * c : (g + 1) * c] for g in range(planes)], axis=0)


def unstack_array(image: np.ndarray, planes: int, channels: int | None = None) -> np.ndarray:
    """(P*H, W, C) array -> (H, W, channels) (default P*C): the inverse of :func:`stack_array`."""
    h = image.shape[0] // planes
    out = np.concatenate([image[g * h : (g + 1) * h] for g in range(planes)], axis=2)
    return out if channels is None else out[:, :, :channels]
