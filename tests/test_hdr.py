"""16-bit images through 8-bit JPEG (the ``hdr16`` scenario): I/O, model, data, training, CLI,
baselines and the eval harness on the 16-bit scale."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import BASELINES, HdrBaseline
from sandwich.evaluation.metrics import psnr
from sandwich.formats.jpeg_marker import MarkerInfo, read_marker
from sandwich.media.files import (
    load_image,
    load_rgb,
    load_rgb16,
    save_png,
    save_png16,
    stored_bits,
    to_8bit,
    to_16bit,
)
from sandwich.models.sandwich import SandwichModel
from sandwich.scenarios import get_scenario

PEAK = 65535.0


def image16(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth 16-bit colour gradients with detail finer than one 8-bit level, uint16 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 70 * np.sin(xx / 9.0 + seed),
            120 + 60 * np.cos(yy / 7.0),
            90 + 40 * np.sin((xx + yy) / 11.0) + 0.6 * yy,
        ],
        axis=-1,
    )
    img += rng.normal(0.0, 2.0, img.shape)
    return np.clip(np.rint(img * 257.0), 0, 65535).astype(np.uint16)


def psnr16(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(a, b, PEAK)


def write16(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png16(path, img, force=True)
    return path


# ------------------------------------------------------------------------------------- I/O
def test_png16_round_trip(tmp_path: Path) -> None:
    img = image16(40, 56)
    path = write16(tmp_path / "a.png", img)
    back = load_image(path)
    assert back.dtype == np.uint16 and np.array_equal(back, img)
    assert np.array_equal(load_rgb16(path), img)
    with Image.open(path) as im:  # a standard 16-bit PNG; Pillow calls it RGB but knows the depth
        assert im.format == "PNG" and im.size == (56, 40) and stored_bits(im) == 16
    # gray 16-bit is expanded to RGB; save_png writes uint16 as 16 bits too
    save_png(tmp_path / "g.png", np.ascontiguousarray(img[:, :, 1]))
    gray = load_image(tmp_path / "g.png")
    assert gray.dtype == np.uint16 and all(
        np.array_equal(gray[..., c], img[..., 1]) for c in range(3)
    )
    # 8-bit files: uint8 from load_image, scaled by 257 (exactly invertible) from load_rgb16
    img8 = to_8bit(img)
    Image.fromarray(img8).save(tmp_path / "e.png")
    assert load_image(tmp_path / "e.png").dtype == np.uint8
    assert np.array_equal(load_rgb16(tmp_path / "e.png"), img8.astype(np.uint16) * 257)
    assert np.array_equal(to_8bit(to_16bit(img8)), img8)
    assert np.abs(to_8bit(img).astype(float) * 257 - img).max() <= 128.5
    with pytest.raises(SandwichError, match="--force"):
        save_png16(path, img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "e.png", "g.png"]


def test_8bit_loader_rejects_16bit_rgb_png(tmp_path: Path) -> None:
    # Pillow would silently keep the high byte of a 16-bit RGB PNG: load_rgb refuses it
    path = write16(tmp_path / "deep.png", image16(16, 16))
    with pytest.raises(SandwichError, match="more than 8 bits") as err:
        load_rgb(path)
    assert "sandwich models" in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------- model
def test_untrained_hdr16_is_the_8bit_ceiling() -> None:
    s = get_scenario("hdr16")
    assert s.bit_depth == 16 and s.peak == 65535 and s.base == "identity"
    assert get_scenario("rgb").bit_depth == 8
    model = SandwichModel("hdr16", (8,), (8,), name="hdr16-test", version=3).eval()
    img = image16(48, 64, seed=1)
    data = model.compress(img, 50)
    assert read_marker(data) == MarkerInfo("hdr16-test", 3, 48, 64)
    with Image.open(io.BytesIO(data)) as im:  # the file in the middle is a plain 8-bit JPEG
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (64, 48)
    rec = model.decompress(data)
    assert rec.dtype == np.uint16 and rec.shape == img.shape
    base_data, base_rec = BASELINES["hdr-8bit"]().roundtrip(img, 50)
    assert base_rec.dtype == np.uint16
    # untrained = round to 8 bits, 4:2:0 JPEG, times 257: the hdr-8bit baseline (plus the marker)
    assert psnr16(img, rec) >= psnr16(img, base_rec) - 1e-3
    assert 0 < len(data) - len(base_data) <= 64
    assert np.all(rec % 257 == 0)  # nothing learned yet: only 8-bit levels come back
    # 8-bit input is 8-bit content (x * 257); 8-bit models still take only uint8
    rec8 = model.decompress(model.compress(to_8bit(img), 50))
    assert rec8.dtype == np.uint16 and rec8.shape == img.shape
    with pytest.raises(SandwichError, match="8-bit"):
        SandwichModel("rgb", (8,), (8,)).compress(img, 50)


def test_hdr_baselines() -> None:
    img = image16(64, 64, seed=2)
    b8, b12 = BASELINES["hdr-8bit"](), BASELINES["hdr-jpeg12"]()
    assert isinstance(b12, HdrBaseline) and b12.bit_depth == 16
    d8, r8 = b8.roundtrip(img, 95)
    d12, r12 = b12.roundtrip(img, 50)
    assert r12.dtype == np.uint16 and r12.shape == img.shape
    assert d12[:2] == b"\xff\xd8" and d8[:2] == b"\xff\xd8"
    assert np.all(r8 % 257 == 0) and not np.all(r12 % 257 == 0)
    assert psnr16(img, r12) > psnr16(img, r8)  # 12 bits pass more of the 16 than 8 do


def test_hdr16_444_is_the_444_8bit_pipeline_up_to_quality_100() -> None:
    """hdr16-444 untrained = the hdr-8bit-444 baseline; at quality 100 the 8-bit pipeline is
    the ceiling that 12-bit JPEG passes."""
    s = get_scenario("hdr16-444")
    assert s.bit_depth == 16 and s.subsampling == "4:4:4" and s.quality_range[1] == 100
    img = image16(48, 64, seed=4)
    model = SandwichModel("hdr16-444", (8,), (8,)).eval()
    b8, b12 = BASELINES["hdr-8bit-444"](), BASELINES["hdr-jpeg12-444"]()
    for q in (60, 100):
        rec = model.decompress(model.compress(img, q))
        _, base_rec = b8.roundtrip(img, q)
        assert np.array_equal(rec, base_rec), q
    with Image.open(io.BytesIO(b8.roundtrip(img, 100)[0])) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
    _, r12 = b12.roundtrip(img, 95)
    assert psnr16(img, r12) > psnr16(img, b8.roundtrip(img, 100)[1])


# ------------------------------------------------------------------------------------ data
def test_sampler_reads_16bit_as_fractional_floats(tmp_path: Path) -> None:
    import torch

    from sandwich.training.dataset import PatchSampler

    imgs = [image16(40, 48, seed=k) for k in range(2)]
    for k, img in enumerate(imgs):
        write16(tmp_path / "d" / f"{k}.png", img)
    Image.fromarray(to_8bit(imgs[0])).save(tmp_path / "d" / "e8.png")
    sampler = PatchSampler(tmp_path / "d", 32)
    assert sampler.bit_depth == 16
    x = sampler.sample(6, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == (6, 3, 32, 32)
    assert float(x.min()) >= 0 and float(x.max()) <= 255
    levels = (x.double() * 257).round()
    assert torch.allclose(x.double() * 257, levels, atol=1e-3)  # exactly x16 / 257
    assert bool((levels % 257 != 0).any())  # the extra bits survive
    # a folder of 8-bit images samples as before: whole numbers
    only8 = tmp_path / "e"
    only8.mkdir()
    shutil.copy(tmp_path / "d" / "e8.png", only8 / "e8.png")
    s8 = PatchSampler(only8, 32)
    y = s8.sample(2, torch.Generator().manual_seed(0))
    assert s8.bit_depth == 8 and torch.equal(y, y.round())


def test_corpus_16bit_conversion(tmp_path: Path) -> None:
    from sandwich.data import corpus

    src = tmp_path / "src.jpg"
    Image.fromarray(to_8bit(image16(100, 132, seed=3))).save(src, quality=95)
    item = corpus._Item("train", "x", src, "test", "0", "/src.jpg", None, "test")
    (tmp_path / "c8" / "train").mkdir(parents=True)
    (tmp_path / "c16" / "train").mkdir(parents=True)
    e8 = corpus._convert(item, tmp_path / "c8" / "train" / "x.png")
    e16 = corpus._convert(item, tmp_path / "c16" / "train" / "x.png", bit_depth=16)
    assert e16 == e8  # same factor, crop, size and provenance
    a8 = load_image(tmp_path / "c8" / "train" / "x.png")
    a16 = load_image(tmp_path / "c16" / "train" / "x.png")
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16 and a8.shape == a16.shape
    diff = np.abs(to_8bit(a16).astype(int) - a8)
    assert np.mean(diff <= 1) > 0.99  # the 8-bit corpus rounds (and clips) between passes
    assert np.mean(a16 % 257 != 0) > 0.5  # averaging made genuinely finer values


def test_data_cli_bit_depth(run_cli, check_error, tmp_path: Path) -> None:
    out = tmp_path / "c16"
    code, _, err = run_cli(["data", "--out", out, "--no-debian", "--bit-depth", "16"])
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["bit_depth"] == 16 and not manifest["debian"]
    entries = manifest["images"]
    assert entries and all(e["split"] == "val" for e in entries)
    first = load_image(out / entries[0]["file"])
    assert first.dtype == np.uint16 and list(first.shape[1::-1]) == entries[0]["final_size"]
    code, _, err = run_cli(["data", "--out", tmp_path / "x", "--no-debian", "--bit-depth", "12"])
    assert "8 or 16" in check_error(code, err)


# ------------------------------------------------------------------- training, CLI, eval
def test_train_then_compress_decompress_and_eval(
    run_cli, check_error, small_png, tmp_path: Path, monkeypatch
) -> None:
    from sandwich.zoo.weights import load_weights

    data = tmp_path / "train16"
    for k in range(3):
        write16(data / f"t{k}.png", image16(48, 56, seed=10 + k))
    run = tmp_path / "run"
    args = ["--steps", "3", "--patch", "32", "--batch", "2", "--threads", "1"]
    args += ["--pre-widths", "8", "--post-widths", "8", "--ckpt-every", "3", "--log-every", "1"]
    code, _, err = run_cli(["train", "--scenario", "hdr16", "--data", data, "--out", run, *args])
    assert code == 0, err
    assert "warning" not in err  # 16-bit data for a 16-bit scenario
    net = load_weights(run / "model.safetensors", name="hdr16-jpeg", version=1)
    assert net.scenario.name == "hdr16" and net.sample_dtype == np.uint16
    assert len((run / "log.jsonl").read_text().splitlines()) == 3

    # install the tiny run as the zoo's hdr16-jpeg
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    shutil.copy(run / "model.safetensors", zoo / "hdr16-jpeg.safetensors")
    shutil.copy(run / "model.json", zoo / "hdr16-jpeg.json")
    monkeypatch.setattr("sandwich.zoo.weights_dir", lambda: zoo)

    out = tmp_path / "out"
    out.mkdir()
    img = image16(40, 56, seed=20)
    src = write16(tmp_path / "in16.png", img)
    code, stdout, err = run_cli(["compress", src, "-o", out / "a.jpg", "-m", "hdr16-jpeg"])
    assert code == 0, err
    assert read_marker((out / "a.jpg").read_bytes()) == MarkerInfo("hdr16-jpeg", 1, 40, 56)
    code, _, err = run_cli(["decompress", out / "a.jpg", "-o", out / "a.png"])
    assert code == 0, err
    with Image.open(out / "a.png") as im:
        assert im.format == "PNG" and stored_bits(im) == 16
    rec = load_image(out / "a.png")
    assert rec.dtype == np.uint16 and rec.shape == img.shape and psnr16(img, rec) > 25
    # an 8-bit input to a 16-bit model: scaled by 257, still a 16-bit PNG out
    src8 = small_png("in8.png", size=(40, 56))
    assert run_cli(["compress", src8, "-o", out / "b.jpg", "-m", "hdr16-jpeg", "-q", "60"])[0] == 0
    assert run_cli(["decompress", out / "b.jpg", "-o", out / "b.png"])[0] == 0
    assert load_image(out / "b.png").dtype == np.uint16

    # 8-bit models refuse 16-bit input with one line that names the 16-bit model
    code, _, err = run_cli(["compress", src, "-o", out / "c.jpg", "-m", "gray-modem"])
    line = check_error(code, err)
    assert "8-bit" in line and "hdr16-jpeg" in line
    # bad inputs to the 16-bit model stay clear errors
    rgba = small_png("rgba.png", size=(40, 56), mode="RGBA")
    code, _, err = run_cli(["compress", rgba, "-o", out / "d.jpg", "-m", "hdr16-jpeg"])
    assert "alpha" in check_error(code, err)
    whole = src.read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    code, _, err = run_cli(
        ["compress", tmp_path / "cut.png", "-o", out / "e.jpg", "-m", "hdr16-jpeg"]
    )
    assert "truncated" in check_error(code, err)
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.png", "b.jpg", "b.png"]

    # eval: 16-bit PSNR for every pipeline; an 8-bit baseline gets the image rounded to 8 bits
    res_path = tmp_path / "r.json"
    code, _, err = run_cli(
        [
            "eval",
            src,
            *["-m", "hdr16-jpeg", "-b", "hdr-8bit", "-b", "jpeg-420", "-b", "hdr-jpeg12"],
            *["--qualities", "30,60", "--metrics", "psnr,ssim", "--json", res_path],
            *["--out", tmp_path / "report"],
        ]
    )
    assert code == 0, err
    res = json.loads(res_path.read_text())
    assert res["bit_depth"] == 16 and "65535" in res["metrics"]["psnr"]["note"]
    rows = {(r["pipeline"], r["knob"]): r for r in res["rows"]}
    _, base = BASELINES["hdr-8bit"]().roundtrip(img, 60)
    assert rows[("hdr-8bit", 60)]["psnr"] == pytest.approx(psnr16(img, base), abs=1e-9)
    assert rows[("jpeg-420", 60)]["psnr"] == pytest.approx(rows[("hdr-8bit", 60)]["psnr"])
    assert rows[("jpeg-420", 60)]["bits"] == rows[("hdr-8bit", 60)]["bits"]
    assert rows[("hdr16-jpeg", 60)]["psnr"] > 25
    assert (tmp_path / "report" / "report.html").is_file()
