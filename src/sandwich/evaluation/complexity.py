"""Parameter and multiply-accumulate counts of networks (MACs per input pixel)."""

from __future__ import annotations

import torch
from torch import nn


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def macs_per_pixel(fn, x: torch.Tensor, modules: list[nn.Module]) -> float:
    """MACs of all convolutions inside ``modules`` while ``fn(x)`` runs, per pixel of ``x``."""
    total = 0

    def hook(mod: nn.Conv2d, _inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * k

    handles = []
    for m in modules:
        for sub in m.modules():
            if isinstance(sub, nn.Conv2d):
                handles.append(sub.register_forward_hook(hook))
    try:
        fn(x)
    finally:
        for h in handles:
            h.remove()
    return total / (x.shape[-1] * x.shape[-2])


def functional_conv_macs(model) -> float:
    """MACs/pixel of the analytic modem's depthwise filters (F.conv2d, not nn.Conv2d)."""
    total = 0.0
    for proc in (model.pre, model.post):
        base = getattr(proc, "base", None)
        if base is None:
            continue
        for name in ("lp_luma", "lp_chroma"):
            k = getattr(base, name)
            total += k.shape[0] * k.shape[-1] * k.shape[-2]
    return total


def sandwich_complexity(model, size: int = 128) -> dict:
    """Params and MACs/pixel (of the full-resolution image) of a sandwich's pre and post."""
    channels = int(getattr(getattr(model, "scenario", None), "channels", 3))  # 6 for material6
    x = torch.rand(1, channels, size, size) * 255
    cond = torch.full((1,), 0.5) if getattr(model, "quality_input", False) else None
    pre_macs = macs_per_pixel(lambda t: model.pre(t, cond), x, [model.pre])
    with torch.no_grad():
        b = model.pre(x, cond)
    post_macs = macs_per_pixel(lambda y: model.post(y, (size, size), cond), b, [model.post])
    post_macs *= b.shape[-1] * b.shape[-2] / (size * size)
    extra = functional_conv_macs(model)
    return {
        "params_pre": count_params(model.pre),
        "params_post": count_params(model.post),
        "params": count_params(model),
        "macs_per_pixel": pre_macs + post_macs + extra,
    }


def progressive_complexity(model, size: int = 64) -> dict:
    """Params and MACs/pixel of one iteration (encoder + binarizer + decoder) of the RNN codec
    (of one frame for its clip version, whose frames go through the same networks; motion
    search and compensation are integer work outside them)."""
    from sandwich.models.progressive import ProgressiveCodec

    x = torch.rand(1, 3, size, size) * 255
    was_training = model.training
    model.eval()
    macs = macs_per_pixel(lambda t: ProgressiveCodec.forward(model, t, 1), x, [model])
    model.train(was_training)
    return {"params": count_params(model), "macs_per_pixel": macs}


def complexity(model) -> dict:
    """Params and MACs/pixel of any registered model type (as ``sandwich models`` lists them)."""
    from sandwich.models.progressive import ProgressiveCodec
    from sandwich.models.registry import for_type
    from sandwich.models.sandwich import SandwichModel

    measures = {  # the measure of each model type (sandwich.models.registry.MODEL_TYPES)
        SandwichModel: lambda m: sandwich_complexity(m, size=64),
        ProgressiveCodec: progressive_complexity,
    }
    return for_type(measures, model)(model)
