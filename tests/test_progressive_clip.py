"""The progressive video codec (``rnn-clip``, ``.sndv`` files): predictions, GOPs, progressive
cuts, per-frame rate control, thread determinism, hostile files and the CLI. Tiny clips only:
every frame-iteration counts when the cores are shared."""

from __future__ import annotations

import copy
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.errors import SandwichError
from sandwich.evaluation.metrics import ms_ssim, psnr
from sandwich.formats import sndv
from sandwich.formats.sndv import SndvFrame
from sandwich.media.clips import Clip
from sandwich.models.progressive_clip import PREDICTIONS, ProgressiveClipCodec
from sandwich.zoo import load_model


# ------------------------------------------------------------------------------ helpers
def texture(h: int, w: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """A smooth random colour texture, uint8 (h, w, 3): Gaussian noise low-passed in Fourier
    space (a blur of ``sigma`` pixels), stretched to mean 128, standard deviation 40."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(h, w, 3))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    gain = np.exp(-((2 * np.pi * sigma) ** 2) * (fy**2 + fx**2) / 2)[..., None]
    smooth = np.real(np.fft.ifft2(np.fft.fft2(noise, axes=(0, 1)) * gain, axes=(0, 1)))
    smooth = (smooth - smooth.mean()) / smooth.std() * 40 + 128
    return np.clip(np.round(smooth), 0, 255).astype(np.uint8)


def panning(t: int = 3, h: int = 32, w: int = 48, step: int = 3, seed: int = 0) -> np.ndarray:
    """(t, h, w, 3) uint8: a window over a smooth texture, the content moving right by ``step``
    pixels per frame."""
    big = texture(h, w + step * t, seed)
    return np.stack([big[:, step * (t - 1 - i) : step * (t - 1 - i) + w] for i in range(t)])


def iterations(data: bytes) -> list[int]:
    """Iterations of every frame present in a file."""
    return [len(x.chunks) for x in sndv.parse(data).frames]


def p_frame_bits(data: bytes) -> int:
    """Bits of the predicted frames' payloads (motion side information included)."""
    f = sndv.parse(data)
    return sum(8 * (len(x.motion) + sum(map(len, x.chunks))) for x in f.frames if not x.intra)


def write_frames(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    return folder


def read_pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.iterdir())])


def defaults(net: ProgressiveClipCodec) -> None:
    net.prediction, net.gop, net.target = "motion", None, None


@pytest.fixture(scope="module")
def zoo_net() -> ProgressiveClipCodec:
    net = load_model("rnn-clip")
    assert isinstance(net, ProgressiveClipCodec) and net.media == "clip"
    return net


@pytest.fixture
def net(zoo_net: ProgressiveClipCodec) -> ProgressiveClipCodec:
    """The zoo model with its default settings (put back after the test)."""
    defaults(zoo_net)
    yield zoo_net
    defaults(zoo_net)


@pytest.fixture(scope="module")
def small(zoo_net: ProgressiveClipCodec) -> tuple[bytes, np.ndarray]:
    """(file, its decoded frames): 3 frames of 16 x 32, motion prediction, gop 2, 2 iterations."""
    defaults(zoo_net)
    zoo_net.configure(gop=2)
    try:
        data, decoded, counts = zoo_net.encode_clip(panning(3, 16, 32), 2)
    finally:
        defaults(zoo_net)
    assert counts == [2, 2, 2]
    return data, decoded


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_round_trip_each_prediction(net, prediction: str) -> None:
    frames = panning(3)
    net.configure(prediction=prediction)
    data, decoded, counts = net.encode_clip(frames, 1)
    assert counts == [1, 1, 1]
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(net.decompress(data), decoded)
    f = sndv.parse(data)
    assert f.header.prediction == prediction and f.header.frames == 3 and not f.truncated
    assert [len(x.chunks) for x in f.frames] == counts
    assert [x.intra for x in f.frames] == [True, False, False]
    # only sent-motion prediction carries side information, and only in predicted frames
    assert [bool(x.motion) for x in f.frames] == [False, *[prediction == "motion"] * 2]
    assert all(psnr(a, b) > 15 for a, b in zip(frames, decoded, strict=True))


