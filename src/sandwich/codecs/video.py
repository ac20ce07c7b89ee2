"""Real video codecs: H.264 (libx264) and HEVC (libx265) in MP4, through PyAV's bundled FFmpeg.

Each clip is coded as one stream of I and P frames (no B-frames, one reference frame, scene-cut
detection off, a key frame every ``gop`` frames: by default only the first), the structure the
video sandwich's proxy models. The output is a standard MP4 any player opens.

Colour: RGB in and RGB out. Frames are converted to Y'CbCr by sandwich itself
(:mod:`sandwich.media.yuv`, the BT.709 matrix of :mod:`sandwich.media.color`, studio range, 4:2:0
chroma as 2x2 means sited at the centre) and back the same way on decode, so encode and decode are
exact inverses up to rounding, use the matrix the differentiable proxies use, and do not depend on
FFmpeg's swscale defaults. The stream signals what players need to show it right (BT.709
primaries, transfer and matrix, studio range, centre chroma siting) in its VUI and the MP4 'colr'
box.

Gray (``subsampling="gray"``, 4:0:0): one channel, coded as the luma plane without conversion and
signalled as full range (0..255, or 0..1023 at 10 bits), like a grayscale JPEG. x264 decodes such
a stream as 4:2:0 with flat chroma; only the Y plane is read back.

Odd sizes: 4:2:0 H.264 and HEVC cannot code an odd width or height (both encoders refuse them:
the frame size must be a whole number of chroma samples). Such clips are padded by one replicated
column / row, coded, and cropped back on decode; the displayed size is recorded in the MP4
metadata (:mod:`sandwich.formats.mp4_meta`). Gray and 4:4:4 code odd sizes directly.

Small frames and x265: libx265 (the version PyAV bundles) writes out of bounds on frames 33..48
pixels wide (48x32 or 48x256 abort the process with a corrupted heap, in 4:0:0 and 4:2:0 alike;
its 4:0:0 mode has a known invalid-read bug too, x265 issue #775), so x265 codes frames narrower
than 64 pixels padded to 64 columns the same way, cropped back on decode (a player shows the
padded width: such clips are thumbnails). Its lookahead runs
unsliced (``lookahead-slices=0``), which also crashed on small frames.

Rate: ``bits`` of a clip is the whole MP4 file. Per-frame bits are the sizes of the frames'
packets in the file; the rest (``ClipInfo.overhead_bits``, about 900 bytes) is the container and
the parameter sets. Both encoders normally write a text SEI with their version and options (x264
about 600 bytes in the first frame's packet, x265 about 2.3 KB in the headers): it carries nothing a
decoder needs, so by default it is left out (x264: FFmpeg's ``filter_units`` bitstream filter drops
SEI NAL units, the only ones these settings produce; x265: ``info=0``); ``version_sei=True`` keeps
it.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from sandwich.codecs.base import Knob
from sandwich.codecs.clip_base import ClipInfo, RealClipCodec
from sandwich.errors import SandwichError
from sandwich.formats.mp4_meta import (
    COMMENT_KEY,
    crop_from_fields,
    make_comment,
    parse_comment,
    sniff_mp4,
    tag_from_fields,
)
from sandwich.formats.tag import FileTag
from sandwich.media.clips import DecodedVideo, decode_video, to_rgb
from sandwich.media.yuv import rgb_to_planes

SUBSAMPLINGS = ("4:2:0", "4:4:4", "gray")
BIT_DEPTHS = (8, 10)
RATE_CONTROLS = ("crf", "qp")
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
MIN_SIDE = 8
DEFAULT_KNOB = 28.0  # x264's and x265's default CRF
# FFmpeg's AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic
_RANGE_MPEG, _RANGE_JPEG, _BT709 = 1, 2, 1
_PIX_FMT = {
    ("gray", 8): "gray",
    ("gray", 10): "gray10le",
    ("4:2:0", 8): "yuv420p",
    ("4:2:0", 10): "yuv420p10le",
    ("4:4:4", 8): "yuv444p",
    ("4:4:4", 10): "yuv444p10le",
}


class _PyAVClipCodec(RealClipCodec):
    """x264 / x265 in MP4 through PyAV: the shared machinery (see the module docstring).

    Args:
        subsampling: ``"4:2:0"`` (default), ``"4:4:4"`` or ``"gray"`` (4:0:0, one channel: the
            codec then takes and returns (T, H, W) frames).
        bit_depth: 8 (uint8 frames 0..255) or 10 (uint16 frames 0..1023).
        rate_control: ``"crf"`` (constant rate factor, default) or ``"qp"`` (constant
            quantiser); either is the knob, 0..51, lower is better.
        gop: frames from one key (I) frame to the next; None (default) codes the whole clip as
            one GOP, I P P P ...
        preset: the encoder's speed preset (``"ultrafast"`` .. ``"placebo"``, default
            ``"medium"``).
        fps: frame rate written to the file (frames per second), unless :meth:`encode` gets one.
        threads: encoder and decoder threads (1 by default: deterministic and light).
        params: extra ``key=value:key=value`` encoder parameters appended to sandwich's own
            (they win over them).
        version_sei: keep the encoder's version/options SEI (off by default, see above).
    """

    encoder: ClassVar[str] = ""
    params_option: ClassVar[str] = ""
    stream_codec: ClassVar[str] = ""
    name: ClassVar[str] = ""
    sei_filter: ClassVar[str | None] = None  # bitstream filter that drops the version SEI
    codec_tag: ClassVar[str | None] = None  # MP4 sample entry, when not the muxer's default
    min_coded_width: ClassVar[int] = 0  # narrower frames are padded (and cropped on decode)
    differentiable = False
    extension = ".mp4"
    suffixes = (".mp4",)
    max_side = 8192

    def __init__(
        self,
        subsampling: str = "4:2:0",
        bit_depth: int = 8,
        rate_control: str = "crf",
        gop: int | None = None,
        preset: str = "medium",
        fps: float = 25.0,
        threads: int = 1,
        params: str = "",
        version_sei: bool = False,
    ):
        super().__init__()
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(
                f"unknown {self.name} subsampling {subsampling!r}; use one of {SUBSAMPLINGS}"
            )
        if bit_depth not in BIT_DEPTHS:
            raise ValueError(f"{self.name} bit_depth must be one of {BIT_DEPTHS}, got {bit_depth}")
        if rate_control not in RATE_CONTROLS:
            raise ValueError(
                f"{self.name} rate_control must be one of {RATE_CONTROLS}, got {rate_control!r}"
            )
        if gop is not None and int(gop) < 1:
            raise ValueError(f"gop must be at least 1 frame, got {gop}")
        if preset not in PRESETS:
            raise ValueError(f"unknown {self.name} preset {preset!r}; use one of {PRESETS}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.subsampling = subsampling
        self.bit_depth = int(bit_depth)
        self.rate_control = rate_control
        self.gop = None if gop is None else int(gop)
        self.preset = preset
        self.fps = float(fps)
        self.threads = max(1, int(threads))
        self.params = params.strip(":")
        self.version_sei = bool(version_sei)
        self.channels = 1 if subsampling == "gray" else 3
        self.peak = (1 << self.bit_depth) - 1
        self.pixel_format = _PIX_FMT[(subsampling, self.bit_depth)]
        self.knob = Knob(
            rate_control, 0, 51, higher_is_better=False, label=f"{self.name} {rate_control.upper()}"
        )
        self.format_name = f"{'H.264' if self.stream_codec == 'h264' else 'HEVC'} MP4"

    # ------------------------------------------------------------------ encoder settings
    def _encoder_params(self, keyint: int) -> str:
        """The ``x264-params`` / ``x265-params`` string for a GOP of ``keyint`` frames."""
        items = [
            f"keyint={keyint}",
            f"min-keyint={keyint}",
            "scenecut=0",
            "bframes=0",
            "ref=1",
        ]
        if self.subsampling == "4:2:0":
            items.append("chromaloc=1")  # chroma sited at the centre of each 2x2 block
        items += self._own_params()
        if self.params:
            items.append(self.params)
        return ":".join(items)

    def _own_params(self) -> list[str]:
        return []

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """CRF or QP / 51: (N,), 0 (finest) .. 1 (coarsest)."""
        q = torch.as_tensor(quality, dtype=torch.float32).flatten()
        if q.numel() == 1:
            q = q.expand(n)
        return q / 51.0

    def condition_value(self, value: float | None, n: int = 1) -> Tensor:
        """:meth:`condition` from the CRF (or QP) a file records; the encoders' own default,
        28, when it records none."""
        return self.condition(DEFAULT_KNOB if value is None else float(value), n)

    # ------------------------------------------------------------------ encode
    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        want = np.uint8 if self.bit_depth == 8 else np.uint16
        if not isinstance(frames, np.ndarray) or frames.dtype != want:
            raise ValueError(
                f"{self.bit_depth}-bit {self.name} encodes {np.dtype(want).name} frames, got "
                f"{getattr(frames, 'dtype', type(frames).__name__)}"
            )
        if self.channels == 1:
            if frames.ndim == 4 and frames.shape[3] == 1:
                frames = frames[..., 0]
            if frames.ndim != 3:
                raise ValueError(f"a gray {self.name} clip is (T, H, W), got shape {frames.shape}")
        elif frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(f"a colour {self.name} clip is (T, H, W, 3), got {frames.shape}")
        t, h, w = frames.shape[:3]
        if t < 1:
            raise ValueError("a clip needs at least one frame")
        if min(h, w) < MIN_SIDE or max(h, w) > self.max_side:
            raise ValueError(
                f"{self.name} codes frames of {MIN_SIDE}..{self.max_side} pixels a side, "
                f"got {w}x{h}"
            )
        if self.bit_depth > 8 and int(frames.max()) > self.peak:
            raise ValueError(f"10-bit frames hold values 0..{self.peak}, got {int(frames.max())}")
        return np.ascontiguousarray(frames)

    def _planes(self, frames: np.ndarray) -> list[np.ndarray]:
        """The planes to code, each (T, h, w)."""
        if self.channels == 1:
            return [frames]
        chroma = "4:4:4" if self.subsampling == "4:4:4" else "4:2:0"
        return list(rgb_to_planes(frames, self.peak, chroma, "bt709", full_range=False))

    def encode(
        self,
        frames: np.ndarray,
        quality: float,
        tag: FileTag | None = None,
        fps: float | None = None,
    ) -> bytes:
        """Encode frames (T, H, W, 3), or (T, H, W) for gray (uint8 at 8 bits, uint16 0..1023
        at 10) to MP4 bytes at CRF / QP ``quality`` (0..51, rounded to an integer). ``tag``
        records a sandwich :class:`FileTag` in the file (as :meth:`tag` does); ``fps``
        overrides the codec's frame rate."""
        import av
        from av.bitstream import BitStreamFilterContext

        q = int(round(quality))
        if q not in self.knob:
            raise ValueError(f"{self.knob.describe()}: got {quality}")
        frames = self._check_frames(frames)
        t, h, w = frames.shape[:3]
        crop = None
        ph, pw = h, max(w, self.min_coded_width)
        if self.subsampling == "4:2:0":
            ph, pw = ph + ph % 2, pw + pw % 2
        if (ph, pw) != (h, w):
            pad = [(0, 0), (0, ph - h), (0, pw - w)] + [(0, 0)] * (frames.ndim - 3)
            frames = np.pad(frames, pad, mode="edge")
            crop = (h, w)
        planes = self._planes(frames)
        ch, cw = frames.shape[1:3]
        comment = make_comment(tag, crop)
        rate = Fraction(fps if fps is not None else self.fps).limit_denominator(1001)
        dtype = np.dtype("<u2") if self.bit_depth > 8 else np.dtype(np.uint8)
        buf = io.BytesIO()
        stamps: list[tuple[int, int]] = []
        try:
            with av.open(buf, "w", format="mp4") as out:
                if comment is not None:
                    out.metadata[COMMENT_KEY] = comment
                stream = out.add_stream(self.encoder, rate=rate)
                stream.width, stream.height, stream.pix_fmt = cw, ch, self.pixel_format
                if self.codec_tag:
                    stream.codec_tag = self.codec_tag
                cc = stream.codec_context
                cc.thread_count = self.threads
                cc.color_range = _RANGE_JPEG if self.channels == 1 else _RANGE_MPEG
                cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
                stream.options = {
                    self.rate_control: str(q),
                    "preset": self.preset,
                    self.params_option: self._encoder_params(self.gop or t),
                }
                bsf = None

                def mux(packets, filtered: bool = False) -> None:
                    nonlocal bsf
                    packets = list(packets)
                    if packets and not filtered and self.sei_filter and not self.version_sei:
                        if bsf is None:  # the encoder is open now: its parameters are known
                            bsf = BitStreamFilterContext(self.sei_filter, stream)
                        packets = [p for packet in packets for p in bsf.filter(packet)]
                    for packet in packets:
                        packet.stream = stream
                        stamps.append((int(packet.pts), int(packet.dts)))
                        out.mux(packet)

                for i in range(t):
                    frame = av.VideoFrame(cw, ch, self.pixel_format)
                    for plane, src in zip(frame.planes, planes, strict=True):
                        view = np.frombuffer(plane, dtype=dtype).reshape(
                            plane.height, plane.line_size // dtype.itemsize
                        )
                        view[:, : plane.width] = src[i]
                    frame.pts = i
                    mux(stream.encode(frame))
                mux(stream.encode())
                if bsf is not None:
                    mux(bsf.filter(None), filtered=True)
        except av.FFmpegError as e:
            raise SandwichError(f"{self.name} could not encode the clip ({e})") from None
        if len(stamps) != t:
            raise RuntimeError(f"{self.name} gave {len(stamps)} packets for {t} frames")
        pts = [p for p, _ in stamps]
        b_frames_asked = "bframes" in self.params  # the user's params win over ours
        if not b_frames_asked and (pts != sorted(pts) or any(p != d for p, d in stamps)):
            raise RuntimeError(f"{self.name} reordered frames although B-frames are off")
        return buf.getvalue()

    # ------------------------------------------------------------------ decode
    def _frames(self, video: DecodedVideo) -> np.ndarray:
        if self.channels == 3:
            return to_rgb(video, self.peak)
        if video.rgb_frames or video.pixel_format.startswith("gbrp"):
            raise SandwichError(f"a {video.pixel_format} video has no luma plane to read as gray")
        y = video.stacked(0)
        if video.peak != self.peak:
            y = np.rint(y.astype(np.float64) * (self.peak / video.peak))
        y = y.astype(np.uint8 if self.peak <= 255 else np.uint16)
        crop = video.crop
        if crop is not None:
            y = y[:, : crop[0], : crop[1]]
        return np.ascontiguousarray(y)

    def decode(self, data: bytes) -> tuple[np.ndarray, ClipInfo]:
        """MP4 bytes -> frames ((T, H, W, 3) RGB, or (T, H, W) luma for gray; uint8 at 8 bits,
        uint16 0..1023 at 10) and their :class:`ClipInfo` (frame types and packet bits in
        display order). Raises :class:`SandwichError` for data that is not a decodable video."""
        video = decode_video(data, name=f"{self.format_name} data")
        frames = self._frames(video)
        info = ClipInfo(
            fps=video.fps,
            frame_types=tuple(video.frame_types),
            frame_bits=tuple(video.frame_bits),
            pixel_format=video.pixel_format,
            height=int(frames.shape[1]),
            width=int(frames.shape[2]),
            codec=video.codec,
            file_bits=8 * len(data),
            reordered=video.reordered,
        )
        return frames, info

    # ------------------------------------------------------------------ the file tag
    @staticmethod
    def sniff(data: bytes) -> bool:
        """An MP4 starts with an 'ftyp' box naming a video brand."""
        return sniff_mp4(data)

    @staticmethod
    def _comment(data: bytes) -> str | None:
        import av

        if not sniff_mp4(data):
            raise SandwichError("not an MP4 file (no 'ftyp' box with a video brand)")
        try:
            with av.open(io.BytesIO(bytes(data)), "r") as c:
                return c.metadata.get(COMMENT_KEY)
        except av.FFmpegError as e:
            raise SandwichError(f"truncated or corrupt MP4 ({e})") from None

    def read_tag(self, data: bytes) -> FileTag | None:
        """The sandwich tag in the MP4's metadata, or None for a plain MP4."""
        return tag_from_fields(parse_comment(self._comment(data)))

    def tag(self, data: bytes, tag: FileTag) -> bytes:
        """The MP4 remuxed (packets copied, nothing re-encoded) with ``tag`` in its metadata;
        a crop recorded in ``data`` is kept. It decodes to the same frames as ``data``."""
        import av

        crop = crop_from_fields(parse_comment(self._comment(data)))
        comment = make_comment(tag, crop)
        buf = io.BytesIO()
        try:
            with (
                av.open(io.BytesIO(bytes(data)), "r") as src,
                av.open(buf, "w", format="mp4") as out,
            ):
                if not src.streams.video:
                    raise SandwichError("the MP4 has no video stream to tag")
                out.metadata[COMMENT_KEY] = comment
                ist = src.streams.video[0]
                ost = out.add_stream_from_template(ist)
                ost.codec_tag = ist.codec_tag  # keep 'hvc1' (the template falls back to 'hev1')
                for packet in src.demux(ist):
                    if packet.dts is None:  # the demuxer's final empty packet
                        continue
                    packet.stream = ost
                    out.mux(packet)
        except av.FFmpegError as e:
            raise SandwichError(f"could not rewrite the MP4 with its tag ({e})") from None
        return buf.getvalue()


