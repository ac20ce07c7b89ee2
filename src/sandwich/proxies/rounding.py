"""Differentiable stand-ins for rounding to integers.

``"hard"``: plain rounding (no gradient; what the real codec does).
``"ste"``: straight-through, the forward value is rounded and the gradient is the identity.
``"noise"``: additive uniform noise in [-0.5, 0.5) (the learned-codec relaxation), for training.
``"cubic"``: the forward value is rounded; the gradient is that of round(x) + (x - round(x))**3
(Reich et al., WACV 2024), 3 * (x - round(x))**2: near zero for values close to an integer
(a small coefficient that rounds to 0 stays 0 when nudged), largest near a decision boundary.
"""

from __future__ import annotations

import torch
from torch import Tensor

ROUNDINGS = ("hard", "ste", "noise", "cubic")


def round_ste(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def round_cubic(x: Tensor) -> Tensor:
    """Rounded forward value, gradient 3 * (x - round(x))**2."""
    r = x - torch.round(x).detach()
    c = r**3
    return torch.round(x).detach() + c - c.detach()


def soft_round(x: Tensor, mode: str) -> Tensor:
    """Round ``x`` according to ``mode`` (one of :data:`ROUNDINGS`)."""
    if mode == "hard":
        return torch.round(x)
    if mode == "ste":
        return round_ste(x)
    if mode == "cubic":
        return round_cubic(x)
    if mode == "noise":
        return x + torch.rand_like(x) - 0.5
    raise ValueError(f"unknown rounding {mode!r}; use one of {ROUNDINGS}")


def clip_ste(x: Tensor, lo: float, hi: float) -> Tensor:
    """Clamp whose gradient passes through (so a saturated pixel can still move back)."""
    return x + (x.clamp(lo, hi) - x).detach()