def test_one_frame_clip_is_deterministic_and_coded_as_the_image_codec(net) -> None:
    frames = panning(1)
    data, decoded, counts = net.encode_clip(Clip(frames, 30.0), 2)
    f = sndv.parse(data)
    assert counts == [2] and [x.intra for x in f.frames] == [True]
    assert f.header.fps == 30.0 and f.header.gop == 32 and f.header.model == "rnn-clip"
    np.testing.assert_array_equal(net.decompress(data), decoded)
    assert net.compress(Clip(frames, 30.0), 2) == data  # the same bytes again
    image = load_model("rnn")
    np.testing.assert_array_equal(decoded[0], image.decompress(image.compress(frames[0], 2)))


def test_motion_prediction_beats_no_prediction(net) -> None:
    """On a panning texture motion-compensated P frames are better at equal iterations, and
    reach a per-frame PSNR target with fewer bits. (At equal iterations the files are about
    as large: every iteration codes a fixed number of binary codes, close to 1 bit each on
    frames this small, and the motion vectors come on top.)"""
    frames = panning(2)
    quality = {}
    for prediction in ("none", "motion"):
        net.configure(prediction=prediction)
        _, decoded, _ = net.encode_clip(frames, 2)
        quality[prediction] = psnr(frames[1], decoded[1])
    assert quality["motion"] > quality["none"] + 0.3, quality

    bits, counts = {}, {}
    for prediction in ("none", "motion"):
        net.configure(prediction=prediction, target_psnr=20.0)
        data, decoded, counts[prediction] = net.encode_clip(frames, 3)
        assert iterations(data) == counts[prediction]
        np.testing.assert_array_equal(net.decompress(data), decoded)
        bits[prediction] = p_frame_bits(data)
    assert counts["motion"][0] == counts["none"][0]  # the same intra frame
    assert sum(counts["motion"]) < sum(counts["none"]), counts
    assert bits["motion"] < bits["none"], bits


# ------------------------------------------------------------------------------ rate control
def test_target_psnr_gives_the_fewest_iterations_that_reach_it(net) -> None:
    frames = panning(2)
    net.configure(prediction="previous", target_psnr=20.0)
    data, decoded, counts = net.encode_clip(frames, 4)
    assert all(1 <= c < 4 for c in counts), counts  # a low target: below the maximum
    assert iterations(data) == counts
    assert all(psnr(a, b) >= 20.0 for a, b in zip(frames, decoded, strict=True))
    np.testing.assert_array_equal(net.decompress(data), decoded)
    # the fewest: intra frame 0 one iteration short misses the target
    assert counts[0] > 1
    fewer = net.decompress(sndv.truncate(data, counts[0] - 1))[0]
    assert psnr(frames[0], fewer) < 20.0
    # out of reach: the maximum
    net.configure(target_psnr=80.0)
    assert net.encode_clip(frames[:1], 2)[2] == [2]


def test_target_msssim(net) -> None:
    frames = panning(1)
    net.configure(target_msssim=0.6)
    assert net.target.metric == "msssim"
    data, decoded, counts = net.encode_clip(frames, 4)
    assert 1 < counts[0] < 4
    assert ms_ssim(frames[0], decoded[0]) >= 0.6
    fewer = net.decompress(sndv.truncate(data, counts[0] - 1))[0]
    assert ms_ssim(frames[0], fewer) < 0.6


def test_target_bpp_picks_the_most_iterations_that_fit(net) -> None:
    clip = Clip(panning(1, 16, 16), 25.0)
    k, data = net.compress_to_bpp(clip, 3.5)
    assert 8 * len(data) / 256 <= 3.5
    assert iterations(data) == [k] and 1 <= k < net.cfg.max_iterations
    assert 8 * len(net.compress(clip, k + 1)) / 256 > 3.5


# ------------------------------------------------------------------------------ GOPs and sizes
def test_gop_intra_frames_and_index(net) -> None:
    frames = panning(5, 16, 16, step=2)
    net.configure(prediction="previous", gop=2)
    data, decoded, counts = net.encode_clip(frames, 1)
    f = sndv.parse(data)
    assert f.header.gop == 2 and counts == [1] * 5
    assert [x.intra for x in f.frames] == [True, False, True, False, True]
    offsets = sndv.intra_offsets(data)
    assert [i for i, _ in offsets] == [0, 2, 4]
    for i, at in offsets:  # each offset is the start of that intra frame's header
        assert struct.unpack_from(">IBB", data, at) == (i, 1, 1)
    assert [x.intra for x in sndv.parse_from(data, 2).frames] == [True, False, True]
    np.testing.assert_array_equal(net.decompress(data), decoded)
    # a GOP does not depend on the frames before it
    np.testing.assert_array_equal(net.encode_clip(frames[2:4], 1)[1], decoded[2:4])


