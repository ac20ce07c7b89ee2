"""Tests of the training patch sampler's folder handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from sandwich.errors import SandwichError
from sandwich.training.dataset import PatchSampler, data_folders, detail, join_folders


def test_data_folders_forms(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert data_folders(a) == [a] and data_folders(str(a)) == [a]
    assert data_folders([a, b]) == [a, b]
    assert data_folders(join_folders([a, b])) == [a, b]
    assert join_folders([a, b]) == f"{a}{os.pathsep}{b}"
    with pytest.raises(SandwichError, match="--data"):
        data_folders([])


def test_sampler_draws_from_every_folder(tmp_path: Path) -> None:
    """Two folders, one flat-coloured image each: patches come from both, in proportion to area."""
    for folder, colour in (("a", (200, 10, 10)), ("b", (10, 10, 200))):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (48, 40), colour).save(tmp_path / folder / "x.png")
    sampler = PatchSampler([tmp_path / "a", tmp_path / "b"], 32)
    assert len(sampler.images) == 2
    patches = sampler.sample(64, torch.Generator().manual_seed(0))
    reds = int((patches[:, 0, 0, 0] == 200).sum())
    assert 16 < reds < 48  # equal areas: about half from each folder
    same = PatchSampler(join_folders([tmp_path / "a", tmp_path / "b"]), 32)
    assert torch.equal(same.sample(64, torch.Generator().manual_seed(0)), patches)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SandwichError, match="empty: no images"):
        PatchSampler([tmp_path / "a", tmp_path / "empty"], 32)


def test_scale_augmentation(tmp_path: Path) -> None:
    """min_scale < 1 cuts larger squares and shrinks them (a 2-pixel checkerboard averages to
    grey); at 1 the patches are exact crops; the same generator state gives the same patches."""
    import numpy as np

    (tmp_path / "d").mkdir()
    board = (np.indices((96, 96)).sum(0) // 1 % 2 * 255).astype(np.uint8)
    Image.fromarray(np.repeat(board[:, :, None], 3, axis=2)).save(tmp_path / "d" / "b.png")
    plain = PatchSampler(tmp_path / "d", 32).sample(8, torch.Generator().manual_seed(1))
    assert set(plain.unique().tolist()) == {0.0, 255.0}
    scaled = PatchSampler(tmp_path / "d", 32, min_scale=0.4)
    x = scaled.sample(8, torch.Generator().manual_seed(1))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 255.0
    shrunk = [k for k in range(8) if 64 < float(x[k].mean()) < 192 and float(x[k].std()) < 100]
    assert shrunk, "no patch was shrunk"
    assert torch.equal(x, scaled.sample(8, torch.Generator().manual_seed(1)))
    for bad in (0.0, 1.5):
        with pytest.raises(SandwichError, match="--min-scale"):
            PatchSampler(tmp_path / "d", 32, min_scale=bad)


def test_detail_draws_favour_detailed_crops(tmp_path: Path) -> None:
    """An image flat grey on the left and a checkerboard on the right: plain crops land on
    either half about equally; with 8 draws per patch nearly all come from the checkerboard;
    the same generator state gives the same patches; fewer than 1 draw is a one-line error."""
    import numpy as np

    (tmp_path / "d").mkdir()
    img = np.full((32, 256), 128, np.uint8)
    img[:, 128:] = np.indices((32, 128)).sum(0) % 2 * 255
    Image.fromarray(np.repeat(img[:, :, None], 3, axis=2)).save(tmp_path / "d" / "half.png")
    flat = torch.full((1, 3, 32, 32), 128.0)
    assert float(detail(flat)[0]) == 0.0
    board = torch.from_numpy(img[:, 128:160].astype(np.float32)).expand(1, 3, 32, 32)
    assert float(detail(board)[0]) == pytest.approx(510.0)  # 255 across + 255 down

    def textured(draws: int) -> int:
        x = PatchSampler(tmp_path / "d", 32, detail_draws=draws).sample(
            64, torch.Generator().manual_seed(2)
        )
        return int((detail(x) > 100).sum())

    assert 16 < textured(1) < 48
    assert textured(8) >= 60
    sampler = PatchSampler(tmp_path / "d", 32, detail_draws=4)
    first = sampler.sample(16, torch.Generator().manual_seed(5))
    assert first.shape == (16, 3, 32, 32) and first.dtype == torch.float32
    assert torch.equal(first, sampler.sample(16, torch.Generator().manual_seed(5)))
    with pytest.raises(SandwichError, match="--detail-draws"):
        PatchSampler(tmp_path / "d", 32, detail_draws=0)
