"""LPIPS network (Zhang et al. 2018) and its shift-tolerant variant (Ghildyal & Liu 2022).

Our own definition of the AlexNet / VGG16 feature stacks that LPIPS taps, laid out so that
published LPIPS state dicts load into it by name:

* ``net.slice{1..5}.{i}.weight|bias``: backbone convolutions, ``i`` being the index of the
  layer in the backbone's feature stack (so torchvision-style ``features.{i}.*`` keys map
  onto it directly for the original variant);
* ``lin{0..4}.model.1.weight``: the learned 1x1 heads (``model.0`` was a dropout layer);
* ``net.slice{k}.{i}.filt`` (shift-tolerant only) and ``scaling_layer.*``: constants, rebuilt
  here rather than read.

Two layouts exist for each backbone:

* ``"original"``: the plain ImageNet AlexNet / VGG16 of LPIPS v0.1;
* ``"shift_tolerant"``: ST-LPIPS, whose backbone has stride-1 convolutions / max-pools
  followed by reflect-padded [1 2 1] blur-pool downsampling (the weights that the
  ``stlpips-pytorch`` package ships).

The distance: inputs in -1..1 are shifted and scaled to ImageNet statistics, each of the five
tapped activations is unit-normalised along channels, the squared difference is weighted per
channel by a 1x1 head, averaged over space and summed over the five layers.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

NETS = ("alex", "vgg")
VARIANTS = ("original", "shift_tolerant")

# per-channel shift and scale that take -1..1 inputs to the ImageNet-normalised range
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

# channels of the five tapped activations
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


class BlurPool(nn.Module):
    """Reflect-pad by 2, blur with the normalised [1 2 1] x [1 2 1] kernel, keep every 2nd."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k2 = torch.outer(k, k) / 16.0
        self.register_buffer("filt", k2.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.filt, stride=2, groups=x.shape[1])


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int | None = None) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if pad is None else pad)


def _alex_layers(variant: str) -> tuple[list[nn.Module], tuple[int, ...]]:
    """AlexNet feature layers and the (exclusive) end index of each of the five slices."""
    relu = nn.ReLU
    if variant == "original":
        layers = [
            _conv(3, 64, 11, stride=4, pad=2), relu(),  # 0-1  -> relu1
            nn.MaxPool2d(3, 2), _conv(64, 192, 5), relu(),  # 2-4  -> relu2
            nn.MaxPool2d(3, 2), _conv(192, 384, 3), relu(),  # 5-7  -> relu3
            _conv(384, 256, 3), relu(),  # 8-9  -> relu4
            _conv(256, 256, 3), relu(),  # 10-11 -> relu5
        ]  # fmt: skip
        return layers, (2, 5, 8, 10, 12)
    layers = [
        _conv(3, 64, 11, pad=2), BlurPool(64), relu(),  # 0-2  -> relu1
        nn.MaxPool2d(3, 1), BlurPool(64), _conv(64, 192, 5), relu(),  # 3-6  -> relu2
        nn.MaxPool2d(3, 1), BlurPool(192), _conv(192, 384, 3), relu(),  # 7-10 -> relu3
        _conv(384, 256, 3), relu(),  # 11-12 -> relu4
        _conv(256, 256, 3), relu(),  # 13-14 -> relu5
    ]  # fmt: skip
    return layers, (3, 7, 11, 13, 15)


def _vgg_layers(variant: str) -> tuple[list[nn.Module], tuple[int, ...]]:
    """VGG16 feature layers (configuration D) up to relu5_3 and the slice end indices."""
    layers: list[nn.Module] = []
    ends = []
    cin = 3
    for block, (cout, reps) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if block > 0:
            if variant == "original":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.MaxPool2d(2, 1), BlurPool(cin)]
        for _ in range(reps):
            layers += [_conv(cin, cout, 3), nn.ReLU()]
            cin = cout
        ends.append(len(layers))
    return layers, tuple(ends)


