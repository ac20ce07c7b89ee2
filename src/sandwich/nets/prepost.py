"""Pre- and post-processors: analytic base + per-pixel MLP + s * U-Net.

Inputs to the learned parts are normalised as (x - 128) / 255 and their outputs scaled back by
255. The last layers of the MLP and the U-Net start at zero, so an untrained processor is exactly
its analytic base. (The reference starts the scalar ``s`` at 0 instead; that leaves the U-Net with
no gradient until ``s`` has random-walked away from 0, which measured far slower on a CPU budget,
so here ``s`` starts at 1 and the U-Net head at 0.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sandwich.nets.mlp import PixelMLP
from sandwich.nets.modem import ChromaDemodulator, ChromaModulator
from sandwich.nets.resample import downsample, upsample
from sandwich.nets.unet import UNet


def _zero_head(unet: UNet) -> None:
    nn.init.zeros_(unet.head.weight)
    nn.init.zeros_(unet.head.bias)


def _normalise(x: Tensor) -> Tensor:
    return (x - 128.0) / 255.0


def _with_condition(x: Tensor, cond: Tensor | None) -> Tensor:
    """Append the (N,) quality feature as a constant channel: (N, C, H, W) -> (N, C+1, H, W)."""
    if cond is None:
        return x
    n, _, h, w = x.shape
    return torch.cat([x, cond.to(x).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class PreProcessor(nn.Module):
    """Image (N, 3, H, W), 0..255 -> bottleneck (N, C, ceil(H/k), ceil(W/k)), about 0..255.

    Args:
        channels: bottleneck channels C (3, or 1 for a grayscale codec).
        base: ``"identity"``, ``"modem"`` (chroma on carriers, C = 1) or ``"resample"``.
        downscale: k; the full-resolution result is downsampled (antialiased bicubic).
        widths: U-Net widths per level.
        conditioned: the learned parts also see the codec's quality feature (one channel).
    """

    def __init__(
        self,
        channels: int,
        base: str,
        downscale: int,
        widths: tuple[int, ...],
        conditioned: bool = False,
        act: str = "relu",
    ):
        super().__init__()
        self.channels, self.base_kind, self.downscale = channels, base, downscale
        self.conditioned = conditioned
        extra = 1 if conditioned else 0
        self.base = ChromaModulator() if base == "modem" else None
        if base != "modem" and channels != 3:
            raise ValueError("only the modem base maps RGB to a different channel count")
        self.mlp = PixelMLP(3 + extra, channels)
        self.unet = UNet(3 + extra, channels, widths, act)
        _zero_head(self.unet)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``cond``: (N,) quality feature (see :func:`sandwich.models.sandwich.quality_feature`)."""
        base = self.base(x) if self.base is not None else x
        xn = _with_condition(_normalise(x), cond if self.conditioned else None)
        y = base + 255.0 * (self.mlp(xn) + self.scale * self.unet(xn))
        return downsample(y, self.downscale)


class PostProcessor(nn.Module):
    """Decoded bottleneck (N, C, h, w), 0..255 -> image (N, 3, H, W), 0..255 (not clipped).

    The bottleneck is first upsampled (bicubic) to the output size; the learned parts see both the
    upsampled bottleneck and the analytic base's estimate.
    """

    def __init__(
        self,
        channels: int,
        base: str,
        widths: tuple[int, ...],
        conditioned: bool = False,
        act: str = "relu",
    ):
        super().__init__()
        self.channels, self.base_kind = channels, base
        self.conditioned = conditioned
        self.base = ChromaDemodulator() if base == "modem" else None
        in_ch = channels + 3 + (1 if conditioned else 0)
        self.mlp = PixelMLP(in_ch, 3)
        self.unet = UNet(in_ch, 3, widths, act)
        _zero_head(self.unet)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, y: Tensor, size: tuple[int, int], cond: Tensor | None = None) -> Tensor:
        """``cond``: (N,) quality feature, read from the file's quantisation table in real use."""
        up = upsample(y, size)
        base = self.base(up) if self.base is not None else up
        inp = torch.cat([_normalise(up), _normalise(base)], dim=1)
        inp = _with_condition(inp, cond if self.conditioned else None)
        return base + 255.0 * (self.mlp(inp) + self.scale * self.unet(inp))
