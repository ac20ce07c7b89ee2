"""Measuring the progressive video codec: what ``sandwich bench rnn-video`` prints.

For every clip and prediction mode (:data:`~sandwich.models.progressive_clip.PREDICTIONS`):

- an RD curve over fixed iteration counts: bits per pixel of the whole ``.sndv`` file (motion
  side information included, and reported on its own), of the intra and the predicted frames,
  PSNR (dB) and MS-SSIM of the decoded clip;
- per-frame rate control to a target (MS-SSIM 0.95, and a PSNR in dB): the iterations each
  predicted frame needed on average, and the bits;
- x264 and x265 (4:2:0, the I P P ... GOP of :mod:`sandwich.codecs.video`) over a CRF sweep, so
  that the codec is compared with them at matched bits per pixel (their PSNR and MS-SSIM
  interpolated at the codec's rate, in log-rate) and by BD-rate in MS-SSIM.

Clips are (T, H, W, 3) uint8 arrays; rates are bits per pixel of the clip (bits / (T * H * W)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sandwich.evaluation.clip_eval import clip_ms_ssim, clip_psnr
from sandwich.evaluation.rd import bd_delta

DEFAULT_ITERATIONS = (1, 2, 3, 4, 6)
DEFAULT_CRFS = (22, 27, 32, 37, 42, 47)
MSSSIM_TARGET = 0.95
PSNR_TARGET = 30.0


@dataclass(frozen=True)
class BenchClip:
    """A clip to measure: its name, (T, H, W, 3) uint8 frames and frame rate."""

    name: str
    frames: np.ndarray
    fps: float = 25.0


def file_bits(data: bytes) -> dict[str, float]:
    """Bits of a ``.sndv`` file by part: ``intra`` and ``predicted`` (iteration payloads),
    ``motion`` (side information), ``total`` (the whole file, headers included), and the mean
    iterations of the ``iterations_i`` and ``iterations_p`` frames."""
    from sandwich.formats.sndv import parse

    f = parse(data)
    intra = [fr for fr in f.frames if fr.intra]
    pred = [fr for fr in f.frames if not fr.intra]

    def payload(frames) -> int:
        return 8 * sum(len(c) for fr in frames for c in fr.chunks)

    return {
        "total": 8 * len(data),
        "intra": payload(intra),
        "predicted": payload(pred),
        "motion": 8 * sum(len(fr.motion) for fr in f.frames),
        "iterations_i": float(np.mean([len(fr.chunks) for fr in intra])),
        "iterations_p": float(np.mean([len(fr.chunks) for fr in pred])) if pred else math.nan,
        "frames_i": len(intra),
        "frames_p": len(pred),
    }


def code_row(net, clip: BenchClip, iterations: int) -> dict:
    """One point: ``clip`` coded by ``net`` (configured beforehand) at ``iterations``."""
    data, decoded, _ = net.encode_clip(clip.frames, iterations, clip.fps)
    t, h, w = clip.frames.shape[:3]
    parts = file_bits(data)
    frame_px = h * w
    return {
        "clip": clip.name,
        "prediction": net.prediction,
        "iterations": iterations,
        "target": net.target.metric if net.target is not None else None,
        "bpp": parts["total"] / (t * frame_px),
        "motion_bpp": parts["motion"] / (t * frame_px),
        "i_bpp": parts["intra"] / (max(parts["frames_i"], 1) * frame_px),
        "p_bpp": (parts["predicted"] + parts["motion"]) / (parts["frames_p"] * frame_px)
        if parts["frames_p"]
        else math.nan,
        "iterations_i": parts["iterations_i"],
        "iterations_p": parts["iterations_p"],
        "psnr": clip_psnr(clip.frames, decoded),
        "msssim": clip_ms_ssim(clip.frames, decoded),
        **temporal(clip.frames, decoded),
    }


def temporal(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """Temporal consistency of a decode (:mod:`sandwich.evaluation.temporal`): flow end-point
    error in pixels and flicker in 8-bit code values; NaN for frames under 16 pixels a side."""
    from sandwich.evaluation.temporal import temporal_report

    if min(original.shape[1:3]) < 16:
        return {"flow_epe_px": math.nan, "flicker": math.nan}
    return temporal_report(original, decoded)


def codec_rows(codec: str, clip: BenchClip, crfs=DEFAULT_CRFS) -> list[dict]:
    """``clip`` through plain x264 / x265 4:2:0 at each CRF: bpp of the whole MP4, PSNR,
    MS-SSIM."""
    from sandwich.evaluation.clip_baselines import PlainClipBaseline
    from sandwich.media.clips import Clip

    pipe = PlainClipBaseline(codec, "4:2:0")
    rows = []
    for crf in crfs:
        rt = pipe.roundtrip(Clip(clip.frames, clip.fps), crf)
        rows.append(
            {
                "clip": clip.name,
                "codec": codec,
                "crf": crf,
                "bpp": rt.bits / clip.frames[..., 0].size,
                "psnr": clip_psnr(clip.frames, rt.frames),
                "msssim": clip_ms_ssim(clip.frames, rt.frames),
            }
        )
    return rows


def at_bpp(rows: list[dict], bpp: float, key: str) -> float:
    """``key`` of a codec's RD ``rows`` interpolated at ``bpp`` (linear in log-rate); NaN
    outside the rows' range."""
    pts = sorted((r["bpp"], r[key]) for r in rows)
    xs = np.log([p[0] for p in pts])
    if not xs[0] <= math.log(bpp) <= xs[-1]:
        return math.nan
    return float(np.interp(math.log(bpp), xs, [p[1] for p in pts]))


