"""Image quality metrics on uint8 arrays or 0..255 tensors."""

from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all samples, in 0..255 units squared."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all samples (RGB PSNR for (H, W, 3) arrays); capped at 100 dB."""
    m = mse(a, b)
    return 100.0 if m <= 1e-10 else 10.0 * math.log10(peak * peak / m)


# weights of the five MS-SSIM scales (Wang et al. 2003), finest first
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_torch(
    a, b, data_range: float = 1.0, scales: int = 5, win_size: int = 11, per_image: bool = False
):
    """Differentiable MS-SSIM of (N, C, H, W) tensors, mean over the batch; higher is better.

    ``per_image=True`` returns the (N,) values instead of their mean.

    ``scales=5``, ``win_size=11`` is the standard MS-SSIM (pytorch-msssim's); fewer scales fit
    small training patches (the finest weights renormalised to sum to 1). Needs
    min(H, W) > (win_size - 1) * 2 ** (scales - 1).
    """
    import torch
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    if min(a.shape[-2:]) <= (win_size - 1) * 2 ** (scales - 1):
        raise ValueError(
            f"images of {tuple(a.shape[-2:])} are too small for {scales}-scale MS-SSIM"
        )
    w = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=a.dtype, device=a.device)
    w = w / w.sum()
    win = _fspecial_gauss_1d(win_size, 1.5).repeat(a.shape[1], 1, 1, 1).to(a)
    mcs = []
    for i in range(scales):
        ssim_c, cs = _ssim(a, b, data_range=data_range, win=win, size_average=False)
        if i < scales - 1:
            mcs.append(cs.relu())
            pad = [s % 2 for s in a.shape[2:]]
            a, b = F.avg_pool2d(a, 2, padding=pad), F.avg_pool2d(b, 2, padding=pad)
    vals = torch.stack([*mcs, ssim_c.relu()])  # (scale, N, C)
    per = (vals.clamp_min(1e-8) ** w.view(-1, 1, 1)).prod(0).mean(1)
    return per if per_image else per.mean()


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two (H, W, 3) uint8 images (RGB, mean over channels), 0..1.

    Standard 5 scales with an 11x11 window; images with a side of 176 pixels or less use as
    many scales as fit (and a 7x7 window below 112 pixels), so any size gets a value.
    """
    import torch

    x = torch.from_numpy(np.asarray(a, np.float32)).permute(2, 0, 1)[None] / 255.0
    y = torch.from_numpy(np.asarray(b, np.float32)).permute(2, 0, 1)[None] / 255.0
    side = min(x.shape[-2:])
    for win in (11, 7, 3):
        for scales in range(5, 0, -1):
            if side > (win - 1) * 2 ** (scales - 1):
                with torch.no_grad():
                    return float(ms_ssim_torch(x, y, 1.0, scales, win))
    raise ValueError(f"image of {side} pixels is too small for MS-SSIM")
