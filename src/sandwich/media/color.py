"""BT.601 full-range RGB <-> YCbCr, as JFIF and libjpeg define it (chroma offset 128)."""

from __future__ import annotations

import torch
from torch import Tensor

_RGB2YCC = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
_YCC2RGB = torch.tensor(
    [
        [1.0, 0.0, 1.402],
        [1.0, -0.344136286, -0.714136286],
        [1.0, 1.772, 0.0],
    ]
)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """(N, 3, H, W) RGB in 0..255 to YCbCr in 0..255 (Cb, Cr centred on 128)."""
    m = _RGB2YCC.to(x)
    y = torch.einsum("ij,njhw->nihw", m, x)
    offset = torch.tensor([0.0, 128.0, 128.0], device=x.device, dtype=x.dtype)
    return y + offset.view(1, 3, 1, 1)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """(N, 3, H, W) YCbCr in 0..255 (chroma centred on 128) to RGB in 0..255 (not clipped)."""
    offset = torch.tensor([0.0, 128.0, 128.0], device=x.device, dtype=x.dtype)
    m = _YCC2RGB.to(x)
    return torch.einsum("ij,njhw->nihw", m, x - offset.view(1, 3, 1, 1))


def rgb_to_gray(x: Tensor) -> Tensor:
    """(N, 3, H, W) RGB to (N, 1, H, W) luma Y (BT.601), 0..255."""
    return rgb_to_ycbcr(x)[:, :1]
