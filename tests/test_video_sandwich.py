"""The video sandwich: per-frame networks around x264 / x265, its proxy training path, files,
the CLI on clips and their bad inputs. Real codecs on small clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.errors import SandwichError
from sandwich.media.clips import Clip
from sandwich.models.clip_sandwich import ClipSandwichModel, clip_scenario, video_scenarios
from sandwich.zoo import load_model
from sandwich.zoo.weights import save_weights


def moving(sample: np.ndarray, t: int = 4, h: int = 48, w: int = 64, step: int = 2) -> np.ndarray:
    """(t, h, w, 3) uint8: a crop of the sample panning right by ``step`` pixels per frame."""
    return np.stack([sample[40 : 40 + h, 30 + step * i : 30 + step * i + w] for i in range(t)])


def from_image(name: str, scenario: str, codec: str = "x265") -> ClipSandwichModel:
    img = load_model(name)
    m = ClipSandwichModel(
        scenario,
        codec,
        img.pre_widths,
        img.post_widths,
        quality_input=img.quality_input,
        activation=img.activation,
        name="clip-test",
    )
    state = {k: v for k, v in img.state_dict().items() if k.startswith(("pre.", "post."))}
    m.load_state_dict(state)
    return m.eval()


@pytest.fixture(scope="module")
def gray_clip_model() -> ClipSandwichModel:
    return from_image("gray-jpeg", "gray")


@pytest.fixture(scope="module")
def gray_weights(tmp_path_factory, gray_clip_model) -> Path:
    """gray-jpeg's networks as local video-sandwich weights (x265)."""
    path = tmp_path_factory.mktemp("w") / "gray-hevc-test.safetensors"
    save_weights(gray_clip_model, path)
    return path


def write_frames(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    return folder


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-9))


# ------------------------------------------------------------------------------ the model
def test_scenarios_that_fit_a_video_codec():
    names = video_scenarios()
    assert {"gray", "lowres2", "lpips", "rgb", "rgb444"} <= set(names)
    assert "hdr16" not in names and "material6" not in names
    s = clip_scenario("gray", "x264")
    assert (s.codec, s.proxy, s.subsampling) == ("x264", "x264", "gray")
    with pytest.raises(SandwichError, match="does not fit a video codec"):
        clip_scenario("hdr16", "x265")
    with pytest.raises(SandwichError, match="unknown video codec"):
        clip_scenario("gray", "vp9")


def test_per_frame_networks_are_the_image_models(gray_clip_model, sample_full):
    """Frame by frame, the video model's bottleneck is the image model's (shared weights)."""
    img = load_model("gray-jpeg")
    frames = moving(sample_full)
    for f in frames[:2]:
        np.testing.assert_array_equal(
            gray_clip_model.bottleneck_image(f, 28), img.bottleneck_image(f, 28)
        )


def test_forward_through_proxy_and_real_codec(gray_clip_model, sample_full):
    m = gray_clip_model
    x = torch.from_numpy(moving(sample_full, t=3)).permute(0, 3, 1, 2)[None].float()
    m.train()
    try:
        out = m(x, torch.tensor([30.0]))
        assert out.x_hat.shape == x.shape and out.bottleneck.shape == (1, 3, 1, 48, 64)
        assert out.frame_bits.shape == (1, 3) and out.frame_types == [["I", "P", "P"]]
        out.x_hat.mean().backward()
        assert m.pre.scale.grad is not None and m.post.scale.grad is not None
        with torch.no_grad():
            real = m(x, 30.0, real=True)
    finally:
        m.zero_grad(set_to_none=True)
        m.eval()
    assert real.frame_types == [["I", "P", "P"]]
    # the proxy is calibrated to x265's rate: same order of magnitude on this clip
    ratio = float(out.bits.detach()) / float(real.bits)
    assert 0.5 < ratio < 2.0, ratio
    assert psnr(real.x_hat[0].permute(0, 2, 3, 1).numpy(), x[0].permute(0, 2, 3, 1).numpy()) > 22


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_round_trip_through_a_real_mp4(sample_full, codec):
    m = from_image("gray-jpeg", "gray", codec)
    frames = moving(sample_full, t=4, h=47, w=61)  # odd sizes
    data = m.compress(Clip(frames, 30.0), 26)
    assert data[4:8] == b"ftyp"
    from sandwich.models.registry import identify_file

    kind, fmt, named, version = identify_file(data)
    assert kind is ClipSandwichModel and named == "clip-test"
    clip = m.decompress_clip(data)
    assert clip.frames.shape == frames.shape and clip.fps == pytest.approx(30.0)
    assert psnr(clip.frames, frames) > 24
    # the bottleneck is a standard gray stream any decoder opens
    from sandwich.media.clips import decode_video

    video = decode_video(data)
    assert len(video.frame_types) == 4 and video.frame_types[0] == "I"
    assert set(video.frame_types[1:]) == {"P"}


