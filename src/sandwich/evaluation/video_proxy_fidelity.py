"""How closely the video proxy follows x264 / x265: bits and PSNR per codec, subsampling, CRF
and frame type, averaged over clips, and per-clip errors against the targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from sandwich.codecs.video import CLIP_CODECS
from sandwich.proxies.video.calibrate import DEFAULT_CRFS, clip_tensor, codec_input, psnr_of
from sandwich.proxies.video.flow import clip_flow
from sandwich.proxies.video.proxy import video_proxy

BITS_TARGET = 0.15  # mean absolute relative bits error per clip
PSNR_TARGET = 0.5  # mean absolute PSNR difference per clip, dB
FRAME_KINDS = ("clip", "I", "P")


def _per_kind(bits: np.ndarray, mse: np.ndarray, types: list[str], file_bits: float) -> dict:
    """{kind: (bits, psnr)}: ``clip`` = whole file and clip PSNR; ``I``/``P`` = mean bits per
    frame of that type and the PSNR of their mean squared error."""
    out = {"clip": (float(file_bits), psnr_of(float(mse.mean())))}
    for kind in ("I", "P"):
        sel = np.array([t == kind for t in types])
        if sel.any():
            out[kind] = (float(bits[sel].mean()), psnr_of(float(mse[sel].mean())))
    return out


def _real(codec, arr: np.ndarray, crf: int) -> dict:
    data = codec.encode(arr, crf)
    dec, info = codec.decode(data)
    mse = ((dec.astype(np.float64) - arr) ** 2).reshape(arr.shape[0], -1).mean(1)
    return _per_kind(np.asarray(info.frame_bits, float), mse, list(info.frame_types), 8 * len(data))


def _proxy(x: torch.Tensor, flow: torch.Tensor, crf: int, codec: str, mode: str) -> dict:
    with torch.inference_mode():
        out = video_proxy(x, crf, codec, mode, rounding="hard", flow=flow)
    mse = ((out.x_hat[0].double() - x[0].double()) ** 2).flatten(1).mean(1).numpy()
    fb = out.frame_bits[0].double().numpy()
    return _per_kind(fb, mse, out.frame_types[0], float(out.bits[0]))


def video_fidelity_rows(
    clips: Sequence[np.ndarray],
    crfs: Sequence[int] = DEFAULT_CRFS,
    codecs: Sequence[str] = ("x264", "x265"),
    modes: Sequence[str] = ("gray", "4:2:0"),
    progress: Callable[[], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Real codec vs proxy (calibrated, hard rounding) on ``clips`` ((T, H, W, 3) uint8 RGB).

    Returns:
        rows: one per (codec, mode, CRF, kind) with kind ``clip`` (whole file bits, clip PSNR),
            ``I`` or ``P`` (mean bits per frame of that type, PSNR over those frames):
            ``real_bits``, ``proxy_bits``, ``real_psnr``, ``proxy_psnr`` (dB against the codec
            input: RGB for colour, luma for gray), each averaged over the clips;
        summary: one per (codec, mode): mean and max absolute relative error of each clip's
            bits, mean and max absolute difference of each clip's PSNR (over clips and CRFs),
            and whether the targets (:data:`BITS_TARGET`, :data:`PSNR_TARGET`) hold.
    """
    torch.set_num_threads(1)
    flows = [clip_flow(clip_tensor(c)) for c in clips]
    rows, summary = [], []
    for name in codecs:
        for mode in modes:
            codec = CLIP_CODECS[name](mode)
            berr, perr = [], []
            acc: dict = {}
            for crf in crfs:
                for clip, flow in zip(clips, flows, strict=True):
                    arr = codec_input(clip, mode)
                    real = _real(codec, arr, crf)
                    prox = _proxy(clip_tensor(arr), flow, crf, name, mode)
                    for kind, (rb, rp) in real.items():
                        pb, pp = prox[kind]
                        acc.setdefault((crf, kind), []).append((rb, pb, rp, pp))
                    berr.append(abs(prox["clip"][0] / real["clip"][0] - 1.0))
                    perr.append(abs(prox["clip"][1] - real["clip"][1]))
                    if progress is not None:
                        progress()
            for (crf, kind), vals in acc.items():
                m = np.mean(np.asarray(vals), axis=0)
                rows.append(
                    {"codec": name, "mode": mode, "crf": crf, "frame_type": kind,
                     "real_bits": float(m[0]), "proxy_bits": float(m[1]),
                     "real_psnr": float(m[2]), "proxy_psnr": float(m[3])}
                )  # fmt: skip
            b, p = float(np.mean(berr)), float(np.mean(perr))
            summary.append(
                {"codec": name, "mode": mode, "clips": len(clips), "crfs": list(crfs),
                 "mean_abs_bits_error": b, "max_abs_bits_error": float(np.max(berr)),
                 "mean_abs_psnr_diff": p, "max_abs_psnr_diff": float(np.max(perr)),
                 "meets_targets": b <= BITS_TARGET and p <= PSNR_TARGET}
            )  # fmt: skip
    return rows, summary


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi")


def load_clips(
    inputs: Sequence,
    per_image: int = 3,
    frames: int = 8,
    size: tuple[int, int] = (192, 320),
    seed: int = 1,
) -> list[np.ndarray]:
    """Clips to check the proxy on: each video file (``.mp4``, ``.mkv``, ...) gives its first
    ``frames`` frames; photos (files or folders of them) are set in motion, ``per_image``
    synthetic clips of ``size`` (H, W) each (:mod:`sandwich.proxies.video.clips`, ``seed``)."""
    from pathlib import Path

    from sandwich.media.clips import read_clip
    from sandwich.media.files import expand_images, load_rgb
    from sandwich.proxies.video.clips import synthetic_clips

    videos = [Path(p) for p in inputs if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    photos = [Path(p) for p in inputs if Path(p).suffix.lower() not in VIDEO_SUFFIXES]
    clips = [read_clip(v)[0][:frames] for v in videos]
    if photos:
        images = [load_rgb(f) for f in expand_images(photos)]
        clips += synthetic_clips(images, per_image, frames, size, seed)
    return clips