def _curve(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r["bpp"] for r in rows]), np.array([r[key] for r in rows])


def run(
    net,
    clips: list[BenchClip],
    predictions: list[str],
    iterations: list[int],
    codecs: list[str],
    crfs=DEFAULT_CRFS,
    msssim_target: float = MSSSIM_TARGET,
    psnr_target: float = PSNR_TARGET,
    progress: Callable[[], None] | None = None,
) -> dict:
    """Everything the bench reports, as a JSON-ready dict: ``rows`` (fixed iterations),
    ``targets`` (rate control to MS-SSIM / PSNR), ``codec_rows``, per-prediction ``summary``
    (means over clips) and ``versus`` (the codec against x264 / x265)."""
    rows, targets, crows = [], [], []
    top = net.cfg.max_iterations
    for clip in clips:
        for pred in predictions:
            net.configure(prediction=pred)
            net.target = None
            for k in iterations:
                rows.append(code_row(net, clip, k))
                if progress:
                    progress()
            for metric, value in (("msssim", msssim_target), ("psnr", psnr_target)):
                net.target = None
                net.configure(**{f"target_{metric}": value})
                row = code_row(net, clip, top)
                row["target_value"] = value
                targets.append(row)
                if progress:
                    progress()
            net.target = None
        for codec in codecs:
            crows.extend(codec_rows(codec, clip, crfs))
            if progress:
                progress()
    return {
        "model": net.name,
        "clips": [c.name for c in clips],
        "frames": [int(c.frames.shape[0]) for c in clips],
        "predictions": predictions,
        "iterations": iterations,
        "crfs": list(crfs),
        "targets_used": {"msssim": msssim_target, "psnr": psnr_target},
        "rows": rows,
        "targets": targets,
        "codec_rows": crows,
        "summary": summary(rows, targets, predictions, iterations, [c.name for c in clips]),
        "versus": versus(rows, crows, predictions, codecs, [c.name for c in clips]),
    }


