"""End to end through ``sandwich.cli.main`` (and the real console script) on real files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.evaluation.metrics import psnr
from sandwich.formats.jpeg_marker import read_marker
from sandwich.zoo import DEFAULT_MODEL, available, get_entry, load_model

MODEL = ["--model", "gray-modem"]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or "sandwich-" in p.name)


def _open(path: Path) -> Image.Image:
    im = Image.open(path)
    im.load()
    return im


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


# --------------------------------------------------------------------------- compress/decompress
def test_compress_then_decompress(run_cli, small_png, out_dir: Path) -> None:
    src = small_png("photo.png", size=(40, 56))
    jpg = out_dir / "photo.jpg"
    code, out, err = run_cli(["compress", src, "-o", jpg, *MODEL, "-q", "50"])
    assert code == 0, err
    assert "gray-modem q=50" in out and "bpp" in out
    with _open(jpg) as im:
        assert im.format == "JPEG" and im.mode == "L" and im.size == (56, 40)
    data = jpg.read_bytes()
    info = read_marker(data)
    assert info is not None and info.model == "gray-modem"
    assert (info.height, info.width) == (40, 56)

    png = out_dir / "photo.png"
    code, out, err = run_cli(["decompress", jpg, "-o", png])
    assert code == 0, err
    assert "gray-modem" in out
    with _open(png) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (56, 40)
        rec = np.asarray(im)
    assert np.array_equal(rec, load_model("gray-modem").decompress(data))
    with _open(src) as im:
        original = np.asarray(im.convert("RGB"))
    assert psnr(original, rec) > 18.0
    assert _leftovers(out_dir) == []


def test_decompress_other_model_version(run_cli, check_error, small_png, out_dir: Path) -> None:
    """A file whose marker names another version of its model: a one-line error that names
    --any-version, and with it a decode like the install's version (plus a warning)."""
    import dataclasses

    from sandwich.formats.jpeg_marker import make_segment

    src = small_png("v.png", size=(40, 56))
    jpg = out_dir / "v.jpg"
    assert run_cli(["compress", src, "-o", jpg, *MODEL, "-q", "50"])[0] == 0
    data = jpg.read_bytes()
    info = read_marker(data)
    other = dataclasses.replace(info, model_version=info.model_version + 1)
    old = out_dir / "old.jpg"
    old.write_bytes(data.replace(make_segment(info), make_segment(other)))
    png = out_dir / "old.png"
    code, _, err = run_cli(["decompress", old, "-o", png])
    line = check_error(code, err)
    assert f"version {other.model_version}" in line and "--any-version" in line
    assert not png.exists()
    code, _, err = run_cli(["decompress", old, "-o", png, "--any-version"])
    assert code == 0, err
    assert "warning:" in err and f"version {other.model_version}" in err
    with _open(png) as im:
        assert np.array_equal(np.asarray(im), load_model("gray-modem").decompress(data))


def test_output_into_an_existing_folder(run_cli, small_png, out_dir: Path) -> None:
    src = small_png("pic.png")
    assert run_cli(["compress", src, "-o", out_dir, *MODEL])[0] == 0
    assert (out_dir / "pic.jpg").is_file()
    assert run_cli(["decompress", out_dir / "pic.jpg", "-o", out_dir])[0] == 0
    assert (out_dir / "pic.png").is_file()


def test_folder_to_folder(run_cli, small_png, tmp_path: Path) -> None:
    small_png("in/a.png", size=(40, 56))
    small_png("in/b.png", size=(33, 47))
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    jpgs, pngs = tmp_path / "jpgs", tmp_path / "pngs"
    code, _, err = run_cli(["compress", tmp_path / "in", "-o", jpgs, *MODEL, "-q", "60"])
    assert code == 0, err
    assert sorted(p.name for p in jpgs.iterdir()) == ["a.jpg", "b.jpg"]
    code, _, err = run_cli(["decompress", jpgs, "-o", pngs])
    assert code == 0, err
    assert sorted(p.name for p in pngs.iterdir()) == ["a.png", "b.png"]
    with _open(pngs / "b.png") as im:
        assert im.size == (47, 33)
    # a folder cannot go to a file
    code, _, err = run_cli(["compress", tmp_path / "in", "-o", jpgs / "a.jpg", *MODEL])
    assert code != 0 and "folder" in err


