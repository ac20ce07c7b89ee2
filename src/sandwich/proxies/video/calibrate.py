"""Calibrate the video proxy once against x264 and x265 and store it in the package.

For each codec, rate control (CRF or QP) and subsampling, on training clips and a knob sweep:

1. the real codec codes every clip; per frame it gives the packet bits, the frame type and the
   squared error against its input;
2. the QP of the I frames: per clip and CRF, the QP at which the proxy's I frame reaches the
   real I frame's PSNR (interpolated on a QP grid); a plane QP = a + b * CRF + c * complexity
   (:func:`sandwich.proxies.video.proxy.frame_complexity`) is fitted through them (least
   squares, refitted once without outliers);
3. the same for each P frame, with the I frame at its fitted QP (the P frames predict from
   it), plus one term per number of frames left in the clip (0..4, 5 or more);
4. the rate model at the fitted QPs: per frame type, non-negative weights of the per-frame
   features (:data:`sandwich.proxies.video.proxy.FEATURES`) fitted jointly to the relative
   error of each clip's frame bits, I-frame bits and P-frame bits; the smooth stand-in's scale
   so that it matches the same total per frame type; the file's fixed overhead (container,
   parameter sets) as the mean over clips;
5. steps 2-4 are repeated for each adaptive-quantisation setting of :data:`AQ_CHOICES`; the
   one with the smallest clip bits error plus 0.3 x the clip PSNR difference (dB) is kept.

On 26 clips of 8 frames (192 x 320) a codec and mode take about a minute on one core.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sandwich.codecs.video import CLIP_CODECS
from sandwich.proxies.video.clips import to_gray
from sandwich.proxies.video.flow import clip_flow
from sandwich.proxies.video.proxy import (
    CALIBRATION_FILE,
    FEATURES,
    ProxyParts,
    aq_offsets,
    frame_complexity,
    frame_qps,
    frame_types,
    luma_planes,
    pad_to,
    video_proxy_parts,
)

DEFAULT_CRFS = (18, 22, 26, 30, 34, 38)
MODES = ("gray", "4:2:0", "4:4:4")
QP_GRID = tuple(range(0, 57, 3))
REMAINING = 6  # P-frame QP terms for 0..4 frames left in the clip, and 5 or more
BATCH = 8


def codec_input(clip: np.ndarray, subsampling: str) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> what the codec of ``subsampling`` is fed (luma for gray)."""
    return to_gray(clip) if subsampling == "gray" else clip


def clip_tensor(arr: np.ndarray) -> torch.Tensor:
    """(T, H, W) or (T, H, W, 3) uint8 -> (1, T, C, H, W) float tensor."""
    x = torch.from_numpy(np.array(arr, copy=True)).float()
    return x[None, :, None] if arr.ndim == 3 else x.permute(0, 3, 1, 2)[None]


