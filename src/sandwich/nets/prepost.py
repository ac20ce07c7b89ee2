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


def _fit_channels(x: Tensor, channels: int) -> Tensor:
    """The first ``channels`` channels of x (N, C, H, W), padded with constant 128 planes when C
    is smaller: the analytic base between images and multi-plane bottlenecks (channel c of the
    image is channel c of the bottleneck)."""
    c = x.shape[1]
    if c >= channels:
        return x[:, :channels]
    pad = x.new_full((x.shape[0], channels - c, *x.shape[2:]), 128.0)
    return torch.cat([x, pad], dim=1)


class PreProcessor(nn.Module):
    """Image (N, I, H, W), 0..255 -> bottleneck (N, C, ceil(H/k), ceil(W/k)), about 0..255.

    Args:
        channels: bottleneck channels C (3, or 1 for a grayscale codec; 3 * planes for a
            multi-plane scenario: the planes side by side as channels).
        base: ``"identity"``, ``"modem"`` (chroma on carriers, C = 1) or ``"resample"``.
        downscale: k; the full-resolution result is downsampled (antialiased bicubic).
        widths: U-Net widths per level.
        conditioned: the learned parts also see the codec's quality feature (one channel).
        in_channels: I, channels of the image (3 for RGB; 6 for albedo + normals). With I != 3
            the identity base maps image channel c to bottleneck channel c (128 where the image
            has none).
    """

    def __init__(
        self,
        channels: int,
        base: str,
        downscale: int,
        widths: tuple[int, ...],
        conditioned: bool = False,
        act: str = "relu",
        in_channels: int = 3,
    ):
        super().__init__()
        self.channels, self.base_kind, self.downscale = channels, base, downscale
        self.in_channels = in_channels
        self.conditioned = conditioned
        extra = 1 if conditioned else 0
        self.base = ChromaModulator() if base == "modem" else None
        if base == "modem" and in_channels != 3:
            raise ValueError("the modem base takes RGB images")
        if base != "modem" and channels != 3 and in_channels == 3:
            raise ValueError("only the modem base maps RGB to a different channel count")
        if in_channels != 3 and channels < in_channels:
            raise ValueError(f"{in_channels} image channels do not fit {channels} bottleneck ones")
        self.mlp = PixelMLP(in_channels + extra, channels)
        self.unet = UNet(in_channels + extra, channels, widths, act)
        _zero_head(self.unet)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``cond``: (N,) quality feature (see :func:`sandwich.models.sandwich.quality_feature`)."""
        if self.base is not None:
            base = self.base(x)
        else:
            base = x if self.in_channels == self.channels else _fit_channels(x, self.channels)
        xn = _with_condition(_normalise(x), cond if self.conditioned else None)
        y = base + 255.0 * (self.mlp(xn) + self.scale * self.unet(xn))
        return downsample(y, self.downscale)


class PostProcessor(nn.Module):
    """Decoded bottleneck (N, C, h, w), 0..255 -> image (N, O, H, W), 0..255 (not clipped).

    The bottleneck is first upsampled (bicubic) to the output size; the learned parts see both the
    upsampled bottleneck and the analytic base's estimate. ``out_channels``: O, channels of the
    image (3 for RGB); with O != 3 the identity base takes bottleneck channel c as image
    channel c. ``context``: K extra decoded bottlenecks (a clip's neighbouring frames) that come
    after the frame's own C channels of ``y`` ((N, C * (1 + K), h, w)); the learned parts see
    them too (as the last input channels, so weights without them widen by zero columns) and the
    analytic base does not.
    """

    def __init__(
        self,
        channels: int,
        base: str,
        widths: tuple[int, ...],
        conditioned: bool = False,
        act: str = "relu",
        out_channels: int = 3,
        context: int = 0,
    ):
        super().__init__()
        self.channels, self.base_kind = channels, base
        self.out_channels = out_channels
        self.conditioned = conditioned
        self.context = context
        if base == "modem" and out_channels != 3:
            raise ValueError("the modem base returns RGB images")
        self.base = ChromaDemodulator() if base == "modem" else None
        in_ch = channels * (1 + context) + out_channels + (1 if conditioned else 0)
        self.mlp = PixelMLP(in_ch, out_channels)
        self.unet = UNet(in_ch, out_channels, widths, act)
        _zero_head(self.unet)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, y: Tensor, size: tuple[int, int], cond: Tensor | None = None) -> Tensor:
        """``cond``: (N,) quality feature, read from the file's quantisation table in real use."""
        up = upsample(y, size)
        if self.context:
            up, ctx = up[:, : self.channels], up[:, self.channels :]
        if self.base is not None:
            base = self.base(up)
        else:
            base = (
                up if self.out_channels == self.channels else _fit_channels(up, self.out_channels)
            )
        inp = torch.cat([_normalise(up), _normalise(base)], dim=1)
        inp = _with_condition(inp, cond if self.conditioned else None)
        if self.context:
            inp = torch.cat([inp, _normalise(ctx)], dim=1)
        return base + 255.0 * (self.mlp(inp) + self.scale * self.unet(inp))
