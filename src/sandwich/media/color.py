"""Every colour transform of sandwich in one place.

BT.601 full-range RGB <-> YCbCr as JFIF and libjpeg define it (chroma offset 128), its luma on
numpy arrays, and BT.709 / studio (limited) range for video codecs, whose streams usually carry
BT.709 studio-range YCbCr. Tensors are (N, 3, H, W), values on the 0..255 scale.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# luma weights (Kr, Kg, Kb) of the two standards
BT601_LUMA = (0.299, 0.587, 0.114)
BT709_LUMA = (0.2126, 0.7152, 0.0722)

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


def luma(x: np.ndarray, weights: tuple[float, float, float] = BT601_LUMA) -> np.ndarray:
    """Luma of (..., 3) RGB samples as float64, same scale as ``x`` (BT.601 by default)."""
    x = np.asarray(x, dtype=np.float64)
    return x[..., 0] * weights[0] + x[..., 1] * weights[1] + x[..., 2] * weights[2]


def _matrix(weights: tuple[float, float, float]) -> Tensor:
    """RGB -> (Y, Cb, Cr) matrix of a standard with luma ``weights``; Cb, Cr in -0.5..0.5."""
    kr, kg, kb = weights
    return torch.tensor(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=torch.float64,
    )


def rgb_to_yuv(x: Tensor, standard: str = "bt709", full_range: bool = False) -> Tensor:
    """(N, 3, H, W) RGB 0..255 -> Y'CbCr 0..255 of ``standard`` (``bt601`` or ``bt709``).

    Studio range (``full_range=False``, what video streams usually hold): Y in 16..235,
    Cb and Cr in 16..240 centred on 128. Full range: Y 0..255, chroma 128 +- 127.5.
    """
    m = _matrix(BT709_LUMA if standard == "bt709" else BT601_LUMA).to(x)
    y = torch.einsum("ij,njhw->nihw", m, x)
    if not full_range:
        scale = torch.tensor([219.0 / 255.0, 224.0 / 255.0, 224.0 / 255.0], dtype=torch.float64).to(
            x
        )
        y = y * scale.view(1, 3, 1, 1) + torch.tensor([16.0, 0.0, 0.0]).to(x).view(1, 3, 1, 1)
    return y + torch.tensor([0.0, 128.0, 128.0]).to(x).view(1, 3, 1, 1)


def yuv_to_rgb(x: Tensor, standard: str = "bt709", full_range: bool = False) -> Tensor:
    """Inverse of :func:`rgb_to_yuv`: (N, 3, H, W) Y'CbCr 0..255 -> RGB 0..255 (not clipped)."""
    y = x - torch.tensor([0.0, 128.0, 128.0]).to(x).view(1, 3, 1, 1)
    if not full_range:
        y = y - torch.tensor([16.0, 0.0, 0.0]).to(x).view(1, 3, 1, 1)
        scale = torch.tensor([255.0 / 219.0, 255.0 / 224.0, 255.0 / 224.0], dtype=torch.float64).to(
            x
        )
        y = y * scale.view(1, 3, 1, 1)
    m = torch.linalg.inv(_matrix(BT709_LUMA if standard == "bt709" else BT601_LUMA)).to(x)
    return torch.einsum("ij,njhw->nihw", m, y)
