"""Choosing the analytic chroma modem's filters and gains, through the real grayscale JPEG.

The modem is the starting point of the ``gray`` scenario; this sweep is how its defaults were
chosen (on training images only): BD-PSNR of the modem against grayscale JPEG, first over the
low-pass orders (filter lengths), then over the luma and chroma gains.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sandwich.codecs.jpeg import JpegCodec
from sandwich.evaluation.baselines import JpegBaseline
from sandwich.evaluation.metrics import psnr
from sandwich.evaluation.rd import bd
from sandwich.nets.modem import default_lowpass, demodulate, modulate


def _modem_curve(images, qualities, a, g, luma_order, chroma_order):
    codec = JpegCodec("gray")
    lp_l, lp_c = default_lowpass(2, luma_order), default_lowpass(2, chroma_order)
    ga, gg = torch.tensor(a), torch.full((2,), g)
    bpp, ps = [], []
    for q in qualities:
        b_acc, p_acc = [], []
        for img in images:
            x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float()
            with torch.inference_mode():
                b = modulate(x, ga, gg, lp_l, lp_c).round().clamp(0, 255)
                data = codec.encode(b[0, 0].to(torch.uint8).numpy(), q)
                dec = torch.from_numpy(codec.decode(data).copy()).float()[None, None]
                rec = demodulate(dec, 1 / ga, 1 / gg, lp_l, lp_c).round().clamp(0, 255)
            b_acc.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            p_acc.append(psnr(img, rec[0].permute(1, 2, 0).numpy()))
        bpp.append(np.mean(b_acc))
        ps.append(np.mean(p_acc))
    return np.array(bpp), np.array(ps)


def modem_sweep(
    images: list[np.ndarray],
    qualities: tuple[int, ...] = (20, 50, 80),
    orders: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 2), (3, 3), (4, 3), (5, 3)),
    gains: tuple[tuple[float, float], ...] = (
        (0.7, 0.75),
        (0.85, 0.5),
        (0.85, 0.75),
        (0.85, 1.0),
        (1.0, 0.75),
    ),
    progress: Callable[[], None] | None = None,
) -> list[dict]:
    """Rows: luma/chroma order, gains, BD-PSNR (dB) of the modem against grayscale JPEG."""
    base = JpegBaseline("gray")
    anchor_b, anchor_p = [], []
    for q in qualities:
        rows = [base.roundtrip(img, q) for img in images]
        anchor_b.append(
            np.mean(
                [
                    8 * len(d) / (i.shape[0] * i.shape[1])
                    for (d, _), i in zip(rows, images, strict=True)
                ]
            )
        )
        anchor_p.append(np.mean([psnr(i, r) for (_, r), i in zip(rows, images, strict=True)]))
    anchor = (np.array(anchor_b), np.array(anchor_p))
    out = []

    def run(lo, co, a, g, stage):
        curve = _modem_curve(images, qualities, a, g, lo, co)
        out.append(
            {
                "stage": stage,
                "luma_order": lo,
                "chroma_order": co,
                "luma_gain": a,
                "chroma_gain": g,
                "bd_psnr_db": bd(anchor, curve)["bd_psnr_db"],
            }
        )
        if progress is not None:
            progress()

    for lo, co in orders:
        run(lo, co, 0.85, 0.75, "orders")
    best = max((r for r in out if r["stage"] == "orders"), key=lambda r: r["bd_psnr_db"])
    for a, g in gains:
        run(best["luma_order"], best["chroma_order"], a, g, "gains")
    return out
