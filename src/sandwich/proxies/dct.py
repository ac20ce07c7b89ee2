"""8x8 block DCT-II (orthonormal) and block reshaping, as JPEG uses it.

An orthonormal DCT coefficient divided by the quantisation step equals libjpeg's quantiser input
(libjpeg's DCT is scaled by 8 and its divisor by 8 too).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dct_matrix(n: int = 8, device=None, dtype=torch.float32) -> Tensor:
    """(n, n) orthonormal DCT-II matrix D; coefficients are D @ X @ D.T."""
    k = torch.arange(n, dtype=torch.float64).view(-1, 1)
    i = torch.arange(n, dtype=torch.float64).view(1, -1)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def blockify(x: Tensor, b: int = 8) -> Tensor:
    """(N, C, H, W) with H, W multiples of b -> (N, C, H/b, W/b, b, b)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).permute(0, 1, 2, 4, 3, 5)


def unblockify(x: Tensor) -> Tensor:
    """(N, C, Bh, Bw, b, b) -> (N, C, Bh*b, Bw*b)."""
    n, c, bh, bw, b, _ = x.shape
    return x.permute(0, 1, 2, 4, 3, 5).reshape(n, c, bh * b, bw * b)


def dct2d(blocks: Tensor) -> Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions (b, b)."""
    d = dct_matrix(blocks.shape[-1], blocks.device, blocks.dtype)
    return d @ blocks @ d.T


def idct2d(coefs: Tensor) -> Tensor:
    """Inverse of :func:`dct2d`."""
    d = dct_matrix(coefs.shape[-1], coefs.device, coefs.dtype)
    return d.T @ coefs @ d