@pytest.mark.parametrize("size", [(23, 37), (17, 16), (1, 5)])
def test_odd_frame_sizes_round_trip(net, size: tuple[int, int]) -> None:
    h, w = size
    frames = panning(2, h, w, step=2, seed=1)
    data, decoded, counts = net.encode_clip(frames, 1)
    assert decoded.shape == (2, h, w, 3) and counts == [1, 1]
    header = sndv.parse(data).header
    assert (header.height, header.width, header.frames) == (h, w, 2)
    np.testing.assert_array_equal(net.decompress(data), decoded)


# ------------------------------------------------------------------------------ progressive
def test_truncated_iterations_and_cut_files(net, small) -> None:
    data, decoded = small
    one = sndv.truncate(data, 1)
    assert len(one) < len(data) and iterations(one) == [1, 1, 1]
    assert net.decompress(one).shape == decoded.shape

    cut = data[: len(data) * 2 // 3]
    kept = sndv.parse(cut).frames
    assert 0 < len(kept) < 3
    clip, info = net.decode_file(cut)
    assert info.truncated and info.frames == len(kept)
    assert clip.frames.shape == (len(kept), 16, 32, 3)
    complete = sum(len(x.chunks) == 2 for x in kept)
    assert complete >= 1
    np.testing.assert_array_equal(clip.frames[:complete], decoded[:complete])
    _, note = net.decompress_with_note(cut)
    assert "cut short" in note


def test_truncating_intra_only_files_is_coding_fewer_iterations(net) -> None:
    frames = panning(2, 16, 32)
    net.configure(prediction="none")
    data = net.compress(frames, 2)
    fewer, decoded, _ = net.encode_clip(frames, 1)
    assert sndv.truncate(data, 1) == fewer
    np.testing.assert_array_equal(net.decompress(sndv.truncate(data, 1)), decoded)


def test_every_cut_parses_or_fails_cleanly(small) -> None:
    data = small[0]
    full = sndv.parse(data).frames
    for n in range(len(data)):
        try:
            f = sndv.parse(data[:n])
        except SandwichError as e:
            assert "\n" not in str(e)
            continue
        assert f.truncated and len(f.frames) <= len(full)
        for got, want in zip(f.frames, full, strict=False):
            assert got.intra == want.intra and got.chunks == want.chunks[: len(got.chunks)]


# ------------------------------------------------------------------------------ threads
def test_decoding_is_identical_with_1_and_2_threads(net, small) -> None:
    data, decoded = small
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = net.decompress(data)
        torch.set_num_threads(2)
        two = net.decompress(data)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, decoded)


# ------------------------------------------------------------------------------ bad input
def test_every_flipped_byte_is_a_one_line_error(net, small) -> None:
    data = small[0]
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(SandwichError) as e:
            net.decode_file(bytes(bad))
        assert "\n" not in str(e.value)


def test_other_weights_are_refused(net, small) -> None:
    data = small[0]
    f = sndv.parse(data)
    foreign = sndv.pack(replace(f.header, weight_hash=bytes(8)), f.frames)
    with pytest.raises(SandwichError, match="weight hash"):
        net.decompress(foreign)
    other = copy.deepcopy(net)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(SandwichError, match="weight hash"):
        other.decompress(data)
    with pytest.raises(SandwichError, match="weight hash"):
        net.decompress(other.compress(panning(1, 16, 16), 1))


def _hostile(f: sndv.SndvFile) -> dict[str, bytes]:
    """Well-formed files (every checksum right) whose content the model must refuse."""
    rng = np.random.default_rng(3)
    h = f.header

    def frames(motion=None, chunks=None):
        return [
            SndvFrame(
                x.intra,
                x.motion if motion is None or x.intra else motion,
                x.chunks if chunks is None else chunks(x.chunks),
            )
            for x in f.frames
        ]

    def noise(chunks):
        return [rng.integers(0, 256, len(c), dtype=np.uint8).tobytes() for c in chunks]

    return {
        "random payloads": sndv.pack(h, frames(chunks=noise)),
        "0xff payloads": sndv.pack(h, frames(chunks=lambda cs: [b"\xff" * 64 for _ in cs])),
        "no motion": sndv.pack(h, frames(motion=b"")),
        "bad motion": sndv.pack(h, frames(motion=b"\x01\x02\x03\x04\x05")),
        "too many iterations": sndv.pack(h, frames(chunks=lambda cs: cs * 7)),
        "other channels": sndv.pack(replace(h, channels=16), f.frames),
        "other blocks": sndv.pack(replace(h, block=8), f.frames),
        "huge frames": sndv.pack(replace(h, height=2048, width=1024), f.frames),
        "other size": sndv.pack(replace(h, height=h.height + 16), f.frames),
    }


