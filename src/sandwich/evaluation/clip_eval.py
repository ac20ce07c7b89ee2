"""``evaluate_clips``: the rate-distortion evaluation of video sandwiches against plain x264 /
x265 on clips, as a library call (``sandwich eval-video`` is a thin wrapper around it).

Clips are video files or folders of numbered PNG frames, or folders holding such clips
(:func:`sandwich.training.clip_dataset.list_clips`). Pipelines are the plain-codec baselines of
:data:`~sandwich.evaluation.clip_baselines.CLIP_BASELINES` and video sandwiches (zoo names or
local ``.safetensors`` whose model type's ``media`` is ``"clip"``), all swept over the same CRFs
(x264 / x265 constant rate factor, 0..51, lower is better).

Each row is one (clip, pipeline, CRF) point: the whole MP4's bits (frames, parameter sets,
container and the sandwich's tag), bpp = bits / (T * H * W) of the original clip, the bits of
each frame type (I, P) from the decoded stream's packet sizes, and the metrics
(:func:`clip_metrics`): PSNR over the whole clip, MS-SSIM, LPIPS and VMAF as means over frames.
Mean curves average the clips at each CRF; Bjontegaard deltas (BD-rate %, BD-metric) compare the
mean curves against each anchor (:func:`sandwich.evaluation.harness.bd_table`) and each clip's own
curves against the first anchor. Outputs (:mod:`sandwich.evaluation.clip_report`): JSON,
Markdown, and a folder with RD plots, the middle frame of each clip through every pipeline at
matched rates (with the sandwiches' bottlenecks), and an HTML report.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sandwich.errors import SandwichError
from sandwich.evaluation.specs import parse_ints, split_model_spec

if TYPE_CHECKING:  # the heavy modules (torch, codecs) load only when an evaluation runs
    from sandwich.evaluation.clip_baselines import ClipModelPipeline, ClipRoundtrip
    from sandwich.evaluation.quality import Metric

DEFAULT_CRFS = "22,27,32,37,42"
FRAME_TYPES = ("I", "P")  # the GOP structure of sandwich's clip codecs (no B-frames)
METRIC_NAMES = ("psnr", "ms_ssim", "lpips", "vmaf")
DEFAULT_METRICS = ("psnr", "ms_ssim", "vmaf")
METRIC_ALIASES = {"msssim": "ms_ssim", "ms-ssim": "ms_ssim"}
MIN_SIDE = 8  # smallest coded frame side x264 / x265 take
NET_MIN_SIDE = 32  # LPIPS and VMAF
MS_SSIM_FULL_SIDE = 161  # smallest side that gets the standard 5 scales with an 11x11 window
CHUNK = 8  # frames per MS-SSIM / LPIPS batch


# ------------------------------------------------------------------------------ request
@dataclass
class ClipEvalRequest:
    """What to evaluate, as ``sandwich eval-video`` takes it.

    Attributes:
        clips: video files, folders of numbered PNG frames, or folders holding clips.
        models: video sandwiches: zoo names or ``.safetensors``, ``NAME[@CODEC][+xN]``
            (``@x264`` runs the networks over the other codec; ``+xN`` an N-pass decoding
            self-ensemble).
        baselines: names in :data:`CLIP_BASELINES`.
        crfs: comma list of CRFs (None: :data:`DEFAULT_CRFS`), for every pipeline.
        anchors: pipelines the BD deltas are against (default: the first baseline).
        metrics: comma list of ``psnr``, ``ms_ssim`` (or ``msssim``), ``lpips``, ``vmaf``
            (None: :data:`DEFAULT_METRICS`, those available here); PSNR always.
        out: folder for results.json, plots, frames and report.html; json_out, markdown: files.
        fps: frame rate given to folders of PNG frames (frames per second; video files keep
            their own).
    """

    clips: list[Path]
    models: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    crfs: str | None = None
    anchors: list[str] = field(default_factory=list)
    metrics: str | None = None
    out: Path | None = None
    json_out: Path | None = None
    markdown: Path | None = None
    fps: float = 25.0

    def command(self) -> str:
        """The ``sandwich eval-video`` command line of this request (recorded in reports)."""
        argv = ["sandwich", "eval-video", *map(str, self.clips)]
        for opt, values in (
            ("-m", self.models),
            ("-b", self.baselines),
            ("--anchor", self.anchors),
        ):
            for v in values:
                argv += [opt, v]
        for opt, v in (
            ("--crfs", self.crfs),
            ("--metrics", self.metrics),
            ("--out", self.out),
            ("--json", self.json_out),
            ("--markdown", self.markdown),
        ):
            if v is not None:
                argv += [opt, str(v)]
        return shlex.join(argv)


@dataclass
class ClipEvaluation:
    """What :func:`evaluate_clips` returns: ``results`` (see :func:`evaluate_clips`), the
    metrics used, and the files written."""

    results: dict
    metrics: dict[str, Metric]
    written: list[Path]


# ------------------------------------------------------------------------------ metrics
def _float_batch(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.array(frames, np.float32)).permute(0, 3, 1, 2)


def clip_psnr(ref: np.ndarray, rec: np.ndarray) -> float:
    """PSNR (dB, peak 255, capped at 100) of two (T, H, W, 3) uint8 clips from the mean squared
    error over every sample of every frame (not the mean of per-frame PSNRs)."""
    sse = 0.0
    for i in range(0, len(ref), CHUNK):  # float copies of a few frames at a time
        d = ref[i : i + CHUNK].astype(np.float64) - rec[i : i + CHUNK]
        sse += float(np.square(d).sum())
    mse = sse / ref.size
    return 100.0 if mse <= 1e-10 else 10.0 * math.log10(255.0**2 / mse)


def ms_ssim_setting(side: int) -> tuple[int, int]:
    """(window, scales) of MS-SSIM on frames whose smaller side is ``side`` pixels: the rule
    of :func:`sandwich.evaluation.metrics.ms_ssim` (the standard 11x11 window and 5 scales when
    they fit, else as many scales as fit, then smaller windows)."""
    for win in (11, 7, 3):
        for scales in range(5, 0, -1):
            if side > (win - 1) * 2 ** (scales - 1):
                return win, scales
    raise SandwichError(f"frames of {side} pixels a side are too small for MS-SSIM")


def clip_ms_ssim(ref: np.ndarray, rec: np.ndarray) -> float:
    """Mean over frames of the per-frame RGB MS-SSIM (0..1, mean over R, G, B) of two
    (T, H, W, 3) uint8 clips; frames are batched, the values are
    :func:`sandwich.evaluation.metrics.ms_ssim`'s (fewer scales on small frames)."""
    import torch

    from sandwich.evaluation.metrics import ms_ssim_torch

    win, scales = ms_ssim_setting(min(ref.shape[1:3]))
    values = []
    with torch.no_grad():
        for i in range(0, len(ref), CHUNK):
            x, y = _float_batch(ref[i : i + CHUNK]), _float_batch(rec[i : i + CHUNK])
            values.append(ms_ssim_torch(x / 255, y / 255, 1.0, scales, win, per_image=True))
    return float(torch.cat(values).double().mean())


