"""Motion for the video proxy: a fixed optical flow, and the warp that applies it.

The flow is measured on the *original* frames (OpenCV's DIS optical flow on luma), outside the
graph: the warp it defines is a fixed linear map of the reference frame, so gradients flow
through the warped pixels and never into the motion.

Convention: ``flow`` is (N, T-1, 2, H, W) float, in pixels of the grid it lives on; channel 0 is
the horizontal (x) and channel 1 the vertical (y) displacement. ``flow[:, t-1]`` points from
frame ``t`` back into frame ``t-1``: frame_t(y, x) ~ frame_{t-1}(y + flow_y, x + flow_x), which
is what a decoder's motion vectors say (where each block of the current frame comes from).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sandwich.media.color import BT709_LUMA

DIS_PRESETS = ("ultrafast", "fast", "medium")


def _dis(preset: str):
    import cv2

    cv2.setNumThreads(1)
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; use one of {DIS_PRESETS}")
    code = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }[preset]
    return cv2.DISOpticalFlow_create(code)


def luma_u8(frames: Tensor) -> np.ndarray:
    """(T, C, H, W) 0..255 frames -> (T, H, W) uint8 luma (BT.709 weights; C = 1 taken as is)."""
    f = frames.detach().float().cpu()
    if f.shape[1] == 3:
        w = torch.tensor(BT709_LUMA).view(1, 3, 1, 1)
        f = (f * w).sum(1, keepdim=True)
    return f[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


MIN_DIS_SIDE = 16  # smaller frames are padded before DIS


def dis_flow(frames: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Backward flow of a clip by DIS: (T, H, W) uint8 luma -> (T-1, 2, H, W) float32,
    ``out[t-1]`` from frame ``t`` into frame ``t-1`` (see the module docstring)."""
    dis = _dis(preset)
    h, w = frames.shape[1:3]
    out = np.zeros((max(frames.shape[0] - 1, 0), 2, h, w), np.float32)
    # OpenCV's DIS crashes the process on frames under 16 pixels a side (e.g. 12x40): pad such
    # frames by edge replication to 16 and crop the flow back
    pad = ((0, max(MIN_DIS_SIDE - h, 0)), (0, max(MIN_DIS_SIDE - w, 0)))
    for t in range(1, frames.shape[0]):
        a, b = (np.ascontiguousarray(np.pad(f, pad, mode="edge")) for f in frames[t - 1 : t + 1])
        out[t - 1] = dis.calc(b, a, None).transpose(2, 0, 1)[:, :h, :w]
    return out


def clip_flow(x: Tensor, preset: str = "medium") -> Tensor:
    """Fixed backward flow of a batch of clips (no gradient).

    Args:
        x: (N, T, C, H, W) clips, 0..255 (C = 3 RGB or 1 luma).
        preset: DIS speed preset (``"ultrafast"``, ``"fast"``, ``"medium"``).

    Returns:
        (N, T-1, 2, H, W) float flow in pixels, on ``x``'s device and dtype.
    """
    flows = [torch.from_numpy(dis_flow(luma_u8(clip), preset)) for clip in x]
    return torch.stack(flows).to(device=x.device, dtype=x.dtype)


def scale_flow(flow: Tensor, size: tuple[int, int], scale: float | None = None) -> Tensor:
    """A flow (..., 2, H0, W0) moved onto a grid of ``size`` (h, w).

    The field is resampled (area mean when shrinking by a whole factor, else bilinear) and the
    vectors are multiplied by ``scale``: by default the grid's ratio, w / W0 for x and h / H0
    for y (a 2x low-res bottleneck halves the motion). Pass ``scale`` to override it (both
    components). Unchanged when the sizes match and ``scale`` is None or 1.
    """
    h0, w0 = flow.shape[-2:]
    h, w = size
    lead = flow.shape[:-3]
    f = flow.reshape(-1, 2, h0, w0)
    if (h, w) != (h0, w0):
        if h0 % h == 0 and w0 % w == 0 and h0 // h == w0 // w:
            f = F.avg_pool2d(f, h0 // h)
        else:
            f = F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)
    if scale is None:
        k = torch.tensor([w / w0, h / h0], dtype=f.dtype, device=f.device).view(1, 2, 1, 1)
    else:
        k = torch.full((1, 2, 1, 1), float(scale), dtype=f.dtype, device=f.device)
    return (f * k).reshape(*lead, 2, h, w)


def warp(img: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warp: out(y, x) = img(y + flow_y, x + flow_x), borders replicated.

    Args:
        img: (N, C, H, W).
        flow: (N, 2, H, W) in pixels (x then y), treated as a constant.

    Returns:
        (N, C, H, W), differentiable with respect to ``img``.
    """
    n, _, h, w = img.shape
    flow = flow.detach().to(img)
    ys = torch.arange(h, device=img.device, dtype=img.dtype).view(1, h, 1)
    xs = torch.arange(w, device=img.device, dtype=img.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
