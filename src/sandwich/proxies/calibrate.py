"""Calibrate the JPEG proxy's rate model once against the real codec.

Measured from the installed codec: the standard Huffman code lengths (read from the DHT segments
of a file it wrote) and the fixed header bytes per mode. Fitted by least squares over a training
corpus and a quality sweep: the byte-stuffing factor (real entropy-coded bits over counted Huffman
bits) and the scale of the smooth rate surrogate (counted bits over sum log2(1+|q|)).

That scale matches the surrogate to the *total* bits, but the gradient is what training uses,
and it underprices change: making an image a little sharper or more contrasted costs the real
4:2:0 file 1.3 to 2.6 times the bits that the surrogate's gradient predicts (`sandwich bench
proxy --gradient` on the validation images; the most at quality 10, where the change wakes up
coefficients that were zero, each costing a whole run-length symbol). :func:`fit_grad_alpha`
measures that ratio per quality, as the real codec's finite-difference bits over the gradient's
prediction along two directions that a pre-processor takes (sharpening and contrast), and
``--rate-grad marginal`` in training gives the gradient that scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sandwich.codecs.jpeg import SUBSAMPLINGS, JpegCodec, ecs_bytes
from sandwich.media.color import BT601_LUMA
from sandwich.proxies.jpeg import jpeg_proxy_parts, qtables_for_quality
from sandwich.proxies.jpeg_rate import codec_constants


def to_codec_input(img: np.ndarray, subsampling: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> what the codec of ``subsampling`` carries (luma for gray)."""
    if subsampling != "gray":
        return img
    y = img.astype(np.float64) @ np.array(BT601_LUMA)
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def codec_tensor(arr: np.ndarray) -> torch.Tensor:
    """A codec input (H, W) or (H, W, 3) uint8 -> a (1, C, H, W) float tensor (a copy)."""
    x = torch.from_numpy(np.array(arr, copy=True)).float()
    return x[None, None] if arr.ndim == 2 else x.permute(2, 0, 1)[None]


def calibrate(images: list[np.ndarray], qualities: list[int], progress=None) -> dict:
    """Fit byte stuffing and surrogate scale per mode on ``images`` (uint8 RGB arrays)."""
    const = codec_constants()
    result = {"huffman": const["huffman"], "modes": {}}
    for sub in SUBSAMPLINGS:
        codec = JpegCodec(sub)
        counted, real, smooth = [], [], []
        for img in images:
            arr = to_codec_input(img, sub)
            x = codec_tensor(arr)
            for q in qualities:
                real.append(8.0 * ecs_bytes(codec.encode(arr, q)))
                qt = qtables_for_quality(torch.tensor([float(q)]))
                with torch.no_grad():
                    _, exact, sm = jpeg_proxy_parts(x, qt, sub, "hard", const["huffman"])
                counted.append(float(exact))
                smooth.append(float(sm))
                if progress is not None:
                    progress()
        c, r, s = map(np.asarray, (counted, real, smooth))
        stuffing = float((c * r).sum() / (c**2).sum())
        alpha = float((s * c).sum() / (s**2).sum())
        result["modes"][sub] = {
            "header_bytes": const["modes"][sub]["header_bytes"],
            "stuffing": stuffing,
            "alpha": alpha,
            "fit_mean_abs_rel_error": float((np.abs(stuffing * c - r) / r).mean()),
            "raw_mean_abs_rel_error": float((np.abs(c - r) / r).mean()),
        }
        result["modes"][sub]["grad_alpha"] = fit_grad_alpha(
            images, qualities, sub, const["huffman"], progress
        )
    result["fitted_on"] = {"images": len(images), "qualities": list(qualities)}
    return result


# perturbation directions of fit_grad_alpha and their step sizes (in units of the direction)
GRAD_DIRECTIONS = {"sharpen": 0.3, "contrast": 0.05}


def _direction(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(1, C, H, W) direction of change: detail (x minus its 3x3 mean) or contrast."""
    import torch.nn.functional as F

    if kind == "sharpen":
        return x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    return x - x.mean(dim=(2, 3), keepdim=True)


def change_bits(
    img: np.ndarray, quality: int, subsampling: str, huffman: dict
) -> list[tuple[float, float]]:
    """(real, predicted) bits of a small change of ``img`` (uint8 RGB), one pair per direction
    of :data:`GRAD_DIRECTIONS`.

    Predicted: the gradient of the raw surrogate (sum log2(1+|q|), ``"ste"`` rounding as in
    training) along the direction d times its step t, in surrogate units (times a scale such
    as the calibration's ``alpha``, bits). Real: the real file's size at x + t d minus at x
    (both rounded to 8 bits), in bits.
    """
    codec = JpegCodec(subsampling)
    qt = qtables_for_quality(torch.tensor([float(quality)]))
    arr = to_codec_input(img, subsampling)
    x = codec_tensor(arr)
    base = len(codec.encode(arr, quality))
    pairs = []
    for kind, step in GRAD_DIRECTIONS.items():
        d = _direction(x, kind)
        t = torch.zeros(1, requires_grad=True)
        _, _, smooth = jpeg_proxy_parts(x + t * d, qt, subsampling, "ste", huffman)
        smooth.sum().backward()
        moved = (x + step * d).round().clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(np.uint8)
        moved = moved[:, :, 0] if moved.shape[2] == 1 else moved
        pairs.append((8.0 * (len(codec.encode(moved, quality)) - base), float(t.grad) * step))
    return pairs


def change_pairs(
    images: list[np.ndarray], quality: int, subsampling: str, huffman: dict, progress=None
) -> np.ndarray:
    """(K, 2) (real, predicted) pairs of :func:`change_bits` over ``images``, one progress
    tick per image."""
    pairs = []
    for img in images:
        pairs += change_bits(img, quality, subsampling, huffman)
        if progress is not None:
            progress()
    return np.asarray(pairs)


def fit_grad_alpha(
    images: list[np.ndarray],
    qualities: list[int],
    subsampling: str,
    huffman: dict,
    progress=None,
) -> dict:
    """Per quality: the surrogate scale that makes its gradient predict the real bits of change,
    the least-squares ratio of :func:`change_bits` over images and directions, in bits per
    surrogate unit (compare the total fit's ``alpha``).

    Returns ``{"qualities": [...], "alpha": [...]}``.
    """
    alphas = []
    for q in qualities:
        r, p = change_pairs(images, q, subsampling, huffman, progress).T
        alphas.append(float((r * p).sum() / (p**2).sum()))
    return {"qualities": list(qualities), "alpha": alphas}


def write_calibration(result: dict, path: Path) -> None:
    path.write_text(json.dumps(result, indent=1) + "\n")