def clip_lpips(ref: np.ndarray, rec: np.ndarray) -> float:
    """Mean over frames of LPIPS (lower is better) of two (T, H, W, 3) uint8 clips."""
    import torch

    from sandwich.evaluation.perceptual import lpips_torch

    values = []
    with torch.no_grad():
        for i in range(0, len(ref), CHUNK):
            x, y = _float_batch(ref[i : i + CHUNK]), _float_batch(rec[i : i + CHUNK])
            values.append(lpips_torch(x, y, reduction="none").double())
    return float(torch.cat(values).mean())


def _vmaf_backend() -> tuple[Callable | None, str]:
    """(fn(ref, rec) -> mean VMAF, note) with FFmpeg's libvmaf when a binary has it (fast),
    else vmaf-torch; (None, reason) when neither is here."""
    from sandwich.evaluation.perceptual import ffmpeg_exe, frames_to_luma, vmaf, vmaf_ffmpeg

    def luma(frames: np.ndarray) -> np.ndarray:  # (T, H, W) Y, converted a few frames at a time
        return np.concatenate(
            [frames_to_luma(frames[i : i + CHUNK]) for i in range(0, len(frames), CHUNK)]
        )

    common = (
        "v0.6.1 model on BT.601 studio-range luma (blind to colour), mean over frames (motion "
        "feature on)"
    )
    exe = ffmpeg_exe()
    if exe is not None:
        return (
            lambda ref, rec: vmaf_ffmpeg(luma(ref), luma(rec), exe)
        ), f"FFmpeg libvmaf, {common}"
    import importlib.util

    if importlib.util.find_spec("vmaf_torch") is not None:
        return (lambda ref, rec: vmaf(luma(ref), luma(rec))), f"vmaf-torch, {common}"
    return None, "no FFmpeg with libvmaf and no vmaf-torch in this install"