def test_folder_with_one_bad_file_reports_it(run_cli, small_png, tmp_path: Path) -> None:
    small_png("in/good.png")
    (tmp_path / "in" / "bad.png").write_text("text, not a PNG")
    code, out, err = run_cli(["compress", tmp_path / "in", "-o", tmp_path / "o", *MODEL])
    assert code != 0
    assert "bad.png" in err and "1 of 2 file(s) failed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.jpg"]


def test_target_bpp(run_cli, small_png, out_dir: Path) -> None:
    src = small_png("big.png", size=(96, 128))
    jpg = out_dir / "t.jpg"
    target = 1.5
    code, out, err = run_cli(["compress", src, "-o", jpg, *MODEL, "--target-bpp", str(target)])
    assert code == 0, err
    bpp = 8 * jpg.stat().st_size / (96 * 128)
    assert bpp <= target
    q = int(re.search(r"q=(\d+)", out).group(1))
    assert 1 <= q < 100
    with _open(src) as im:
        img = np.asarray(im.convert("RGB"))
    # the highest quality that fits: one step up no longer does
    assert 8 * len(load_model("gray-modem").compress(img, q + 1)) / img[..., 0].size > target
    # unreachable targets and conflicting options are one-line errors
    code, _, err = run_cli(
        ["compress", src, "-o", out_dir / "x.jpg", *MODEL, "--target-bpp", "0.01"]
    )
    assert code != 0 and "below the smallest" in err
    code, _, err = run_cli(
        ["compress", src, "-o", out_dir / "x.jpg", *MODEL, "-q", "50", "--target-bpp", "1"]
    )
    assert code != 0 and "not both" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["t.jpg"]


def test_decompress_plain_jpeg(run_cli, sample_rgb: np.ndarray, out_dir: Path) -> None:
    jpg = out_dir / "plain.jpg"
    Image.fromarray(sample_rgb).save(jpg, quality=70)
    png = out_dir / "plain.png"
    code, out, err = run_cli(["decompress", jpg, "-o", png])
    assert code == 0, err
    assert "plain JPEG" in out
    with _open(jpg) as a, _open(png) as b:
        assert b.format == "PNG" and b.size == a.size
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def test_odd_sized_image(run_cli, small_png, out_dir: Path) -> None:
    src = small_png("odd.png", size=(33, 47))
    assert run_cli(["compress", src, "-o", out_dir / "odd.jpg", *MODEL])[0] == 0
    with _open(out_dir / "odd.jpg") as im:
        assert im.size == (47, 33)
    assert run_cli(["decompress", out_dir / "odd.jpg", "-o", out_dir / "odd.png"])[0] == 0
    with _open(out_dir / "odd.png") as im:
        assert im.size == (47, 33) and im.mode == "RGB"


def test_grayscale_png_input(run_cli, small_png, out_dir: Path) -> None:
    src = small_png("gray.png", size=(40, 56), mode="L")
    with _open(src) as im:
        assert im.mode == "L"
    code, _, err = run_cli(["compress", src, "-o", out_dir / "g.jpg", *MODEL])
    assert code == 0, err
    assert run_cli(["decompress", out_dir / "g.jpg", "-o", out_dir / "g.png"])[0] == 0
    with _open(out_dir / "g.png") as im:
        assert im.mode == "RGB" and im.size == (56, 40)


