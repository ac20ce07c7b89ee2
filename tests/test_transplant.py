"""JPEG-trained sandwiches over other real codecs, without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import JpegBaseline
from sandwich.evaluation.metrics import psnr
from sandwich.evaluation.transplant import TransplantPipeline
from sandwich.zoo import load_model


@pytest.mark.parametrize("codec", ["avif", "heic", "jxl"])
def test_gray_modem_over_other_codecs(codec: str, sample_full: np.ndarray) -> None:
    img = sample_full[:96, :128].copy()
    pipe = TransplantPipeline(load_model("gray-modem"), codec)
    assert pipe.name == f"gray-modem@{codec}"
    lo_data, lo = pipe.roundtrip(img, pipe.qualities[1])
    hi_data, hi = pipe.roundtrip(img, pipe.qualities[-2])
    assert lo.shape == img.shape and lo.dtype == np.uint8
    assert len(hi_data) > len(lo_data) and psnr(img, hi) > psnr(img, lo)
    # colour travelled through a one-plane codec: far better than that codec's gray image
    _, gray = JpegBaseline("gray").roundtrip(img, 95)
    assert psnr(img, hi) > psnr(img, gray) + 2.0


def test_webp_cannot_carry_a_gray_bottleneck() -> None:
    with pytest.raises(SandwichError, match="WebP has no grayscale"):
        TransplantPipeline(load_model("gray-modem"), "webp")
    with pytest.raises(SandwichError, match="cannot put"):
        TransplantPipeline(load_model("gray-modem"), "png")


def test_eval_runs_a_transplanted_model(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("a.png", size=(48, 64))
    js = tmp_path / "r.json"
    argv = ["eval", src, "-m", "gray-modem@avif", "-b", "avif", "--metrics", "psnr"]
    code, _, err = run_cli([*argv, "--json", js])
    assert code == 0, err
    res = json.loads(js.read_text())
    knobs = {r["knob"] for r in res["rows"] if r["pipeline"] == "gray-modem@avif"}
    assert len(knobs) >= 5
    code, _, err = run_cli(["eval", src, "-m", "gray-modem@bmp", "-b", "avif"])
    assert code != 0 and "cannot put" in err


def test_results_page(run_cli, check_error, small_png, tmp_path: Path, monkeypatch) -> None:
    import sandwich.commands.results_cmd as rc

    small_png("val/a.png", size=(48, 64))
    recipes = [
        (
            "gray",
            "gray",
            ["-m", "gray-modem", "-m", "gray-modem+x2", "-b", "jpeg-gray", "--qualities", "30,60"],
            None,
        ),
        (
            "absent",
            "absent",
            ["-m", "gray-jpeg+x8", "-b", "jpeg-gray", "--qualities", "30,60"],
            None,
        ),
        (
            "own",
            "own",
            ["-b", "jpeg-gray", "--qualities", "30"],
            (str(tmp_path / "own"), "make it"),
        ),
        (
            "nodata",
            "nodata",
            ["-b", "jpeg-gray"],
            (str(tmp_path / "none"), "sandwich data --kind x"),
        ),
        (
            "run",
            "run",
            ["-m", str(tmp_path / "run" / "model.safetensors"), "-b", "jpeg-gray"],
            None,
        ),
    ]
    small_png("own/b.png", size=(32, 32))
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    np.save(arrays / "m.npy", np.zeros((32, 32, 6), np.uint8))
    recipes.append(
        ("npy", "npy", ["-b", "material-jpeg", "--qualities", "30"], (str(arrays), "kind"))
    )
    monkeypatch.setattr(rc, "RECIPES", recipes)
    monkeypatch.setattr("sandwich.zoo.weights_dir", lambda: tmp_path / "no-weights")
    out = tmp_path / "results.md"
    code, _, err = run_cli(["results", tmp_path / "val", "-o", out])
    assert code == 0, err
    text = out.read_text()
    assert "`a.png`" in text and "## gray" in text and "gray-modem+x2" in text
    assert "Not evaluated" in text and "absent: no weights for gray-jpeg\n" in text
    assert "`b.png`" in text and "(made by `make it`)" in text
    assert "build it with `sandwich data --kind x`" in text
    assert "`m.npy`" in text and "## npy" in text
    assert f"run: no weights for {tmp_path / 'run' / 'model.safetensors'}" in text
    assert rc.join_page(*rc.split_page(text)) == text

    # --only reruns one section and keeps the others byte for byte
    before = rc.split_page(text)[1]
    recipes[0] = (
        "gray",
        "gray",
        ["-m", "gray-modem", "-b", "jpeg-gray", "--qualities", "40,80"],
        None,
    )
    code, _, err = run_cli(["results", tmp_path / "val", "-o", out, "--only", "gray"])
    assert code == 0, err
    after = rc.split_page(out.read_text())[1]
    assert list(after) == list(before)
    assert after["gray"] != before["gray"] and "40,80" in after["gray"]
    assert all(after[t] == before[t] for t in before if t != "gray")

    code, _, err = run_cli(["results", tmp_path / "val", "-o", out, "--only", "nope"])
    assert "no such section" in check_error(code, err)
    code, _, err = run_cli(["results", tmp_path / "val", "-o", out, "--only", "absent"])
    assert "cannot rerun absent: no weights" in check_error(code, err)
    code, _, err = run_cli(
        ["results", tmp_path / "val", "-o", tmp_path / "new.md", "--only", "gray"]
    )
    assert "does not exist" in check_error(code, err)
    small_png("val/c.png", size=(48, 64))
    code, _, err = run_cli(["results", tmp_path / "val", "-o", out, "--only", "gray"])
    assert "other images" in check_error(code, err)
    assert rc.split_page(out.read_text())[1] == after  # refused runs leave the page alone