def _mean(values) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def summary(rows, targets, predictions, iterations, clips) -> list[dict]:
    """Per prediction: the mean over clips of each fixed-iteration point, the BD-rate in
    MS-SSIM and in PSNR against intra-only coding (``none``; per clip, then the mean), and the
    mean iterations per predicted frame and bpp at the targets."""
    out = []
    for pred in predictions:
        mine = [r for r in rows if r["prediction"] == pred]
        points = []
        for k in iterations:
            at = [r for r in mine if r["iterations"] == k]
            points.append(
                {key: _mean(r[key] for r in at) for key in
                 ("bpp", "motion_bpp", "i_bpp", "p_bpp", "psnr", "msssim", "flow_epe_px",
                  "flicker")}
                | {"iterations": k}
            )  # fmt: skip
        entry: dict = {"prediction": pred, "points": points}
        if "none" in predictions and pred != "none":
            for key in ("msssim", "psnr"):
                per = []
                for c in clips:
                    a = [r for r in rows if r["clip"] == c and r["prediction"] == "none"]
                    b = [r for r in mine if r["clip"] == c]
                    per.append(bd_delta(_curve(a, key), _curve(b, key))["bd_rate_pct"])
                entry[f"bd_rate_{key}_vs_none_pct"] = _mean(per)
        for metric in ("msssim", "psnr"):
            t = [r for r in targets if r["prediction"] == pred and r["target"] == metric]
            entry[f"at_{metric}"] = {
                "iterations_p": _mean(r["iterations_p"] for r in t),
                "iterations_i": _mean(r["iterations_i"] for r in t),
                "bpp": _mean(r["bpp"] for r in t),
                "p_bpp": _mean(r["p_bpp"] for r in t),
                "motion_bpp": _mean(r["motion_bpp"] for r in t),
                "msssim": _mean(r["msssim"] for r in t),
                "psnr": _mean(r["psnr"] for r in t),
            }
        out.append(entry)
    return out


def versus(rows, crows, predictions, codecs, clips) -> list[dict]:
    """Per prediction and codec: the codec's PSNR and MS-SSIM at each of our points' bpp
    (interpolated per clip, then averaged over the clips where it is in range), and the BD-rate
    in MS-SSIM and PSNR of ours against the codec (negative: ours needs fewer bits)."""
    out = []
    for pred in predictions:
        for codec in codecs:
            entry: dict = {"prediction": pred, "codec": codec, "points": []}
            ks = sorted({r["iterations"] for r in rows})
            for k in ks:
                ours = [r for r in rows if r["prediction"] == pred and r["iterations"] == k]
                theirs = {
                    key: _mean(
                        at_bpp([c for c in crows if c["clip"] == r["clip"] and c["codec"] == codec],
                               r["bpp"], key)
                        for r in ours
                    )
                    for key in ("psnr", "msssim")
                }  # fmt: skip
                entry["points"].append(
                    {
                        "iterations": k,
                        "bpp": _mean(r["bpp"] for r in ours),
                        "psnr": _mean(r["psnr"] for r in ours),
                        "msssim": _mean(r["msssim"] for r in ours),
                        f"{codec}_psnr": theirs["psnr"],
                        f"{codec}_msssim": theirs["msssim"],
                    }
                )
            for key in ("msssim", "psnr"):
                per = []
                for c in clips:
                    a = [r for r in crows if r["clip"] == c and r["codec"] == codec]
                    b = [r for r in rows if r["clip"] == c and r["prediction"] == pred]
                    per.append(bd_delta(_curve(a, key), _curve(b, key))["bd_rate_pct"])
                entry[f"bd_rate_{key}_pct"] = _mean(per)
            out.append(entry)
    return out


def against(rows: list[dict], other: list[dict]) -> list[dict]:
    """BD-rate (MS-SSIM and PSNR; per clip, then the mean) of these fixed-iteration ``rows``
    against another run's (``other``, e.g. another model on the same clips), per prediction
    mode that both have."""
    out = []
    for pred in dict.fromkeys(r["prediction"] for r in rows):
        theirs = [r for r in other if r["prediction"] == pred]
        clips = [c for c in dict.fromkeys(r["clip"] for r in rows) if
                 any(r["clip"] == c for r in theirs)]  # fmt: skip
        if not clips:
            continue
        entry: dict = {"prediction": pred, "clips": clips}
        for key in ("msssim", "psnr"):
            per = []
            for c in clips:
                a = [r for r in theirs if r["clip"] == c]
                b = [r for r in rows if r["clip"] == c and r["prediction"] == pred]
                per.append(bd_delta(_curve(a, key), _curve(b, key))["bd_rate_pct"])
            entry[f"bd_rate_{key}_pct"] = _mean(per)
        out.append(entry)
    return out