def test_quality_input_records_the_crf(sample_full):
    m = from_image("lowres2-jpeg", "lowres2")
    assert m.quality_input
    frames = moving(sample_full, t=2, h=32, w=48)
    data = m.compress(frames, 33)
    assert m.real.read_tag(data).knob == 33.0
    rec = m.decompress(data)
    assert rec.shape == frames.shape


def test_sidecar_is_validated(tmp_path, gray_clip_model):
    path = tmp_path / "m.safetensors"
    save_weights(gray_clip_model, path)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["kind"] == "clip-sandwich" and side["config"]["codec"] == "x265"
    side["config"]["codec"] = "vp9"
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(SandwichError, match="codec"):
        load_model(str(path))


# ------------------------------------------------------------------------------ the CLI
def test_cli_compress_and_decompress_a_clip(run_cli, tmp_path, sample_full, gray_weights):
    frames = moving(sample_full, t=3)
    src = write_frames(tmp_path / "frames", frames)
    out = tmp_path / "a.mp4"
    code, stdout, err = run_cli(["compress", src, "-o", out, "-m", gray_weights, "--crf", 30])
    assert code == 0, err
    assert "30 crf" in stdout and out.is_file()
    rec = tmp_path / "rec"
    code, stdout, err = run_cli(["decompress", out, "-o", rec, "-m", gray_weights])
    assert code == 0, err
    assert sorted(p.name for p in rec.iterdir()) == ["000.png", "001.png", "002.png"]
    back = np.stack([np.asarray(Image.open(rec / f"{i:03d}.png")) for i in range(3)])
    assert psnr(back, frames) > 24
    for name in ("rec.mkv", "rec.mp4"):
        code, _, err = run_cli(["decompress", out, "-o", tmp_path / name, "-m", gray_weights])
        assert code == 0, err
    from sandwich.media.clips import read_clip

    lossless, _ = read_clip(tmp_path / "rec.mkv")
    np.testing.assert_array_equal(lossless, back)
    # --target-bpp picks a CRF; the MP4 is at most that many bits per pixel
    code, stdout, err = run_cli(
        ["compress", src, "-o", tmp_path / "b.mp4", "-m", gray_weights, "--target-bpp", 2.0]
    )
    assert code == 0, err
    assert 8 * (tmp_path / "b.mp4").stat().st_size / frames[..., 0].size <= 2.0


