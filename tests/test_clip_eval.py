"""The video evaluation harness: plain-codec baselines over clips, the sweep and its summaries,
``sandwich eval-video`` and its one-line errors. Real x264 / x265 on two tiny clips.

The clips are 96x128: the low-resolution pipelines code 48x64 streams. (x265 corrupts memory on
some smaller frames, e.g. 32x48, so the harness refuses x265 streams under 48 pixels a side.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sandwich.errors import SandwichError
from sandwich.evaluation.clip_baselines import CLIP_BASELINES
from sandwich.evaluation.clip_eval import (
    ClipEvalRequest,
    evaluate_clips,
    matched_crfs,
    model_pipeline,
)
from sandwich.media.clips import Clip, read_clip

T, H, W = 4, 96, 128
CRFS = "24,32,40"


def panning(sample: np.ndarray, top: int, step: int = 3) -> np.ndarray:
    """(T, H, W, 3) uint8: a crop of the sample panning right by ``step`` pixels per frame."""
    return np.stack([sample[top : top + H, 20 + step * i : 20 + step * i + W] for i in range(T)])


def write_clip(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(np.ascontiguousarray(f)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory, sample_full) -> Path:
    """A folder holding two clips (folders of 4 PNG frames, 96x128)."""
    root = tmp_path_factory.mktemp("clips")
    write_clip(root / "pan-a", panning(sample_full, 30))
    write_clip(root / "pan-b", panning(sample_full, 120, step=2))
    return root


@pytest.fixture(scope="module")
def clip(clips_dir) -> Clip:
    return Clip(*read_clip(clips_dir / "pan-a"))


@pytest.fixture(scope="module")
def gray_weights(tmp_path_factory) -> Path:
    """The zoo's gray-jpeg networks as a video sandwich over x265, saved as local weights."""
    from sandwich.models.clip_sandwich import ClipSandwichModel
    from sandwich.zoo import load_model
    from sandwich.zoo.weights import save_weights

    img = load_model("gray-jpeg")
    m = ClipSandwichModel(
        "gray",
        "x265",
        img.pre_widths,
        img.post_widths,
        activation=img.activation,
        quality_input=img.quality_input,
    )
    state = img.state_dict()
    m.load_state_dict({k: v for k, v in state.items() if k.startswith(("pre.", "post."))})
    path = tmp_path_factory.mktemp("weights") / "gray-clip.safetensors"
    save_weights(m, path)
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, clips_dir, gray_weights) -> Path:
    """One full ``sandwich eval-video`` run (the model, three x265 baselines, three CRFs, every
    metric) writing JSON, Markdown and the report folder; returns its folder."""
    from sandwich.cli import main

    out = tmp_path_factory.mktemp("run")
    argv = [clips_dir, "-m", gray_weights]
    for b in ("x265-gray", "x265-420", "x265-lowres2"):
        argv += ["-b", b]
    argv += ["--anchor", "x265-gray", "--anchor", "x265-420", "--crfs", CRFS]
    argv += ["--metrics", "psnr,msssim,lpips,vmaf", "--out", out / "report"]
    argv += ["--json", out / "r.json", "--markdown", out / "r.md"]
    assert main(["eval-video", *map(str, argv)]) == 0
    return out


@pytest.fixture(scope="module")
def results(cli_run) -> dict:
    return json.loads((cli_run / "r.json").read_text())


# ------------------------------------------------------------------------------ baselines
def test_registry_has_every_baseline_for_both_codecs():
    for codec in ("x265", "x264"):
        for kind in ("420", "444", "gray", "lowres2", "lowres2-paper"):
            pipe = CLIP_BASELINES[f"{codec}-{kind}"]()
            assert pipe.name == f"{codec}-{kind}" and pipe.codec.name == codec


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_baselines_give_full_size_rgb_and_count_the_whole_file(clip, codec):
    for kind in ("420", "444", "gray", "lowres2", "lowres2-paper"):
        rt = CLIP_BASELINES[f"{codec}-{kind}"]().roundtrip(clip, 30)
        assert rt.frames.shape == (T, H, W, 3) and rt.frames.dtype == np.uint8
        assert rt.bits == 8 * len(rt.data) == rt.info.file_bits
        assert rt.info.frame_types == ("I", "P", "P", "P")
        assert 0 < sum(rt.info.frame_bits) < rt.bits
        err = np.abs(rt.frames.astype(int) - clip.frames).mean()
        assert err < 20, (kind, err)