def clip_metrics(names: list[str] | None = None) -> tuple[dict[str, Metric], list[str]]:
    """The clip metrics to compute, in :data:`METRIC_NAMES` order, and notes on the ones left
    out. Each :class:`~sandwich.evaluation.quality.Metric`'s ``fn`` maps (reference, recon-
    struction), both (T, H, W, 3) uint8 clips, to one float.

    ``names`` None: :data:`DEFAULT_METRICS` that are available (a missing one is a note).
    Given names must be known and available: a one-line :class:`SandwichError` otherwise.
    PSNR is always included."""
    from sandwich.evaluation.quality import Metric, lpips_metric, to_db

    explicit = names is not None
    wanted = ["psnr", *(names if explicit else DEFAULT_METRICS)]
    wanted = list(dict.fromkeys(METRIC_ALIASES.get(n, n) for n in wanted))
    for n in wanted:
        if n not in METRIC_NAMES:
            raise SandwichError(
                f"unknown metric {n!r}; use {', '.join(METRIC_NAMES)} (msssim for ms_ssim)"
            )
    notes: list[str] = []
    out: dict[str, Metric] = {}
    for n in (m for m in METRIC_NAMES if m in wanted):
        if n == "psnr":
            out[n] = Metric(
                "psnr", "PSNR", clip_psnr, note="RGB, from the mean squared error over all frames"
            )
        elif n == "ms_ssim":
            out[n] = Metric(
                "ms_ssim",
                "MS-SSIM",
                clip_ms_ssim,
                unit="dB",
                scale=to_db,
                note="mean over frames; per frame 5 scales, 11x11 window, mean over R, G, B "
                f"(fewer scales on frames under {MS_SSIM_FULL_SIDE} pixels a side)",
            )
        elif n == "lpips":
            lp = lpips_metric()
            if lp is None:
                if explicit:
                    raise SandwichError(
                        "LPIPS is not available in this install (its weights are missing); "
                        "leave it out of --metrics"
                    )
                continue
            out[n] = Metric(
                "lpips",
                "LPIPS",
                clip_lpips,
                higher_is_better=False,
                unit="",
                note=f"{lp.note}, mean over frames",
            )
        else:
            fn, note = _vmaf_backend()
            if fn is None:
                if explicit:
                    raise SandwichError(f"VMAF is not available: {note}; leave it out of --metrics")
                notes.append(f"VMAF left out: {note}")
                continue
            out[n] = Metric("vmaf", "VMAF", fn, unit="", note=note)
    return out, notes


# ------------------------------------------------------------------------------ pipelines
def _video_models() -> list[str]:
    from sandwich.models.registry import model_type
    from sandwich.zoo import ZOO

    return [n for n, e in ZOO.items() if model_type(e.kind).media == "clip"]


def _check_model_name(spec: str) -> None:
    """A one-line error for a name that is no video sandwich, before anything is loaded."""
    from sandwich.models.registry import model_type
    from sandwich.zoo import ZOO, get_entry, is_local

    name = split_model_spec(spec)[0]
    if not is_local(name) and name not in ZOO:
        known = _video_models()
        zoo = (
            f"the zoo's video models: {', '.join(known)}"
            if known
            else "no video models in the zoo yet"
        )
        raise SandwichError(f"unknown model {name!r}; {zoo} (or give a video model's .safetensors)")
    if model_type(get_entry(name).kind).media != "clip":
        raise SandwichError(
            f"{name!r} is an image model; evaluate it on images with `sandwich eval`"
        )


