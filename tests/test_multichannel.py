"""Multichannel sandwiches: N-channel data (albedo + normals) carried through one standard JPEG."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image

from sandwich.codecs.jpeg import JpegCodec
from sandwich.data.material import (
    build_material,
    decode_normals,
    height_field,
    material,
    normal_map,
)
from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import BASELINES, PlanesJpegBaseline
from sandwich.evaluation.metrics import psnr
from sandwich.formats.jpeg_marker import make_segment, read_marker
from sandwich.media.planes import stack, stack_array, unstack, unstack_array
from sandwich.models.sandwich import SandwichModel
from sandwich.scenarios import SCENARIOS, get_scenario
from sandwich.training.dataset import PatchSampler
from sandwich.zoo.weights import save_weights

torch.set_num_threads(1)


def _material_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A (h, w, 6) uint8 material made from a smooth synthetic photo."""
    return material(smooth_image(h, w, seed=seed))


def _model() -> SandwichModel:
    torch.manual_seed(0)
    return SandwichModel("material6", pre_widths=(8,), post_widths=(8,)).eval()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """Untrained material6 weights as a run writes them (model.safetensors + sidecar)."""
    path = tmp_path / "m6" / "model.safetensors"
    path.parent.mkdir()
    save_weights(_model(), path)
    return path


@pytest.fixture
def npy(tmp_path: Path):
    def write(name: str, image: np.ndarray) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, image)
        return path

    return write


# ----------------------------------------------------------------------------------- scenarios
def test_scenarios() -> None:
    for name in ("rgb", "rgb444", "msssim", "lpips", "gray", "lowres2", "lowres4", "hdr16"):
        s = SCENARIOS[name]
        assert (s.channels, s.planes, s.multichannel) == (3, 1, False)
    m = get_scenario("material6")
    assert (m.channels, m.planes, m.bottleneck_channels, m.subsampling) == (6, 2, 3, "4:2:0")
    n = get_scenario("normals")
    assert (n.channels, n.planes, n.subsampling) == (3, 1, "4:2:0")


# ----------------------------------------------------------------------------------------- data
def test_normal_map_conventions() -> None:
    flat = normal_map(np.zeros((8, 8)))
    assert (flat == np.array([128, 128, 255], np.uint8)).all()
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))  # height grows to the right (+x)
    n = decode_normals(normal_map(ramp, strength=4.0))
    assert (n[..., 0] < -0.1).all() and np.allclose(n[..., 1], 0, atol=0.01)
    down = ramp.T  # height grows downwards, i.e. towards -y: the normal leans to +y
    assert (decode_normals(normal_map(down))[..., 1] > 0.1).all()
    assert np.allclose(np.linalg.norm(n, axis=-1), 1.0)
    rgb = smooth_image(24, 32)
    h = height_field(rgb)
    assert h.shape == (24, 32) and h.min() >= 0 and h.max() <= 1
    m = material(rgb)
    assert m.shape == (24, 32, 6) and m.dtype == np.uint8
    assert np.array_equal(m[:, :, :3], rgb)


def test_build_material_keeps_the_split(tmp_path: Path, run_cli) -> None:
    corpus = tmp_path / "corpus"
    for split, names in (("train", ["a", "b"]), ("val", ["c"])):
        (corpus / split).mkdir(parents=True)
        for i, n in enumerate(names):
            Image.fromarray(smooth_image(16, 24, seed=i)).save(corpus / split / f"{n}.png")
    out = tmp_path / "material"
    code, _, _ = run_cli(["data", "--kind", "material", "--from", corpus, "--out", out])
    assert code == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["a.npy", "b.npy"]
    assert sorted(p.name for p in (out / "val").iterdir()) == ["c.npy"]
    arr = np.load(out / "val" / "c.npy")
    assert arr.shape == (16, 24, 6) and arr.dtype == np.uint8
    with Image.open(out / "normals" / "val" / "c.png") as im:
        assert np.array_equal(np.asarray(im), arr[:, :, 3:])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["train"] == {"count": 2, "pixels": 2 * 16 * 24}
    assert {e["split"] for e in manifest["images"] if e["file"].startswith("val/")} == {"val"}
    with pytest.raises(SandwichError, match="already exists"):
        build_material(corpus, out)
    build_material(corpus, out, force=True)


