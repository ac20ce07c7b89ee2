"""The U-Net family of the pre- and post-processors.

Each level: two 3x3 conv + ReLU; 2x2 average pooling down, bilinear upsampling up, skip
connections by concatenation; a final 1x1 conv. ``widths`` sets the channels per level, e.g.
``(32, 64, 128, 256)`` (the paper's default), ``(32, 64)``, ``(32,)`` (slim) or ``(8, 16)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UNET_PRESETS: dict[str, tuple[int, ...]] = {
    "default": (32, 64, 128, 256),
    "medium": (32, 64),
    "slim": (32,),
    "tiny": (8, 16),
}


ACTIVATIONS = ("relu", "leaky")


def _act(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    raise ValueError(f"unknown activation {kind!r}; use one of {ACTIVATIONS}")


def _double_conv(cin: int, cout: int, act: str = "relu") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        _act(act),
        nn.Conv2d(cout, cout, 3, padding=1),
        _act(act),
    )


class UNet(nn.Module):
    """U-Net mapping (N, in_ch, H, W) -> (N, out_ch, H, W).

    H and W need not be multiples of 2**(levels-1): the input is padded (replicate) and the
    output cropped back. ``act``: ``"relu"`` (the reference) or ``"leaky"`` (LeakyReLU 0.1,
    which cannot die; a ReLU U-Net of the lowres post-processor was seen to collapse to a
    constant output in CPU-budget training).
    """

    def __init__(
        self, in_ch: int, out_ch: int, widths: tuple[int, ...] = (32, 64), act: str = "relu"
    ):
        super().__init__()
        if not widths:
            raise ValueError("a U-Net needs at least one level")
        self.widths = tuple(widths)
        self.down = nn.ModuleList()
        c = in_ch
        for w in widths:
            self.down.append(_double_conv(c, w, act))
            c = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(_double_conv(c + w_skip, w_skip, act))
            c = w_skip
        self.head = nn.Conv2d(c, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = 2 ** (len(self.widths) - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :h, :w]
