"""Random patches from one or several folders of images (crops and flips), deterministic given
a generator.

A folder may also hold N-channel images as (H, W, N) uint8 ``.npy`` arrays (``sandwich data
--kind material``); patches then have N channels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from sandwich.errors import SandwichError
from sandwich.media.files import ARRAY_SUFFIX, list_arrays, list_images


def data_folders(data: str | Path | list[str] | list[Path]) -> list[Path]:
    """The training folders named by ``data``: one folder, a list, or several joined by
    ``os.pathsep`` (``:`` on POSIX; the form a run's config records)."""
    parts = [str(data)] if isinstance(data, (str, Path)) else [str(d) for d in data]
    folders = [Path(p) for part in parts for p in part.split(os.pathsep) if p]
    if not folders:
        raise SandwichError("no training folder given; pass --data DIR")
    return folders


def join_folders(folders: list[Path] | list[str]) -> str:
    """The recorded form of several training folders (inverse of :func:`data_folders`)."""
    return os.pathsep.join(str(f) for f in folders)


def check_min_scale(min_scale: float) -> float:
    """``min_scale`` if it is a scale-augmentation bound in (0, 1], else a one-line error."""
    if not 0.0 < min_scale <= 1.0:
        raise SandwichError(f"--min-scale {min_scale}: use a scale in (0, 1]")
    return min_scale


def check_detail_draws(draws: int) -> int:
    """``draws`` if it is a valid number of candidate crops per patch (1 or more), else a one-line
    error."""
    if draws < 1:
        raise SandwichError(f"--detail-draws {draws}: use 1 (plain crops) or more")
    return draws


def detail(crops: Tensor) -> Tensor:
    """Detail of each crop: mean absolute difference between neighbouring pixels, across and
    down, averaged over channels.

    crops: (K, C, P, P) on any scale; returns (K,) on the same scale (0..255 images give about 1
    for sky or bokeh and 20 or more for foliage, fur or text).
    """
    x = crops.float()
    across = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    down = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return across + down


def list_image_files(data: str | Path | list[str] | list[Path]) -> list[Path]:
    """The images (and .npy N-channel arrays) of one or several training folders (see
    :func:`data_folders`); a clear error if a folder is missing or holds none."""
    files: list[Path] = []
    for folder in data_folders(data):
        if not folder.is_dir():
            raise SandwichError(f"{folder}: no such folder; build one with `sandwich data`")
        found = sorted(list_images(folder) + list_arrays(folder))
        if not found:
            raise SandwichError(f"{folder}: no images in this folder")
        files += found
    return files


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) RGB of a training image: uint16 for 16-bit files (full precision), else uint8
    (anything Pillow reads, converted to RGB)."""
    from sandwich.media.files import load_image, read_array, stored_bits

    if path.suffix.lower() == ARRAY_SUFFIX:
        return read_array(path)  # (H, W, N) uint8
    try:
        with Image.open(path) as im:
            if stored_bits(im) <= 8:
                return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise SandwichError(
            f"{path}: not an image Pillow can read (or cut short); remove it from the training "
            "folder"
        ) from None
    return load_image(path)


class PatchSampler:
    """Holds a folder of RGB images in memory and draws random (N, 3, P, P) float patches, 0..255.

    Images are picked with probability proportional to their area; each patch gets a random
    position and random horizontal/vertical flips. All randomness comes from ``generator``, so a
    run that restores the generator state draws the same patches.

    16-bit images (16-bit PNGs, e.g. from ``sandwich data --bit-depth 16``) are read at full
    precision and come out as x16 / 257: floats on the same 0..255 scale whose fractions carry
    the extra bits. If the folder holds any, its 8-bit images are kept as x8 * 257, which gives
    back exactly x8. ``bit_depth`` is 16 then, else 8.

    ``.npy`` arrays (H, W, N) uint8 give (N, N_ch, P, P) patches; ``channels`` is N_ch (3 for
    RGB images), and every file of a folder must have the same number of channels.

    ``min_scale`` < 1 turns on scale augmentation: each patch is cut at a random scale s,
    log-uniform in [min_scale, 1], i.e. a square of side P / s (at most the image's) shrunk to
    P x P with an antialiased bilinear filter. It shows the networks the same scenes at more
    scales (smaller, sharper detail) than a small corpus holds. At 1 (the default) patches are
    plain crops and the generator is used exactly as without the option.

    ``detail_draws`` K > 1 biases patches towards detailed content: K candidate crops are cut
    and one is kept with probability proportional to its :func:`detail` (plus 1, so flat crops
    keep a chance). Wallpaper-like corpora are mostly sky and bokeh; with K = 4 the detail of
    the training patches matches that of photos such as the dev and validation sets, though that
    did not improve any zoo model (docs/experiments.md). At 1 (the default) the generator is
    used exactly as without it.
    """

    def __init__(
        self,
        folder: str | Path | list[str] | list[Path],
        patch: int,
        min_scale: float = 1.0,
        detail_draws: int = 1,
    ):
        self.min_scale = check_min_scale(min_scale)
        self.detail_draws = check_detail_draws(detail_draws)
        self.files = list_image_files(folder)
        arrays = []
        for f in self.files:
            arr = _read_rgb(f)
            if min(arr.shape[:2]) < patch:
                continue
            arrays.append(arr)
        if not arrays:
            raise SandwichError(f"{folder}: no image is at least {patch}x{patch} pixels")
        counts = sorted({a.shape[2] for a in arrays})
        if len(counts) > 1:
            raise SandwichError(
                f"{folder}: mixes images of {' and '.join(map(str, counts))} channels; keep one "
                "kind per folder"
            )
        self.channels = counts[0]
        self.bit_depth = 16 if any(a.dtype == np.uint16 for a in arrays) else 8
        self.scale = 257.0 if self.bit_depth > 8 else 1.0  # stored value per 0..255 unit
        # torch has no flip for uint16: 16-bit samples are kept as int32
        self.images: list[Tensor] = []
        for arr in arrays:
            if self.bit_depth > 8:
                arr = arr.astype(np.int32) * (257 if arr.dtype == np.uint8 else 1)
            self.images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous())
        self.patch = patch
        areas = torch.tensor([float(i.shape[1] * i.shape[2]) for i in self.images])
        self.weights = areas / areas.sum()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """(n, C, P, P) float patches, 0..255 (fractions carry the bits of 16-bit images)."""
        k = self.detail_draws
        idx = torch.multinomial(self.weights, n * k, replacement=True, generator=generator)
        crops = [self._crop(i, generator) for i in idx.tolist()]
        if k > 1:
            picked = []
            for j in range(n):
                group = torch.stack(crops[j * k : (j + 1) * k])
                weights = detail(group) / self.scale + 1.0  # detail on the 0..255 scale
                pick = int(torch.multinomial(weights, 1, generator=generator))
                picked.append(crops[j * k + pick])
            crops = picked
        out = torch.stack(crops)  # _crop returns floats
        return out / self.scale if self.bit_depth > 8 else out

    def _crop(self, i: int, generator: torch.Generator) -> Tensor:
        """One random (C, P, P) crop of image ``i`` (scale-augmented if on), randomly flipped."""
        p = self.patch
        img = self.images[i]
        _, h, w = img.shape
        side = p
        if self.min_scale < 1.0:
            u = float(torch.rand((), generator=generator))
            side = min(round(p * self.min_scale ** (-u)), h, w)
        y = int(torch.randint(0, h - side + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - side + 1, (1,), generator=generator))
        crop = img[:, y : y + side, x : x + side]
        if side != p:
            crop = crop[None].float()
            crop = F.interpolate(crop, size=(p, p), mode="bilinear", antialias=True)[0]
        flips = torch.randint(0, 2, (2,), generator=generator).tolist()
        if flips[0]:
            crop = crop.flip(2)
        if flips[1]:
            crop = crop.flip(1)
        return crop.float()
