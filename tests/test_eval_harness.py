"""The evaluation harness of ``sandwich eval``: metrics, knobs, BD deltas, rate matching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sandwich.evaluation.harness import bottleneck_crop, crop_box, match_knobs, pipeline_knobs
from sandwich.evaluation.quality import BASE_METRICS, available_metrics, luma, measure, to_db
from sandwich.evaluation.rd import bd, bd_delta, monotone
from sandwich.zoo import available, get_entry


def test_metrics_identical_and_degraded(sample_rgb: np.ndarray) -> None:
    same = measure(BASE_METRICS, sample_rgb, sample_rgb)
    assert same["psnr"] == 100.0 and same["psnr_y"] == 100.0
    assert same["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert same["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    noisy = np.clip(
        sample_rgb + np.random.default_rng(0).normal(0, 8, sample_rgb.shape), 0, 255
    ).astype(np.uint8)
    worse = measure(BASE_METRICS, sample_rgb, noisy)
    assert 25 < worse["psnr"] < 35 and worse["ssim"] < 0.95 and worse["ms_ssim"] < 0.99
    # swapping R and B changes RGB PSNR a lot but luma only by the weight difference
    swapped = sample_rgb[..., ::-1].copy()
    assert measure(BASE_METRICS, sample_rgb, swapped)["psnr_y"] > worse["psnr"]
    assert luma(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(255.0)
    assert to_db(0.9) == pytest.approx(10.0)
    ssim = BASE_METRICS["ssim"]
    assert ssim.fit(0.99) == pytest.approx(20.0) and ssim.higher_is_better


def test_metric_selection() -> None:
    assert list(available_metrics(["psnr", "ms_ssim"])) == ["psnr", "ms_ssim"]
    from sandwich.errors import SandwichError

    with pytest.raises(SandwichError, match="unknown metric"):
        available_metrics(["psnr", "vmaf-nope"])
    lp = available_metrics().get("lpips")
    if lp is not None:  # LPIPS present: lower is better, so its BD axis is flipped
        assert not lp.higher_is_better and lp.fit(0.2) == pytest.approx(-0.2)


class _Pipe:
    name = "x"

    def __init__(self, codec=None):
        self.codec = codec


def test_pipeline_knobs() -> None:
    own = _Pipe()
    own.qualities = [5, 25, 45]
    prog = _Pipe()
    prog.knobs = [1, 2, 3, 4]
    assert pipeline_knobs(_Pipe(), [10, 50], explicit=False) == ("quality", [10, 50])
    assert pipeline_knobs(own, [10, 50], explicit=False) == ("quality", [5, 25, 45])
    assert pipeline_knobs(own, [10, 50], explicit=True) == ("quality", [10, 50])
    assert pipeline_knobs(prog, [10, 50], explicit=True) == ("iterations", [1, 2, 3, 4])
    # JPEG baselines follow --qualities even though they have their own default sweep
    from sandwich.codecs.jpeg import JpegCodec

    jpeg = _Pipe(JpegCodec("4:2:0"))
    jpeg.qualities = (10, 95)
    assert pipeline_knobs(jpeg, [30, 60], explicit=False) == ("quality", [30, 60])
    own.qualities = (1.5, 3.0)
    assert pipeline_knobs(own, [10], explicit=False) == ("quality", [1.5, 3])


def test_bd_delta_shifts_and_scalings() -> None:
    rate = np.array([0.2, 0.4, 0.8, 1.6, 3.2])
    quality = 30 + 3 * np.log2(rate)
    # the same curve one dB higher, sampled at other (and fewer) rates
    test_rate = np.array([0.3, 0.7, 1.2, 2.5])
    d = bd_delta((rate, quality), (test_rate, 31 + 3 * np.log2(test_rate)))
    assert d["bd_metric"] == pytest.approx(1.0, abs=0.02)
    # the same quality for 20 % fewer bits
    d = bd_delta((rate, quality), (0.8 * rate, quality))
    assert d["bd_rate_pct"] == pytest.approx(-20.0, abs=0.1)
    assert bd((rate, quality), (0.8 * rate, quality))["bd_rate_pct"] == pytest.approx(-20.0, 0.01)
    # disjoint curves: NaN, not an exception
    assert math.isnan(bd_delta((rate, quality), (rate, quality + 100))["bd_rate_pct"])
    # a non-monotone point is dropped before fitting
    b, v = monotone([0.5, 0.1, 0.3, 0.4], [3.0, 1.0, 2.0, 1.5])
    assert b.tolist() == [0.1, 0.3, 0.5] and v.tolist() == [1.0, 2.0, 3.0]


def test_match_knobs_and_crops() -> None:
    bpps = {
        "anchor": {10: 0.4, 30: 0.8, 50: 1.0, 70: 1.3, 90: 2.0},
        "model": {10: 0.5, 50: 1.25, 90: 2.6},
        "prog": {1: 0.3, 2: 0.6, 3: 0.95, 4: 1.3},
    }
    assert match_knobs(bpps, "anchor") == {"anchor": 50, "model": 50, "prog": 3}
    # the anchor leaves its middle knob when another one matches the others better
    bpps = {"anchor": bpps["anchor"], "model": {10: 0.5, 90: 1.3}}
    assert match_knobs(bpps, "anchor") == {"anchor": 70, "model": 90}
    assert crop_box(64, 80) == (0, 0, 64, 80)
    assert crop_box(300, 400) == (54, 104, 246, 296)
    small = np.arange(50 * 40).reshape(50, 40)
    big = bottleneck_crop(small, (3, 5, 13, 21), 2)
    assert big.shape == (10, 16)
    full = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    assert np.array_equal(big, full[3:13, 5:21])


def _eval(run_cli, tmp_path: Path, src: Path, *args) -> dict:
    out = tmp_path / "r.json"
    code, _, err = run_cli(["eval", src, *args, "--json", out])
    assert code == 0, err
    return json.loads(out.read_text())


def test_eval_knobs_anchors_and_own_qualities(run_cli, small_png, tmp_path, monkeypatch) -> None:
    from sandwich.evaluation import baselines

    class OwnScale:  # a non-JPEG codec with its own quality scale (stands in for WebP, ...)
        name, qualities = "own-scale", (15, 45, 75)

        def roundtrip(self, image, quality):
            return baselines.JpegBaseline("4:4:4").roundtrip(image, quality)

    monkeypatch.setitem(baselines.BASELINES, "own-scale", OwnScale)
    src = small_png("k.png", size=(48, 64))
    res = _eval(run_cli, tmp_path, src, "-b", "own-scale", "-b", "jpeg-gray", "--metrics", "psnr")
    knobs = {p["name"]: p["knobs"] for p in res["pipelines"]}
    assert knobs == {"own-scale": [15, 45, 75], "jpeg-gray": [10, 20, 30, 40, 50, 60, 70, 80, 90]}
    assert set(res["metrics"]) == {"psnr"} and res["anchors"] == ["own-scale"]
    assert [(d["test"], d["anchor"]) for d in res["bd_table"]] == [("jpeg-gray", "own-scale")]
    row = res["rows"][0]
    assert row["knob"] == row["quality"] == 15 and row["knob_name"] == "quality"

    # --qualities overrides a baseline's own scale; an anchor given only as --anchor is added
    res = _eval(
        run_cli,
        tmp_path,
        src,
        *["-b", "own-scale", "-m", "gray-modem", "--anchor", "jpeg-420"],
        *["--qualities", "40,80", "--metrics", "psnr,ssim"],
    )
    assert [p["name"] for p in res["pipelines"]] == ["own-scale", "jpeg-420", "gray-modem"]
    assert all(p["knobs"] == [40, 80] for p in res["pipelines"])
    assert {(d["test"], d["anchor"]) for d in res["bd_table"]} == {
        ("own-scale", "jpeg-420"),
        ("gray-modem", "jpeg-420"),
    }
    assert set(res["bd_table"][0]) == {"test", "anchor", "psnr", "ssim"}
    assert set(res["bd_table"][0]["ssim"]) == {"bd_rate_pct", "bd_metric"}
    assert [(d["test"], d["anchor"]) for d in res["bd"]] == [("gray-modem", "jpeg-420")]
    assert {r["image"] for r in res["per_image"]} == {"k.png"}

    code, _, err = run_cli(["eval", src, "-b", "jpeg-gray", "--anchor", "nope"])
    assert code != 0 and "--anchor" in err
    code, _, err = run_cli(["eval", src, "-b", "jpeg-gray", "--metrics", "psnr,nope"])
    assert code != 0 and "unknown metric" in err


def test_eval_progressive_model(run_cli, small_png, tmp_path) -> None:
    if not available(get_entry("rnn")):
        pytest.skip("the progressive zoo model rnn has no weights in this install")
    src = small_png("p.png", size=(48, 64))
    args = ["-m", "rnn", "-b", "jpeg-420", "--qualities", "50", "--metrics", "psnr"]
    res = _eval(run_cli, tmp_path, src, *args)
    rnn = next(p for p in res["pipelines"] if p["name"] == "rnn")
    assert rnn["knob_name"] == "iterations" and rnn["knobs"][0] == 1 and len(rnn["knobs"]) > 1
    curve = res["curves"]["rnn"]
    assert curve["knob"] == rnn["knobs"] and len(curve["bpp"]) == len(rnn["knobs"])
    assert curve["bpp"] == sorted(curve["bpp"])  # every iteration adds bits
    assert len(res["rows"]) == len(rnn["knobs"]) + 1


def test_eval_local_weights(run_cli, check_error, small_png, tmp_path) -> None:
    """-m takes a run's model.safetensors: an untrained rgb sandwich is plain 4:2:0 JPEG."""
    from sandwich.models.sandwich import SandwichModel
    from sandwich.zoo.weights import save_weights

    weights = tmp_path / "run" / "model.safetensors"
    weights.parent.mkdir()
    save_weights(SandwichModel("rgb", (8,), (8,)), weights)
    src = small_png("w.png", size=(48, 64))
    args = ["-m", weights, "-b", "jpeg-420", "--qualities", "30,70", "--metrics", "psnr"]
    res = _eval(run_cli, tmp_path, src, *args)
    model, jpeg = res["curves"][str(weights)], res["curves"]["jpeg-420"]
    assert np.allclose(model["psnr"], jpeg["psnr"], atol=0.05)
    marker_bpp = 8 * (len(str(weights)) + 30) / (48 * 64)  # our APP11 marker: header + name
    assert all(0 < m - j < marker_bpp for m, j in zip(model["bpp"], jpeg["bpp"], strict=True))

    code, _, err = run_cli(["eval", src, "-m", tmp_path / "none.safetensors"])
    assert "missing" in check_error(code, err)
