"""The metric registry of ``sandwich eval``: every row gets every available metric.

Each :class:`Metric` maps a reference (H, W, 3) uint8 RGB image and its reconstruction to a float.
``scale`` is the axis the metric is plotted and Bjontegaard-fitted on (a dB scale for the SSIM
family, which spreads values near 1), and ``higher_is_better`` says which way is better; BD
deltas are fitted on ``fit(v)``, which flips lower-is-better metrics so that, for every metric, a
positive BD-metric means the test is better.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sandwich.errors import SandwichError
from sandwich.evaluation.metrics import ms_ssim, psnr
from sandwich.media.color import luma


@dataclass(frozen=True)
class Metric:
    """One image quality metric.

    Attributes:
        name: key of the metric in result rows (``psnr``, ``ms_ssim``, ...).
        label: human name for tables and plots.
        fn: (reference uint8 RGB, reconstruction uint8 RGB) -> value.
        higher_is_better: direction of the metric.
        unit: unit of ``scale(value)`` (the plotted and BD-fitted axis), "" if none.
        scale: transform of the value for plotting and BD fitting (identity or dB).
        note: what exactly is measured, when it needs saying (e.g. which LPIPS weights).
    """

    name: str
    label: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool = True
    unit: str = "dB"
    scale: Callable[[float], float] = float
    note: str = ""

    def fit(self, value: float) -> float:
        """The value on the BD-fitting axis, increasing with quality."""
        v = self.scale(value)
        return v if self.higher_is_better else -v

    @property
    def bd_axis(self) -> str:
        """What a BD-metric of this metric measures (positive = test better)."""
        axis = "-10 log10(1 - v) dB" if self.scale is to_db else "value"
        return axis if self.higher_is_better else f"reduction of the {axis}"

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def to_db(value: float) -> float:
    """A similarity in 0..1 on a dB scale, -10 log10(1 - v) (capped at 100 dB)."""
    return -10.0 * math.log10(max(1e-10, 1.0 - float(value)))


def psnr_y(ref: np.ndarray, rec: np.ndarray) -> float:
    """PSNR (dB) of the BT.601 luma channels, peak 255."""
    return psnr(luma(ref), luma(rec))


def ssim(ref: np.ndarray, rec: np.ndarray) -> float:
    """Single-scale SSIM (Gaussian 11x11 window, sigma 1.5) of two RGB images, mean over
    channels; the window shrinks to fit images smaller than 11 pixels."""
    import torch
    from pytorch_msssim import ssim as _ssim

    x = torch.from_numpy(np.asarray(ref, np.float32)).permute(2, 0, 1)[None]
    y = torch.from_numpy(np.asarray(rec, np.float32)).permute(2, 0, 1)[None]
    side = min(x.shape[-2:])
    win = min(11, side if side % 2 else side - 1)
    with torch.no_grad():
        return float(_ssim(x, y, data_range=255.0, win_size=win))


BASE_METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("psnr", "PSNR", psnr, note="over all RGB samples, peak 255"),
        Metric("psnr_y", "PSNR-Y", psnr_y, note="BT.601 full-range luma (unrounded), peak 255"),
        Metric(
            "ssim",
            "SSIM",
            ssim,
            unit="dB",
            scale=to_db,
            note="11x11 Gaussian window (sigma 1.5), mean over R, G, B",
        ),
        Metric(
            "ms_ssim",
            "MS-SSIM",
            ms_ssim,
            unit="dB",
            scale=to_db,
            note="5 scales (fewer on small images), mean over R, G, B",
        ),
    ]
}

# errors that mean "LPIPS is not usable in this install" (module missing, weights absent)
_LPIPS_UNAVAILABLE = (ImportError, SandwichError, OSError)


def lpips_metric() -> Metric | None:
    """The LPIPS metric if :mod:`sandwich.evaluation.perceptual` provides it and its weights
    load here, else None (the column is then left out)."""
    try:
        from sandwich.evaluation.perceptual import lpips
    except _LPIPS_UNAVAILABLE:
        return None
    probe = np.full((64, 64, 3), 128, np.uint8)
    try:
        float(lpips(probe, probe))
    except _LPIPS_UNAVAILABLE:
        return None

    try:
        from sandwich.evaluation.perceptual import LPIPS_MIN_SIDE, lpips_info

        info = lpips_info()
        note = f"{info['variant'].replace('_', '-')} LPIPS-{info['net']}"
        min_side = LPIPS_MIN_SIDE[info["net"]]
    except (*_LPIPS_UNAVAILABLE, KeyError, AttributeError):
        note, min_side = "LPIPS", 32

    def fn(ref: np.ndarray, rec: np.ndarray) -> float:
        if min(ref.shape[:2]) < min_side:
            return float("nan")  # too small for the network: n/a
        return float(lpips(ref, rec))

    return Metric("lpips", "LPIPS", fn, higher_is_better=False, unit="", note=note)


def available_metrics(names: list[str] | None = None) -> dict[str, Metric]:
    """The metrics to compute, in registry order: ``names`` (all available when None).

    Raises :class:`SandwichError` for an unknown name, or for ``lpips`` when it is unavailable.
    """
    known = [*BASE_METRICS, "lpips"]
    if names is not None:
        for n in names:
            if n not in known:
                raise SandwichError(f"unknown metric {n!r}; use {', '.join(known)}")
    out = {k: m for k, m in BASE_METRICS.items() if names is None or k in names}
    if names is None or "lpips" in names:
        lp = lpips_metric()
        if lp is not None:
            out["lpips"] = lp
        elif names is not None:
            raise SandwichError(
                "LPIPS is not available in this install (sandwich.evaluation.perceptual or its "
                "weights are missing); leave it out of --metrics"
            )
    return out


def for_bit_depth(metrics: dict[str, Metric], bit_depth: int) -> dict[str, Metric]:
    """The metrics for uint16 images of ``bit_depth`` > 8 bits (``metrics`` as they are for 8).

    PSNR and PSNR-Y are computed on the images' own scale (peak 2**b - 1, 65535 for 16 bits; in
    dB as always: the same number as on the 0..255 float scale x / 257). Every other metric sees
    both images rounded to 8 bits (round(x / 257)).
    """
    if bit_depth <= 8:
        return metrics
    peak = float((1 << bit_depth) - 1)
    to8 = 255.0 / peak

    def eight(image: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.asarray(image, np.float64) * to8), 0, 255).astype(np.uint8)

    def on_8bit(fn):
        return lambda ref, rec: fn(eight(ref), eight(rec))

    out = {}
    for k, m in metrics.items():
        if k == "psnr":
            fn = lambda ref, rec: psnr(ref, rec, peak)  # noqa: E731
            note = f"over all RGB samples, {bit_depth}-bit scale (peak {peak:.0f})"
        elif k == "psnr_y":
            fn = lambda ref, rec: psnr(luma(ref), luma(rec), peak)  # noqa: E731
            note = f"BT.601 full-range luma (unrounded), {bit_depth}-bit scale (peak {peak:.0f})"
        else:
            fn = on_8bit(m.fn)
            note = f"{m.note}; on the images rounded to 8 bits" if m.note else "rounded to 8 bits"
        out[k] = replace(m, fn=fn, note=note)
    return out


def for_channels(metrics: dict[str, Metric], channels: int) -> dict[str, Metric]:
    """The metrics for (H, W, N) uint8 images of ``channels`` = N != 3 (``metrics`` as they are
    for 3).

    PSNR is over all N channels (peak 255): the headline number of an N-channel pipeline, e.g.
    albedo + normal map together. The metrics that need an RGB picture (PSNR-Y, SSIM, MS-SSIM,
    LPIPS) are computed on channels 0..2 (a material's albedo) and say so in their note; the
    other channels (the normal map) are only in PSNR.
    """
    if channels == 3:
        return metrics

    def first3(fn):
        return lambda ref, rec: fn(ref[:, :, :3], rec[:, :, :3])

    out = {}
    for k, m in metrics.items():
        if k != "psnr" and channels < 3:
            continue  # no RGB picture to measure
        if k == "psnr":
            fn = lambda ref, rec: psnr(ref, rec)  # noqa: E731
            note = f"over all {channels} channels, peak 255"
        else:
            fn = first3(m.fn)
            where = "on channels 0-2 only (the albedo of a material)"
            note = f"{m.note}; {where}" if m.note else where
        out[k] = replace(m, fn=fn, note=note)
    return out


def measure(metrics: dict[str, Metric], ref: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """Every metric of ``rec`` against ``ref``: name -> value."""
    return {k: float(m.fn(ref, rec)) for k, m in metrics.items()}