def test_patch_sampler_reads_npy(tmp_path: Path, npy) -> None:
    npy("d/a.npy", _material_image(40, 48))
    npy("d/b.npy", _material_image(36, 36, seed=1))
    s = PatchSampler(tmp_path / "d", 32)
    assert s.channels == 6
    x = s.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 6, 32, 32) and x.dtype == torch.float32
    npy("d/c.npy", np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(SandwichError, match="mixes images of 3 and 6 channels"):
        PatchSampler(tmp_path / "d", 32)


# ---------------------------------------------------------------------------------------- model
def test_planes_stack_unstack() -> None:
    b = torch.arange(2 * 6 * 3 * 4, dtype=torch.float32).reshape(2, 6, 3, 4)
    s = stack(b, 2)
    assert s.shape == (2, 3, 6, 4)
    assert torch.equal(s[:, :, 3:], b[:, 3:]) and torch.equal(unstack(s, 2), b)
    a = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    st = stack_array(a, 2)  # 5 channels: the last plane gets one channel of 128
    assert st.shape == (6, 4, 3) and (st[3:, :, 2] == 128).all()
    assert np.array_equal(unstack_array(st, 2, 5), a)


def test_untrained_material6_is_the_baseline_through_the_real_codec() -> None:
    m = _model()
    img = _material_image(40, 56)  # 40 rows: the two planes share a 16-row MCU
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        assert torch.equal(m.pre(x), x)
        assert torch.equal(m.post(x, (40, 56)), x)
    base = PlanesJpegBaseline(6, 2, "material-jpeg")
    for q in (20, 75):
        data = m.compress(img, q)
        ref_data, ref = base.roundtrip(img, q)
        info = read_marker(data)
        assert info is not None and (info.height, info.width) == (40, 56)
        assert data.replace(make_segment(info), b"", 1) == ref_data
        assert np.array_equal(m.decompress(data), ref)
        with torch.no_grad():
            out = m(x, q, real=True)
        assert np.array_equal(out.x_hat[0].permute(1, 2, 0).round().byte().numpy(), ref)
        assert out.bottleneck.shape == (1, 3, 80, 56)


def test_proxy_gradient_flows_and_tracks_the_real_rate() -> None:
    m = _model().train()
    x = torch.from_numpy(np.stack([_material_image(32, 32, s) for s in (0, 1)])).float()
    x = x.permute(0, 3, 1, 2)
    res = m(x, torch.tensor([30.0, 70.0]))
    assert res.x_hat.shape == (2, 6, 32, 32) and res.bottleneck.shape == (2, 3, 64, 32)
    loss = ((res.x_hat - x) ** 2).mean() + res.bpp.mean()
    loss.backward()
    for head in (m.pre.unet.head, m.post.unet.head):
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    with torch.no_grad():
        real = m.eval()(x, torch.tensor([30.0, 70.0]), real=True)
    rel = (res.bits.detach() - real.bits).abs() / real.bits
    assert (rel < 0.1).all(), rel


def test_model_refuses_wrong_channel_counts() -> None:
    m = _model()
    with pytest.raises(SandwichError, match="takes 6-channel 8-bit images"):
        m.compress(np.zeros((16, 16, 3), np.uint8), 50)
    rgb_jpeg = JpegCodec("4:2:0").encode(np.zeros((15, 16, 3), np.uint8), 50)
    with pytest.raises(SandwichError, match="not 2 stacked planes"):
        m.decompress(rgb_jpeg)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_round_trip_through_one_jpeg(run_cli, weights: Path, npy, tmp_path: Path) -> None:
    img = _material_image(40, 48)
    src = npy("in/mat.npy", img)
    jpg, back = tmp_path / "mat.jpg", tmp_path / "mat.npy"
    code, out, _ = run_cli(["compress", src, "-o", jpg, "-m", weights, "-q", "60"])
    assert code == 0 and "bpp" in out
    with Image.open(jpg) as im:  # a standard JPEG any viewer opens: two planes, one above
        im.load()
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (48, 2 * 40)
    # the file names local weights: the decoder loads them only when the user names them too
    code, _, err = run_cli(["decompress", jpg, "-o", back])
    assert code != 0 and "not a zoo model" in err and not back.exists()
    code, _, _ = run_cli(["decompress", jpg, "-o", back, "-m", weights])
    assert code == 0
    rec = np.load(back)
    _, ref = PlanesJpegBaseline(6, 2, "material-jpeg").roundtrip(img, 60)
    assert rec.shape == (40, 48, 6) and np.array_equal(rec, ref)
    assert psnr(img, rec) > 30
    # a folder of JPEGs decodes to NAME.npy
    code, _, _ = run_cli(["decompress", tmp_path, "-o", tmp_path / "dec", "-m", weights])
    assert code == 0 and (tmp_path / "dec" / "mat.npy").is_file()


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("png", "6-channel images given as (H, W, 6) uint8 .npy arrays, not .png"),
        ("3ch", "has 3 channel(s)"),
        ("junk", "cannot read the .npy array"),
        ("npy-to-rgb", "is a .npy array; model 'gray-modem' takes RGB image files"),
        ("out-png", "give an output ending in .npy"),
    ],
)
def test_cli_bad_inputs(
    run_cli, check_error, weights: Path, npy, small_png, tmp_path: Path, case: str, words: str
) -> None:
    if case == "png":
        argv = ["compress", small_png("p.png"), "-o", tmp_path / "o.jpg", "-m", weights]
    elif case == "3ch":
        src = npy("three.npy", np.zeros((16, 16, 3), np.uint8))
        argv = ["compress", src, "-o", tmp_path / "o.jpg", "-m", weights]
    elif case == "junk":
        src = tmp_path / "junk.npy"
        src.write_bytes(b"not an array")
        argv = ["compress", src, "-o", tmp_path / "o.jpg", "-m", weights]
    elif case == "npy-to-rgb":
        src = npy("six.npy", _material_image(16, 16))
        argv = ["compress", src, "-o", tmp_path / "o.jpg", "-m", "gray-modem"]
    else:
        jpg = tmp_path / "m.jpg"
        jpg.write_bytes(_model_for(weights).compress(_material_image(16, 16), 50))
        argv = ["decompress", jpg, "-o", tmp_path / "o.png", "-m", weights]
    code, _, err = run_cli(argv)
    assert words in check_error(code, err)
    assert not (tmp_path / "o.jpg").exists() and not (tmp_path / "o.png").exists()