def test_well_formed_hostile_files_are_one_line_errors(net, small) -> None:
    data = small[0]
    for what, bad in _hostile(sndv.parse(data)).items():
        try:
            net.decode_file(bad)
        except SandwichError as e:
            assert "\n" not in str(e), what
        else:
            pytest.fail(f"{what}: decoded without an error")
    for cut in (data[:0], data[:3], data[:20], data[:60]):
        with pytest.raises(SandwichError):
            net.decompress(cut)
    with pytest.raises(SandwichError):
        net.decompress(b"\x89PNG\r\n\x1a\n" + bytes(64))


@pytest.mark.parametrize(
    "settings",
    [
        {"prediction": "foo"},
        {"gop": 0},
        {"gop": 70000},
        {"target_psnr": 30.0, "target_msssim": 0.9},
        {"target_psnr": 0.0},
        {"target_psnr": 150.0},
        {"target_msssim": 1.5},
    ],
)
def test_bad_settings(net, settings: dict) -> None:
    with pytest.raises(SandwichError) as e:
        net.configure(**settings)
    assert "\n" not in str(e.value)


def test_bad_frames(net) -> None:
    frames = panning(2, 16, 16)
    bad = {
        "16-bit": frames.astype(np.uint16) * 257,
        "gray": frames[..., 0],
        "rgba": np.concatenate([frames, frames[..., :1]], axis=-1),
        "one image": frames[0],
        "a list": list(frames),
        "float": frames.astype(np.float32),
        "over 1 MP": np.zeros((1, 1025, 1024, 3), np.uint8),
    }
    for what, x in bad.items():
        with pytest.raises(SandwichError):
            net.encode_clip(x, 1)
            pytest.fail(what)
    for k in (0, net.cfg.max_iterations + 1):
        with pytest.raises(SandwichError, match="iterations"):
            net.encode_clip(frames, k)


# ------------------------------------------------------------------------------ CLI and API
def test_cli_compress_and_decompress(run_cli, tmp_path: Path) -> None:
    frames = panning(2, 16, 32)
    src = write_frames(tmp_path / "frames", frames)
    out = tmp_path / "out.sndv"
    argv = ["compress", src, "-o", out, "-m", "rnn-clip", "-k", 2]
    code, stdout, err = run_cli([*argv, "--prediction", "motion", "--gop", 4])
    assert code == 0, err
    assert "rnn-clip" in stdout
    data = out.read_bytes()
    f = sndv.parse(data)
    assert (f.header.prediction, f.header.gop, f.header.frames) == ("motion", 4, 2)
    assert iterations(data) == [2, 2]

    rec = tmp_path / "rec"
    code, stdout, err = run_cli(["decompress", out, "-o", rec])
    assert code == 0, err
    assert sorted(p.name for p in rec.iterdir()) == ["000.png", "001.png"]
    np.testing.assert_array_equal(read_pngs(rec), load_model("rnn-clip").decompress(data))

    # per-frame rate control through the CLI: a target every frame reaches in one iteration
    low = tmp_path / "low.sndv"
    code, _, err = run_cli([*argv[:3], low, *argv[4:], "--prediction", "previous",
                            "--target-psnr", 5])  # fmt: skip
    assert code == 0, err
    assert sndv.parse(low.read_bytes()).header.prediction == "previous"
    assert iterations(low.read_bytes()) == [1, 1]


