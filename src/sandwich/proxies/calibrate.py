"""Calibrate the JPEG proxy's rate model once against the real codec.

Measured from the installed codec: the standard Huffman code lengths (read from the DHT segments
of a file it wrote) and the fixed header bytes per mode. Fitted by least squares over a training
corpus and a quality sweep: the byte-stuffing factor (real entropy-coded bits over counted Huffman
bits) and the scale of the smooth rate surrogate (counted bits over sum log2(1+|q|)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sandwich.codecs.jpeg import SUBSAMPLINGS, JpegCodec, ecs_bytes
from sandwich.proxies.jpeg_rate import parse_dht


def codec_constants() -> dict:
    """Huffman lengths and header sizes read from the installed real codec (no corpus needed)."""
    img = np.full((16, 16, 3), 128, np.uint8)
    tables = parse_dht(JpegCodec("4:2:0").encode(img, 75))
    modes = {}
    for sub in SUBSAMPLINGS:
        d = JpegCodec(sub).encode(img[:, :, 0] if sub == "gray" else img, 75)
        modes[sub] = {"header_bytes": len(d) - ecs_bytes(d), "stuffing": 1.0, "alpha": 2.0}
    huffman = {
        "dc_luma": tables[(0, 0)],
        "ac_luma": tables[(1, 0)],
        "dc_chroma": tables[(0, 1)],
        "ac_chroma": tables[(1, 1)],
    }
    return {"huffman": huffman, "modes": modes}


def to_codec_input(img: np.ndarray, subsampling: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> what the codec of ``subsampling`` carries (luma for gray)."""
    if subsampling != "gray":
        return img
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def calibrate(images: list[np.ndarray], qualities: list[int], progress=None) -> dict:
    """Fit byte stuffing and surrogate scale per mode on ``images`` (uint8 RGB arrays)."""
    from sandwich.proxies.jpeg import jpeg_proxy_parts, qtables_for_quality

    const = codec_constants()
    result = {"huffman": const["huffman"], "modes": {}}
    for sub in SUBSAMPLINGS:
        codec = JpegCodec(sub)
        counted, real, smooth = [], [], []
        for img in images:
            arr = to_codec_input(img, sub)
            x = torch.from_numpy(arr).float()
            x = x[None, None] if arr.ndim == 2 else x.permute(2, 0, 1)[None]
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
    result["fitted_on"] = {"images": len(images), "qualities": list(qualities)}
    return result


def write_calibration(result: dict, path: Path) -> None:
    path.write_text(json.dumps(result, indent=1) + "\n")