def frame_sse(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
    """(T,) mean squared error per frame between two clips (any layout with T first)."""
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    b = torch.as_tensor(np.asarray(b, dtype=np.float64))
    return ((a - b) ** 2).flatten(1).mean(1).numpy()


def psnr_of(mse: float) -> float:
    return 100.0 if mse <= 1e-10 else 10.0 * math.log10(255.0**2 / mse)


def real_stats(codec, clips: Sequence[np.ndarray], crfs: Sequence[int], progress=None) -> dict:
    """Real codec per clip and CRF: ``bits`` (clips, crfs, T), ``mse`` (clips, crfs, T),
    ``file_bits`` (clips, crfs), ``types`` (T,) of the first clip (all share the structure)."""
    bits, mse, files, types = [], [], [], None
    for clip in clips:
        arr = codec_input(clip, codec.subsampling)
        rb, rm, rf = [], [], []
        for crf in crfs:
            data = codec.encode(arr, crf)
            dec, info = codec.decode(data)
            rb.append(info.frame_bits)
            rm.append(frame_sse(arr, dec))
            rf.append(8 * len(data))
            types = list(info.frame_types)
            if progress is not None:
                progress()
        bits.append(rb)
        mse.append(rm)
        files.append(rf)
    return {
        "bits": np.asarray(bits, np.float64),
        "mse": np.asarray(mse, np.float64),
        "file_bits": np.asarray(files, np.float64),
        "types": types,
    }


def run_proxy(
    xs: torch.Tensor,
    flows: torch.Tensor,
    qps: torch.Tensor,
    subsampling: str,
    aq: torch.Tensor | None = None,
) -> tuple[ProxyParts, np.ndarray]:
    """The uncalibrated proxy (hard rounding) on a stack of clips in batches at per-frame QPs
    ``qps`` (N, T') (T' <= T: the first T' frames), and its per-frame MSE (N, T')."""
    t = qps.shape[1]
    parts, mses = [], []
    with torch.inference_mode():
        for i in range(0, xs.shape[0], BATCH):
            x, f = xs[i : i + BATCH, :t], flows[i : i + BATCH, : t - 1]
            a = None if aq is None else aq[i : i + BATCH, :t]
            p = video_proxy_parts(x, qps[i : i + BATCH], subsampling, f, rounding="hard", aq=a)
            parts.append(p)
            mses.append(((p.x_hat - x) ** 2).flatten(2).mean(2).numpy())
    merged = ProxyParts(
        torch.cat([p.x_hat for p in parts]),
        torch.cat([p.features for p in parts]),
        torch.cat([p.smooth for p in parts]),
        [ft for p in parts for ft in p.frame_types],
        torch.cat([p.intra_share for p in parts]),
    )
    return merged, np.concatenate(mses)


def qp_for_psnr(grid: np.ndarray, psnrs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row, the QP at which PSNR(QP) meets ``target``: ``grid`` (G,) rising QPs, ``psnrs``
    (..., G), ``target`` (...); linear interpolation, extrapolated from the end segments,
    limited to 12 QP beyond the grid."""
    p = np.minimum.accumulate(psnrs, axis=-1) - 1e-6 * np.arange(len(grid))  # falling
    out = np.empty(target.shape)
    for idx in np.ndindex(target.shape):
        row = p[idx]
        i = int(np.clip(np.searchsorted(-row, -target[idx]), 1, len(grid) - 1))
        slope = (grid[i] - grid[i - 1]) / min(row[i] - row[i - 1], -1e-6)
        out[idx] = grid[i - 1] + (target[idx] - row[i - 1]) * slope
    return np.clip(out, grid[0] - 12, grid[-1] + 12)


def robust_lstsq(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares, refitted once without the points whose residual exceeds 3 robust
    standard deviations."""
    w = np.linalg.lstsq(a, y, rcond=None)[0]
    r = y - a @ w
    keep = np.abs(r - np.median(r)) <= 3 * 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-9
    return np.linalg.lstsq(a[keep], y[keep], rcond=None)[0]


def _psnr(mse: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def fit_qps(xs, flows, cplx, real, crfs, subsampling, aq=None, progress=None) -> dict:
    """Steps 2 and 3 of the module docstring: the ``qp`` part of a mode's calibration."""
    n, t = cplx.shape
    types = frame_types(t)
    crf = np.asarray(crfs, np.float64)
    c = cplx.numpy().astype(np.float64)
    grid = np.asarray(QP_GRID, np.float64)
    ps = []
    for qp in grid:  # I frames: only the first frame matters
        ps.append(_psnr(run_proxy(xs, flows, torch.full((n, 1), qp), subsampling, aq)[1][:, 0]))
        if progress is not None:
            progress()
    qi = qp_for_psnr(
        grid, np.stack(ps, -1)[:, None].repeat(len(crfs), 1), _psnr(real["mse"][..., 0])
    )
    a = np.stack(
        [
            np.ones(qi.size),
            np.repeat(crf[None], n, 0).ravel(),
            c[:, :1].repeat(len(crfs), 1).ravel(),
        ],
        1,
    )
    wi = robust_lstsq(a, qi.ravel())
    cal_i = {"offset": float(wi[0]), "slope": float(wi[1]), "complexity": float(wi[2])}
    offsets = np.arange(-3.0, 10.0, 3.0)
    qp_star = np.empty((n, len(crfs), t))
    for j, cr in enumerate(crfs):
        qps = frame_qps(cr, cplx, types, {"qp": {"I": cal_i, "P": cal_i}})
        center = float(qps[:, 0].mean())
        mses = []
        for d in offsets:
            qps[:, 1:] = center + d
            mses.append(run_proxy(xs, flows, qps, subsampling, aq)[1])
            if progress is not None:
                progress()
        qs = center + offsets
        qp_star[:, j] = qp_for_psnr(qs, _psnr(np.stack(mses, -1)), _psnr(real["mse"][:, j]))
    sel = [k for k, ft in enumerate(types) if ft == "P"]
    y = qp_star[:, :, sel].ravel()
    cols = [np.ones(y.size), np.broadcast_to(crf[None, :, None], qp_star.shape)[:, :, sel].ravel()]
    cols.append(np.broadcast_to(c[:, None, :], qp_star.shape)[:, :, sel].ravel())
    left = np.broadcast_to(t - 1 - np.arange(t), qp_star.shape)[:, :, sel].ravel()
    cols += [(np.minimum(left, REMAINING - 1) == r).astype(float) for r in range(REMAINING - 1)]
    wp = robust_lstsq(np.stack(cols, 1), y)
    cal_p = {"offset": float(wp[0]), "slope": float(wp[1]), "complexity": float(wp[2]),
             "remaining": [float(v) for v in wp[3:]] + [0.0]}  # fmt: skip
    return {"I": cal_i, "P": cal_p}


def fit_rate(feats: np.ndarray, bits: np.ndarray, types: list[str]) -> tuple[dict, np.ndarray]:
    """Non-negative rate weights per frame type, fitted jointly to the relative error of each
    clip's frame bits, of its I-frame bits and of its P-frame bits.

    Args:
        feats: (clips, crfs, T, F) proxy features; bits: (clips, crfs, T) real packet bits.

    Returns:
        {"I": weights, "P": weights} and the predicted bits (clips, crfs, T).
    """
    from scipy.optimize import nnls

    is_i = np.array([ft == "I" for ft in types])
    fi, fp = feats[:, :, is_i].sum(2), feats[:, :, ~is_i].sum(2)  # (clips, crfs, F)
    bi, bp = bits[:, :, is_i].sum(2), bits[:, :, ~is_i].sum(2)
    zero = np.zeros_like(fi)
    rows = [
        np.concatenate([fi, fp], -1) / (bi + bp)[..., None] * 2.0,
        np.concatenate([fi, zero], -1) / np.maximum(bi, 1.0)[..., None],
    ]
    targets = [np.full(bi.shape, 2.0), np.ones(bi.shape)]
    if (~is_i).any():
        rows.append(np.concatenate([zero, fp], -1) / np.maximum(bp, 1.0)[..., None])
        targets.append(np.ones(bp.shape))
    a = np.concatenate([r.reshape(-1, r.shape[-1]) for r in rows])
    y = np.concatenate([t.ravel() for t in targets])
    norm = np.maximum(np.abs(a).max(0), 1e-12)
    w, _ = nnls(a / norm, y)
    w = w / norm
    nf = feats.shape[-1]
    weights = {"I": w[:nf], "P": w[nf:]}
    pred = np.where(is_i, feats @ weights["I"], feats @ weights["P"])
    return {k: [float(v) for v in ws] for k, ws in weights.items()}, pred


# adaptive quantisation tried per mode: off; half strength about each frame's mean (x265's
# auto-variance in spirit); full strength about a fixed energy (x264's aq-mode 1 in spirit)
AQ_CHOICES = (
    {"strength": 0.0},
    {"strength": 0.5, "center": None},
    {"strength": 1.0, "center": 14.4},
)


def calibrate_mode(
    codec_name: str,
    subsampling: str,
    clips,
    crfs,
    flows,
    progress=None,
    rate_control: str = "crf",
) -> dict:
    """Calibration of one (codec, subsampling, rate control) on ``clips`` (uint8 RGB): each
    adaptive-quantisation setting of :data:`AQ_CHOICES` is fitted and the one with the
    smallest clip bits error (plus PSNR difference over 0.5 dB times 15%) is kept."""
    codec = CLIP_CODECS[codec_name](subsampling, rate_control=rate_control)
    real = real_stats(codec, clips, crfs, progress)
    xs = torch.cat([clip_tensor(codec_input(c, subsampling)) for c in clips])
    luma = pad_to(luma_planes(xs, subsampling), 16)
    cplx = frame_complexity(luma, pad_to(flows, 16), frame_types(xs.shape[1]))
    best = None
    for aq_cfg in AQ_CHOICES:
        aq = (
            aq_offsets(luma, aq_cfg["strength"], aq_cfg.get("center"))
            if aq_cfg["strength"]
            else None
        )
        cal = _fit_mode(xs, flows, cplx, real, crfs, subsampling, aq, progress)
        cal["aq"] = dict(aq_cfg)
        score = (
            cal["fit"]["clip_bits_mean_abs_rel_error"] + 0.3 * cal["fit"]["clip_psnr_mean_abs_diff"]
        )
        cal["fit"]["aq_scores"] = (best or {}).get("fit", {}).get("aq_scores", []) + [score]
        if best is None or score < best["fit"]["aq_scores"][best["fit"]["aq_pick"]]:
            cal["fit"]["aq_pick"] = len(cal["fit"]["aq_scores"]) - 1
            best = cal
        else:
            best["fit"]["aq_scores"] = cal["fit"]["aq_scores"]
    return best


def _fit_mode(xs, flows, cplx, real, crfs, subsampling, aq, progress) -> dict:
    types = frame_types(xs.shape[1])
    qp = fit_qps(xs, flows, cplx, real, crfs, subsampling, aq, progress)
    feats, smooth, mses = [], [], []
    for crf in crfs:
        qps = frame_qps(crf, cplx, types, {"qp": qp})
        parts, mse = run_proxy(xs, flows, qps, subsampling, aq)
        feats.append(parts.features.numpy())
        smooth.append(parts.smooth.numpy())
        mses.append(mse)
    feats = np.stack(feats, 1)  # (clips, crfs, T, F)
    smooth = np.stack(smooth, 1)
    weights, pred = fit_rate(feats, real["bits"], types)
    rate, fits = {}, {}
    for kind in ("I", "P"):
        sel = np.array([ft == kind for ft in types])
        alpha = float(pred[:, :, sel].sum() / max(smooth[:, :, sel].sum(), 1e-9))
        rate[kind] = {"weights": weights[kind], "alpha": alpha}
        b = real["bits"][:, :, sel].sum(2)
        fits[kind] = float(np.mean(np.abs(pred[:, :, sel].sum(2) / np.maximum(b, 1.0) - 1.0)))
    overhead = float(np.mean(real["file_bits"] - real["bits"].sum(-1)))
    clip_err = np.abs((pred.sum(-1) + overhead) / real["file_bits"] - 1.0)
    mse = np.stack(mses, 1)
    psnr_err = np.abs(_psnr(mse.mean(-1)) - _psnr(real["mse"].mean(-1)))
    return {
        "qp": qp,
        "rate": rate,
        "overhead_bits": overhead,
        "fit": {
            "type_bits_mean_abs_rel_error": fits,
            "clip_bits_mean_abs_rel_error": float(clip_err.mean()),
            "clip_psnr_mean_abs_diff": float(psnr_err.mean()),
        },
    }


def calibrate_video_proxy(
    clips: Sequence[np.ndarray],
    crfs: Sequence[int] = DEFAULT_CRFS,
    codecs: Sequence[str] = ("x264", "x265"),
    modes: Sequence[str] = MODES,
    rate_controls: Sequence[str] = ("crf",),
    progress: Callable[[str], None] | None = None,
    out: Path | None = None,
    source: dict | None = None,
) -> dict:
    """Fit the video proxy's calibration on training ``clips`` ((T, H, W, 3) uint8 RGB, all
    the same size) at knob values ``crfs`` (CRF, or QP for ``rate_controls`` ``"qp"``), for
    each codec, rate control and subsampling, and write it to ``out``
    (default: the package's ``video_calibration.json``); ``source`` (what the clips are) is
    recorded in ``fitted_on``. Returns the calibration dict."""
    torch.set_num_threads(1)
    xs = torch.cat([clip_tensor(c) for c in clips])
    flows = clip_flow(xs)
    result: dict = {
        "version": 1,
        "rate_model_features": list(FEATURES),
        "fitted_on": {
            "clips": len(clips),
            "frames": int(xs.shape[1]),
            "size": list(xs.shape[-2:]),
            "crfs": list(crfs),
            **(source or {}),
        },
        "codecs": {},
    }
    for name in codecs:
        result["codecs"][name] = {}
        for rc in rate_controls:
            per_mode = {}
            for mode in modes:
                step = (lambda: progress(f"{name} {mode}")) if progress else None  # noqa: B023
                per_mode[mode] = calibrate_mode(name, mode, clips, crfs, flows, step, rc)
            result["codecs"][name][rc] = per_mode
    target = out or Path(__file__).resolve().parents[1] / CALIBRATION_FILE
    target.write_text(json.dumps(result, indent=1) + "\n")
    from sandwich.proxies.video.proxy import load_calibration

    load_calibration.cache_clear()
    return result


def calibrate_from_photos(
    folder: str | Path = "data/corpus/train",
    per_image: int = 1,
    frames: int = 8,
    size: tuple[int, int] = (192, 320),
    seed: int = 0,
    **kwargs,
) -> dict:
    """The packaged calibration's recipe: synthetic moving clips
    (:func:`sandwich.proxies.video.clips.synthetic_clips`) of the training photos in
    ``folder`` (sorted by name), then :func:`calibrate_video_proxy` (``kwargs`` go to it).
    The photos used are recorded in the result's ``fitted_on``."""
    from sandwich.media.files import list_images, load_rgb
    from sandwich.proxies.video.clips import synthetic_clips

    files = sorted(list_images(Path(folder)), key=lambda p: p.name)
    clips = synthetic_clips([load_rgb(f) for f in files], per_image, frames, size, seed)
    source = {"photos": [f.name for f in files], "folder": str(folder), "per_image": per_image,
              "seed": seed, "motion": "synthetic (sandwich.proxies.video.clips)"}  # fmt: skip
    return calibrate_video_proxy(clips, source=source, **kwargs)