def test_decompress_with_missing_model_weights(
    run_cli, small_png, out_dir: Path, monkeypatch, tmp_path: Path
) -> None:
    from sandwich.codecs.jpeg import JpegCodec
    from sandwich.formats.jpeg_marker import MarkerInfo, insert_marker

    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setattr("sandwich.zoo.weights_dir", lambda: empty)
    assert not available(get_entry("gray-jpeg"))
    with _open(small_png("x.png")) as im:
        luma = np.asarray(im.convert("L"))
    data = insert_marker(JpegCodec("gray").encode(luma, 50), MarkerInfo("gray-jpeg", 1, 40, 56))
    (out_dir / "x.jpg").write_bytes(data)
    code, _, err = run_cli(["decompress", out_dir / "x.jpg", "-o", out_dir / "x.png"])
    assert code != 0 and "no weights" in err
    assert not (out_dir / "x.png").exists()


# --------------------------------------------------------------------------- other commands
def test_demo(run_cli, tmp_path: Path, sample_full: np.ndarray) -> None:
    out = tmp_path / "demo.png"
    code, stdout, err = run_cli(["demo", *MODEL, "-o", out])
    assert code == 0, err
    assert "gray-modem" in stdout and "grayscale JPEG" in stdout
    h, w = sample_full.shape[:2]
    with _open(out) as im:
        assert im.format == "PNG" and im.size == (4 * w, h)
    code, _, err = run_cli(["demo", *MODEL, "-o", out])  # exists: refused
    assert code != 0 and "--force" in err


def test_demo_default_model(run_cli, tmp_path: Path, sample_full: np.ndarray) -> None:
    if not available(get_entry(DEFAULT_MODEL)):
        pytest.skip(f"default model {DEFAULT_MODEL} has no weights in this install")
    out = tmp_path / "demo.png"
    code, _, err = run_cli(["demo", "-o", out])
    assert code == 0, err
    with _open(out) as im:
        assert im.size == (4 * sample_full.shape[1], sample_full.shape[0])


