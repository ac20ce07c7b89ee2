"""Training distortions of the sandwich, per image and on a dB-like scale.

Every distortion is "lower is better" and logarithmic, so that one rate weight lambda (dB per
bpp) makes a similar trade-off at every quality:

- ``psnr``: 10 log10(MSE) (minus PSNR up to a constant);
- ``mse``: plain MSE in 0..255 units (the reference's loss; not logarithmic);
- ``msssim``: 10 log10(1 - MS-SSIM), i.e. minus MS-SSIM in dB; three scales with a 7x7 window
  so it fits training patches of 32 pixels and more;
- ``lpips``: 10 log10(LPIPS) with the AlexNet LPIPS of :mod:`sandwich.evaluation.perceptual`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sandwich.evaluation.metrics import ms_ssim_torch

DISTORTIONS = ("psnr", "mse", "msssim", "lpips")


def distortion(x_hat: Tensor, x: Tensor, kind: str) -> Tensor:
    """(N,) distortion of reconstructions ``x_hat`` against ``x``, both (N, 3, H, W) in 0..255."""
    if kind == "mse" or kind == "psnr":
        mse = ((x_hat - x) ** 2).mean(dim=(1, 2, 3))
        return mse if kind == "mse" else 10.0 * torch.log10(mse.clamp_min(1e-3))
    if kind == "msssim":
        a, b = (x_hat / 255.0).clamp(0, 1), x / 255.0
        ms = ms_ssim_torch(a, b, 1.0, scales=3, win_size=7, per_image=True)
        return 10.0 * torch.log10((1.0 - ms).clamp_min(1e-5))
    if kind == "lpips":
        from sandwich.evaluation.perceptual import lpips_torch

        per = lpips_torch(x_hat, x, reduction="none").flatten()
        return 10.0 * torch.log10(per.clamp_min(1e-4))
    raise ValueError(f"unknown distortion {kind!r}; use one of {DISTORTIONS}")
