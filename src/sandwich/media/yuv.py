"""RGB frames <-> the Y'CbCr planes a video codec stores, with the matrices of media/color.py.

Frames are numpy arrays (T, H, W, 3) of integers 0..``peak`` (255 for 8 bits, 1023 for 10);
planes are (T, H, W) for luma and (T, H, W) or (T, H/2, W/2) for chroma, integers in the stored
range. The conversion is done in float64 with :func:`sandwich.media.color.rgb_to_yuv` (the matrix
the differentiable proxies use) and rounded once, so encode and decode are exact inverses up to
that rounding and the chroma subsampling.

Conventions (what the streams signal in their VUI and MP4 ``colr`` box):

* matrix BT.709, studio ("limited", "tv") range by default: 8-bit Y 16..235, Cb/Cr 16..240
  centred on 128; 10-bit values are the 8-bit ones times 4 (Y 64..940, chroma centred on 512),
  as BT.709 defines them. Full range (Y 0..peak) is accepted when reading other files.
* 4:2:0 chroma is the mean of each 2x2 block (chroma sited at the centre of the four luma
  samples, ``chroma_sample_loc_type`` 1) and is brought back by bilinear interpolation with the
  same siting; 4:4:4 keeps every sample.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sandwich.media.color import rgb_to_yuv, yuv_to_rgb

CHROMAS = ("4:2:0", "4:4:4")


def _code_scale(peak: int) -> float:
    """Stored code per unit of the 8-bit Y'CbCr scale: 1 at 8 bits, 4 at 10 bits."""
    return (peak + 1) / 256.0


def rgb_to_planes(
    rgb: np.ndarray,
    peak: int = 255,
    chroma: str = "4:2:0",
    standard: str = "bt709",
    full_range: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, H, W, 3) RGB integers 0..``peak`` -> Y (T, H, W), Cb, Cr planes (uint8 or uint16).

    ``chroma`` ``"4:2:0"`` needs even H and W (pad odd frames first); chroma planes are then
    (T, H/2, W/2)."""
    if chroma not in CHROMAS:
        raise ValueError(f"unknown chroma format {chroma!r}; use one of {CHROMAS}")
    if rgb.ndim != 4 or rgb.shape[3] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {rgb.shape}")
    t, h, w, _ = rgb.shape
    if chroma == "4:2:0" and (h % 2 or w % 2):
        raise ValueError(f"4:2:0 needs even sizes, got {w}x{h}")
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(torch.float64).permute(0, 3, 1, 2)
    yuv = rgb_to_yuv(x * (255.0 / peak), standard, full_range) * _code_scale(peak)
    luma, cbcr = yuv[:, :1], yuv[:, 1:]
    if chroma == "4:2:0":
        cbcr = F.avg_pool2d(cbcr, 2)
    dtype = np.uint8 if peak <= 255 else np.uint16

    def store(p: torch.Tensor) -> np.ndarray:
        return p.round().clamp(0, peak).numpy().astype(dtype)

    return store(luma[:, 0]), store(cbcr[:, 0]), store(cbcr[:, 1])


def planes_to_rgb(
    y: np.ndarray,
    cb: np.ndarray,
    cr: np.ndarray,
    peak: int = 255,
    standard: str = "bt709",
    full_range: bool = False,
    out_peak: int | None = None,
) -> np.ndarray:
    """Y (T, H, W) and Cb, Cr (T, h, w) planes of integers 0..``peak`` -> (T, H, W, 3) RGB.

    Chroma smaller than luma is interpolated bilinearly (centre siting). The result is rounded
    and clipped to 0..``out_peak`` (default ``peak``): uint8 when that is 255, else uint16."""
    out_peak = peak if out_peak is None else out_peak
    luma = torch.from_numpy(np.ascontiguousarray(y)).to(torch.float64)[:, None]
    cbcr = torch.from_numpy(np.ascontiguousarray(np.stack([cb, cr], 1))).to(torch.float64)
    if cbcr.shape[-2:] != luma.shape[-2:]:
        # align_corners=False: centre siting; PyTorch clamps at the borders (edge replication)
        cbcr = F.interpolate(
            cbcr, size=tuple(luma.shape[-2:]), mode="bilinear", align_corners=False
        )
    yuv = torch.cat([luma, cbcr], 1) / _code_scale(peak)
    rgb = yuv_to_rgb(yuv, standard, full_range) * (out_peak / 255.0)
    dtype = np.uint8 if out_peak <= 255 else np.uint16
    return rgb.round().clamp(0, out_peak).permute(0, 2, 3, 1).numpy().astype(dtype)