def test_models_and_bench_models(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli(["models"])
    assert code == 0, err
    assert "gray-modem" in out and "gray-jpeg" in out
    code, out, err = run_cli(["bench", "models", "--json", tmp_path / "m.json"])
    assert code == 0, err
    rows = json.loads((tmp_path / "m.json").read_text())
    assert rows and all(r["params"] > 0 and r["macs_per_pixel"] > 0 for r in rows)


def test_bench_proxy(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("p.png", size=(48, 64))
    out = tmp_path / "out.json"
    code, _, err = run_cli(["bench", "proxy", src, "--qualities", "20,80", "--json", out])
    assert code == 0, err
    rows = json.loads(out.read_text())
    assert {(r["mode"], r["quality"]) for r in rows} == {
        (m, q) for m in ("4:2:0", "4:4:4", "gray") for q in (20, 80)
    }
    for r in rows:
        assert {"mode", "quality", "real_bpp", "proxy_bpp", "real_psnr", "proxy_psnr"} <= set(r)
        assert abs(r["proxy_bpp"] / r["real_bpp"] - 1) < 0.05
        assert abs(r["proxy_psnr"] - r["real_psnr"]) < 0.2
    argv = ["bench", "proxy", src, "--qualities", "20", "--modes", "4:2:0", "--gradient"]
    code, text, err = run_cli([*argv, "--json", out])
    assert code == 0, err
    assert "bits of a small change" in text
    (row,) = json.loads(out.read_text())
    ratios = row["change_bits_over_gradient"]
    assert set(ratios) == {"total", "marginal"} and all(v > 0 for v in ratios.values())
    code, _, err = run_cli(["bench", "proxy", src, "--qualities", "a,b"])
    assert code != 0 and "--qualities" in err
    code, _, err = run_cli(["bench", "proxy", src, "--modes", "4:1:1"])
    assert code != 0 and "unknown mode" in err


def test_bench_patches(run_cli, check_error, tmp_path: Path) -> None:
    """A folder of one half-flat, half-noisy image: more draws give more detailed patches."""
    rng = np.random.default_rng(0)
    img = np.full((40, 160, 3), 90, np.uint8)
    img[:, 80:] = rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)
    (tmp_path / "d").mkdir()
    Image.fromarray(img).save(tmp_path / "d" / "half.png")
    out = tmp_path / "p.json"
    argv = ["bench", "patches", tmp_path / "d", "--patch", "32", "--samples", "100"]
    code, text, err = run_cli([*argv, "--draws", "1", "--draws", "6", "--json", out])
    assert code == 0, err
    assert "patch detail" in text
    plain, biased = json.loads(out.read_text())
    assert (plain["detail_draws"], biased["detail_draws"]) == (1, 6)
    assert plain["p10"] <= plain["p50"] <= plain["p90"]
    assert biased["p25"] > plain["p25"]
    code, _, err = run_cli([*argv, "--draws", "0"])
    assert "--detail-draws" in check_error(code, err)
    code, _, err = run_cli([*argv[:2], tmp_path / "nowhere"])
    assert "nowhere" in check_error(code, err)


def test_calibrate_proxy(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("c.png", size=(48, 64))
    out = tmp_path / "cal.json"
    code, text, err = run_cli(["calibrate-proxy", src, "--qualities", "20,80", "--out", out])
    assert code == 0, err
    cal = json.loads(out.read_text())
    for mode in ("4:2:0", "4:4:4", "gray"):
        m = cal["modes"][mode]
        assert m["header_bytes"] > 0 and m["alpha"] > 0
        assert m["grad_alpha"]["qualities"] == [20, 80] and len(m["grad_alpha"]["alpha"]) == 2
    assert "wrote" in text


def test_eval(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("e.png", size=(64, 80))
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        ["eval", src, *MODEL, "--baseline", "jpeg-gray", "--qualities", "30,60,90", "--json", out]
    )
    assert code == 0, err
    res = json.loads(out.read_text())
    assert "bd" in res and res["qualities"] == [30, 60, 90]
    assert [(d["test"], d["anchor"]) for d in res["bd"]] == [("gray-modem", "jpeg-gray")]
    assert set(res["curves"]) == {"gray-modem", "jpeg-gray"}
    assert len(res["rows"]) == 2 * 3
    modem = res["curves"]["gray-modem"]["psnr"]
    gray = res["curves"]["jpeg-gray"]["psnr"]
    assert all(a > b for a, b in zip(modem, gray, strict=True))
    code, _, err = run_cli(["eval", src])
    assert code != 0 and "at least one" in err
    code, _, err = run_cli(["eval", src, "--baseline", "nope"])
    assert code != 0 and "unknown baseline" in err


# --------------------------------------------------------------------------- bad inputs
def _bad_inputs(tmp_path: Path, small_png) -> dict[str, Path]:
    """Inputs that must each be refused with one clear line."""
    files = {}
    files["missing"] = tmp_path / "missing.png"
    files["text"] = tmp_path / "x.png"
    files["text"].write_text("this is not an image\n")
    files["tiny"] = small_png("tiny.png", image=np.zeros((1, 1, 3), np.uint8))
    rgba = np.zeros((40, 56, 4), np.uint8)
    rgba[..., 3] = 200
    files["rgba"] = small_png("rgba.png", image=rgba)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 56), 40000, np.uint16)).save(deep)
    with Image.open(deep) as im:
        assert im.mode == "I;16"
    files["deep"] = deep
    files["narrow"] = small_png("narrow.png", size=(40, 7))
    return files


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("missing", "no such file"),
        ("text", "not an image"),
        ("tiny", "1x1"),
        ("rgba", "alpha"),
        ("deep", "8-bit"),
        ("narrow", "at least 8x8"),
    ],
)
def test_compress_bad_input(
    run_cli, check_error, small_png, tmp_path: Path, out_dir: Path, kind: str, words: str
) -> None:
    src = _bad_inputs(tmp_path, small_png)[kind]
    code, out, err = run_cli(["compress", src, "-o", out_dir / "o.jpg", *MODEL])
    line = check_error(code, err)
    assert words in line
    assert list(out_dir.iterdir()) == []


@pytest.fixture
def sandwich_jpeg(run_cli, small_png, tmp_path: Path) -> bytes:
    src = small_png("s.png", size=(96, 128))
    dst = tmp_path / "s.jpg"
    assert run_cli(["compress", src, "-o", dst, *MODEL, "-q", "50"])[0] == 0
    return dst.read_bytes()


