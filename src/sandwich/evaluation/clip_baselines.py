"""The plain-codec pipelines video sandwiches are compared with, behind one ``roundtrip``.

Every pipeline maps a :class:`~sandwich.media.clips.Clip` (frames (T, H, W, 3) uint8 RGB, a frame
rate) and a CRF (x264 / x265 constant rate factor, 0..51, lower is better) to a
:class:`ClipRoundtrip`: the whole MP4 file as it would be stored (so bits = 8 * len(data) counts
the frames, the parameter sets and the container), the reconstruction at the original size, and
what the decoder told about the stream (frame types and each frame's packet bits).

The codecs are :mod:`sandwich.codecs.video`'s with their defaults (preset ``medium``, one GOP
I P P P ..., no B-frames, one reference, scene-cut off): exactly the settings a video sandwich's
own codec runs with, so a model and its baselines differ only in what goes into the encoder.

Baselines (each for ``x265`` and ``x264``, registry :data:`CLIP_BASELINES`):

- ``{codec}-420``, ``{codec}-444``: the RGB clip coded as it is (4:2:0 or 4:4:4 Y'CbCr).
- ``{codec}-gray``: the BT.601 luma of each frame (full range, rounded) as a 4:0:0 stream; the
  reconstruction is gray, R = G = B = Y (what colour costs nothing to leave out).
- ``{codec}-lowres2``: antialiased bicubic downsampling by 2 (the image ``lowres2-bicubic``
  baseline's :func:`~sandwich.nets.resample.downsample`), 4:2:0, bicubic upsampling back.
- ``{codec}-lowres2-paper``: the sandwich paper's low-resolution baseline: bicubic downsampling
  by 2 *without* antialiasing (OpenCV ``cv2.resize`` with ``INTER_CUBIC``, Keys kernel
  a = -0.75: each output pixel mixes only the 4 x 4 input pixels around it), 4:4:4, and Lanczos3
  upsampling back (Pillow ``Image.resize`` with ``LANCZOS``, a 6-tap kernel per axis). A weaker
  baseline than ``lowres2``: the downsampling aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from sandwich.codecs import get_clip_codec
from sandwich.codecs.clip_base import ClipInfo
from sandwich.media.clips import Clip
from sandwich.nets.resample import downsample, upsample
from sandwich.proxies.calibrate import to_codec_input

CHUNK = 8  # frames resampled per torch call (bounds the float copies of large clips)


@dataclass
class ClipRoundtrip:
    """One clip coded and decoded by a pipeline.

    Attributes:
        data: the whole MP4 file as stored (bits = 8 * len(data)).
        frames: (T, H, W, 3) uint8 RGB reconstruction, the original's size.
        info: the decoded stream's :class:`~sandwich.codecs.clip_base.ClipInfo` (frame types
            and packet bits per frame, display order; ``file_bits`` = 8 * len(data)).
    """

    data: bytes
    frames: np.ndarray
    info: ClipInfo

    @property
    def bits(self) -> int:
        return 8 * len(self.data)


def _gray_to_rgb(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) or (T, H, W, 1) uint8 -> (T, H, W, 3) with R = G = B."""
    if frames.ndim == 4:
        frames = frames[..., 0]
    return np.repeat(frames[..., None], 3, axis=3)


