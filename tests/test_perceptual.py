"""LPIPS and VMAF: properties, gradients, weight loading, and agreement with references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smooth_image

from sandwich.errors import SandwichError
from sandwich.evaluation import perceptual as P
from sandwich.nets.lpips_net import LPIPSNet

# ST-LPIPS measured with stlpips-pytorch 0.0.2's own code (stlpips.LPIPS(net=...,
# variant="shift_tolerant") on -1..1 inputs) on the pairs built by _pairs() below.
REFERENCE = {
    ("alex", "noise12"): 0.06146283447742462,
    ("alex", "shift1"): 0.011161803267896175,
    ("alex", "smooth"): 0.8808983564376831,
    ("vgg", "noise12"): 0.16927947103977203,
    ("vgg", "shift1"): 0.02658529207110405,
    ("vgg", "smooth"): 0.9558128714561462,
}


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).astype(
        np.uint8
    )


def _pairs(a: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "noise12": (a, _noisy(a, 12.0)),
        "shift1": (a, np.roll(a, 1, axis=1)),
        "smooth": (a, smooth_image(64, 80, seed=1)),
    }


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.delenv(P.LPIPS_ENV, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------- LPIPS


def test_lpips_identical_is_zero_and_symmetric(sample_rgb):
    assert P.lpips(sample_rgb, sample_rgb) < 1e-6
    b = _noisy(sample_rgb, 10.0)
    assert P.lpips(sample_rgb, b) == pytest.approx(P.lpips(b, sample_rgb), rel=1e-5)


def test_lpips_grows_with_distortion(sample_rgb):
    values = [P.lpips(sample_rgb, _noisy(sample_rgb, s)) for s in (3.0, 10.0, 30.0)]
    assert 0 < values[0] < values[1] < values[2]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_stlpips_reference(sample_rgb, net):
    assert P.lpips_info(net)["variant"] == "shift_tolerant"
    for name, (a, b) in _pairs(sample_rgb).items():
        assert P.lpips(a, b, net) == pytest.approx(REFERENCE[(net, name)], rel=1e-4, abs=1e-6)


def test_lpips_torch_gradient_and_batch(sample_rgb):
    x = _tensor(sample_rgb).repeat(2, 1, 1, 1)
    y = torch.cat([_tensor(_noisy(sample_rgb, 12.0)), x[:1]]).requires_grad_(True)
    d = P.lpips_torch(x, y, reduction="none")
    assert d.shape == (2,)
    assert float(d[0].detach()) == pytest.approx(REFERENCE[("alex", "noise12")], rel=1e-4)
    assert float(d[1].detach()) < 1e-6
    d.sum().backward()
    g = y.grad
    assert torch.isfinite(g).all()  # finite even where the two images are identical
    assert g[0].abs().sum() > 0
    # a step against the gradient lowers the distance
    with torch.no_grad():
        step = y[:1] - 2000.0 * g[:1]
        assert P.lpips_torch(x[:1], step) < d[0]


def test_lpips_grey_and_size_checks(sample_rgb):
    g = sample_rgb[..., 1]
    assert P.lpips(g, g) < 1e-6
    assert P.lpips(g, _noisy(g, 10.0)) > 0.01
    with pytest.raises(ValueError, match="at least 32"):
        P.lpips(sample_rgb[:20, :20], sample_rgb[:20, :20])


def _save_original_layout(tmp_path):
    """An 'original LPIPS' source as two files: a torchvision-layout backbone and the heads."""
    torch.manual_seed(0)
    model = LPIPSNet("alex", "original")
    for p in model.parameters():
        p.data.abs_()  # positive heads, like the trained ones
    sd = model.state_dict()
    backbone = {}
    for k, v in sd.items():
        if k.startswith("net."):  # net.slice{k}.{i}.weight -> features.{i}.weight
            _, _, i, kind = k.split(".")
            backbone[f"features.{i}.{kind}"] = v
    heads = {k.replace("model.1", "model.0"): v for k, v in sd.items() if k.startswith("lin")}
    torch.save(backbone, tmp_path / "alexnet_backbone.pth")
    torch.save(heads, tmp_path / "lpips_alex_heads.pth")
    return model, f"{tmp_path / 'alexnet_backbone.pth'}:{tmp_path / 'lpips_alex_heads.pth'}"


def test_lpips_loads_original_layout_from_env(tmp_path, sample_rgb, monkeypatch):
    model, spec = _save_original_layout(tmp_path)
    monkeypatch.setenv(P.LPIPS_ENV, spec)
    info = P.lpips_info("alex")
    assert info["variant"] == "original" and len(info["paths"]) == 2
    b = _noisy(sample_rgb, 12.0)
    with torch.no_grad():
        want = float(model(_tensor(sample_rgb) / 127.5 - 1, _tensor(b) / 127.5 - 1)[0])
    assert P.lpips(sample_rgb, b) == pytest.approx(want, rel=1e-5)
    assert P.lpips(sample_rgb, sample_rgb) < 1e-6


def test_lpips_weight_errors(tmp_path, monkeypatch):
    with pytest.raises(SandwichError, match="does not exist"):
        P.lpips_weight_paths("alex", tmp_path / "nope.pth")
    monkeypatch.setattr(P, "_stlpips_weights", lambda net: None)
    with pytest.raises(SandwichError, match="pip install --no-deps stlpips-pytorch"):
        P.lpips_weight_paths("alex")
    _, spec = _save_original_layout(tmp_path)
    with pytest.raises(SandwichError, match="do not fit"):
        P.load_lpips("vgg", spec)  # alex weights for the vgg backbone
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(SandwichError, match="cannot read"):
        P.load_lpips("alex", tmp_path / "junk.pth")


# ------------------------------------------------------------------------------------ VMAF


def _video(a: np.ndarray) -> np.ndarray:
    """Three frames of a slow pan (one pixel a frame) over the crop."""
    return np.stack([np.roll(a, i, axis=1) for i in range(3)])


def test_frames_to_luma_shapes(sample_rgb):
    y = P.frames_to_luma(sample_rgb)
    assert y.shape == (1, 64, 80) and y.dtype == np.uint8
    assert y.min() >= 16 and y.max() <= 235
    assert P.frames_to_luma([sample_rgb, sample_rgb]).shape == (2, 64, 80)
    assert np.array_equal(P.frames_to_luma(y[0]), y)
    white = np.full((4, 4, 3), 255, np.uint8)
    assert P.frames_to_luma(white).max() == 235


def test_vmaf_high_for_identical_and_drops_with_distortion(sample_rgb):
    ref = _video(sample_rgb)
    same = P.vmaf(ref, ref)
    assert same > 95
    scores = [P.vmaf(ref, _noisy(ref, s)) for s in (5.0, 15.0, 40.0)]
    assert same > scores[0] > scores[1] > scores[2]
    assert scores[2] < 70


def test_vmaf_matches_ffmpeg_libvmaf(sample_rgb):
    if P.ffmpeg_exe() is None:
        pytest.skip("no FFmpeg with libvmaf")
    ref = _video(sample_rgb)
    for sigma in (0.0, 10.0, 30.0):
        dist = _noisy(ref, sigma)
        assert P.vmaf(ref, dist) == pytest.approx(P.vmaf_ffmpeg(ref, dist), abs=1.0)


def test_vmaf_torch_gradient_matches_numpy(sample_rgb):
    g = sample_rgb[..., 1]
    ref = np.stack([g, np.roll(g, 3, axis=0)])
    dist = _noisy(ref, 12.0)
    x = torch.from_numpy(ref.astype(np.float32))[:, None]
    y = torch.from_numpy(dist.astype(np.float32))[:, None].requires_grad_(True)
    s = P.vmaf_torch(x, y)
    assert float(s.detach()) == pytest.approx(P.vmaf(ref, dist, motion=False), abs=1e-3)
    (-s).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    # RGB input goes through luma; an ascent step raises the score
    xr = _tensor(sample_rgb)
    yr = _tensor(_noisy(sample_rgb, 12.0)).requires_grad_(True)
    s = P.vmaf_torch(xr, yr)
    s.backward()
    with torch.no_grad():
        assert P.vmaf_torch(xr, yr + 20.0 * yr.grad / yr.grad.abs().max()) > s