@pytest.mark.parametrize("cut", ["half", "20", "minus10", "header"])
def test_decompress_truncated(
    run_cli, check_error, sandwich_jpeg: bytes, tmp_path: Path, out_dir: Path, cut: str
) -> None:
    data = sandwich_jpeg
    n = {
        "half": len(data) // 2,
        "20": 20,
        "minus10": len(data) - 10,
        "header": data.index(b"\xff\xda") - 5,
    }[cut]
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[:n])
    code, _, err = run_cli(["decompress", bad, "-o", out_dir / "cut.png"])
    line = check_error(code, err)
    assert "truncated" in line
    assert list(out_dir.iterdir()) == []


def test_decompress_not_a_jpeg(run_cli, check_error, small_png, out_dir: Path) -> None:
    src = small_png("p.png")
    code, _, err = run_cli(["decompress", src, "-o", out_dir / "p.png"])
    assert "JPEG" in check_error(code, err)
    code, _, err = run_cli(["decompress", out_dir / "none.jpg", "-o", out_dir / "n.png"])
    assert "no such file" in check_error(code, err)
    assert list(out_dir.iterdir()) == []


def test_unknown_model(run_cli, check_error, small_png, out_dir: Path) -> None:
    src = small_png("u.png")
    code, _, err = run_cli(["compress", src, "-o", out_dir / "u.jpg", "--model", "no-such"])
    line = check_error(code, err)
    assert "unknown model 'no-such'" in line and "sandwich models" in line
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("q", ["0", "101", "-3"])
def test_bad_quality(run_cli, check_error, small_png, out_dir: Path, q: str) -> None:
    code, _, err = run_cli(
        ["compress", small_png("q.png"), "-o", out_dir / "q.jpg", *MODEL, "-q", q]
    )
    assert "1..100" in check_error(code, err)
    assert list(out_dir.iterdir()) == []


def test_existing_output_needs_force(run_cli, check_error, small_png, out_dir: Path) -> None:
    src = small_png("f.png")
    dst = out_dir / "f.jpg"
    dst.write_bytes(b"precious")
    code, _, err = run_cli(["compress", src, "-o", dst, *MODEL])
    assert "--force" in check_error(code, err)
    assert dst.read_bytes() == b"precious"
    assert sorted(p.name for p in out_dir.iterdir()) == ["f.jpg"]

    code, _, err = run_cli(["compress", src, "-o", dst, *MODEL, "--force"])
    assert code == 0, err
    assert read_marker(dst.read_bytes()).model == "gray-modem"

    png = out_dir / "f.png"
    png.write_bytes(b"precious too")
    code, _, err = run_cli(["decompress", dst, "-o", png])
    assert "--force" in check_error(code, err)
    assert png.read_bytes() == b"precious too"
    assert run_cli(["decompress", dst, "-o", png, "--force"])[0] == 0
    with _open(png) as im:
        assert im.format == "PNG"
    assert _leftovers(out_dir) == []


def test_missing_output_folder(run_cli, check_error, small_png, tmp_path: Path) -> None:
    code, _, err = run_cli(
        ["compress", small_png("m.png"), "-o", tmp_path / "no/dir/m.jpg", *MODEL]
    )
    assert "does not exist" in check_error(code, err)
    assert not (tmp_path / "no").exists()


