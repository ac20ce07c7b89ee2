"""Random spatio-temporal crops of clips, deterministic given a generator (the video counterpart
of :class:`sandwich.training.dataset.PatchSampler`).

A clip is a folder of numbered PNG frames (``000.png, 001.png, ...``, as ``sandwich data --kind
video`` writes them) or a video file FFmpeg reads (``.mp4``, ``.mkv``, ...). A training folder
holds clips as its sub-folders and files; a folder that itself holds numbered frames is one
clip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sandwich.errors import SandwichError
from sandwich.training.dataset import data_folders

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".mpg", ".mpeg")
_FRAME = re.compile(r"^\d+\.png$", re.IGNORECASE)


def is_frame_folder(path: Path) -> bool:
    """True if ``path`` is a folder holding at least one numbered PNG frame."""
    return path.is_dir() and any(_FRAME.match(p.name) and p.is_file() for p in path.iterdir())


def is_video_file(path: Path) -> bool:
    """True if ``path`` is a file whose suffix names a video container."""
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def list_clips(data: str | Path | list[str] | list[Path]) -> list[Path]:
    """The clips named by ``data`` (one path, a list, or several joined by ``os.pathsep``; see
    :func:`sandwich.training.dataset.data_folders`): a clip folder or video file stands for
    itself, any other folder for the clips directly inside it (sorted by name; not searched
    deeper, so ``data/video`` does not mix its splits). One-line error for a missing path or a
    folder without clips."""
    clips: list[Path] = []
    for path in data_folders(data):
        if not path.exists():
            raise SandwichError(
                f"{path}: no such folder or file; build clips with `sandwich data --kind video`"
            )
        if path.is_file():
            if not is_video_file(path):
                raise SandwichError(
                    f"{path}: not a clip; a clip is a video file ({', '.join(VIDEO_SUFFIXES)}) "
                    "or a folder of numbered PNG frames"
                )
            clips.append(path)
            continue
        if is_frame_folder(path):
            clips.append(path)
            continue
        found = sorted(p for p in path.iterdir() if is_frame_folder(p) or is_video_file(p))
        if not found:
            hint = ""
            if any(is_frame_folder(q) for p in path.iterdir() if p.is_dir() for q in p.iterdir()):
                hint = " (its sub-folders hold clips: pass one of them, e.g. its train folder)"
            raise SandwichError(
                f"{path}: no clips in this folder; a clip is a sub-folder of numbered PNG "
                f"frames or a video file{hint}"
            )
        clips += found
    return clips


def read_clip_frames(path: Path) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of a clip folder or video file. 16-bit frames are refused
    (one-line error: the video sandwich's codecs are 8-bit); deeper videos are rounded to 8
    bits by the reader."""
    from sandwich.media.clips import read_clip, read_frames

    if path.is_dir():
        return read_frames(path)
    frames, _ = read_clip(path)
    return frames


@dataclass(frozen=True)
class SkippedClip:
    """A clip left out of sampling and why."""

    path: Path
    reason: str