def _torch_frames(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 0..255 (a copy)."""
    return torch.from_numpy(np.array(frames, copy=True)).permute(0, 3, 1, 2).float()


def _uint8_frames(x: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float 0..255 -> (T, H, W, 3) uint8, rounded and clipped."""
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _chunked(frames: np.ndarray, fn) -> np.ndarray:
    """``fn`` applied to the (t, H, W, 3) uint8 slices of ``frames`` of :data:`CHUNK` frames,
    the results concatenated along time."""
    return np.concatenate([fn(frames[i : i + CHUNK]) for i in range(0, len(frames), CHUNK)])


class PlainClipBaseline:
    """The clip through x264 / x265 as it is: ``4:2:0``, ``4:4:4``, or its luma (``gray``,
    reconstructed as R = G = B = Y)."""

    role = "baseline"
    downscale = 1  # the coded frames' size is the clip's / downscale

    def __init__(self, codec: str = "x265", subsampling: str = "4:2:0"):
        self.codec = get_clip_codec(codec, subsampling=subsampling)
        self.subsampling = subsampling
        short = {"4:2:0": "420", "4:4:4": "444", "gray": "gray"}[subsampling]
        self.name = f"{codec}-{short}"
        self.description = f"{self.codec.format_name} {subsampling}"

    def roundtrip(self, clip: Clip, crf: float) -> ClipRoundtrip:
        frames = clip.frames
        if self.subsampling == "gray":
            frames = np.stack([to_codec_input(f, "gray") for f in frames])
        data = self.codec.encode(frames, crf, fps=clip.fps)
        dec, info = self.codec.decode(data)
        rec = _gray_to_rgb(dec) if self.subsampling == "gray" else dec
        return ClipRoundtrip(data, rec, info)


class LowresClipBaseline:
    """Antialiased bicubic downsampling by ``factor`` (as the image ``lowres`` baselines and
    the ``lowres`` scenarios' base), x264 / x265 4:2:0, bicubic upsampling back to the clip's
    size."""

    role = "baseline"

    def __init__(self, codec: str = "x265", factor: int = 2):
        self.codec = get_clip_codec(codec, subsampling="4:2:0")
        self.factor = self.downscale = int(factor)
        self.name = f"{codec}-lowres{self.factor}"
        self.description = (
            f"antialiased bicubic 1/{self.factor} down, {self.codec.format_name} 4:2:0, bicubic up"
        )

    def roundtrip(self, clip: Clip, crf: float) -> ClipRoundtrip:
        h, w = clip.frames.shape[1:3]
        small = _chunked(
            clip.frames, lambda f: _uint8_frames(downsample(_torch_frames(f), self.factor))
        )
        data = self.codec.encode(small, crf, fps=clip.fps)
        dec, info = self.codec.decode(data)
        up = _chunked(dec, lambda f: _uint8_frames(upsample(_torch_frames(f), (h, w))))
        return ClipRoundtrip(data, up, info)


class PaperLowresClipBaseline:
    """The sandwich paper's low-resolution baseline: bicubic downsampling by ``factor`` without
    antialiasing (OpenCV ``INTER_CUBIC``), x264 / x265 4:4:4, Lanczos3 upsampling (Pillow
    ``LANCZOS``) back to the clip's size. The small frames are ceil(H / factor) x
    ceil(W / factor)."""

    role = "baseline"

    def __init__(self, codec: str = "x265", factor: int = 2):
        self.codec = get_clip_codec(codec, subsampling="4:4:4")
        self.factor = self.downscale = int(factor)
        self.name = f"{codec}-lowres{self.factor}-paper"
        self.description = (
            f"bicubic 1/{self.factor} down without antialiasing (OpenCV), "
            f"{self.codec.format_name} 4:4:4, Lanczos3 up (Pillow)"
        )

    def roundtrip(self, clip: Clip, crf: float) -> ClipRoundtrip:
        import cv2
        from PIL import Image

        h, w = clip.frames.shape[1:3]
        size = (-(-w // self.factor), -(-h // self.factor))  # (width, height) for OpenCV
        small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in clip.frames])
        data = self.codec.encode(small, crf, fps=clip.fps)
        dec, info = self.codec.decode(data)
        up = np.stack(
            [np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.LANCZOS)) for f in dec]
        )
        return ClipRoundtrip(data, up, info)


class ClipModelPipeline:
    """A video sandwich's real round trip: :meth:`compress` to a tagged MP4 (whole file
    counted), :meth:`decompress_clip` back; the stream's frame types and packet bits come from
    decoding the same bytes with the model's real codec."""

    role = "model"

    def __init__(self, model, name: str):
        self.model, self.name = model, name
        self.codec = model.real
        self.downscale = int(model.scenario.downscale)
        self.description = f"{model.name}: {model.describe()}"

    def roundtrip(self, clip: Clip, crf: float) -> ClipRoundtrip:
        data = self.model.compress(clip, crf)
        rec = self.model.decompress_clip(data).frames
        _, info = self.model.real.decode(data)
        return ClipRoundtrip(data, rec, info)

    def bottleneck(self, frame: np.ndarray, crf: float) -> np.ndarray:
        """The 8-bit image the codec carries for one (H, W, 3) uint8 frame at ``crf``:
        (h, w) for gray, (h, w, 3) otherwise; 1/downscale of the frame's size."""
        return self.model.bottleneck_image(frame, crf)


def _registry() -> dict:
    out = {}
    for codec in ("x265", "x264"):
        out[f"{codec}-420"] = partial(PlainClipBaseline, codec, "4:2:0")
        out[f"{codec}-444"] = partial(PlainClipBaseline, codec, "4:4:4")
        out[f"{codec}-gray"] = partial(PlainClipBaseline, codec, "gray")
        out[f"{codec}-lowres2"] = partial(LowresClipBaseline, codec, 2)
        out[f"{codec}-lowres2-paper"] = partial(PaperLowresClipBaseline, codec, 2)
    return out


CLIP_BASELINES: dict[str, Callable[[], object]] = _registry()
"""Baseline name -> factory (no arguments) of its pipeline."""

__all__ = [
    "CLIP_BASELINES",
    "ClipModelPipeline",
    "ClipRoundtrip",
    "LowresClipBaseline",
    "PaperLowresClipBaseline",
    "PlainClipBaseline",
]
