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


def _widen_conv(conv: nn.Conv2d, weight: Tensor, bias: Tensor, in_map: list[int]) -> None:
    """Put a narrower conv's ``weight`` (o, i, k, k) and ``bias`` (o,) into ``conv`` (O >= o
    outputs, I >= i inputs): old output channel c reads new input ``in_map[j]`` where it read old
    input j, and nothing from the new inputs; the new output channels keep their fresh init."""
    o, i = weight.shape[:2]
    if o > conv.out_channels or i != len(in_map) or weight.shape[2:] != conv.weight.shape[2:]:
        raise ValueError(f"cannot widen a {tuple(weight.shape)} conv into {conv}")
    with torch.no_grad():
        conv.weight[:o] = 0.0
        conv.weight[:o, in_map] = weight.to(conv.weight)
        conv.bias[:o] = bias.to(conv.bias)


def load_widened(unet: UNet, state: dict[str, Tensor]) -> None:
    """Load the weights of a narrower U-Net (same levels and channels in and out, every width
    at most this one's) so that ``unet`` computes exactly the same function.

    The old channels come first at every level and read nothing from the new ones; the new
    channels keep their fresh init, and the weights from them into the old ones start at zero
    (they get gradients, so training grows into the extra width). The head must start at zero
    on the new channels, which this sets. ``state``: the narrower U-Net's ``state_dict()``.
    Raises ValueError when the shapes do not allow it.
    """
    levels = len(unet.widths)
    old = tuple(
        int(v.shape[0]) for k, v in state.items() if k.endswith(".0.weight") and k[:4] == "down"
    )
    if len(old) != levels or any(o > n for o, n in zip(old, unet.widths, strict=True)):
        raise ValueError(f"a U-Net of widths {old} does not widen into {unet.widths}")

    def conv(key: str, in_map: list[int]) -> None:  # key: "down.0.2" = unet.down[0][2]
        kind, block, layer = key.split(".")
        module = getattr(unet, kind)[int(block)][int(layer)]
        _widen_conv(module, state[f"{key}.weight"], state[f"{key}.bias"], in_map)

    in_ch = unet.down[0][0].in_channels
    for i in range(levels):
        conv(f"down.{i}.0", list(range(in_ch if i == 0 else old[i - 1])))
        conv(f"down.{i}.2", list(range(old[i])))
    c_new, c_old = unet.widths[-1], old[-1]
    for j, (s_new, s_old) in enumerate(
        zip(reversed(unet.widths[:-1]), reversed(old[:-1]), strict=True)
    ):
        # the up block reads cat([upsampled deeper level, skip])
        conv(f"up.{j}.0", list(range(c_old)) + [c_new + t for t in range(s_old)])
        conv(f"up.{j}.2", list(range(s_old)))
        c_new, c_old = s_new, s_old
    w, b = state["head.weight"], state["head.bias"]
    if w.shape[0] != unet.head.out_channels:
        raise ValueError("the U-Nets differ in output channels")
    with torch.no_grad():
        unet.head.weight.zero_()
        unet.head.weight[:, :c_old] = w.to(unet.head.weight)
        unet.head.bias.copy_(b.to(unet.head.bias))