def test_console_script_missing_input(run_script, check_error, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    res = run_script(["compress", "nothing.png", "-o", "out/nothing.jpg", *MODEL], cwd=tmp_path)
    assert "no such file" in check_error(res.returncode, res.stderr)
    assert res.stdout == ""
    assert list((tmp_path / "out").iterdir()) == []


def test_console_script_bad_files(
    run_script, check_error, sandwich_jpeg: bytes, small_png, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "cut.jpg").write_bytes(sandwich_jpeg[: len(sandwich_jpeg) // 2])
    res = run_script(["decompress", "cut.jpg", "-o", "out/cut.png"], cwd=tmp_path)
    assert "truncated" in check_error(res.returncode, res.stderr)

    rgba = np.zeros((40, 56, 4), np.uint8)
    small_png("alpha.png", image=rgba)
    res = run_script(["compress", "alpha.png", "-o", "out/alpha.jpg", *MODEL], cwd=tmp_path)
    assert "alpha" in check_error(res.returncode, res.stderr)
    assert list(out.iterdir()) == []


def test_console_script_success_is_quiet(run_script, small_png, tmp_path: Path) -> None:
    small_png("ok.png")
    res = run_script(["compress", "ok.png", "-o", "ok.jpg", *MODEL], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # no warnings on a plain run
    assert "ok.jpg" in res.stdout


# --------------------------------------------------------------------------- training
def _train_data(folder: Path, sample: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    Image.fromarray(sample[:48, :64]).save(folder / "a.png")
    Image.fromarray(sample[120:180, 100:150]).save(folder / "b.png")
    return folder


def test_train_cli(run_cli, check_error, tmp_path: Path, sample_full: np.ndarray) -> None:
    data = _train_data(tmp_path / "data", sample_full)
    run = tmp_path / "run"
    argv = [
        "train",
        "--scenario",
        "gray",
        "--data",
        data,
        "--out",
        run,
        "--steps",
        "3",
        "--batch",
        "2",
        "--patch",
        "32",
        "--pre-widths",
        "8",
        "--post-widths",
        "8",
        "--real-codec",
        "--threads",
        "1",
    ]
    code, out, err = run_cli(argv)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["real_codec"] is True
    for name in (
        "checkpoint.safetensors",
        "log.jsonl",
        "model.safetensors",
        "model.json",
        "config.json",
    ):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records and records[-1]["step"] == 3
    assert all(np.isfinite(r["loss"]) and r["bpp"] > 0 for r in records)
    side = json.loads((run / "model.json").read_text())
    assert side["config"]["scenario"] == "gray" and side["steps"] == 3

    from sandwich.zoo.weights import load_weights

    model = load_weights(run / "model.safetensors")
    assert model.scenario.name == "gray" and model.pre_widths == (8,)
    assert not list(run.glob("*.part"))

    code, _, err = run_cli(argv)  # the run folder has a checkpoint: refuse
    line = check_error(code, err)
    assert "--resume" in line and "--force" in line

    code, _, err = run_cli([*argv[:-2], "--threads", "1", "--rounding", "floor"])
    assert "rounding" in check_error(code, err)

    # a rate weight given as an RD slope: trains, is recorded; only with linear losses
    code, _, err = run_cli([*argv, "--rate-slope", "3", "--force"])
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["rate_slope"] == 3.0
    code, _, err = run_cli([*argv, "--rate-slope", "3", "--loss", "psnr", "--force"])
    line = check_error(code, err)
    assert "--rate-slope" in line and "'psnr'" in line
    code, _, err = run_cli([*argv, "--rate-slope", "-1", "--force"])
    assert "--rate-slope" in check_error(code, err)
    code, _, err = run_cli([*argv, "--rate-grad", "marginal", "--force"])
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["rate_grad"] == "marginal"
    code, _, err = run_cli([*argv, "--rate-grad", "steep", "--force"])
    assert "--rate-grad" in check_error(code, err)

    # several training folders: recorded joined as PATH is; a missing one is a one-line error
    more = tmp_path / "more"
    more.mkdir()
    Image.fromarray(sample_full[:40, :40]).save(more / "c.png")
    code, _, err = run_cli(
        [*argv, "--data", more, "--min-scale", "0.5", "--detail-draws", "2", "--force"]
    )
    assert code == 0, err
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["data"] == os.pathsep.join([str(data), str(more)])
    assert recorded["min_scale"] == 0.5 and recorded["detail_draws"] == 2
    code, _, err = run_cli([*argv, "--min-scale", "2", "--force"])
    assert "--min-scale" in check_error(code, err)
    code, _, err = run_cli([*argv, "--detail-draws", "0", "--force"])
    assert "--detail-draws" in check_error(code, err)
    code, _, err = run_cli([*argv, "--data", tmp_path / "nowhere", "--force"])
    line = check_error(code, err)
    assert "nowhere" in line and "sandwich data" in line


def test_train_resume_is_exact(tmp_path: Path, sample_full: np.ndarray) -> None:
    from sandwich.training.trainer import TrainConfig, train

    data = _train_data(tmp_path / "data", sample_full)

    def cfg(out: Path) -> TrainConfig:
        return TrainConfig(
            scenario="lowres2",
            data=str(data),
            out=str(out),
            steps=4,
            batch=2,
            patch=32,
            pre_widths=[8],
            post_widths=[8],
            threads=1,
            log_every=1,
            ckpt_every=100,
        )

    from safetensors.torch import load_file

    from sandwich.training.checkpoint import read_meta
    from sandwich.training.trainer import CHECKPOINT

    a = train(cfg(tmp_path / "A"), progress=False)
    part = train(cfg(tmp_path / "B"), progress=False, stop_after=2)
    assert read_meta(tmp_path / "B" / CHECKPOINT)["step"] == 2
    sa_part = part.state_dict()
    assert any(not torch.equal(sa_part[k], v) for k, v in a.state_dict().items())
    b = train(cfg(tmp_path / "B"), resume=True, progress=False)

    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    ta = load_file(str(tmp_path / "A" / CHECKPOINT))
    tb = load_file(str(tmp_path / "B" / CHECKPOINT))
    assert read_meta(tmp_path / "A" / CHECKPOINT)["step"] == 4
    assert read_meta(tmp_path / "B" / CHECKPOINT)["step"] == 4
    assert ta.keys() == tb.keys()
    assert any(k.startswith("optim/") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k

    def metrics(run: Path) -> list[dict]:
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]

    assert metrics(tmp_path / "A") == metrics(tmp_path / "B")
    assert [r["step"] for r in metrics(tmp_path / "B")] == [1, 2, 3, 4]


def test_train_init_from_other_run(run_cli, check_error, tmp_path: Path, sample_full) -> None:
    """--init starts a run (here: msssim with a weighted loss) from another run's weights."""
    from sandwich.training.trainer import TrainConfig, train
    from sandwich.zoo.weights import load_weights

    data = _train_data(tmp_path / "data", sample_full)
    common = dict(data=str(data), batch=2, patch=32, pre_widths=[8], post_widths=[8], threads=1)
    train(TrainConfig(scenario="rgb", out=str(tmp_path / "A"), steps=2, **common), progress=False)
    src = load_weights(tmp_path / "A" / "model.safetensors")

    # zero steps: the run's model is exactly the source's
    cfg = TrainConfig(
        scenario="msssim",
        out=str(tmp_path / "B"),
        steps=0,
        loss="dssim+0.0002*mse",
        init=str(tmp_path / "A" / "model.safetensors"),
        **common,
    )
    b = train(cfg, progress=False)
    for k, v in src.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k

    # narrower or deeper U-Nets: a one-line error from the CLI (wider ones are widened)
    argv = ["train", "--scenario", "msssim", "--data", data, "--out", tmp_path / "C"]
    argv += ["--steps", "1", "--batch", "2", "--patch", "32", "--threads", "1"]
    argv += ["--pre-widths", "8", "--post-widths", "8,16"]
    code, _, err = run_cli([*argv, "--init", tmp_path / "A" / "model.safetensors"])
    assert "do not match" in check_error(code, err)
    code, _, err = run_cli([*argv, "--loss", "dssim+mse2"])
    assert "unknown distortion" in check_error(code, err)
    code, _, err = run_cli([*argv, "--loss", "dssim5"])  # 5-scale MS-SSIM on 32-pixel patches
    assert "--patch" in check_error(code, err)
    code, _, err = run_cli([*argv, "--fresh-post"])
    assert "--init" in check_error(code, err)
    assert not (tmp_path / "C").exists()