def test_gray_baseline_is_gray_and_lowres_codes_half_size(clip):
    gray = CLIP_BASELINES["x265-gray"]().roundtrip(clip, 30)
    assert (gray.frames[..., 0] == gray.frames[..., 1]).all()
    assert (gray.frames[..., 1] == gray.frames[..., 2]).all()
    assert gray.info.pixel_format == "gray"
    for name, fmt in (("x265-lowres2", "yuv420p"), ("x265-lowres2-paper", "yuv444p")):
        rt = CLIP_BASELINES[name]().roundtrip(clip, 30)
        assert (rt.info.height, rt.info.width) == (H // 2, W // 2)
        assert rt.info.pixel_format == fmt


def test_paper_downsampling_is_bicubic_without_antialiasing(clip, monkeypatch):
    """The paper baseline's small frames are plain 4x4-tap bicubic samples (what torch gives
    without antialiasing), not the antialiased ones of x265-lowres2."""
    pipe = CLIP_BASELINES["x265-lowres2-paper"]()
    seen = {}
    real_encode = pipe.codec.encode

    def spy(frames, crf, **kw):
        seen["small"] = frames
        return real_encode(frames, crf, **kw)

    monkeypatch.setattr(pipe.codec, "encode", spy)
    pipe.roundtrip(clip, 30)
    x = torch.from_numpy(clip.frames.copy()).permute(0, 3, 1, 2).float()
    for aa, close in ((False, True), (True, False)):
        ref = F.interpolate(x, (H // 2, W // 2), mode="bicubic", antialias=aa, align_corners=False)
        ref = ref.round().clamp(0, 255).permute(0, 2, 3, 1).numpy()
        diff = np.abs(seen["small"].astype(float) - ref).max()
        assert (diff <= 1) == close, (aa, diff)


# ------------------------------------------------------------------------------ the sweep
def test_rows_have_whole_file_bits_frame_types_and_metrics(results):
    rows = results["rows"]
    assert results["clips"] == ["pan-a", "pan-b"]
    assert results["crfs"] == [24, 32, 40]
    names = [p["name"] for p in results["pipelines"]]
    assert len(rows) == 2 * len(names) * 3
    for r in rows:
        assert (r["frames"], r["height"], r["width"]) == (T, H, W)
        assert r["bpp"] == pytest.approx(r["bits"] / (T * H * W))
        assert r["frame_types"] == "IPPP" and (r["frames_I"], r["frames_P"]) == (1, 3)
        assert r["bits"] == r["bits_I"] + r["bits_P"] + r["overhead_bits"]
        assert r["bpp_I"] == pytest.approx(r["bits_I"] / (H * W))
        assert r["bpp_P"] == pytest.approx(r["bits_P"] / (3 * H * W))
        assert 10 < r["psnr"] < 60 and 0 < r["ms_ssim"] <= 1
        assert 0 <= r["lpips"] < 1 and 0 <= r["vmaf"] <= 100
    # a lower CRF costs more bits for every clip and pipeline
    for clip in results["clips"]:
        for n in names:
            bits = [r["bits"] for r in rows if r["clip"] == clip and r["pipeline"] == n]
            assert bits == sorted(bits, reverse=True)


def test_curves_are_means_over_clips(results):
    rows, curves = results["rows"], results["curves"]
    assert set(curves) == {p["name"] for p in results["pipelines"]}
    for n, c in curves.items():
        assert c["crf"] == [24, 32, 40]
        for key in ("bpp", "bpp_I", "bpp_P", "psnr", "ms_ssim", "lpips", "vmaf"):
            assert len(c[key]) == 3
            at = [r[key] for r in rows if r["pipeline"] == n and r["crf"] == 32]
            assert c[key][1] == pytest.approx(np.mean(at))
    # the gray stream carries no colour: far below plain 4:2:0 in PSNR at a similar rate
    assert max(curves["x265-gray"]["psnr"]) < min(curves["x265-420"]["psnr"][:2])


def test_bd_tables_are_finite_where_curves_overlap(results):
    table = {(d["test"], d["anchor"]): d for d in results["bd_table"]}
    model = next(p["name"] for p in results["pipelines"] if p["role"] == "model")
    assert {(model, "x265-gray"), (model, "x265-420"), ("x265-420", "x265-gray")} <= set(table)
    assert math.isfinite(table[(model, "x265-gray")]["psnr"]["bd_metric"])
    assert table[(model, "x265-gray")]["psnr"]["bd_metric"] > 3  # colour beats no colour
    d = table[("x265-lowres2", "x265-420")]
    for metric in ("psnr", "ms_ssim", "vmaf"):
        assert math.isfinite(d[metric]["bd_metric"])
    per = [r for r in results["per_clip"] if r["pipeline"] == model]
    assert len(per) == 2 and all(math.isfinite(r["bd"]["psnr"]["bd_metric"]) for r in per)
    assert all(r["bd"] is None for r in results["per_clip"] if r["pipeline"] == "x265-gray")


def test_cli_writes_json_markdown_plots_and_report(cli_run, results):
    md = (cli_run / "r.md").read_text()
    assert "| x265-420 | 32 |" in md and "BD-rate PSNR (%)" in md and "P-frame bpp" in md
    rep = cli_run / "report"
    for stem in ("rd_psnr", "rd_ms_ssim", "rd_lpips", "rd_vmaf", "frame_bits"):  # png and svg
        assert (rep / f"{stem}.png").stat().st_size > 1000 and (rep / f"{stem}.svg").is_file()
    page = (rep / "report.html").read_text()
    full = json.loads((rep / "results.json").read_text())
    assert full["rows"] == results["rows"]
    model = next(p["name"] for p in results["pipelines"] if p["role"] == "model")
    for panels in full["frames"].values():
        kinds = [(p["kind"], p["pipeline"]) for p in panels]
        # original, the anchor (the plain gray stream), ..., the bottleneck, the sandwich
        assert kinds[0] == ("original", None) and kinds[1] == ("reconstruction", "x265-gray")
        assert kinds[-2:] == [("bottleneck", model), ("reconstruction", model)]
        for p in panels:
            assert p["file"] in page
            with Image.open(rep / p["file"]) as im:
                assert im.size == (p["width"], p["height"])
                assert im.mode == ("L" if p["kind"] == "bottleneck" else "RGB")
        assert panels[1]["crf"] == 32  # the anchor at the middle CRF
    assert "pan-a" in page and "Bjontegaard" in page


def test_matched_crfs_pick_the_nearest_rate():
    bpps = {"a": {22: 1.0, 32: 0.5, 42: 0.25}, "b": {22: 2.0, 32: 0.9, 42: 0.55}}
    assert matched_crfs(bpps, "a", [22, 32, 42]) == {"a": 32, "b": 42}


def test_model_over_the_other_codec(gray_weights, clip):
    pipe = model_pipeline(f"{gray_weights}@x264")
    assert pipe.codec.name == "x264" and pipe.downscale == 1
    rt = pipe.roundtrip(clip, 30)
    assert rt.info.codec == "h264" and rt.frames.shape == (T, H, W, 3)
    assert pipe.bottleneck(clip.frames[0], 30).shape == (H, W)


def test_default_metrics_leave_out_what_small_clips_cannot_take(tmp_path, sample_full):
    small = write_clip(tmp_path / "small", panning(sample_full, 30)[:, :24, :40])
    done = evaluate_clips(ClipEvalRequest([small], baselines=["x264-420"], crfs="30,40"))
    assert list(done.metrics) == ["psnr", "ms_ssim"]
    assert any("VMAF left out" in n for n in done.results["notes"])
    assert any("MS-SSIM" in n for n in done.results["notes"])
    assert [r["crf"] for r in done.results["rows"]] == [30, 40]


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["-b", "x265-nope"], "unknown baseline 'x265-nope'; choose one of: x265-420"),
        (["-m", "no-such-model"], "unknown model 'no-such-model'"),
        (["-m", "gray-jpeg"], "is an image model; evaluate it on images with `sandwich eval`"),
        (["-b", "x265-420", "--metrics", "psnr,ssim"], "unknown metric 'ssim'"),
        (["-b", "x265-420", "--crfs", "30,60"], "CRF 60 is outside"),
        (["-b", "x265-420", "--anchor", "jpeg-420"], "--anchor 'jpeg-420' is neither"),
        ([], "give at least one --model or --baseline"),
    ],
)
def test_bad_requests_are_one_line_errors(run_cli, check_error, clips_dir, extra, match):
    code, _, err = run_cli(["eval-video", clips_dir, *extra])
    assert match in check_error(code, err)