class _Head(nn.Module):
    """A bias-free 1x1 convolution to one channel, at ``model.1`` as in the LPIPS layout."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _Trunk(nn.Module):
    """The backbone as five sequential slices; returns the five tapped activations."""

    def __init__(self, net: str, variant: str):
        super().__init__()
        layers, ends = (_alex_layers if net == "alex" else _vgg_layers)(variant)
        start = 0
        for k, end in enumerate(ends, 1):
            part = nn.Sequential()
            for i in range(start, end):
                part.add_module(str(i), layers[i])
            self.add_module(f"slice{k}", part)
            start = end
        self.ends = ends

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for k in range(1, 6):
            x = getattr(self, f"slice{k}")(x)
            feats.append(x)
        return feats


def _unit_normalise(f: torch.Tensor) -> torch.Tensor:
    # tiny term inside the root keeps the gradient finite where a whole feature vector is 0
    return f / (torch.sqrt(f.pow(2).sum(1, keepdim=True) + 1e-20) + 1e-10)


class LPIPSNet(nn.Module):
    """LPIPS distance between (N, 3, H, W) images in -1..1; returns (N,) distances.

    Build with :func:`from_state_dict` to get trained weights; a bare instance is randomly
    initialised. Parameters are frozen (the network is a fixed metric), gradients flow to the
    inputs.
    """

    def __init__(self, net: str = "alex", variant: str = "shift_tolerant"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown LPIPS backbone {net!r}; expected one of {NETS}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown LPIPS variant {variant!r}; expected one of {VARIANTS}")
        self.net_name, self.variant = net, variant
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net = _Trunk(net, variant)
        for k, c in enumerate(CHANNELS[net]):
            self.add_module(f"lin{k}", _Head(c))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.net((x - self.shift) / self.scale)
        fy = self.net((y - self.shift) / self.scale)
        total = 0.0
        for k, (a, b) in enumerate(zip(fx, fy, strict=True)):
            d = (_unit_normalise(a) - _unit_normalise(b)).pow(2)
            total = total + getattr(self, f"lin{k}")(d).mean(dim=(1, 2, 3))
        return total

    @classmethod
    def from_state_dict(cls, state: dict, net: str = "alex", variant: str | None = None):
        """A network carrying ``state`` (LPIPS or torchvision key layout, see module doc).

        ``variant=None`` picks the layout whose parameters the state dict holds. Raises
        ``KeyError`` naming the missing keys when neither layout is complete.
        """
        state = normalise_keys(state, net)
        candidates = [variant] if variant else list(VARIANTS)
        missing: dict[str, list[str]] = {}
        for v in candidates:
            model = cls(net, v)
            want = model.state_dict()
            miss = [k for k in want if k not in state]
            if miss:
                missing[v] = miss
                continue
            for k, t in want.items():
                if tuple(state[k].shape) != tuple(t.shape):
                    raise ValueError(
                        f"LPIPS weight {k} has shape {tuple(state[k].shape)}, "
                        f"expected {tuple(t.shape)} for {net} ({v})"
                    )
            model.load_state_dict({k: state[k].float() for k in want})
            return model
        v, miss = min(missing.items(), key=lambda kv: len(kv[1]))
        more = f" and {len(miss) - 3} more" if len(miss) > 3 else ""
        raise KeyError(f"{net} LPIPS weights lack {', '.join(miss[:3])}{more} (layout {v})")


_FEATURES = re.compile(r"^(?:module\.)?(?:net\.)?features\.(\d+)\.(weight|bias)$")
_LIN = re.compile(r"^(?:module\.)?lins?\.?(\d)\.model\.\d\.weight$")
_SLICE = re.compile(r"^(?:module\.)?net\.slice(\d)\.(\d+)\.(weight|bias)$")


def normalise_keys(state: dict, net: str) -> dict:
    """Map known key spellings onto ours; constants (blur filters, scaling) are dropped.

    Accepts LPIPS / ST-LPIPS state dicts (``net.sliceK.I.*``, ``linK.model.{0,1}.weight`` or
    ``lins.K.model.{0,1}.weight``), torchvision backbones (``features.I.*``, original layout)
    and a ``module.`` prefix.
    """
    _, ends = _alex_layers("original") if net == "alex" else _vgg_layers("original")
    out = {}
    for key, val in state.items():
        if not isinstance(val, torch.Tensor):
            continue
        if m := _SLICE.match(key):
            out[f"net.slice{m[1]}.{m[2]}.{m[3]}"] = val
        elif m := _LIN.match(key):
            out[f"lin{m[1]}.model.1.weight"] = val
        elif m := _FEATURES.match(key):
            i = int(m[1])
            k = next((s for s, e in enumerate(ends, 1) if i < e), None)
            if k is not None:  # layers past relu5 (classifier side) are not used
                out[f"net.slice{k}.{i}.{m[2]}"] = val
    return out
