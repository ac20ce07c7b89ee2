"""Training distortions of the sandwich, per image, "lower is better".

Single terms:

- ``mse``: plain MSE in 0..255 units (the reference's loss);
- ``psnr``: 10 log10(MSE), i.e. minus PSNR up to a constant;
- ``dssim``: 1 - MS-SSIM (three scales, 7x7 window, so it fits patches of 32 pixels and more);
- ``dssim5``: 1 - the standard MS-SSIM that the evaluation reports (five scales, 11x11 window);
  needs patches of at least 161 pixels (``--patch 176``);
- ``msssim``: 10 log10(1 - MS-SSIM), i.e. minus MS-SSIM in dB;
- ``lpips``: AlexNet LPIPS of :mod:`sandwich.evaluation.perceptual` (0 = identical);
- ``lpips-db``: 10 log10(LPIPS).

The logarithmic (dB) terms let one rate weight lambda (dB per bpp) make a similar trade-off at
every quality, but averaged over a batch they weight each patch by 1/D_i, so smooth, easy patches
dominate; measured: with ``psnr`` a post-processor barely moved from plain JPEG in 5,600 steps,
where ``mse`` gained 0.5-0.8 dB in 2,500. Prefer the linear terms for learning.

A loss is a single term or a weighted sum, written ``"dssim+0.0002*mse"`` or
``"lpips+0.5*dssim"``: ``+``-separated terms, each ``NAME`` or ``WEIGHT*NAME``.

Rate weight as a slope. A fixed lambda (loss units per bpp) is worth very different amounts at
different qualities: 20 MSE/bpp is 20 * 10 / (ln(10) MSE) dB/bpp, 1.06 at 29 dB but 0.34 at 24 dB,
far below what the codec itself trades by changing its quality (the lowres2 baseline gains
1.58 dB for 0.053 bpp from quality 10 to 20, 30 dB/bpp, in docs/results.md), so a learning
pre-processor buys bits that a higher quality would buy more cheaply. :func:`slope_lambda` instead
gives each sample the lambda of a rate-distortion slope in dB per doubling of the bit rate, the
log-log domain that BD-rate and BD-PSNR integrate in, so every quality trades alike while the
distortion stays linear (which learns better than the dB terms, see above).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sandwich.evaluation.metrics import ms_ssim_torch

DISTORTIONS = ("mse", "psnr", "dssim", "dssim5", "msssim", "lpips", "lpips-db")
LOG_TERMS = ("psnr", "msssim", "lpips-db")  # already in dB, may be negative

# dB of distortion per doubling of the rate -> loss units of a linear D per bpp, times D/R:
# d(10 log10 D) = -slope d(log2 R)  <=>  dD = -slope * ln(10) / (10 ln(2)) * (D / R) dR
_DB_PER_OCTAVE = math.log(10) / (10 * math.log(2))

# the MS-SSIM terms: (scales, window side)
_MS_SSIM = {"dssim": (3, 7), "msssim": (3, 7), "dssim5": (5, 11)}


def parse_loss(spec: str) -> list[tuple[float, str]]:
    """``"a*x+y"`` -> ``[(a, "x"), (1.0, "y")]``; raises ValueError on unknown terms or weights."""
    terms = []
    for part in spec.replace(" ", "").split("+"):
        weight, _, name = part.rpartition("*")
        if name not in DISTORTIONS:
            raise ValueError(
                f"unknown distortion {name!r} in loss {spec!r}; use one of "
                f"{', '.join(DISTORTIONS)}, or a weighted sum like 'dssim+0.0002*mse'"
            )
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"loss {spec!r}: weight {weight!r} is not a number") from None
        terms.append((w, name))
    return terms


def min_patch(spec: str) -> int:
    """Smallest patch side (pixels) that every term of loss ``spec`` can be computed on."""
    from sandwich.evaluation.perceptual import LPIPS_MIN_SIDE

    def one(name: str) -> int:
        if name in _MS_SSIM:  # see ms_ssim_torch: the side must exceed (win - 1) * 2**(scales - 1)
            scales, win = _MS_SSIM[name]
            return (win - 1) * 2 ** (scales - 1) + 1
        return LPIPS_MIN_SIDE["alex"] if name.startswith("lpips") else 1

    return max(one(name) for _, name in parse_loss(spec))


def _term(x_hat: Tensor, x: Tensor, kind: str) -> Tensor:
    if kind in ("mse", "psnr"):
        mse = ((x_hat - x) ** 2).mean(dim=(1, 2, 3))
        return mse if kind == "mse" else 10.0 * torch.log10(mse.clamp_min(1e-3))
    if kind in _MS_SSIM:
        a, b = (x_hat / 255.0).clamp(0, 1), x / 255.0
        scales, win = _MS_SSIM[kind]
        d = 1.0 - ms_ssim_torch(a, b, 1.0, scales=scales, win_size=win, per_image=True)
        return 10.0 * torch.log10(d.clamp_min(1e-5)) if kind == "msssim" else d
    from sandwich.evaluation.perceptual import lpips_torch

    per = lpips_torch(x_hat, x, reduction="none").flatten()
    return per if kind == "lpips" else 10.0 * torch.log10(per.clamp_min(1e-4))


def distortion(x_hat: Tensor, x: Tensor, kind: str) -> Tensor:
    """(N,) distortion ``kind`` (a term or weighted sum) of ``x_hat`` against ``x``.

    Both (N, 3, H, W) in 0..255.
    """
    terms = parse_loss(kind)
    total = None
    for w, name in terms:
        d = w * _term(x_hat, x, name)
        total = d if total is None else total + d
    assert total is not None
    return total


def slope_lambda(dist: Tensor, bpp: Tensor, slope: float, min_bpp: float = 0.01) -> Tensor:
    """(N,) per-sample rate weights (loss units per bpp) for an RD slope of ``slope`` dB per
    doubling of the rate: ``slope * ln(10) / (10 ln(2)) * D_i / R_i``, detached.

    ``dist``: (N,) linear distortions (> 0, e.g. MSE in 0..255 units or 1 - MS-SSIM);
    ``bpp``: (N,) rates in bits per pixel that grow with the content: leave out constant headers
    (``SandwichOutput.payload_bpp``), which on small training patches would dilute the weight;
    clamped below at ``min_bpp`` so a flat patch that
    costs almost nothing does not get an unbounded weight. ``D_i + lambda_i * R_i`` then has the
    gradient of ``10 log10 D_i + slope * log2 R_i`` scaled by D_i, i.e. it trades like BD-PSNR
    and keeps the patch weighting of the linear loss.
    """
    ratio = dist.detach().clamp_min(0) / bpp.detach().clamp_min(min_bpp)
    return slope * _DB_PER_OCTAVE * ratio


class SlopeLambda(torch.nn.Module):
    """Module form of :func:`slope_lambda` with a fixed ``slope`` (dB per doubling of bpp)."""

    def __init__(self, slope: float, min_bpp: float = 0.01) -> None:
        super().__init__()
        self.slope, self.min_bpp = slope, min_bpp

    def forward(self, dist: Tensor, bpp: Tensor) -> Tensor:
        return slope_lambda(dist, bpp, self.slope, self.min_bpp)
