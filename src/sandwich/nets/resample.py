"""Resampling used by the low-resolution scenarios: antialiased bicubic down, bicubic up.

Plain functions plus thin modules; inputs (N, C, H, W), any value range.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def downsample(x: Tensor, factor: int) -> Tensor:
    """Antialiased bicubic downsampling by an integer ``factor`` (sizes rounded up)."""
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    size = (-(-h // factor), -(-w // factor))
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upsampling to ``size`` = (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


class Downsample(nn.Module):
    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return downsample(x, self.factor)
