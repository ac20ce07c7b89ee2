"""Encoding and decoding speed of the video sandwich against the plain codec, in frames per
second, in process (the library calls a user's program makes; Python and torch already loaded).

The clip is the bundled sample photo set in motion (a pan with a slow zoom:
:func:`sandwich.proxies.video.clips.moving_clip`, fixed seed), so the benchmark needs no data.
For each size and model: the plain codec on the RGB clip (4:2:0, the codec's default colour
coding) and the sandwich (pre-processor, the codec on the bottleneck, post-processor), each timed
as the median of ``repeats`` runs; the sandwich's stages are timed too (networks vs codec).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from sandwich.media.clips import Clip


def bench_clip(size: tuple[int, int], frames: int, seed: int = 0) -> np.ndarray:
    """(frames, H, W, 3) uint8: the bundled sample in motion, ``size`` = (H, W)."""
    from importlib import resources

    from PIL import Image

    from sandwich.proxies.video.clips import moving_clip

    path = resources.files("sandwich") / "assets" / "sample.png"
    h, w = size
    with Image.open(str(path)) as im:
        scale = max(1.0, 1.5 * h / im.height, 1.5 * w / im.width)  # room for the motion
        big = im.convert("RGB").resize((round(im.width * scale), round(im.height * scale)))
        photo = np.asarray(big, dtype=np.uint8)
    return moving_clip(photo, np.random.default_rng(seed), frames, size, max_speed=3.0, noise=1.0)


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def speed_rows(
    models: list,
    sizes: list[tuple[int, int]],
    frames: int = 16,
    crf: float = 28,
    repeats: int = 3,
    progress: Callable[[], None] | None = None,
) -> list[dict]:
    """One row per (size, pipeline): encode and decode frames per second (median of
    ``repeats``), bits per pixel of the MP4, and for models the share of time in the networks.

    ``models``: loaded clip models (:class:`~sandwich.models.clip_sandwich.ClipSandwichModel`);
    the plain codec of each model's codec is measured once per size as its reference."""
    from sandwich.codecs import get_clip_codec

    rows = []
    for h, w in sizes:
        clip = bench_clip((h, w), frames)
        plain_done = set()
        for m in models:
            codec_name = m.scenario.codec
            if codec_name not in plain_done:
                plain = get_clip_codec(codec_name)
                enc_t, data = _median_time(
                    lambda plain=plain, c=clip: plain.encode(c, crf), repeats
                )
                dec_t, _ = _median_time(lambda plain=plain, d=data: plain.decode(d), repeats)
                rows.append(_row(f"{codec_name} 4:2:0", h, w, frames, enc_t, dec_t, data))
                plain_done.add(codec_name)
                if progress is not None:
                    progress()
            enc_t, data = _median_time(lambda m=m, c=clip: m.compress(Clip(c), crf), repeats)
            dec_t, _ = _median_time(lambda m=m, d=data: m.decompress(d), repeats)
            # the codec alone on this bottleneck: what the networks add is the rest
            b = np.stack([m.bottleneck_image(f, crf) for f in clip])
            cenc_t, cdata = _median_time(lambda m=m, b=b: m.real.encode(b, crf), repeats)
            cdec_t, _ = _median_time(lambda m=m, d=cdata: m.real.decode(d), repeats)
            row = _row(m.name, h, w, frames, enc_t, dec_t, data)
            row["encode_network_share"] = max(0.0, 1 - cenc_t / enc_t)
            row["decode_network_share"] = max(0.0, 1 - cdec_t / dec_t)
            rows.append(row)
            if progress is not None:
                progress()
    return rows


def _row(name: str, h: int, w: int, frames: int, enc: float, dec: float, data: bytes) -> dict:
    return {
        "pipeline": name,
        "size": f"{w}x{h}",
        "frames": frames,
        "encode_fps": frames / enc,
        "decode_fps": frames / dec,
        "encode_s": enc,
        "decode_s": dec,
        "bpp": 8 * len(data) / (frames * h * w),
    }