def model_pipeline(spec: str) -> ClipModelPipeline:
    """The pipeline of video sandwich ``NAME[@CODEC][+xN]`` (zoo name or ``.safetensors``)."""
    from sandwich.codecs import CLIP_CODECS
    from sandwich.evaluation.clip_baselines import ClipModelPipeline
    from sandwich.zoo import load_model

    name, other, members = split_model_spec(spec)
    net = load_model(name)
    if net.media != "clip":
        raise SandwichError(
            f"{name!r} is an image model; evaluate it on images with `sandwich eval`"
        )
    if getattr(net, "real", None) is None:  # no standard codec inside: no CRF to sweep
        raise SandwichError(
            f"{name!r} codes clips without x264/x265, so eval-video (a CRF sweep) cannot "
            "run it; measure it with `sandwich bench rnn-video`"
        )
    if other:
        config = net.config()
        if other not in CLIP_CODECS or "codec" not in config:
            raise SandwichError(
                f"{spec}: unknown video codec {other!r}; use {', '.join(CLIP_CODECS)}"
            )
        if other != config["codec"]:
            swapped = type(net).from_config({**config, "codec": other}, net.name, net.version)
            swapped.load_state_dict(net.state_dict())
            net = swapped.eval()
    if members > 1:
        net.ensemble = members
    return ClipModelPipeline(net, spec)


# ------------------------------------------------------------------------------ clips
def _frame_size(path: Path) -> tuple[int, int]:
    """(H, W) of a clip's frames, from its first frame or the stream's header (the clip is read
    whole, raising its reader's one-line error, only when neither can be opened)."""
    from sandwich.media.clips import list_frames, read_clip

    try:
        if path.is_dir():
            from PIL import Image

            with Image.open(list_frames(path)[0]) as im:
                return im.height, im.width
        import av

        with av.open(str(path), "r") as c:
            cc = c.streams.video[0].codec_context
            if cc.height and cc.width:
                return int(cc.height), int(cc.width)
    except SandwichError:
        raise
    except Exception:  # unreadable here: the full reader below says why
        pass
    frames = read_clip(path)[0]
    return int(frames.shape[1]), int(frames.shape[2])


def find_clips(paths: list[Path]) -> list[tuple[str, Path, tuple[int, int]]]:
    """(name, path, (H, W)) of every clip named by ``paths``; one-line error for none."""
    from sandwich.training.clip_dataset import list_clips

    if not paths:
        raise SandwichError("no clips given; pass video files or folders of PNG frames")
    found = list_clips([Path(p) for p in paths])
    names = [p.name for p in found]
    out = []
    for p in found:
        name = p.name if names.count(p.name) == 1 else str(p)
        out.append((name, p, _frame_size(p)))
    return out


