"""Tests of the geometric self-ensemble of post-processors (nets.ensemble) and its CLI options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.nets.ensemble import ensemble_members, self_ensemble
from sandwich.nets.resample import upsample


def test_members_keep_the_block_grid() -> None:
    """Transposes always; flips only on sides of whole macroblocks upsampled by a whole factor."""
    assert len(ensemble_members((32, 48), (32, 48), 8)) == 8
    assert ensemble_members((32, 48), (32, 48), 1) == [(False, False, False)]
    assert ensemble_members((32, 48), (32, 48), 2) == [(False, False, False), (False, False, True)]
    # 30 rows: no row flips, so 4 of the 8 remain
    kept = ensemble_members((30, 48), (30, 48), 8)
    assert len(kept) == 4 and not any(t[1] for t in kept)
    assert len(ensemble_members((32, 48), (64, 96), 8)) == 8  # lowres2: exact factor 2
    assert all(not t[1] for t in ensemble_members((32, 48), (63, 96), 8))
    assert all(not t[0] for t in ensemble_members((32, 48), (32, 48), 8, transpose=False))
    with pytest.raises(ValueError, match="ensemble of 3"):
        ensemble_members((32, 48), (32, 48), 3)


def test_equivariant_function_is_unchanged() -> None:
    """Bicubic upsampling commutes with flips and transposes: every member gives the same."""
    y = torch.rand(1, 3, 16, 32) * 255
    single = upsample(y, (32, 64))
    for members in (2, 4, 8):
        out = self_ensemble(upsample, y, (32, 64), members)
        assert out.shape == single.shape
        assert torch.allclose(out, single, atol=1e-3)


def test_mean_of_transformed_passes() -> None:
    """A function that is not flip-equivariant (adds a column ramp) is averaged over its
    passes, each undone: the ramp and its mirror average to a constant."""
    y = torch.zeros(1, 1, 16, 16)
    ramp = torch.arange(16.0)

    def fn(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return t + ramp[: t.shape[-1]]

    out = self_ensemble(fn, y, (16, 16), 2)
    assert torch.allclose(out, torch.full_like(out, 7.5))
    # transposes put the ramp on rows: 8 passes average rows and columns alike
    out8 = self_ensemble(fn, y, (16, 16), 8)
    assert torch.allclose(out8, torch.full_like(out8, 7.5))
    # a size the flips would misalign: only identity and transpose remain
    y = torch.zeros(1, 1, 10, 10)
    out = self_ensemble(fn, y, (10, 10), 8)
    rows = torch.arange(10.0)[:, None]
    assert torch.allclose(out[0, 0], (ramp[:10][None, :] + rows) / 2)


def test_model_decodes_with_an_ensemble(sample_full: np.ndarray) -> None:
    """A trained model's ensemble decode is close to its single pass, not equal to it, and
    nearer the original on this image."""
    from sandwich.zoo import load_model

    model = load_model("msssim-jpeg")
    img = sample_full[:64, :96].copy()
    data = model.compress(img, 30)
    single = model.decompress(data).astype(np.float64)
    model.ensemble = 8
    try:
        multi = model.decompress(data).astype(np.float64)
    finally:
        model.ensemble = 1
    assert multi.shape == single.shape
    assert 0 < np.abs(multi - single).mean() < 3
    assert np.mean((multi - img) ** 2) < np.mean((single - img) ** 2)


def test_gray_ensemble_keeps_its_colour(sample_full: np.ndarray) -> None:
    """The gray modem's carriers are not symmetric under transposes (they swap the chroma
    components), so its ensemble only flips and never loses quality; transposed passes would
    decode the wrong colour."""
    from sandwich.zoo import load_model

    model = load_model("gray-jpeg")
    img = sample_full[:128, :192].copy()
    data = model.compress(img, 50)

    def psnr(members: int) -> float:
        model.ensemble = members
        try:
            y = model.decompress(data).astype(np.float64)
        finally:
            model.ensemble = 1
        return float(10 * np.log10(255.0**2 / np.mean((y - img) ** 2)))

    single = psnr(1)
    assert psnr(8) > single - 0.05


def test_cli_ensemble_options(run_cli, check_error, small_png, tmp_path: Path) -> None:
    """decompress --ensemble and eval's NAME+xN; bad sizes are one-line errors."""
    src = small_png("e.png", size=(48, 64))
    jpg = tmp_path / "e.jpg"
    code, _, err = run_cli(["compress", src, "-o", jpg, "-m", "rgb-jpeg", "--quality", "30"])
    assert code == 0, err
    for members in ("1", "8"):
        code, _, err = run_cli(
            ["decompress", jpg, "-o", tmp_path / f"e{members}.png", "--ensemble", members]
        )
        assert code == 0, err
    one = np.asarray(Image.open(tmp_path / "e1.png"), np.int16)
    eight = np.asarray(Image.open(tmp_path / "e8.png"), np.int16)
    assert one.shape == eight.shape and np.any(one != eight)
    code, _, err = run_cli(["decompress", jpg, "-o", tmp_path / "x.png", "--ensemble", "3"])
    assert "--ensemble" in check_error(code, err)
    assert not (tmp_path / "x.png").exists()

    out = tmp_path / "ev.json"
    argv = ["eval", src, "-m", "rgb-jpeg", "-m", "rgb-jpeg+x4", "-b", "jpeg-420"]
    code, _, err = run_cli([*argv, "--qualities", "30", "--metrics", "psnr", "--json", out])
    assert code == 0, err
    results = json.loads(out.read_text())
    names = {r["pipeline"] for r in results["rows"]}
    assert {"rgb-jpeg", "rgb-jpeg+x4"} <= names
    bits = {r["pipeline"]: r["bits"] for r in results["rows"]}
    assert bits["rgb-jpeg"] == bits["rgb-jpeg+x4"]  # the same file, decoded differently
    code, _, err = run_cli(["eval", src, "-m", "rgb-jpeg+x3", "-b", "jpeg-420"])
    assert "+x3" in check_error(code, err)
    code, _, err = run_cli(["eval", src, "-m", "rnn+x2"])
    assert "progressive" in check_error(code, err)