class ClipSampler:
    """Holds clips in memory and draws random (n, T, 3, P, P) float crops, 0..255.

    Per sample: a clip, with probability proportional to its volume (frames x height x width,
    like the area weighting of :class:`~sandwich.training.dataset.PatchSampler`: every frame
    window and position is about equally likely, and a long video counts for more than a short
    one); a temporal stride,
    uniform over the ``strides`` that fit that clip; a start frame such that ``frames`` frames
    at that stride fit; one P x P position used in every frame; a horizontal flip of all frames
    (``flips``); and, with ``reverse``, the frames in reverse order (off by default). Every draw
    comes from ``generator``, so restoring its state repeats the batches exactly.

    Clips shorter than ``(frames - 1) * min(strides) + 1`` frames or smaller than P x P are
    skipped (``skipped`` lists them with the reason); a one-line :class:`SandwichError` when no
    clip is usable, a clip cannot be read, a folder's frames differ in size, or a frame is
    16-bit (refused: convert the frames to 8-bit PNGs).

    Attributes: ``clips`` (the usable clips' paths), ``skipped``, ``frames`` (T), ``patch``
    (P), ``strides``, ``channels`` (3), ``bit_depth`` (8).
    """

    channels = 3
    bit_depth = 8

    def __init__(
        self,
        data: str | Path | list[str] | list[Path],
        frames: int,
        patch: int,
        strides: tuple[int, ...] | list[int] = (1,),
        flips: bool = True,
        reverse: bool = False,
    ):
        if frames < 1:
            raise SandwichError(f"clip length {frames}: use 1 frame or more")
        if patch < 1:
            raise SandwichError(f"patch size {patch}: use 1 pixel or more")
        strides = tuple(int(s) for s in strides)
        if not strides or min(strides) < 1:
            raise SandwichError(f"temporal strides {strides}: use 1 or more, e.g. 1,2")
        self.frames, self.patch, self.strides = frames, patch, strides
        self.flips, self.reverse = flips, reverse
        self.clips: list[Path] = []
        self.skipped: list[SkippedClip] = []
        self._data: list[Tensor] = []  # (N, 3, H, W) uint8 per usable clip
        self._strides: list[list[int]] = []  # the strides that fit each usable clip
        paths = list_clips(data)
        for path in paths:
            arr = read_clip_frames(path)
            n, h, w = arr.shape[:3]
            fit = [s for s in strides if (frames - 1) * s + 1 <= n]
            if not fit:
                need = (frames - 1) * min(strides) + 1
                self.skipped.append(SkippedClip(path, f"{n} frames, fewer than {need}"))
                continue
            if min(h, w) < patch:
                self.skipped.append(SkippedClip(path, f"{w}x{h}, smaller than {patch}x{patch}"))
                continue
            self.clips.append(path)
            self._strides.append(fit)
            self._data.append(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous())
        if not self._data:
            need = (frames - 1) * min(strides) + 1
            where = ", ".join(str(f) for f in data_folders(data))
            raise SandwichError(
                f"{where}: none of its {len(paths)} clips has {need} frames of at least "
                f"{patch}x{patch} pixels ({self.skipped[0].path.name}: {self.skipped[0].reason});"
                " use fewer frames or a smaller patch, or longer clips"
            )
        volume = torch.tensor([float(c.shape[0] * c.shape[2] * c.shape[3]) for c in self._data])
        self.weights = volume / volume.sum()

    def __len__(self) -> int:
        """Number of usable clips."""
        return len(self._data)

    def summary(self) -> str:
        """One line: how many clips are used, and how many were skipped."""
        text = f"{len(self.clips)} clips"
        if self.skipped:
            text += f" ({len(self.skipped)} skipped: {self.skipped[0].path.name}: "
            text += f"{self.skipped[0].reason}{', ...' if len(self.skipped) > 1 else ''})"
        return text

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """(n, T, 3, P, P) float32 crops on the 0..255 scale."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return torch.stack([self._crop(i, generator) for i in idx.tolist()])

    def _crop(self, i: int, generator: torch.Generator) -> Tensor:
        """One random (T, 3, P, P) crop of clip ``i``: stride, start, position, flip, order."""
        clip, fit = self._data[i], self._strides[i]
        t, p = self.frames, self.patch
        n, _, h, w = clip.shape
        stride = fit[int(torch.randint(0, len(fit), (1,), generator=generator))]
        start = int(torch.randint(0, n - (t - 1) * stride, (1,), generator=generator))
        y = int(torch.randint(0, h - p + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - p + 1, (1,), generator=generator))
        crop = clip[start : start + (t - 1) * stride + 1 : stride, :, y : y + p, x : x + p]
        if self.flips and int(torch.randint(0, 2, (1,), generator=generator)):
            crop = crop.flip(3)
        if self.reverse and int(torch.randint(0, 2, (1,), generator=generator)):
            crop = crop.flip(0)
        return crop.float()


def moving_stills(
    stills: list[np.ndarray], n: int, gen: torch.Generator, frames: int, patch: int
) -> Tensor:
    """n clips (n, T, 3, P, P) float32 on 0..255 made of still photos ``stills`` ((H, W, 3)
    uint8 each) set in motion (:func:`sandwich.proxies.video.clips.moving_clip`: pans, zooms,
    a sliding object), the photo and the motion drawn from ``gen``."""
    from sandwich.proxies.video.clips import moving_clip

    out = []
    for _ in range(n):
        i = int(torch.randint(len(stills), (1,), generator=gen))
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        clip = moving_clip(stills[i], np.random.default_rng(seed), frames, (patch, patch))
        out.append(torch.from_numpy(clip).permute(0, 3, 1, 2).float())
    return torch.stack(out)


class ClipSource:
    """The training clips of a video run: ``batch`` clips (n, T, 3, P, P), 0..255, per draw, a
    share ``still_share`` of them still photos from ``stills`` set in motion
    (:func:`moving_stills`), the rest from the clip corpus ``data``
    (:class:`ClipSampler`). ``batch`` is the global batch (all processes)."""

    def __init__(
        self,
        data,
        stills: str,
        still_share: float,
        batch: int,
        frames: int,
        patch: int,
        strides: tuple[int, ...],
    ) -> None:
        self.frames, self.patch = frames, patch
        self.stills: list[np.ndarray] = []
        self.n_still = 0
        if stills:
            from sandwich.training.dataset import _read_rgb, list_image_files

            self.stills = [_read_rgb(p) for p in list_image_files(stills)]
            self.n_still = round(batch * still_share)
        self.sampler = None
        if self.n_still < batch:
            self.sampler = ClipSampler(data, frames, patch, strides=tuple(strides))

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        """n clips: the corpus's first, then the stills', drawn from ``gen``."""
        parts = []
        if self.sampler is not None:
            parts.append(self.sampler.sample(n - self.n_still, gen))
        if self.n_still:
            parts.append(moving_stills(self.stills, self.n_still, gen, self.frames, self.patch))
        return torch.cat(parts)
