"""Random patches from a folder of images (crops and flips), deterministic given a generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from sandwich.errors import SandwichError
from sandwich.io import list_images


def list_image_files(folder: str | Path) -> list[Path]:
    """The images of a training folder; a clear error if there are none."""
    if not Path(folder).is_dir():
        raise SandwichError(f"{folder}: no such folder; build one with `sandwich data`")
    files = list_images(folder)
    if not files:
        raise SandwichError(f"{folder}: no images in this folder")
    return files


class PatchSampler:
    """Holds a folder of RGB images in memory and draws random (N, 3, P, P) float patches, 0..255.

    Images are picked with probability proportional to their area; each patch gets a random
    position and random horizontal/vertical flips. All randomness comes from ``generator``, so a
    run that restores the generator state draws the same patches.
    """

    def __init__(self, folder: str | Path, patch: int):
        self.files = list_image_files(folder)
        self.images: list[Tensor] = []
        for f in self.files:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"))
            if min(arr.shape[:2]) < patch:
                continue
            self.images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous())
        if not self.images:
            raise SandwichError(f"{folder}: no image is at least {patch}x{patch} pixels")
        self.patch = patch
        areas = torch.tensor([float(i.shape[1] * i.shape[2]) for i in self.images])
        self.weights = areas / areas.sum()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        p = self.patch
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        out = torch.empty(n, 3, p, p, dtype=torch.uint8)
        for k, i in enumerate(idx.tolist()):
            img = self.images[i]
            _, h, w = img.shape
            y = int(torch.randint(0, h - p + 1, (1,), generator=generator))
            x = int(torch.randint(0, w - p + 1, (1,), generator=generator))
            crop = img[:, y : y + p, x : x + p]
            flips = torch.randint(0, 2, (2,), generator=generator).tolist()
            if flips[0]:
                crop = crop.flip(2)
            if flips[1]:
                crop = crop.flip(1)
            out[k] = crop
        return out.float()
