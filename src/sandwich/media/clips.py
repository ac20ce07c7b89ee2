"""Reading and writing clips: video files (through PyAV's FFmpeg) and folders of PNG frames.

A clip in memory is a (T, H, W, 3) uint8 RGB array (T frames of H x W pixels) and a frame rate in
frames per second. It is read from any video file FFmpeg opens (MP4, MKV, ...) or from a folder of
numbered PNG frames (``0.png, 1.png, ...`` or ``000.png, 001.png, ...``, sorted by number), and
written to a folder of PNGs (``000.png, ...``) or to a lossless FFV1 ``.mkv`` file (RGB kept
exactly). Problems are
one-line :class:`SandwichError` messages; outputs are written under a temporary name and renamed,
so a failure never leaves half a clip behind.

Colour: the planes of 8- and 10-bit gray, 4:2:0, 4:2:2 and 4:4:4 Y'CbCr videos are converted
with :mod:`sandwich.media.yuv` (the matrix the file signals: BT.709 when it signals none, BT.601
when it says so; studio range unless it signals full range), planar RGB is copied exactly, and
anything else (packed RGB such as FFV1's ``bgr0``: exact; other layouts) goes through FFmpeg's own
converter.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sandwich.errors import SandwichError
from sandwich.formats.mp4_meta import crop_from_fields, parse_comment, sniff_mp4
from sandwich.media.files import (
    IMAGE_SUFFIXES,
    atomic_write_bytes,
    check_writable,
    load_rgb,
    stored_bits,
)
from sandwich.media.limits import check_pixels, clip_budget, pillow_bombs_as_errors
from sandwich.media.yuv import planes_to_rgb

DEFAULT_FPS = 25.0
LOSSLESS_SUFFIXES = (".mkv",)


@dataclass(frozen=True)
class Clip:
    """A clip as the library passes it around: ``frames`` (T, H, W, 3) uint8 RGB and its
    frame rate ``fps`` (frames per second)."""

    frames: np.ndarray
    fps: float = DEFAULT_FPS

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.frames.shape)


_FRAME_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)
# FFmpeg colour properties (AVColorSpace, AVColorRange values)
_SPC_BT709, _SPC_UNSPECIFIED, _SPC_BT470BG, _SPC_SMPTE170M = 1, 2, 5, 6
_RANGE_JPEG = 2
_YUV_FORMATS = re.compile(r"^(gray|yuvj?4[24][024]p)(9|10|12|14|16)?(le)?$")


@dataclass
class DecodedVideo:
    """The frames of a video file as the decoder gave them, and what the packets told.

    Attributes:
        planes: per frame (display order), its planes as 2-D arrays (uint8, or uint16 for deeper
            formats), e.g. Y (H, W), Cb and Cr (H/2, W/2) for 4:2:0.
        pixel_format: FFmpeg's name of the decoded frames' format (``yuv420p``, ``gray``, ...).
        bits_per_sample: 8, 10, ...
        frame_types: per frame, ``"I"``, ``"P"`` or ``"B"`` (FFmpeg's picture type).
        frame_bits: per frame (display order), the size of its packet in bits.
        reordered: True when packets are stored out of display order (B-frames).
        fps: frames per second.
        codec: the decoder's name (``h264``, ``hevc``, ...).
        height, width: the coded frame size in pixels.
        colorspace, color_range: what the stream signals (FFmpeg's AVColorSpace, AVColorRange).
        comment: the container's ``comment`` metadata, if any.
        rgb_frames: frames FFmpeg converted to RGB itself, for formats not handled here.
    """

    planes: list[list[np.ndarray]]
    pixel_format: str
    bits_per_sample: int
    frame_types: list[str]
    frame_bits: list[int]
    reordered: bool
    fps: float
    codec: str
    height: int
    width: int
    colorspace: int = _SPC_UNSPECIFIED
    color_range: int = 0
    comment: str | None = None
    rgb_frames: list[np.ndarray] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return (1 << self.bits_per_sample) - 1

    def stacked(self, index: int) -> np.ndarray:
        """Plane ``index`` of every frame: (T, h, w)."""
        return np.stack([p[index] for p in self.planes])

    @property
    def crop(self) -> tuple[int, int] | None:
        """The displayed (height, width) recorded by sandwich for padded frames, or None."""
        return crop_from_fields(parse_comment(self.comment))


def _open_error(name: str, head: bytes, exc: Exception) -> SandwichError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if sniff_mp4(head):
        return SandwichError(f"{name}: truncated or corrupt MP4, cannot read it ({reason})")
    return SandwichError(f"{name}: not a video file (or a format FFmpeg cannot read)")


def _picture_type(value) -> str:
    import av

    try:
        return av.video.frame.PictureType(int(value)).name
    except ValueError:
        return "?"


def _frame_planes(frame, bits: int) -> list[np.ndarray]:
    """The planes of a decoded frame, without the line padding, as copies."""
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    out = []
    for plane in frame.planes:
        arr = np.frombuffer(plane, dtype=dtype)
        arr = arr.reshape(plane.height, plane.line_size // dtype.itemsize)[:, : plane.width]
        out.append(arr.astype(np.uint16 if bits > 8 else np.uint8))
    return out


def decode_video(source: bytes | str | Path, name: str | None = None) -> DecodedVideo:
    """Decode every frame of a video (file path or bytes) with one decoder thread.

    Raises :class:`SandwichError` (one line, naming ``name``) for files that are not videos,
    images, truncated or corrupt MP4s, and videos without a video stream or frames."""
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "video data"
        head = data[:64]
        handle: io.BytesIO | str = io.BytesIO(data)
    else:
        p = Path(source)
        name = name or str(p)
        if not p.exists():
            raise SandwichError(f"{p}: no such file")
        if p.is_dir():
            raise SandwichError(f"{p}: is a folder, not a video file")
        with open(p, "rb") as f:
            head = f.read(64)
        handle = str(p)
    if not head:
        raise SandwichError(f"{name}: is empty, not a video file")
    try:
        container = av.open(handle, "r")
    except av.FFmpegError as e:
        raise _open_error(name, head, e) from None
    with container:
        fmt = container.format.name or ""
        if fmt.endswith("_pipe") or fmt == "image2":
            raise SandwichError(
                f"{name}: is an image, not a video; a clip is a video file or a folder of "
                "numbered PNG frames"
            )
        if not container.streams.video:
            if sniff_mp4(head):  # an MP4 cut before its 'moov' box lists no stream at all
                raise SandwichError(f"{name}: truncated or corrupt MP4 (no video stream found)")
            raise SandwichError(f"{name}: has no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        declared = (stream.codec_context.height, stream.codec_context.width)
        if all(declared):  # before any frame is decoded
            check_pixels(*declared, f"{name}'s frames")
        budget, total = clip_budget(), 0
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        comment = container.metadata.get("comment")
        sizes: dict[int, int] = {}  # packet bits by presentation time stamp
        order: list[int] = []  # time stamps in decode (storage) order
        packet_bits: list[int] = []  # decode order, for streams without time stamps
        planes: list[list[np.ndarray]] = []
        rgb: list[np.ndarray] = []
        types: list[str] = []
        pts_seen: list[int | None] = []
        first = None
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packet_bits.append(8 * packet.size)
                    if packet.pts is not None:
                        sizes[int(packet.pts)] = 8 * packet.size
                        order.append(int(packet.pts))
                for frame in packet.decode():
                    if first is None:
                        first = frame
                    total += frame.width * frame.height
                    if total > budget:
                        raise SandwichError(
                            f"{name}: {len(types) + 1} frames of {frame.width}x{frame.height} are "
                            f"more than a clip may hold ({budget:,} pixels); cut the clip, or "
                            "raise --max-pixels (a clip holds 10 times as many)"
                        )
                    if (frame.width, frame.height) != (first.width, first.height):
                        raise SandwichError(
                            f"{name}: frames change size ({first.width}x{first.height} to "
                            f"{frame.width}x{frame.height}); sandwich reads clips of one size"
                        )
                    fmt_name = frame.format.name
                    bits = frame.format.components[0].bits
                    if _YUV_FORMATS.match(fmt_name) or fmt_name.startswith("gbrp"):
                        planes.append(_frame_planes(frame, bits))
                    else:
                        rgb.append(frame.to_ndarray(format="rgb24"))
                    types.append(_picture_type(frame.pict_type))
                    pts_seen.append(frame.pts)
        except av.FFmpegError as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            kind = "MP4" if sniff_mp4(head) else "video"
            raise SandwichError(f"{name}: truncated or corrupt {kind} ({reason})") from None
        expected = stream.frames
        if first is None:
            raise SandwichError(f"{name}: no frame could be decoded; is the file truncated?")
        if expected and len(types) < expected:
            raise SandwichError(
                f"{name}: truncated or corrupt video: {len(types)} of {expected} frames decoded"
            )
        if pts_seen and all(p is not None for p in pts_seen) and len(sizes) == len(pts_seen):
            frame_bits = [sizes.get(int(p), 0) for p in pts_seen]
        else:  # no time stamps (raw streams): packets in decode order
            frame_bits = (packet_bits + [0] * len(types))[: len(types)]
        return DecodedVideo(
            planes=planes,
            pixel_format=first.format.name,
            bits_per_sample=int(first.format.components[0].bits),
            frame_types=types,
            frame_bits=frame_bits,
            reordered=order != sorted(order),
            fps=float(rate) if rate else DEFAULT_FPS,
            codec=stream.codec_context.name,
            height=int(first.height),
            width=int(first.width),
            colorspace=int(first.colorspace or _SPC_UNSPECIFIED),
            color_range=int(first.color_range or 0),
            comment=comment,
            rgb_frames=rgb,
        )


def to_rgb(video: DecodedVideo, out_peak: int = 255) -> np.ndarray:
    """The frames of ``video`` as (T, H, W, 3) RGB integers 0..``out_peak`` (uint8 at 255).

    Gray videos give three equal channels. The ``crop`` sandwich recorded is applied."""
    if video.rgb_frames:
        arr = np.stack(video.rgb_frames)
        if out_peak != 255:
            arr = np.rint(arr.astype(np.float64) * (out_peak / 255.0)).astype(np.uint16)
    else:
        fmt = video.pixel_format
        if fmt.startswith("gbrp"):  # planar G, B, R: exact
            g, b, r = (video.stacked(i).astype(np.float64) for i in range(3))
            arr = np.stack([r, g, b], -1) * (out_peak / video.peak)
            arr = np.rint(arr).astype(np.uint8 if out_peak <= 255 else np.uint16)
        else:
            y = video.stacked(0)
            full = video.color_range == _RANGE_JPEG or fmt.startswith(("yuvj", "gray"))
            if fmt.startswith("gray"):
                mid = np.full_like(y, (video.peak + 1) // 2)
                cb = cr = mid
            else:
                cb, cr = video.stacked(1), video.stacked(2)
            standard = "bt601" if video.colorspace in (_SPC_BT470BG, _SPC_SMPTE170M) else "bt709"
            arr = planes_to_rgb(y, cb, cr, video.peak, standard, full, out_peak=out_peak)
    crop = video.crop
    if crop is not None:
        arr = arr[:, : crop[0], : crop[1]]
    return np.ascontiguousarray(arr)


# ------------------------------------------------------------------------------ reading clips
def list_frames(folder: str | Path) -> list[Path]:
    """The numbered PNG frames (``0.png``, ``001.png``, ...) of ``folder``, sorted by number.

    Raises :class:`SandwichError` when it has none, or two files with one number."""
    folder = Path(folder)
    numbered: dict[int, Path] = {}
    for p in folder.iterdir():
        m = _FRAME_NAME.match(p.name)
        if not m or not p.is_file():
            continue
        k = int(m.group(1))
        if k in numbered:
            raise SandwichError(
                f"{folder}: {numbered[k].name} and {p.name} are both frame {k}; keep one"
            )
        numbered[k] = p
    if not numbered:
        raise SandwichError(
            f"{folder}: no frames; a clip folder holds numbered PNG frames (0.png, 1.png, ... "
            "or 000.png, 001.png, ...)"
        )
    return [numbered[k] for k in sorted(numbered)]


def _read_frame(p: Path) -> np.ndarray:
    try:
        with pillow_bombs_as_errors(f"{p}"), Image.open(p) as im:
            bits = stored_bits(im)
            check_pixels(im.height, im.width, f"{p}")
    except UnidentifiedImageError:
        raise SandwichError(f"{p}: not a PNG frame (or a file Pillow cannot read)") from None
    except OSError as e:
        raise SandwichError(f"{p}: cannot read the frame ({e}); is the file truncated?") from None
    if bits > 8:
        raise SandwichError(
            f"{p}: is a 16-bit frame; clips are read as 8-bit RGB: convert the frames to 8-bit "
            "PNGs first (e.g. ffmpeg -i in/%03d.png -pix_fmt rgb24 out/%03d.png)"
        )
    return load_rgb(p, allow_gray=True)


def read_frames(folder: str | Path) -> np.ndarray:
    """The numbered PNG frames of ``folder`` as a (T, H, W, 3) uint8 clip (gray frames become
    three equal channels). One-line :class:`SandwichError` for a folder without frames, frames
    of different sizes, 16-bit frames, frames with alpha and unreadable files."""
    paths = list_frames(folder)
    frames = []
    budget, total = clip_budget(), 0
    for p in paths:
        arr = _read_frame(p)
        total += arr.shape[0] * arr.shape[1]
        if total > budget:
            raise SandwichError(
                f"{folder}: {len(frames) + 1} frames of {arr.shape[1]}x{arr.shape[0]} are more "
                f"than a clip may hold ({budget:,} pixels); cut the clip, or raise --max-pixels "
                "(a clip holds 10 times as many)"
            )
        if frames and arr.shape != frames[0].shape:
            h0, w0 = frames[0].shape[:2]
            h, w = arr.shape[:2]
            raise SandwichError(
                f"{folder}: frame {p.name} is {w}x{h} but {paths[0].name} is {w0}x{h0}; all "
                "frames of a clip must have one size"
            )
        frames.append(arr)
    return np.stack(frames)


def read_clip(path: str | Path, fps: float = DEFAULT_FPS) -> tuple[np.ndarray, float]:
    """A clip from a video file or a folder of numbered PNG frames: ((T, H, W, 3) uint8 RGB,
    frames per second). A folder has no rate of its own: ``fps`` is returned for it. Videos
    deeper than 8 bits are rounded to 8 bits."""
    p = Path(path)
    if not p.exists():
        raise SandwichError(f"{p}: no such file or folder")
    if p.is_dir():
        return read_frames(p), float(fps)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise SandwichError(
            f"{p}: is an image, not a clip; a clip is a video file or a folder of numbered PNG "
            "frames"
        )
    video = decode_video(p)
    return to_rgb(video, 255), video.fps


# ------------------------------------------------------------------------------ writing clips
def _check_clip(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise SandwichError(f"clips are written from uint8 frames, got {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[3] not in (1, 3) or frames.shape[0] == 0:
        raise SandwichError(
            f"a clip is (T, H, W, 3) or (T, H, W) with T >= 1 frames, got shape {frames.shape}"
        )
    if frames.shape[3] == 1:
        frames = np.repeat(frames, 3, axis=3)
    return np.ascontiguousarray(frames)


def encode_lossless(frames: np.ndarray, fps: float = DEFAULT_FPS) -> bytes:
    """(T, H, W, 3) uint8 RGB as an FFV1 stream (lossless RGB, ``bgr0`` samples) in Matroska
    bytes."""
    import av

    frames = _check_clip(frames)
    t, h, w, _ = frames.shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
        stream.codec_context.thread_count = 1
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24").reformat(format="bgr0")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _is_clip_folder(p: Path) -> bool:
    return all(_FRAME_NAME.match(q.name) and q.is_file() for q in p.iterdir())


def write_frames(out: str | Path, frames: np.ndarray, force: bool = False) -> None:
    """Write a (T, H, W, 3) or (T, H, W) uint8 clip as ``out/000.png, 001.png, ...`` (wider
    numbers for more than 1000 frames), through a temporary folder renamed at the end.

    An existing ``out`` is refused unless ``force``, and even then only when it holds nothing
    but numbered PNG frames (a previous clip), so no other folder is ever replaced."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[0] == 0:
        raise SandwichError(
            f"a clip is (T, H, W, 3) or (T, H, W) uint8 with T >= 1, got {frames.dtype} "
            f"{frames.shape}"
        )
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise SandwichError(f"{parent}: output folder does not exist; create it first")
    if out.exists():
        if not out.is_dir():
            raise SandwichError(f"{out}: is a file; give a folder name for the frames")
        if any(out.iterdir()) and not force:
            raise SandwichError(f"{out}: already exists; pass --force to overwrite it")
        if not _is_clip_folder(out):
            raise SandwichError(
                f"{out}: holds files other than numbered PNG frames; choose another folder"
            )
    digits = max(3, len(str(frames.shape[0] - 1)))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", suffix=".part", dir=parent))
    old = None
    try:
        for i, frame in enumerate(frames):
            Image.fromarray(np.ascontiguousarray(frame)).save(tmp / f"{i:0{digits}d}.png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; outputs get the usual mode
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-", suffix=".old", dir=parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists() and (old / out.name).exists():
            os.replace(old / out.name, out)  # put the previous clip back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_clip(
    out: str | Path, frames: np.ndarray, fps: float = DEFAULT_FPS, force: bool = False
) -> None:
    """Write a (T, H, W, 3) or (T, H, W) uint8 clip: to ``out`` as a lossless FFV1 ``.mkv``
    file, or, for a name without a suffix (or an existing folder), as a folder of numbered
    PNG frames (:func:`write_frames`). Written atomically; ``force`` overwrites. (An ``.mp4``
    viewing copy is coded by the caller: :func:`sandwich.api.save_clip`.)"""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in LOSSLESS_SUFFIXES:
        check_writable(out, force)
        atomic_write_bytes(out, encode_lossless(frames, fps), force)
        return
    if suffix and not out.is_dir():
        raise SandwichError(
            f"{out}: clips are written as lossless {', '.join(LOSSLESS_SUFFIXES)} files or as "
            "a folder of PNG frames (give a name without a suffix)"
        )
    write_frames(out, frames, force)
