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


def monotone(bpp, values) -> tuple[np.ndarray, np.ndarray]:
    """The points of an RD curve sorted by bpp that keep both axes strictly increasing.

    Points that cost more bits for no gain (or duplicate rates) are dropped, so the curve can be
    interpolated both as metric(rate) and as rate(metric); NaN points are dropped too.
    """
    b, v = np.asarray(bpp, np.float64), np.asarray(values, np.float64)
    keep_b, keep_v = [], []
    for i in np.argsort(b, kind="stable"):
        if not (np.isfinite(b[i]) and np.isfinite(v[i])) or b[i] <= 0:
            continue
        if keep_b and (b[i] <= keep_b[-1] or v[i] <= keep_v[-1]):
            continue
        keep_b.append(float(b[i]))
        keep_v.append(float(v[i]))
    return np.array(keep_b), np.array(keep_v)


def bd_delta(
    anchor: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    clean: bool = True,
) -> dict:
    """Bjontegaard deltas of two (bpp, metric) curves, the metric increasing with quality.

    Returns ``bd_metric`` (mean metric gain of the test at equal rate, in the metric's units;
    positive = test better) and ``bd_rate_pct`` (mean rate change at equal metric, %; negative =
    test saves bits). Uses the ``bjontegaard`` package (Akima interpolation). The curves may have
    different numbers of points; with ``clean`` they are first reduced to :func:`monotone`
    points. NaN where a delta cannot be computed (fewer than 2 points, no overlap).
    """
    import bjontegaard as bdm

    if clean:
        anchor, test = monotone(*anchor), monotone(*test)
    out = {}
    for key, fn in (("bd_metric", bdm.bd_psnr), ("bd_rate_pct", bdm.bd_rate)):
        value = float("nan")
        if min(len(anchor[0]), len(test[0])) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    value = fn(
                        *anchor,
                        *test,
                        method="akima",
                        require_matching_points=False,
                        min_overlap=0,
                    )
                except (ValueError, ArithmeticError, IndexError, AssertionError):
                    value = float("nan")
        out[key] = float(value)
    return out


def bd(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> dict:
    """BD-PSNR (dB, positive = test better) and BD-rate (%, negative = test saves bits).

    Uses the ``bjontegaard`` package (Akima interpolation); NaN where the curves do not overlap.
    The curves are used as given (see :func:`bd_delta` for the general form).
    """
    d = bd_delta(anchor, test, clean=False)
    return {"bd_psnr_db": d["bd_metric"], "bd_rate_pct": d["bd_rate_pct"]}


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
