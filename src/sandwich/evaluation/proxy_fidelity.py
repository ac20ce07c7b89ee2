"""How closely the JPEG proxy follows the real codec: bpp and PSNR, per mode and quality, and
how well its rate gradient predicts the real bits of a small change."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sandwich.codecs.jpeg import SUBSAMPLINGS, JpegCodec
from sandwich.evaluation.metrics import psnr
from sandwich.proxies.calibrate import change_pairs, codec_tensor, to_codec_input
from sandwich.proxies.jpeg import grad_alpha_at, jpeg_proxy, load_calibration

DEFAULT_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
BPP_TARGET = 0.05  # mean absolute relative bpp error
PSNR_TARGET = 0.2  # mean absolute PSNR difference, dB


def fidelity_rows(
    images: list[np.ndarray],
    qualities: tuple[int, ...] = DEFAULT_QUALITIES,
    modes: tuple[str, ...] = SUBSAMPLINGS,
    progress: Callable[[], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Real vs proxy on ``images`` (uint8 RGB).

    Returns:
        rows: one per (mode, quality) with ``real_bpp``, ``proxy_bpp`` (bits per pixel of the
            whole file) and ``real_psnr``, ``proxy_psnr`` (dB against the codec input: RGB for
            colour modes, luma for gray), each averaged over the images;
        summary: one per mode with the mean absolute relative bpp error over images and
            qualities, the mean absolute PSNR difference (dB), and whether the targets hold.
    """
    rows, summary = [], []
    for mode in modes:
        codec = JpegCodec(mode)
        bpp_err, psnr_err = [], []
        for q in qualities:
            acc = {"real_bpp": [], "proxy_bpp": [], "real_psnr": [], "proxy_psnr": []}
            for img in images:
                arr = to_codec_input(img, mode)
                pixels = arr.shape[0] * arr.shape[1]
                data = codec.encode(arr, q)
                real = codec.decode(data)
                x = codec_tensor(arr)
                with torch.inference_mode():
                    out = jpeg_proxy(x, q, mode, rounding="hard")
                prox = out.x_hat[0].permute(1, 2, 0).numpy().squeeze(-1 if arr.ndim == 2 else ())
                rb, pb = 8 * len(data) / pixels, float(out.bits[0]) / pixels
                rp, pp = psnr(arr, real), psnr(arr, prox)
                for k, v in zip(acc, (rb, pb, rp, pp), strict=False):
                    acc[k].append(v)
                bpp_err.append(abs(pb - rb) / rb)
                psnr_err.append(abs(pp - rp))
                if progress is not None:
                    progress()
            rows.append(
                {"mode": mode, "quality": q, **{k: float(np.mean(v)) for k, v in acc.items()}}
            )
        b, p = float(np.mean(bpp_err)), float(np.mean(psnr_err))
        summary.append(
            {
                "mode": mode,
                "mean_abs_bpp_error": b,
                "max_abs_bpp_error": float(np.max(bpp_err)),
                "mean_abs_psnr_diff": p,
                "max_abs_psnr_diff": float(np.max(psnr_err)),
                "meets_targets": b <= BPP_TARGET and p <= PSNR_TARGET,
            }
        )
    return rows, summary


def gradient_rows(
    images: list[np.ndarray],
    qualities: tuple[int, ...] = DEFAULT_QUALITIES,
    modes: tuple[str, ...] = SUBSAMPLINGS,
    progress: Callable[[], None] | None = None,
) -> list[dict]:
    """Real bits of a small change (sharpening, contrast; see
    :func:`sandwich.proxies.calibrate.change_bits`) over the bits the rate gradient predicts,
    per mode and quality, summed over ``images`` and directions: ``total`` for the surrogate
    scaled to whole-file bits (the default in training), ``marginal`` for the per-quality
    scale (``--rate-grad marginal``). 1.0 is a faithful gradient; above 1 it underprices change.
    """
    cal = load_calibration()
    rows = []
    for mode in modes:
        m = cal["modes"][mode]
        for q in qualities:
            pairs = change_pairs(images, q, mode, cal["huffman"], progress)
            real, pred = (float(v) for v in pairs.sum(axis=0))
            row = {
                "mode": mode,
                "quality": q,
                "real_bits": real,
                "total": real / (m["alpha"] * pred),
            }
            if "grad_alpha" in m:
                row["marginal"] = real / (float(grad_alpha_at(m["grad_alpha"], q, 1)) * pred)
            rows.append(row)
    return rows