def _check_sizes(clips, pipes: dict, metrics: dict[str, Metric], explicit: bool) -> list[str]:
    """Refuse clips too small to code with a pipeline; drop (by default) or refuse (when asked
    for) LPIPS and VMAF on clips smaller than they take. Returns notes on what was dropped and
    on MS-SSIM of small frames."""
    notes = []
    for name, _, (h, w) in clips:
        for pname, pipe in pipes.items():
            k = pipe.downscale
            side = min(-(-h // k), -(-w // k))
            least = MIN_SIDE  # (x265 pads narrow frames itself: sandwich.codecs.video)
            if side < least:
                raise SandwichError(
                    f"{name}: frames of {w}x{h} are too small for {pname} (it codes "
                    f"{-(-w // k)}x{-(-h // k)} frames; {pipe.codec.name} needs at least "
                    f"{least} pixels a side here)"
                )
    small = [(n, hw) for n, _, hw in clips if min(hw) < NET_MIN_SIDE]
    for key in ("lpips", "vmaf"):
        if key in metrics and small:
            n, (h, w) = small[0]
            label = metrics[key].label
            if explicit:
                raise SandwichError(
                    f"{n}: frames of {w}x{h} are too small for {label} (it needs at least "
                    f"{NET_MIN_SIDE} pixels a side); leave {key} out of --metrics"
                )
            del metrics[key]
            notes.append(f"{label} left out: clip {n} is {w}x{h}, under {NET_MIN_SIDE} pixels")
    if "ms_ssim" in metrics:
        tiny = [n for n, _, hw in clips if min(hw) < MS_SSIM_FULL_SIDE]
        if tiny:
            notes.append(
                f"MS-SSIM on {len(tiny)} clip(s) with frames under {MS_SSIM_FULL_SIDE} pixels a "
                f"side ({', '.join(tiny[:4])}{', ...' if len(tiny) > 4 else ''}) uses fewer than "
                "5 scales (as `sandwich eval` does on small images): not comparable with "
                "standard MS-SSIM values"
            )
    return notes


# ------------------------------------------------------------------------------ the sweep
@dataclass
class FramePanel:
    """One picture of the side-by-side comparison of a clip's middle frame.

    ``kind``: ``original``, ``reconstruction`` or ``bottleneck``; ``image``: (H, W, 3) uint8,
    or the bottleneck as the codec carries it ((h, w) or (h, w, 3), 1/downscale size)."""

    label: str
    kind: str
    pipeline: str | None
    crf: int | None
    bpp: float | None
    image: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)

    def info(self) -> dict:
        return {
            "label": self.label,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "crf": self.crf,
            "bpp": self.bpp,
            "metrics": self.metrics,
        }


def _row(clip: str, pipe: str, crf: int, rt: ClipRoundtrip, shape, values: dict) -> dict:
    t, h, w = shape
    info = rt.info
    row = {
        "pipeline": pipe,
        "clip": clip,
        "crf": crf,
        "frames": t,
        "height": h,
        "width": w,
        "bits": rt.bits,
        "bpp": rt.bits / (t * h * w),
        "overhead_bits": rt.bits - int(sum(info.frame_bits)),
        "frame_types": "".join(info.frame_types),
        "frame_bits": [int(b) for b in info.frame_bits],
    }
    by_type = info.bits_by_type()
    for k in FRAME_TYPES:
        n = info.frame_types.count(k)
        row[f"frames_{k}"] = n
        row[f"bits_{k}"] = int(by_type.get(k, 0))
        row[f"bpp_{k}"] = by_type.get(k, 0) / (n * h * w) if n else float("nan")
    row.update(values)
    return row


def matched_crfs(bpps: dict[str, dict[int, float]], anchor: str, crfs: list[int]) -> dict:
    """For each pipeline the CRF whose bpp is nearest (in log bpp) the anchor's at the middle
    of ``crfs``; the anchor keeps that middle CRF."""
    mid = sorted(crfs)[len(crfs) // 2]
    target = max(bpps[anchor][mid], 1e-12)

    def nearest(b: dict[int, float]) -> int:
        return min(b, key=lambda c: (abs(math.log(max(b[c], 1e-12) / target)), c))

    return {n: (mid if n == anchor else nearest(b)) for n, b in bpps.items()}


def _panels(pipes, frame, kept, rows, anchor, crfs) -> list[FramePanel]:
    bpps = {n: {r["crf"]: r["bpp"] for r in rows if r["pipeline"] == n} for n in pipes}
    choice = matched_crfs(bpps, anchor, crfs)
    out = [FramePanel("original", "original", None, None, None, frame)]
    order = [anchor] + [n for n in pipes if n != anchor and pipes[n].role != "model"]
    order += [n for n in pipes if n != anchor and pipes[n].role == "model"]
    for n in order:
        c = choice[n]
        row = next(r for r in rows if r["pipeline"] == n and r["crf"] == c)
        values = {k: row[k] for k in row if k in METRIC_NAMES}
        values["frame_psnr"] = clip_psnr(frame, kept[(n, c)])
        if pipes[n].role == "model":
            b = pipes[n].bottleneck(frame, c)
            out.append(FramePanel(f"{n} bottleneck", "bottleneck", n, c, row["bpp"], b))
        out.append(
            FramePanel(f"{n} (CRF {c})", "reconstruction", n, c, row["bpp"], kept[(n, c)], values)
        )
    return out


def sweep(
    clips, pipes: dict, crfs: list[int], metrics: dict[str, Metric], fps: float,
    anchor: str | None, frames: bool, tick: Callable[[], None] | None = None,
) -> tuple[list[dict], list[dict], dict[str, list[FramePanel]]]:  # fmt: skip
    """Every pipeline over every clip and CRF: (rows, clip files, middle-frame panels per clip
    when ``frames``). Clips are read one at a time."""
    from sandwich.media.clips import Clip, read_clip

    rows, files, panels = [], [], {}
    for name, path, _ in clips:
        arr, rate = read_clip(path, fps)
        clip = Clip(arr, rate)
        t, h, w = arr.shape[:3]
        files.append(
            {"name": name, "path": str(path), "frames": t, "height": h, "width": w, "fps": rate}
        )
        mid, kept, clip_rows = t // 2, {}, []
        for pname, pipe in pipes.items():
            for crf in crfs:
                rt = pipe.roundtrip(clip, crf)
                values = {k: float(m.fn(arr, rt.frames)) for k, m in metrics.items()}
                clip_rows.append(_row(name, pname, crf, rt, (t, h, w), values))
                if frames:
                    kept[(pname, crf)] = rt.frames[mid].copy()
                if tick is not None:
                    tick()
        rows += clip_rows
        if frames and anchor is not None:
            panels[name] = _panels(pipes, arr[mid].copy(), kept, clip_rows, anchor, crfs)
    return rows, files, panels


# ------------------------------------------------------------------------------ summaries
def _mean(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else float("nan")


def mean_curves(rows: list[dict], names: list[str], crfs: list[int], metrics) -> dict:
    """Per pipeline, the mean over clips at each CRF of bpp, the per-frame bpp of I and P
    frames (``bpp_I``, ``bpp_P``: a frame's packet bits / (H * W)) and every metric."""
    curves = {}
    for n in names:
        c: dict = {"knob_name": "crf", "knob": list(crfs), "crf": list(crfs), "bpp": []}
        keys = [*(f"bpp_{k}" for k in FRAME_TYPES), *metrics]
        for k in keys:
            c[k] = []
        for crf in crfs:
            at = [r for r in rows if r["pipeline"] == n and r["crf"] == crf]
            c["bpp"].append(float(np.mean([r["bpp"] for r in at])))
            for k in keys:
                c[k].append(_mean([r[k] for r in at]))
        curves[n] = c
    return curves


def per_clip(rows: list[dict], names: list[str], metrics, anchor: str, crfs) -> list[dict]:
    """For every clip and pipeline: BD deltas of its own curve against the anchor's on that
    clip (None for the anchor), and its bpp, I/P-frame bpp and metrics at the middle CRF."""
    from sandwich.evaluation.harness import curve_bd

    mid = sorted(crfs)[len(crfs) // 2]
    out = []
    for clip in dict.fromkeys(r["clip"] for r in rows):

        def curve(name: str, clip=clip) -> dict:
            pts = sorted(
                (r for r in rows if r["clip"] == clip and r["pipeline"] == name),
                key=lambda r: r["crf"],
            )
            return {"bpp": [r["bpp"] for r in pts], **{m: [r[m] for r in pts] for m in metrics}}

        ca = curve(anchor)
        for n in names:
            at = next(
                r for r in rows if r["clip"] == clip and r["pipeline"] == n and r["crf"] == mid
            )
            bd = None
            if n != anchor:
                ct = curve(n)
                bd = {m: curve_bd(ca, ct, metric) for m, metric in metrics.items()}
            keep = ["bpp", *(f"bpp_{k}" for k in FRAME_TYPES), *metrics]
            out.append(
                {"clip": clip, "pipeline": n, "bd": bd, "crf": mid, **{k: at[k] for k in keep}}
            )
    return out


# ------------------------------------------------------------------------------ the call
def _parse_crfs(text: str | None) -> list[int]:
    crfs = list(dict.fromkeys(parse_ints(text or DEFAULT_CRFS, "--crfs")))
    bad = [c for c in crfs if not 0 <= c <= 51]
    if bad:
        raise SandwichError(f"--crfs: CRF {bad[0]} is outside x264/x265's 0..51")
    return crfs


def _names(req: ClipEvalRequest) -> tuple[list[str], list[str], list[str]]:
    """(models, baselines, anchors) of the request, checked; anchors that are known baselines
    but not asked for are added to the baselines."""
    from sandwich.evaluation.clip_baselines import CLIP_BASELINES

    models, baselines = list(dict.fromkeys(req.models)), list(dict.fromkeys(req.baselines))
    for b in baselines:
        if b not in CLIP_BASELINES:
            raise SandwichError(
                f"unknown baseline {b!r}; choose one of: {', '.join(CLIP_BASELINES)}"
            )
    if not models and not baselines:
        raise SandwichError("give at least one --model or --baseline")
    for a in req.anchors:
        if a not in models and a not in baselines:
            if a not in CLIP_BASELINES:
                raise SandwichError(
                    f"--anchor {a!r} is neither a model of this run nor a baseline "
                    f"({', '.join(CLIP_BASELINES)})"
                )
            baselines.append(a)
    anchors = list(dict.fromkeys(req.anchors)) or [baselines[0] if baselines else models[0]]
    for m in models:
        _check_model_name(m)
    return models, baselines, anchors


def evaluate_clips(
    req: ClipEvalRequest, progress: Callable[[int], Callable[[], None]] | None = None
) -> ClipEvaluation:
    """Sweep every pipeline of ``req`` through the real codecs on its clips and write the
    requested Markdown, JSON and HTML report. ``progress(total)`` returns a function called
    once per (clip, pipeline, CRF). Bad requests (unknown names, image models, no clips, clips
    too small, unavailable metrics) raise a one-line :class:`SandwichError` before any coding.

    The results dict holds ``clips`` (names), ``clip_files`` (path, frames, size, fps),
    ``crfs``, ``metrics`` (label, direction, BD axis, note), ``pipelines`` (name, role,
    description), ``anchors``, ``curves`` (:func:`mean_curves`), ``bd_table`` (every pipeline
    against every anchor, per metric ``bd_rate_pct`` and ``bd_metric``), ``per_clip``
    (:func:`per_clip`), ``rows`` (one per clip, pipeline and CRF), ``notes``, the command and
    the package version.
    """
    from sandwich.evaluation.clip_baselines import CLIP_BASELINES
    from sandwich.evaluation.harness import bd_table, package_version

    crfs = _parse_crfs(req.crfs)
    models, baselines, anchors = _names(req)
    names = None
    if req.metrics is not None:
        names = [n.strip() for n in req.metrics.split(",") if n.strip()]
    metrics, notes = clip_metrics(names)
    if req.out is not None and req.out.exists() and not req.out.is_dir():
        raise SandwichError(f"{req.out}: exists and is not a folder")
    clips = find_clips(req.clips)
    pipes = {b: CLIP_BASELINES[b]() for b in baselines}
    pipes.update({m: model_pipeline(m) for m in models})
    notes += _check_sizes(clips, pipes, metrics, explicit=names is not None)

    total = len(clips) * len(pipes) * len(crfs)
    tick = progress(total) if progress is not None else None
    rows, files, panels = sweep(
        clips, pipes, crfs, metrics, req.fps, anchors[0], req.out is not None, tick
    )
    curves = mean_curves(rows, list(pipes), crfs, metrics)
    results = {
        "command": req.command(),
        "version": package_version(),
        "clips": [f["name"] for f in files],
        "clip_files": files,
        "crfs": crfs,
        "metrics": {
            k: {
                "label": m.label,
                "higher_is_better": m.higher_is_better,
                "bd_unit": m.unit,
                "bd_axis": m.bd_axis,
                "note": m.note,
            }
            for k, m in metrics.items()
        },
        "pipelines": [
            {
                "name": n,
                "role": p.role,
                "description": p.description,
                "codec": p.codec.name,
                "knob_name": "crf",
                "knobs": list(crfs),
            }
            for n, p in pipes.items()
        ],
        "anchors": anchors,
        "curves": curves,
        "bd_table": bd_table(curves, anchors, metrics),
        "per_clip": per_clip(rows, list(pipes), metrics, anchors[0], crfs),
        "rows": rows,
        "notes": notes,
    }
    return ClipEvaluation(results, metrics, _write(req, results, metrics, panels))


def _write(req: ClipEvalRequest, results: dict, metrics: dict, panels: dict) -> list[Path]:
    import json

    from sandwich.evaluation.report import json_safe
    from sandwich.media.files import atomic_write_bytes

    written = []
    if req.markdown is not None:
        from sandwich.evaluation.clip_report import markdown

        atomic_write_bytes(req.markdown, markdown(results, metrics).encode(), force=True)
        written.append(req.markdown)
    if req.json_out is not None:
        text = json.dumps(json_safe(results), indent=1, allow_nan=False) + "\n"
        atomic_write_bytes(req.json_out, text.encode(), force=True)
        written.append(req.json_out)
    if req.out is not None:
        from sandwich.evaluation.clip_report import write_report

        write_report(req.out, results, metrics, panels)
        written.append(req.out / "report.html")
    return written
