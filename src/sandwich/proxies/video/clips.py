"""Synthetic clips for calibrating and checking the video proxy: still photos set in motion.

Each clip is a window moving over one photo: a pan (sub-pixel velocities), a slow zoom and a
small rotation, sometimes with a patch of the photo sliding across it on its own path (an
object moving against the background, with occlusion edges), plus fresh sensor-like noise in
every frame. Frames are resampled from the photo with bicubic interpolation (OpenCV), so motion
is smooth and exactly known to the generator but not to the proxy, which measures its own flow.
"""

from __future__ import annotations

import numpy as np

from sandwich.media.color import BT709_LUMA


def _affine(center, scale: float, angle: float, size: tuple[int, int]) -> np.ndarray:
    """2x3 map from output pixel (x, y) to source pixel: rotate, scale about the window centre."""
    h, w = size
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    ox, oy = (w - 1) / 2.0, (h - 1) / 2.0
    return np.array(
        [
            [c, -s, center[0] - c * ox + s * oy],
            [s, c, center[1] - s * ox - c * oy],
        ],
        dtype=np.float64,
    )


def moving_clip(
    image: np.ndarray,
    rng: np.random.Generator,
    frames: int = 8,
    size: tuple[int, int] = (192, 320),
    max_speed: float = 4.0,
    noise: float | None = None,
) -> np.ndarray:
    """One synthetic clip (frames, H, W, 3) uint8 from ``image`` (H0, W0, 3) uint8.

    Motion drawn from ``rng``: velocity up to ``max_speed`` pixels per frame, zoom up to 1.5%
    per frame, rotation up to 0.4 degrees per frame, a moving patch in 40% of the clips; noise
    of standard deviation ``noise`` (default: drawn in 0..2.5)."""
    import cv2

    cv2.setNumThreads(1)
    h, w = size
    src = image.astype(np.float32)
    sh, sw = src.shape[:2]
    base = rng.uniform(0.7, 1.0) * min(sh / (h * 1.3), sw / (w * 1.3), 1.6)
    speed = rng.uniform(0.0, max_speed)
    theta = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([np.cos(theta), np.sin(theta)]) * base
    zoom = rng.uniform(-0.015, 0.015) if rng.random() < 0.5 else 0.0
    spin = np.deg2rad(rng.uniform(-0.4, 0.4)) if rng.random() < 0.4 else 0.0
    travel = vel * (frames - 1)
    margin = np.array([w, h]) * base * 0.75
    lo, hi = margin + np.maximum(-travel, 0), np.array([sw, sh]) - margin - np.maximum(travel, 0)
    start = rng.uniform(lo, np.maximum(hi, lo + 1))
    sprite = rng.random() < 0.4
    sprite_src = rng.uniform([0, 0], [sw - w / 3, sh - h / 3])
    sprite_pos = rng.uniform([0, 0], [w * 2 / 3, h * 2 / 3])
    sprite_vel = rng.uniform(-5, 5, 2)
    sigma = rng.uniform(0.0, 2.5) if noise is None else noise
    out = np.empty((frames, h, w, 3), np.uint8)
    for k in range(frames):
        m = _affine(start + k * vel, base * (1 + zoom) ** k, spin * k, size)
        f = cv2.warpAffine(
            src, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
        if sprite:
            ph, pw = h // 3, w // 3
            x0, y0 = sprite_pos + k * sprite_vel
            m2 = np.array([[1.0, 0, sprite_src[0] - x0], [0, 1.0, sprite_src[1] - y0]])
            patch = cv2.warpAffine(
                src, m2, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )  # fmt: skip
            ys, xs = np.mgrid[0:h, 0:w]
            inside = (xs >= x0) & (xs < x0 + pw) & (ys >= y0) & (ys < y0 + ph)
            f[inside] = patch[inside]
        if sigma > 0:
            f = f + rng.normal(0.0, sigma, f.shape).astype(np.float32)
        out[k] = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return out


def synthetic_clips(
    images: list[np.ndarray],
    per_image: int = 2,
    frames: int = 8,
    size: tuple[int, int] = (192, 320),
    seed: int = 0,
) -> list[np.ndarray]:
    """``per_image`` moving clips of each photo (uint8 RGB), deterministic for a ``seed``."""
    rng = np.random.default_rng(seed)
    return [moving_clip(img, rng, frames, size) for img in images for _ in range(per_image)]


def to_gray(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) uint8 luma (BT.709 weights): what a gray codec
    carries."""
    y = clip.astype(np.float64) @ np.asarray(BT709_LUMA)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)
