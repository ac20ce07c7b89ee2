"""The video sandwich: per-frame pre-processor -> 8-bit bottleneck clip -> x264 / x265 ->
per-frame post-processor.

The networks are the image sandwich's (:class:`~sandwich.models.sandwich.SandwichModel`), shared
by every frame (frames are folded into the batch), so an image model's weights load unchanged
and the video model starts as exactly that image model applied frame by frame. What differs is
the codec: training runs the differentiable video proxy (:mod:`sandwich.proxies.video`: I frame,
then P frames predicted from the previous *reconstructed* bottleneck along a fixed optical flow
of the original frames), real use runs x264 or x265 and writes a standard MP4 whose metadata
names the model (:mod:`sandwich.formats.mp4_meta`).

Scenarios are the image ones that fit a video codec (8-bit RGB in, one bottleneck plane:
``gray`` over a 4:0:0 stream, ``lowres2`` over a half-size 4:2:0 stream, ``rgb``, ``lpips``,
``msssim`` over 4:2:0, ``rgb444`` over 4:4:4), carried by the codec named in the config.
The knob is the codec's CRF (0..51, lower is better); a model that takes the quality as input
sees CRF / 51, and the file records the CRF in its tag so the decoder is told the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sandwich.codecs import CLIP_CODECS, get_clip_codec
from sandwich.errors import SandwichError
from sandwich.formats.mp4_meta import sniff_mp4
from sandwich.formats.tag import FileTag
from sandwich.media.clips import Clip, decode_video, to_rgb
from sandwich.models.base import ClipMedia, check_config, int_in, one_of, widths
from sandwich.models.sandwich import SandwichModel
from sandwich.proxies import get_clip_proxy
from sandwich.scenarios import SCENARIOS, Scenario, get_scenario

__all__ = ["CRF_RANGE", "ClipSandwichModel", "ClipSandwichOutput", "clip_scenario"]

CRF_RANGE = (18, 42)  # CRFs drawn in training (x264 / x265: 0..51, lower is better)
DEFAULT_CRF = 28  # the encoders' own default


def video_scenarios() -> list[str]:
    """Names of the image scenarios a video codec can carry: 8-bit RGB images, one plane."""
    return [
        n
        for n, s in SCENARIOS.items()
        if s.bit_depth == 8 and s.channels == 3 and s.planes == 1
        and s.subsampling in ("gray", "4:2:0", "4:4:4")
    ]  # fmt: skip


def clip_scenario(name: str, codec: str) -> Scenario:
    """Image scenario ``name`` carried by clip codec ``codec`` (``x264`` or ``x265``)."""
    if codec not in CLIP_CODECS:
        raise SandwichError(
            f"unknown video codec {codec!r}; choose one of: {', '.join(CLIP_CODECS)}"
        )
    if name not in video_scenarios():
        raise SandwichError(
            f"scenario {name!r} does not fit a video codec; choose one of: "
            f"{', '.join(video_scenarios())}"
        )
    return dataclasses.replace(
        get_scenario(name), codec=codec, proxy=codec, quality_range=CRF_RANGE
    )


@dataclass
class ClipSandwichOutput:
    """Result of :meth:`ClipSandwichModel.forward`.

    Attributes:
        x_hat: (N, T, 3, H, W) reconstruction, 0..255 (clipped only in real use).
        bottleneck: (N, T, C, h, w) pre-processor output before 8-bit rounding, about 0..255.
        decoded: (N, T, C, h, w) the codec's reconstruction of the bottleneck, 0..255.
        bits: (N,) bits of each clip's whole MP4 file (frames and container).
        frame_bits: (N, T) bits of each frame's packet.
        frame_types: per clip, ``"I"`` / ``"P"`` per frame.
        bpp: (N,) bits per pixel of the original clip (bits / (T * H * W)).
    """

    x_hat: Tensor
    bottleneck: Tensor
    decoded: Tensor
    bits: Tensor
    frame_bits: Tensor
    frame_types: list[list[str]]
    bpp: Tensor


class ClipSandwichModel(ClipMedia, SandwichModel):
    """A standard video codec (x264 / x265) wrapped by per-frame pre- and post-processors.

    Args:
        scenario: an image scenario that fits a video codec (see :func:`video_scenarios`).
        codec: ``"x265"`` (HEVC, default) or ``"x264"`` (H.264).
        context: temporal context of the post-processor: it also sees the decoded bottlenecks
            of the ``context`` frames before and after each frame (repeated at the clip's ends);
            0 (default) post-processes every frame on its own.
        other arguments: as :class:`~sandwich.models.sandwich.SandwichModel`.
    """

    kind = "clip-sandwich"
    DEFAULT_QUALITY = DEFAULT_CRF

    def __init__(
        self,
        scenario: str,
        codec: str = "x265",
        pre_widths: tuple[int, ...] = (32, 64),
        post_widths: tuple[int, ...] = (32, 64),
        rounding: str = "ste",
        name: str = "untrained",
        version: int = 0,
        quality_input: bool = False,
        activation: str = "relu",
        context: int = 0,
    ):
        self.codec_name = codec
        self.context = int(context)
        super().__init__(
            clip_scenario(scenario, codec),
            pre_widths,
            post_widths,
            rounding,
            name,
            version,
            quality_input,
            activation,
        )
        if self.context:
            from sandwich.nets.prepost import PostProcessor

            s = self.scenario
            self.post = PostProcessor(
                s.bottleneck_channels, s.base, self.post_widths, quality_input, activation,
                context=2 * self.context,
            )  # fmt: skip

    @property
    def post_channels(self) -> int:
        return self.scenario.bottleneck_channels * (1 + 2 * self.context)

    def neighbours(self, t: int, count: int) -> list[int]:
        """Frame ``t`` then its context frames (``t-1, t+1, t-2, t+2, ...``, clamped to
        ``0..count-1``): the order of the post-processor's input channels."""
        out = [t]
        for d in range(1, self.context + 1):
            out += [max(t - d, 0), min(t + d, count - 1)]
        return out

    def make_codecs(self, rounding: str) -> tuple:
        s = self.scenario
        return (
            get_clip_proxy(s.proxy, subsampling=s.subsampling, rounding=rounding),
            get_clip_codec(s.codec, subsampling=s.subsampling),
        )

    @classmethod
    def from_config(cls, config: dict, name: str = "local", version: int = 0) -> ClipSandwichModel:
        what = f"model {name!r}"
        check_config(
            config,
            {
                "scenario": one_of(*video_scenarios()),
                "codec": one_of(*CLIP_CODECS),
                "pre_widths": widths(),
                "post_widths": widths(),
                "rounding": one_of("ste", "noise", "cubic", "hard"),
                "quality_input": one_of(True, False),
                "activation": one_of("relu", "leaky"),
            },
            what,
        )
        if "context" in config:
            check_config(config, {"context": int_in(0, 4)}, what)
        return cls(
            config["scenario"],
            config["codec"],
            tuple(config["pre_widths"]),
            tuple(config["post_widths"]),
            rounding=config["rounding"],
            quality_input=config["quality_input"],
            activation=config["activation"],
            context=config.get("context", 0),
            name=name,
            version=version,
        )

    def config(self) -> dict:
        return {**super().config(), "codec": self.codec_name, "context": self.context}

    @property
    def file_suffix(self) -> str:  # type: ignore[override]
        return self.real.extension

    def describe(self) -> str:
        s = self.scenario
        sub = "4:0:0" if s.subsampling == "gray" else s.subsampling
        return f"{self.real.format_name} {sub}" + (
            f", 1/{s.downscale} size" if s.downscale > 1 else ""
        )

    # ------------------------------------------------------------------ files
    @staticmethod
    def tagged_codecs() -> tuple:
        return tuple(get_clip_codec(n) for n in CLIP_CODECS)

    @classmethod
    def sniff_head(cls, head: bytes) -> bool:
        return sniff_mp4(head)

    @classmethod
    def formats(cls) -> list[str]:
        return ["MP4 (H.264 or HEVC)"]

    @classmethod
    def suffixes(cls) -> tuple[str, ...]:
        return (".mp4",)

    @classmethod
    def identify(cls, data: bytes) -> tuple[str, str | None, int | None] | None:
        codec = get_clip_codec("x265")  # the MP4 tag is the same for every clip codec
        if not codec.sniff(data):
            return None
        tag = codec.read_tag(data)
        if tag is None:
            return "MP4", None, None
        return "MP4", tag.model, tag.model_version

    @classmethod
    def decode_plain(cls, data: bytes) -> Clip:  # type: ignore[override]
        """A plain MP4 decoded to a :class:`~sandwich.media.clips.Clip` of RGB frames."""
        video = decode_video(data, name="MP4")
        return Clip(to_rgb(video, 255), video.fps)

    # ------------------------------------------------------------------ training
    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        quality: Tensor | float,
        real: bool = False,
        flow: Tensor | None = None,
    ) -> ClipSandwichOutput:
        """Run the video sandwich on a batch of clips.

        Args:
            x: (N, T, 3, H, W) RGB clips, 0..255.
            quality: CRF 0..51, scalar or (N,).
            real: code with the real encoder (no gradients) instead of the proxy.
            flow: (N, T-1, 2, H, W) backward flow of the original frames in pixels (see
                :mod:`sandwich.proxies.video.flow`); None measures it (DIS) on ``x``. The proxy
                moves it onto the bottleneck's grid (scaled for ``lowres``).
        """
        n, t, _, h, w = x.shape
        q = torch.as_tensor(quality, dtype=torch.float32).flatten()
        q = q.expand(n) if q.numel() == 1 else q
        cond = None
        if self.quality_input:
            cond = self.real.condition(q, n).repeat_interleave(t).to(x.device)
        b = self.pre(x.flatten(0, 1), cond).unflatten(0, (n, t))
        if real:
            out = self.real(b.detach().clamp(0, 255), q)
        else:
            out = self.proxy(b, q.to(x.device), flow=flow)
        y = out.x_hat
        if self.context:
            y = torch.cat([y[:, self.neighbours(i, t)].flatten(1, 2)[:, None] for i in range(t)], 1)
        x_hat = self.post(y.flatten(0, 1), (h, w), cond).unflatten(0, (n, t))
        if real:
            x_hat = x_hat.clamp(0, 255)
        bpp = out.bits / (t * h * w)
        return ClipSandwichOutput(
            x_hat, b, out.x_hat, out.bits, out.frame_bits, out.frame_types, bpp
        )

    # ------------------------------------------------------------------ real use
    def _check_clip(self, frames: np.ndarray) -> None:
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[3] != 3:
            shape = getattr(frames, "shape", None)
            raise SandwichError(f"video models take clips of RGB frames (T, H, W, 3), got {shape}")
        if frames.dtype != np.uint8:
            raise SandwichError(f"video models take 8-bit frames, got {frames.dtype}")

    def compress(  # type: ignore[override]
        self,
        clip: Clip | np.ndarray,
        quality: float,
        fps: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> bytes:
        """A :class:`~sandwich.media.clips.Clip` (or its (T, H, W, 3) uint8 RGB frames) -> a
        standard MP4 (x264 / x265 at CRF ``quality``, at ``fps`` or the clip's frame rate)
        carrying the model's tag. ``progress(k)`` is called after each frame's pre-processing."""
        if isinstance(clip, Clip):
            frames, fps = clip.frames, fps or clip.fps
        else:
            frames = clip
        self._check_clip(frames)
        t, h, w = frames.shape[:3]
        k = self.scenario.downscale
        if max(-(-h // k), -(-w // k)) > self.real.max_side:
            raise SandwichError(f"frames of {w}x{h} are larger than {self.real.format_name} holds")
        bottleneck = []
        for i in range(t):
            bottleneck.append(self.bottleneck_image(frames[i], quality))
            if progress is not None:
                progress(1)
        data = self.real.encode(
            np.stack(bottleneck), float(quality), **({"fps": fps} if fps else {})
        )
        knob = float(quality) if self.quality_input else None
        return self.real.tag(data, FileTag(self.name, self.version, h, w, knob=knob))

    @torch.inference_mode()
    def decompress(self, data: bytes) -> np.ndarray:  # type: ignore[override]
        """An MP4 from :meth:`compress` (or any MP4 of the right kind) -> (T, H, W, 3) uint8."""
        return self.decompress_clip(data).frames

    def decompress_with_note(self, data: bytes) -> tuple[Clip, str]:  # type: ignore[override]
        """The decoded :class:`~sandwich.media.clips.Clip` (frames and frame rate), with a
        progress bar over the frames, and a note on the frame count."""
        clip = self.decompress_clip(data, progress=True)
        return clip, f"{clip.frames.shape[0]} frames"

    @torch.inference_mode()
    def decompress_clip(self, data: bytes, progress: bool = False) -> Clip:
        """As :meth:`decompress`, as a :class:`~sandwich.media.clips.Clip` with the file's frame
        rate (frames per second); ``progress``: a progress bar over the frames."""
        from tqdm import tqdm

        tag = self.real.read_tag(data)
        dec, info = self.real.decode(data)
        if dec.ndim == 3:
            dec = dec[..., None]
        c = self.scenario.bottleneck_channels
        if dec.shape[3] != c:
            raise SandwichError(
                f"this MP4 has {dec.shape[3]} channel(s) but model {self.name!r} expects {c}"
            )
        rows, cols = dec.shape[1:3]
        if tag is not None:
            size = (tag.height, tag.width)
            self._check_tag_size(size, rows, cols)
        else:
            k = self.scenario.downscale
            size = (rows * k, cols * k)
        crf = tag.knob if tag is not None else None
        out = np.empty((dec.shape[0], *size, 3), np.uint8)
        frames = tqdm(range(dec.shape[0]), "frames", unit="f", leave=False, disable=not progress)
        for i in frames:
            y = dec[i] if not self.context else np.concatenate(dec[self.neighbours(i, len(dec))], 2)
            out[i] = self.reconstruct(y, size, crf)
        return Clip(out, info.fps)