def rich_tables(res: dict, frames: int) -> list:
    """The bench's three tables (rich) from :func:`run`'s result: RD per prediction, rate
    control and BD-rate against intra-only, and the standard codecs at matched bpp."""
    from rich.table import Table

    tables: list = []
    msssim_target = res["targets_used"]["msssim"]
    psnr_target = res["targets_used"]["psnr"]
    n = len(res["clips"])
    model = res["model"]
    t = Table(title=f"{model}: mean over {n} clip(s) of {frames} frames (one GOP)")
    for c in ("prediction", "iter", "bpp", "motion bpp", "I bpp", "P bpp", "PSNR dB",
              "MS-SSIM", "flow EPE px", "flicker"):  # fmt: skip
        t.add_column(c, justify="right")
    for s in res["summary"]:
        for p in s["points"]:
            t.add_row(
                s["prediction"], str(p["iterations"]), f"{p['bpp']:.3f}",
                f"{p['motion_bpp']:.4f}", f"{p['i_bpp']:.3f}", f"{p['p_bpp']:.3f}",
                f"{p['psnr']:.2f}", f"{p['msssim']:.4f}", f"{p['flow_epe_px']:.3f}",
                f"{p['flicker']:.3f}",
            )  # fmt: skip
    tables.append(t)
    t = Table(title="per-frame rate control and BD-rate against intra-only (none)")
    heads = [
        "prediction", f"iter/P @MS-SSIM {msssim_target}", "bpp", "P bpp",
        f"iter/P @{psnr_target} dB", "bpp ", "BD-rate MS-SSIM", "BD-rate PSNR",
    ]  # fmt: skip
    for c in heads:
        t.add_column(c, justify="right")
    for s in res["summary"]:
        a, b = s["at_msssim"], s["at_psnr"]
        t.add_row(
            s["prediction"], f"{a['iterations_p']:.2f}", f"{a['bpp']:.3f}",
            f"{a['p_bpp']:.3f}", f"{b['iterations_p']:.2f}", f"{b['bpp']:.3f}",
            f"{s.get('bd_rate_msssim_vs_none_pct', float('nan')):+.1f}%",
            f"{s.get('bd_rate_psnr_vs_none_pct', float('nan')):+.1f}%",
        )  # fmt: skip
    tables.append(t)
    t = Table(title="against the standard codecs at matched bpp (4:2:0, I P P ...)")
    for c in ("prediction", "codec", "iter", "bpp", "ours MS-SSIM", "theirs", "ours PSNR",
              "theirs ", "BD-rate MS-SSIM", "BD-rate PSNR"):  # fmt: skip
        t.add_column(c, justify="right")
    for v in res["versus"]:
        for i, p in enumerate(v["points"]):
            c = v["codec"]
            t.add_row(
                v["prediction"], c, str(p["iterations"]), f"{p['bpp']:.3f}",
                f"{p['msssim']:.4f}", f"{p[c + '_msssim']:.4f}", f"{p['psnr']:.2f}",
                f"{p[c + '_psnr']:.2f}",
                f"{v['bd_rate_msssim_pct']:+.1f}%" if i == 0 else "",
                f"{v['bd_rate_psnr_pct']:+.1f}%" if i == 0 else "",
            )  # fmt: skip
    tables.append(t)
    if res.get("against"):
        t = Table(title=f"against {res['against_file']} (same clips and prediction)")
        for c in ("prediction", "clips", "BD-rate MS-SSIM", "BD-rate PSNR"):
            t.add_column(c, justify="right")
        for a in res["against"]:
            t.add_row(
                a["prediction"], str(len(a["clips"])), f"{a['bd_rate_msssim_pct']:+.1f}%",
                f"{a['bd_rate_psnr_pct']:+.1f}%",
            )  # fmt: skip
        tables.append(t)
    return tables