class X264Codec(_PyAVClipCodec):
    """H.264 by libx264 in MP4 (see :class:`_PyAVClipCodec` for the arguments). 10-bit and
    4:4:4 streams use the High 10 / High 4:4:4 profiles, gray streams 4:0:0 (High)."""

    encoder = "libx264"
    params_option = "x264-params"
    stream_codec = "h264"
    name = "x264"
    sei_filter = "filter_units=remove_types=6"  # SEI NAL units: x264's version string


class X265Codec(_PyAVClipCodec):
    """HEVC by libx265 in MP4 (see :class:`_PyAVClipCodec` for the arguments): closed GOPs,
    one thread pool of ``threads`` threads, quiet logging, sample entry 'hvc1'. 10-bit 4:2:0 is
    Main 10; gray and 4:4:4 use the range extensions (Rext) profiles."""

    encoder = "libx265"
    params_option = "x265-params"
    stream_codec = "hevc"
    name = "x265"
    # 'hvc1' (parameter sets only in the sample entry, where x265 puts them for MP4) rather than
    # FFmpeg's default 'hev1': Apple's players open only 'hvc1'
    codec_tag = "hvc1"
    # x265 corrupts the heap on frames 33..48 pixels wide (e.g. 48x32, 48x256: the process
    # aborts); frames narrower than 64 pixels are coded padded to 64 and cropped back
    min_coded_width = 64

    def _own_params(self) -> list[str]:
        return [
            "open-gop=0",
            # the lookahead's slices write out of bounds on small frames (a 48x64 clip aborts
            # the process with a corrupted heap); unsliced, its estimates are exact and safe
            "lookahead-slices=0",
            *([] if self.version_sei else ["info=0"]),
            "log-level=error",
            f"pools={self.threads}",
            "frame-threads=1",
        ]


CLIP_CODECS: dict[str, type[RealClipCodec]] = {"x264": X264Codec, "x265": X265Codec}