def test_cli_clip_bad_inputs(run_cli, check_error, tmp_path, sample_full, gray_weights):
    frames = moving(sample_full, t=2)
    src = write_frames(tmp_path / "frames", frames)
    out = tmp_path / "a.mp4"
    assert run_cli(["compress", src, "-o", out, "-m", gray_weights])[0] == 0
    size = out.stat().st_size
    # an existing output without --force
    code, _, err = run_cli(["compress", src, "-o", out, "-m", gray_weights])
    assert "--force" in check_error(code, err) and out.stat().st_size == size
    # the wrong knob
    code, _, err = run_cli(["compress", src, "-o", tmp_path / "q.mp4", "-m", gray_weights, "-q", 5])
    assert "--crf" in check_error(code, err)
    code, _, err = run_cli(
        ["compress", src, "-o", tmp_path / "q.mp4", "-m", gray_weights, "--crf", 60]
    )
    assert "0..51" in check_error(code, err)
    # not a video
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, _, err = run_cli(["compress", text, "-o", tmp_path / "n.mp4", "-m", gray_weights])
    check_error(code, err)
    # an image given to a video model, and text named .mp4 given to decompress
    still = tmp_path / "still.png"
    Image.fromarray(frames[0]).save(still)
    code, _, err = run_cli(["compress", still, "-o", tmp_path / "s.mp4", "-m", gray_weights])
    assert "not a clip" in check_error(code, err)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all")
    code, _, err = run_cli(["decompress", fake, "-o", tmp_path / "fake", "-m", gray_weights])
    check_error(code, err)
    assert not (tmp_path / "fake").exists()
    # a truncated MP4 and a corrupt one
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(out.read_bytes()[: size // 2])
    code, _, err = run_cli(["decompress", cut, "-o", tmp_path / "cut", "-m", gray_weights])
    check_error(code, err)
    assert not (tmp_path / "cut").exists()
    bad = bytearray(out.read_bytes())
    bad[size // 2 : size // 2 + 64] = b"\xff" * 64
    (tmp_path / "bad.mp4").write_bytes(bytes(bad))
    code, _, err = run_cli(["decompress", tmp_path / "bad.mp4", "-o", tmp_path / "bad"])
    assert code != 0 and "Traceback" not in err
    # frames of different sizes in a folder
    mixed = write_frames(tmp_path / "mixed", frames)
    Image.fromarray(frames[0][:20]).save(mixed / "002.png")
    code, _, err = run_cli(["compress", mixed, "-o", tmp_path / "m.mp4", "-m", gray_weights])
    check_error(code, err)
    # a clip decoded to an image name
    code, _, err = run_cli(["decompress", out, "-o", tmp_path / "x.png", "-m", gray_weights])
    assert "folder name" in check_error(code, err)
    assert not (tmp_path / "x.png").exists()


def test_cli_one_frame_and_16_bit_frames(run_cli, check_error, tmp_path, sample_full, gray_weights):
    one = write_frames(tmp_path / "one", moving(sample_full, t=1))
    code, _, err = run_cli(["compress", one, "-o", tmp_path / "one.mp4", "-m", gray_weights])
    assert code == 0, err
    code, _, err = run_cli(["decompress", tmp_path / "one.mp4", "-o", tmp_path / "r1", "-m",
                            gray_weights])  # fmt: skip
    assert code == 0, err
    assert len(list((tmp_path / "r1").iterdir())) == 1
    deep = tmp_path / "deep"
    deep.mkdir()
    for i in range(2):
        arr = (moving(sample_full, t=1)[0].astype(np.uint16) * 257)[..., 0]
        Image.fromarray(arr).save(deep / f"{i:03d}.png")
    code, _, err = run_cli(["compress", deep, "-o", tmp_path / "deep.mp4", "-m", gray_weights])
    assert "16-bit frame" in check_error(code, err)
    assert not (tmp_path / "deep.mp4").exists()


# ------------------------------------------------------------------------------ training
def test_train_video_on_stills(run_cli, tmp_path, sample_full):
    stills = tmp_path / "stills"
    stills.mkdir()
    Image.fromarray(sample_full).save(stills / "a.png")
    init = tmp_path / "init.safetensors"
    save_weights(from_image("gray-jpeg", "gray"), init)
    run = tmp_path / "run"
    argv = ["train-video", "--scenario", "gray", "--data", stills, "--stills", stills,
            "--still-share", 1, "--out", run, "--steps", 2, "--batch", 1, "--frames", 3,
            "--patch", 32, "--activation", "relu", "--pre-widths", "16,32", "--post-widths",
            "32,64", "--init", init, "--log-every", 1, "--threads", 1]  # fmt: skip
    code, _, err = run_cli(argv)
    assert code == 0, err
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["bpp"] > 0 for r in log)
    net = load_model(str(run / "model.safetensors"))
    assert isinstance(net, ClipSandwichModel) and net.scenario.codec == "x265"
    # an image model of another scenario cannot start a gray run
    other = tmp_path / "other.safetensors"
    save_weights(load_model("rgb-jpeg"), other)
    code, _, err = run_cli([*argv[:-6], "--init", other, "--out", tmp_path / "run2"])
    assert code != 0 and "Traceback" not in err
    assert not (tmp_path / "run2").exists()


def test_temporal_context_starts_as_the_frame_model(sample_full, tmp_path):
    """A post-processor with neighbouring frames as input, started from image weights (zero
    weights on the context channels), decodes exactly as the per-frame model; its file and
    sidecar round-trip."""
    from sandwich.training.clip_task import init_from

    init = tmp_path / "init.safetensors"
    save_weights(from_image("gray-jpeg", "gray"), init)
    kw = {"activation": "relu", "name": "ctx"}
    ctx = ClipSandwichModel("gray", "x265", (16, 32), (32, 64), context=1, **kw)
    flat = ClipSandwichModel("gray", "x265", (16, 32), (32, 64), **kw)
    init_from(ctx, str(init))
    init_from(flat, str(init))
    ctx.eval()
    flat.eval()
    assert ctx.neighbours(0, 4) == [0, 0, 1] and ctx.neighbours(3, 4) == [3, 2, 3]
    frames = moving(sample_full, t=3, h=32, w=48)
    data = ctx.compress(frames, 30)
    np.testing.assert_array_equal(ctx.decompress(data), flat.decompress(data))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)[None].float()
    with torch.no_grad():
        torch.testing.assert_close(ctx(x, 30.0).x_hat, flat(x, 30.0).x_hat)
    path = tmp_path / "ctx.safetensors"
    save_weights(ctx, path)
    again = load_model(str(path))
    assert again.context == 1 and again.post_channels == 3


def test_bench_speed_video(run_cli, tmp_path, gray_weights):
    out = tmp_path / "speed.json"
    argv = ["bench", "speed-video", "-m", gray_weights, "--sizes", "64x48", "--frames", 2,
            "--repeats", 1, "--threads", 1, "--json", out]  # fmt: skip
    code, stdout, err = run_cli(argv)
    assert code == 0, err
    rows = json.loads(out.read_text())["rows"]
    assert [r["pipeline"] for r in rows][0] == "x265 4:2:0" and len(rows) == 2
    assert all(r["encode_fps"] > 0 and r["decode_fps"] > 0 and r["bpp"] > 0 for r in rows)
    code, _, err = run_cli(["bench", "speed-video", "-m", "gray-jpeg"])
    assert code != 0 and "image model" in err


def test_clip_pixel_budget(run_cli, check_error, tmp_path, sample_full, gray_weights):
    """A frame above --max-pixels, and a clip above 10x --max-pixels pixels in all, are one-line
    errors before the frames fill memory, for frame folders and MP4s alike."""
    frames = moving(sample_full, t=12, h=48, w=64, step=1)  # 12 x 3072 pixels
    src = write_frames(tmp_path / "frames", frames)
    mp4 = tmp_path / "a.mp4"
    assert run_cli(["compress", src, "-o", mp4, "-m", gray_weights])[0] == 0
    for limit, words in ((900, "larger than the limit"), (3100, "more than a clip may hold")):
        argv = ["compress", src, "-o", tmp_path / "b.mp4", "-m", gray_weights,
                "--max-pixels", limit]  # fmt: skip
        assert words in check_error(*run_cli(argv)[::2])
        argv = ["decompress", mp4, "-o", tmp_path / "r", "-m", gray_weights,
                "--max-pixels", limit]  # fmt: skip
        msg = check_error(*run_cli(argv)[::2])
        assert words in msg or "frames" in msg
        assert not (tmp_path / "r").exists() and not (tmp_path / "b.mp4").exists()


def test_zoo_gray_hevc_round_trip_without_naming_the_model(run_cli, tmp_path, sample_full):
    """The shipped video model: compress by name, decompress with the model read from the MP4."""
    frames = moving(sample_full, t=3, h=64, w=96)
    src = write_frames(tmp_path / "frames", frames)
    out = tmp_path / "a.mp4"
    code, stdout, err = run_cli(["compress", src, "-o", out, "-m", "gray-hevc", "--crf", 26])
    assert code == 0, err
    code, stdout, err = run_cli(["decompress", out, "-o", tmp_path / "rec"])
    assert code == 0, err
    assert "gray-hevc" in stdout
    back = np.stack([np.asarray(Image.open(tmp_path / "rec" / f"{i:03d}.png")) for i in range(3)])
    assert psnr(back, frames) > 25


def test_results_video_page(run_cli, tmp_path, sample_full, monkeypatch):
    from sandwich.commands import results_video_cmd

    # a section whose model this install lacks is listed, not run
    ghost = ("ghost", "A model not shipped", ["-m", "ghost-hevc", "-b", "x265-420"])
    monkeypatch.setattr(results_video_cmd, "VIDEO_RECIPES", [*results_video_cmd.VIDEO_RECIPES,
                                                               ghost])  # fmt: skip
    clips = tmp_path / "val"
    write_frames(clips / "c1", moving(sample_full, t=3, h=64, w=96))
    page = tmp_path / "results-video.md"
    code, _, err = run_cli(["results-video", clips, "-o", page, "--only", "gray", "--only",
                            "ghost"])  # fmt: skip
    assert code == 0, err
    text = page.read_text()
    assert "## Colour through a grayscale HEVC stream" in text and "`c1`" in text
    assert "sandwich eval-video" in text and "x265-gray" in text
    assert "no weights for ghost-hevc" in text
    code, _, err = run_cli(["results-video", clips, "-o", page, "--only", "nope"])
    assert code != 0 and "no such section" in err