def test_cli_errors(run_cli, check_error, small_png, tmp_path: Path) -> None:
    src = write_frames(tmp_path / "frames", panning(2, 16, 16))
    base = ["compress", src, "-m", "rnn-clip", "-k", 1]

    code, _, err = run_cli([*base, "-o", tmp_path / "a.sndv", "--prediction", "foo"])
    line = check_error(code, err)
    assert "--prediction foo" in line and "unexpected" not in line
    assert not (tmp_path / "a.sndv").exists()

    code, _, err = run_cli([*base, "-o", tmp_path / "b.sndv", "--target-psnr", 30,
                            "--target-msssim", 0.9])  # fmt: skip
    assert "not both" in check_error(code, err)

    code, _, err = run_cli([*base, "-o", tmp_path / "c.sndv", "--gop", 0])
    assert "--gop" in check_error(code, err)

    existing = tmp_path / "existing.sndv"
    existing.write_bytes(b"keep me")
    code, _, err = run_cli([*base, "-o", existing])
    assert "--force" in check_error(code, err)
    assert existing.read_bytes() == b"keep me"

    png = small_png("still.png")
    for option in (["--prediction", "motion"], ["--gop", 4], ["--target-psnr", 30]):
        argv = ["compress", png, "-o", tmp_path / "still.jpg", "-m", "gray-jpeg", *option]
        code, _, err = run_cli(argv)
        assert "is not a setting of gray-jpeg" in check_error(code, err)
        assert not (tmp_path / "still.jpg").exists()


def test_api_decode_gives_a_clip(small) -> None:
    from sandwich import api

    data, decoded = small
    d = api.decode(data)
    assert d.media == "clip" and d.model == "rnn-clip"
    assert isinstance(d.image, Clip)
    np.testing.assert_array_equal(d.image.frames, decoded)
    assert "3 frames" in d.note and "motion" in d.note


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 0.0, -5.0, 1e9])
def test_bad_frame_rates_are_one_line_errors(net, fps: float) -> None:
    with pytest.raises(SandwichError, match="frame rate"):
        net.compress(Clip(panning(2), fps), 1)


def test_numpy_frame_rate_and_empty_clip(net) -> None:
    data = net.compress(Clip(panning(2), np.float32(30)), 1)
    assert sndv.parse(data).header.fps == 30
    with pytest.raises(SandwichError, match="no frames"):
        net.compress(np.zeros((0, 16, 16, 3), np.uint8), 1)


def test_configure_applies_nothing_when_one_setting_is_bad(net) -> None:
    before = (net.prediction, net.gop, net.target)
    with pytest.raises(SandwichError):
        net.configure(prediction="none", gop=0)
    assert (net.prediction, net.gop, net.target) == before


def test_bench_rnn_video_json(run_cli, tmp_path: Path) -> None:
    import json

    src = write_frames(tmp_path / "clip", panning(3, 32, 48))
    out = tmp_path / "bench.json"
    argv = ["bench", "rnn-video", src, "-m", "rnn-clip", "--frames", 3, "--iterations", "1,2",
            "--predictions", "none,motion", "--codecs", "x265", "--crfs", "30,45",
            "--threads", 1, "--json", out]  # fmt: skip
    code, stdout, err = run_cli(argv)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert {r["prediction"] for r in res["rows"]} == {"none", "motion"}
    assert len(res["rows"]) == 4 and len(res["codec_rows"]) == 2
    motion = next(s for s in res["summary"] if s["prediction"] == "motion")
    assert "bd_rate_msssim_vs_none_pct" in motion
    assert motion["at_msssim"]["iterations_p"] >= 1
    row = next(r for r in res["rows"] if r["prediction"] == "motion")
    assert row["motion_bpp"] > 0 and row["flow_epe_px"] >= 0 and row["flicker"] >= 0
    assert "x265" in stdout and "BD-rate" in stdout


def test_bench_rnn_video_against_an_earlier_run(run_cli, check_error, tmp_path: Path) -> None:
    import json

    src = write_frames(tmp_path / "clip", panning(2, 32, 48))
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    argv = ["bench", "rnn-video", src, "-m", "rnn-clip", "--frames", 2, "--iterations", "1,2",
            "--predictions", "previous", "--codecs", "", "--threads", 1]  # fmt: skip
    code, _, err = run_cli([*argv, "--json", first])
    assert code == 0, err
    code, stdout, err = run_cli([*argv, "--json", second, "--against", first])
    assert code == 0, err
    res = json.loads(second.read_text())
    assert res["against"][0]["prediction"] == "previous"
    assert abs(res["against"][0]["bd_rate_msssim_pct"]) < 1e-6  # the same model and clip
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    check_error(*run_cli([*argv, "--against", bad])[::2])


def test_eval_video_points_progressive_models_to_their_bench(run_cli, check_error, tmp_path):
    src = write_frames(tmp_path / "clip", panning(2, 32, 48))
    msg = check_error(*run_cli(["eval-video", src, "-m", "rnn-clip", "-b", "x265-420"])[::2])
    assert "bench rnn-video" in msg
