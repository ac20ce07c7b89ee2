"""Chroma carried on mid-frequency carriers through a one-channel codec (NTSC-like), learnable.

The modulator writes ``B = 128 + a*(Y' - 128) + g_b*c_h*LP(Cb-128) + g_r*c_v*LP(Cr-128)``, where
``c_h(x)`` and ``c_v(y)`` repeat ``[1, -1, -1, 1]`` along x and y: on JPEG's 8x8 grid these are
exactly the horizontal and vertical DCT basis functions of frequency 4, so a flat chroma patch
costs one coefficient per block. ``Y'`` is luma with its carrier bands removed
(``Y - c_h*LP(c_h*Y) - c_v*LP(c_v*Y)``), so luma does not leak into chroma. ``LP`` starts as the
separable kernel [1, 2, 2, 2, 1]/8 convolved with itself a few times, whose response is
zero at pi/2 and pi, and since
``c_h**2 = 1`` the demodulator ``LP(c_h*B)`` recovers chroma. All gains and kernels are
parameters, so training refines this analytic codec instead of searching for one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandwich.media.color import rgb_to_ycbcr, ycbcr_to_rgb

_PATTERN = torch.tensor([1.0, -1.0, -1.0, 1.0])


def carriers(h: int, w: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Horizontal (1, 1, 1, W) and vertical (1, 1, H, 1) +-1 carriers of period 4 pixels."""
    ch = _PATTERN.to(device=device, dtype=dtype)[torch.arange(w, device=device) % 4]
    cv = _PATTERN.to(device=device, dtype=dtype)[torch.arange(h, device=device) % 4]
    return ch.view(1, 1, 1, w), cv.view(1, 1, h, 1)


def default_lowpass(channels: int, order: int = 1) -> Tensor:
    """(channels, 1, k, k) separable kernels: [1,2,2,2,1]/8 convolved ``order`` times.

    Every order keeps the zero response at pi/2 and pi; higher orders are narrower low-passes
    (k = 4 * order + 1 taps).
    """
    base = torch.tensor([1.0, 2.0, 2.0, 2.0, 1.0], dtype=torch.float64) / 8.0
    k = base
    for _ in range(order - 1):
        k = torch.nn.functional.conv1d(
            F.pad(k.view(1, 1, -1), (4, 4)), base.flip(0).view(1, 1, -1)
        ).view(-1)
    n = k.numel()
    return torch.outer(k, k).float().expand(channels, 1, n, n).clone()


def depthwise(x: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise 'same' convolution with reflect padding; kernel (C, 1, k, k). Images whose
    side is not longer than half the kernel (8 pixels for the 17-tap filters) cannot be
    reflected: they are edge-replicated instead (larger images are unaffected)."""
    p = kernel.shape[-1] // 2
    mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
    return F.conv2d(F.pad(x, (p, p, p, p), mode=mode), kernel, groups=x.shape[1])


def modulate(
    rgb: Tensor, luma_gain: Tensor, chroma_gain: Tensor, lp_luma: Tensor, lp_chroma: Tensor
) -> Tensor:
    """(N, 3, H, W) RGB 0..255 -> (N, 1, H, W) composite image around 128 (not clipped)."""
    h, w = rgb.shape[-2:]
    c_h, c_v = carriers(h, w, rgb.device, rgb.dtype)
    ycc = rgb_to_ycbcr(rgb) - 128.0
    y = ycc[:, :1]
    proj = depthwise(torch.cat([c_h * y, c_v * y], dim=1), lp_luma)
    y_clean = y - c_h * proj[:, :1] - c_v * proj[:, 1:]
    chroma = depthwise(ycc[:, 1:], lp_chroma) * chroma_gain.view(1, 2, 1, 1)
    return 128.0 + luma_gain * y_clean + c_h * chroma[:, :1] + c_v * chroma[:, 1:]


def demodulate(
    b: Tensor, luma_gain: Tensor, chroma_gain: Tensor, lp_luma: Tensor, lp_chroma: Tensor
) -> Tensor:
    """(N, 1, H, W) decoded composite 0..255 -> (N, 3, H, W) RGB 0..255 (not clipped).

    ``luma_gain`` and ``chroma_gain`` here are the inverse gains (1/a, 1/g).
    """
    h, w = b.shape[-2:]
    c_h, c_v = carriers(h, w, b.device, b.dtype)
    bc = b - 128.0
    chroma = depthwise(torch.cat([c_h * bc, c_v * bc], dim=1), lp_chroma)
    proj = depthwise(torch.cat([c_h * bc, c_v * bc], dim=1), lp_luma)
    y = (bc - c_h * proj[:, :1] - c_v * proj[:, 1:]) * luma_gain
    ycc = torch.cat([y, chroma * chroma_gain.view(1, 2, 1, 1)], dim=1) + 128.0
    return ycbcr_to_rgb(ycc)


LUMA_ORDER = 4
CHROMA_ORDER = 3


class ChromaModulator(nn.Module):
    """RGB (N, 3, H, W) -> composite gray (N, 1, H, W), both 0..255."""

    def __init__(self, luma_gain: float = 0.85, chroma_gain: float = 0.75):
        super().__init__()
        self.luma_gain = nn.Parameter(torch.tensor(luma_gain))
        self.chroma_gain = nn.Parameter(torch.full((2,), chroma_gain))
        self.lp_luma = nn.Parameter(default_lowpass(2, LUMA_ORDER))
        self.lp_chroma = nn.Parameter(default_lowpass(2, CHROMA_ORDER))

    def forward(self, rgb: Tensor) -> Tensor:
        return modulate(rgb, self.luma_gain, self.chroma_gain, self.lp_luma, self.lp_chroma)


class ChromaDemodulator(nn.Module):
    """Composite gray (N, 1, H, W) -> RGB (N, 3, H, W), both 0..255."""

    def __init__(self, luma_gain: float = 0.85, chroma_gain: float = 0.75):
        super().__init__()
        self.luma_gain = nn.Parameter(torch.tensor(1.0 / luma_gain))
        self.chroma_gain = nn.Parameter(torch.full((2,), 1.0 / chroma_gain))
        self.lp_luma = nn.Parameter(default_lowpass(2, LUMA_ORDER))
        self.lp_chroma = nn.Parameter(default_lowpass(2, CHROMA_ORDER))

    def forward(self, b: Tensor) -> Tensor:
        return demodulate(b, self.luma_gain, self.chroma_gain, self.lp_luma, self.lp_chroma)
