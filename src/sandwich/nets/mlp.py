"""Per-pixel MLP (1x1 convolutions, sine activations), as in the reference pre/post-processors."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PixelMLP(nn.Module):
    """(N, in_ch, H, W) -> (N, out_ch, H, W), applied independently at every pixel.

    The last layer starts at zero, so an untrained MLP adds nothing.
    """

    def __init__(self, in_ch: int, out_ch: int, hidden: int = 16, layers: int = 2):
        super().__init__()
        dims = [in_ch] + [hidden] * layers
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.hidden = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in pairs)
        self.out = nn.Conv2d(dims[-1], out_ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.hidden:
            x = torch.sin(layer(x))
        return self.out(x)