def _model_for(weights: Path) -> SandwichModel:
    from sandwich.zoo import load_model

    return load_model(str(weights))


# ------------------------------------------------------------------------------ training, eval
def test_train_three_steps_on_npy(run_cli, check_error, npy, tmp_path: Path, small_png) -> None:
    npy("data/a.npy", _material_image(40, 40))
    npy("data/b.npy", _material_image(48, 40, seed=2))
    run = tmp_path / "run"
    argv = ["train", "--scenario", "material6", "--data", tmp_path / "data", "--out", run]
    argv += ["--steps", "3", "--batch", "2", "--patch", "32", "--pre-widths", "8"]
    argv += ["--post-widths", "8", "--threads", "1", "--log-every", "1"]
    code, out, _ = run_cli(argv)
    assert code == 0 and (run / "model.safetensors").is_file()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in log)
    m = _model_for(run / "model.safetensors")
    assert m.scenario.name == "material6"
    assert m.decompress(m.compress(_material_image(16, 24), 50)).shape == (16, 24, 6)
    # RGB images given to the 6-channel scenario
    small_png("rgb/p.png", size=(40, 40))
    argv2 = ["train", "--scenario", "material6", "--data", tmp_path / "rgb"]
    argv2 += ["--out", tmp_path / "run2", "--steps", "1", "--patch", "32", "--threads", "1"]
    code, _, err = run_cli(argv2)
    assert "holds 3-channel images but scenario 'material6' takes 6" in check_error(code, err)


def test_eval_material(run_cli, check_error, weights: Path, npy, tmp_path: Path) -> None:
    npy("val/a.npy", _material_image(32, 40))
    npy("val/b.npy", _material_image(24, 32, seed=3))
    res = tmp_path / "res.json"
    argv = ["eval", tmp_path / "val", "-b", "material-jpeg", "-m", weights]
    argv += ["--qualities", "30,60,90", "--metrics", "psnr,ssim", "--json", res]
    code, out, _ = run_cli(argv)
    assert code == 0 and "PSNR over all 6 channels; SSIM on channels 0-2" in out
    results = json.loads(res.read_text())
    assert "all 6 channels" in results["metrics"]["psnr"]["note"]
    assert "albedo" in results["metrics"]["ssim"]["note"]
    base, model = results["curves"]["material-jpeg"], results["curves"][str(weights)]
    assert model["psnr"] == base["psnr"]  # untrained = the baseline
    assert all(m > b for m, b in zip(model["bpp"], base["bpp"], strict=True))  # + the marker
    assert "material-jpeg" in BASELINES
    code, _, err = run_cli(["eval", tmp_path / "val", "-b", "material-jpeg", "-b", "jpeg-420"])
    assert "different channel counts" in check_error(code, err)


def test_stacked_jpeg_is_plain_jpeg_for_viewers() -> None:
    img = _material_image(24, 32)
    data = _model().compress(img, 50)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        top, bottom = np.asarray(im)[:24], np.asarray(im)[24:]
    assert psnr(img[:, :, :3], top) > 25 and psnr(img[:, :, 3:], bottom) > 25
