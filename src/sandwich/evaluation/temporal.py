"""Temporal-consistency metrics for decoded clips: motion fidelity and flicker.

Both compare what changes from frame to frame in the decoded clip with what changes in the
original, so a per-frame error that stays put (a constant offset, a fixed blur) costs nothing
here; only errors that vary over time do.

* :func:`flow_epe` -- end-point error between the optical flow of the original and of the
  decoded clip, measured with OpenCV's DIS optical flow (preset ``medium``, on BT.709 luma, via
  :func:`sandwich.proxies.video.flow.dis_flow`). It deliberately does not use the differentiable
  estimator of :mod:`sandwich.nets.flow`, so a model trained with that loss is not graded by its
  own yardstick.
* :func:`flicker` -- how far the decoded frame differences depart from the original's.

Clips are (T, H, W, 3) arrays of 8-bit code values (uint8, or any real dtype on that scale).
"""

from __future__ import annotations

import numpy as np
import torch

from sandwich.errors import SandwichError
from sandwich.proxies.video.flow import dis_flow, luma_u8

__all__ = ["flicker", "flow_epe", "temporal_report"]

# OpenCV's DIS crashes (segfault) on frames thinner than this next to a wide other side.
MIN_FLOW_SIDE = 16


def _check(original: np.ndarray, decoded: np.ndarray, name: str) -> None:
    """One-line errors for clips that cannot be compared frame to frame."""
    if original.shape != decoded.shape:
        raise SandwichError(f"{name}: clips differ in shape, {original.shape} vs {decoded.shape}")
    if original.ndim != 4 or original.shape[-1] != 3:
        raise SandwichError(f"{name}: clips must be (T, H, W, 3), got {original.shape}")
    if original.shape[0] < 2:
        raise SandwichError(f"{name}: clips need at least 2 frames, got {original.shape[0]}")


def _luma(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) 0..255 -> (T, H, W) uint8 BT.709 luma."""
    frames = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)
    return luma_u8(frames)


def flow_epe(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean end-point error between the original and decoded clips' frame-to-frame motion.

    For each t >= 1, OpenCV's DIS optical flow (preset ``medium``) is computed on the BT.709
    luma of frame t against frame t-1, for both clips; the result is the mean over pairs and
    pixels of the Euclidean distance between the two flow vectors.

    Args:
        original: (T, H, W, 3) clip, 8-bit code values (uint8, or real values rounded to it),
            T >= 2, H and W >= 16.
        decoded: same shape.

    Returns:
        Mean end-point error in pixels (0 when the clips are identical).
    """
    _check(original, decoded, "flow_epe")
    h, w = original.shape[1:3]
    if min(h, w) < MIN_FLOW_SIDE:
        raise SandwichError(f"flow_epe: frames must be at least 16x16 for DIS, got {h}x{w}")
    ref = dis_flow(_luma(original), "medium")
    got = dis_flow(_luma(decoded), "medium")
    return float(np.sqrt(((got - ref) ** 2).sum(axis=1)).mean())


def flicker(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean absolute departure of the decoded frame differences from the original's.

    ``mean over t >= 1, pixels and channels of |(dec_t - dec_{t-1}) - (orig_t - orig_{t-1})|``,
    computed in float64 (no rounding). Equal to 0 for a perfect decode and for any error that is
    constant over time; a decode whose error changes from frame to frame scores above 0.

    Args:
        original: (T, H, W, 3) clip, 8-bit code values (any real dtype on 0..255), T >= 2.
        decoded: same shape.

    Returns:
        Mean absolute difference in 8-bit code values.
    """
    _check(original, decoded, "flicker")
    err = decoded.astype(np.float64) - original.astype(np.float64)
    return float(np.abs(np.diff(err, axis=0)).mean())


def temporal_report(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """Both metrics for one clip pair: ``{"flow_epe_px": ..., "flicker": ...}``.

    Args:
        original: (T, H, W, 3) clip, 8-bit code values, T >= 2, H and W >= 16.
        decoded: same shape.

    Returns:
        ``flow_epe_px`` from :func:`flow_epe` (pixels) and ``flicker`` from :func:`flicker`
        (8-bit code values).
    """
    return {"flow_epe_px": flow_epe(original, decoded), "flicker": flicker(original, decoded)}
