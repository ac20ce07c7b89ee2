"""Rate-distortion sweeps through real codecs and Bjontegaard deltas between them."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from sandwich.evaluation.metrics import psnr


def rd_sweep(
    pipeline,
    images: dict[str, np.ndarray],
    qualities: list[int],
    progress: Callable[[], None] | None = None,
) -> list[dict]:
    """One row per (image, quality): bits, bpp (whole file) and RGB PSNR (dB)."""
    rows = []
    for name, img in images.items():
        pixels = img.shape[0] * img.shape[1]
        for q in qualities:
            data, rec = pipeline.roundtrip(img, q)
            rows.append(
                {
                    "pipeline": pipeline.name,
                    "image": name,
                    "quality": q,
                    "bits": 8 * len(data),
                    "bpp": 8 * len(data) / pixels,
                    "psnr": psnr(img, rec),
                }
            )
            if progress is not None:
                progress()
    return rows


def mean_curve(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Average bpp and PSNR over images per quality (sorted by quality)."""
    qs = sorted({r["quality"] for r in rows})
    bpp = np.array([np.mean([r["bpp"] for r in rows if r["quality"] == q]) for q in qs])
    ps = np.array([np.mean([r["psnr"] for r in rows if r["quality"] == q]) for q in qs])
    return bpp, ps, qs


def bd(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> dict:
    """BD-PSNR (dB, positive = test better) and BD-rate (%, negative = test saves bits).

    Uses the ``bjontegaard`` package (Akima interpolation); NaN where the curves do not overlap.
    """
    import bjontegaard as bdm

    out = {}
    for key, fn in (("bd_psnr_db", bdm.bd_psnr), ("bd_rate_pct", bdm.bd_rate)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                value = fn(
                    *anchor, *test, method="akima", require_matching_points=False, min_overlap=0
                )
            except (ValueError, ArithmeticError, IndexError):
                value = float("nan")
        out[key] = float(value)
    return out


def markdown_report(
    images: list[str], qualities: list[int], curves: dict, deltas: list[dict]
) -> str:
    """The mean RD curves and BD deltas of ``sandwich eval`` as Markdown tables."""
    names = list(curves)
    lines = [
        f"Images ({len(images)}): {', '.join(images)}",
        "",
        "| quality | " + " | ".join(f"{n} PSNR dB / bpp" for n in names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for i, q in enumerate(qualities):
        cells = [f"{curves[n]['psnr'][i]:.2f} / {curves[n]['bpp'][i]:.3f}" for n in names]
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    lines += ["", "| model | vs | BD-PSNR (dB) | BD-rate (%) |", "|---|---|---:|---:|"]
    for d in deltas:
        lines.append(
            f"| {d['test']} | {d['anchor']} | {d['bd_psnr_db']:+.2f} | {d['bd_rate_pct']:+.1f} |"
        )
    return "\n".join(lines) + "\n"