def test_no_clips_and_too_small_clips_are_one_line_errors(
    run_cli, check_error, tmp_path, sample_full
):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["eval-video", tmp_path / "empty", "-b", "x265-420"])
    assert "no clips" in check_error(code, err)
    tiny = write_clip(tmp_path / "tiny", panning(sample_full, 30)[:, :24, :40])
    code, _, err = run_cli(["eval-video", tiny, "-b", "x264-420", "--metrics", "vmaf"])
    assert "too small for VMAF" in check_error(code, err)
    small = write_clip(tmp_path / "small", panning(sample_full, 30)[:, :12, :96])
    code, _, err = run_cli(["eval-video", small, "-b", "x265-lowres2"])
    assert "too small for x265-lowres2 (it codes 48x6 frames" in check_error(code, err)


def test_library_errors_before_any_coding(clips_dir):
    with pytest.raises(SandwichError, match="no clips given"):
        evaluate_clips(ClipEvalRequest([], baselines=["x265-420"]))


def test_clip_ms_ssim_is_the_mean_of_the_image_metric(clip):
    from sandwich.evaluation.clip_eval import clip_ms_ssim
    from sandwich.evaluation.metrics import ms_ssim

    noise = np.random.default_rng(0).integers(-12, 13, clip.frames.shape)
    noisy = np.clip(clip.frames.astype(int) + noise, 0, 255).astype(np.uint8)
    want = np.mean([ms_ssim(a, b) for a, b in zip(clip.frames, noisy, strict=True)])
    assert clip_ms_ssim(clip.frames, noisy) == pytest.approx(want, abs=1e-6)
