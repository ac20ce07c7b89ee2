"""The differentiable video proxy (x264 / x265 twin): shapes, gradients, frame types, rate
behaviour, fixed flow, low-res flow scaling, and closeness to the real codec on a tiny clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sandwich.codecs.video import X264Codec, X265Codec
from sandwich.media.files import load_rgb
from sandwich.proxies.video import VideoProxy, clip_flow, qstep, scale_flow, video_proxy, warp
from sandwich.proxies.video.calibrate import clip_tensor, codec_input, psnr_of
from sandwich.proxies.video.clips import moving_clip, synthetic_clips
from sandwich.proxies.video.proxy import load_calibration

SAMPLE = "src/sandwich/assets/sample.png"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """A 5-frame 64x96 RGB clip panning over the sample photo."""
    from pathlib import Path

    img = load_rgb(Path(__file__).resolve().parents[1] / SAMPLE)
    return moving_clip(img, np.random.default_rng(3), frames=5, size=(64, 96), noise=1.0)


def test_shapes_types_and_interface(clip):
    x = clip_tensor(clip)
    for mode, c in (("4:2:0", 3), ("4:4:4", 3), ("gray", 1)):
        xin = clip_tensor(codec_input(clip, mode))
        proxy = VideoProxy("x264", mode)
        assert proxy.channels == c and proxy.differentiable and proxy.media == "clip"
        out = proxy(xin, 28)
        assert out.x_hat.shape == xin.shape
        assert out.bits.shape == (1,) and out.frame_bits.shape == (1, 5)
        assert out.frame_types == [["I", "P", "P", "P", "P"]]
        assert float(out.x_hat.min()) >= 0.0 and float(out.x_hat.max()) <= 255.0
        assert torch.all(out.frame_bits > 0)
    real = X265Codec("4:2:0")
    proxy = VideoProxy("x265", "4:2:0")
    assert proxy.knob == real.knob and proxy.peak == real.peak
    assert torch.equal(proxy.condition(30, 2), real.condition(30, 2))
    out = video_proxy(x.repeat(2, 1, 1, 1, 1), torch.tensor([20.0, 40.0]), gop=2)
    assert out.frame_types[0] == ["I", "P", "I", "P", "I"]
    assert out.bits[0] > out.bits[1]
    with pytest.raises(ValueError):
        VideoProxy("x266")
    with pytest.raises(ValueError):
        VideoProxy("x264", "4:2:0")(clip_tensor(codec_input(clip, "gray")), 28)


def test_odd_size_and_single_frame(clip):
    x = clip_tensor(clip)[:, :, :, :37, :53]
    out = video_proxy(x, 30, "x264", "4:2:0")
    assert out.x_hat.shape == x.shape
    one = video_proxy(x[:, :1], 30, "x264", "4:2:0")
    assert one.frame_types == [["I"]] and one.frame_bits.shape == (1, 1)


def test_gradients_reach_the_input_and_not_the_flow(clip):
    x = clip_tensor(clip)
    flow = clip_flow(x).requires_grad_(True)
    x.requires_grad_(True)
    out = video_proxy(x, 30, "x265", "4:2:0", flow=flow)
    loss = out.bits.sum() * 1e-4 + ((out.x_hat - 128.0) ** 2).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert x.grad[:, 1:].abs().sum() > 0  # P frames get gradient too
    assert flow.grad is None  # the motion is a fixed map
    # the rate alone gives a gradient (smooth stand-in), finite
    x.grad = None
    video_proxy(x, 30, "x265", "4:2:0", flow=flow).bits.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bits_fall_and_quality_drops_as_crf_rises(clip):
    x = clip_tensor(clip)
    flow = clip_flow(x)
    bits, psnrs = [], []
    for crf in (18, 26, 34, 42):
        out = video_proxy(x, crf, "x264", "4:2:0", rounding="hard", flow=flow)
        bits.append(float(out.bits[0]))
        psnrs.append(psnr_of(float(((out.x_hat - x) ** 2).mean())))
        assert out.frame_bits[0, 0] > out.frame_bits[0, 1:].mean()  # I costs more than P
    assert bits == sorted(bits, reverse=True)
    assert psnrs == sorted(psnrs, reverse=True)


def test_qstep_doubles_every_six():
    qp = torch.tensor([4.0, 10.0, 16.0, 28.0])
    assert torch.allclose(qstep(qp), torch.tensor([1.0, 2.0, 4.0, 16.0]))


def test_warp_and_low_res_flow_scaling():
    img = torch.arange(64.0).view(1, 1, 8, 8)
    shift = torch.zeros(1, 2, 8, 8)
    shift[:, 0] = 1.0  # sample one pixel to the right
    assert torch.allclose(warp(img, shift)[..., :-1], img[..., 1:])
    full = torch.zeros(1, 3, 2, 32, 64)
    full[:, :, 0], full[:, :, 1] = 4.0, -2.0
    half = scale_flow(full, (16, 32))
    assert half.shape == (1, 3, 2, 16, 32)
    assert torch.allclose(half[:, :, 0], torch.full_like(half[:, :, 0], 2.0))
    assert torch.allclose(half[:, :, 1], torch.full_like(half[:, :, 1], -1.0))
    assert torch.allclose(scale_flow(full, (16, 32), scale=0.25)[:, :, 0], torch.tensor(1.0))
    assert torch.equal(scale_flow(full, (32, 64)), full)


def test_low_res_mode_uses_the_scaled_flow(clip):
    x = clip_tensor(clip)
    small = torch.nn.functional.avg_pool2d(x.flatten(0, 1), 2).unflatten(0, x.shape[:2])
    flow = clip_flow(x)  # measured on the full-size originals
    a = video_proxy(small, 28, "x264", "4:2:0", rounding="hard", flow=flow)
    b = video_proxy(small, 28, "x264", "4:2:0", rounding="hard", flow=scale_flow(flow, (32, 48)))
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.bits, b.bits)
    # the unscaled (full-size) vectors on the small grid predict worse: more bits
    c = video_proxy(small, 28, "x264", "4:2:0", rounding="hard", flow=flow, flow_scale=1.0)
    assert float(c.frame_bits[0, 1:].sum()) > float(a.frame_bits[0, 1:].sum())


@pytest.mark.parametrize("codec_cls", [X264Codec, X265Codec])
@pytest.mark.parametrize("mode", ["gray", "4:2:0"])
def test_close_to_the_real_codec_on_a_tiny_clip(clip, codec_cls, mode):
    arr = codec_input(clip, mode)
    real = codec_cls(mode)
    x = clip_tensor(arr)
    flow = clip_flow(clip_tensor(clip))
    for crf in (22, 34):
        ro = real(x, crf)
        po = VideoProxy(real.name, mode, rounding="hard")(x, crf, flow=flow)
        assert ro.frame_types == po.frame_types
        rp = psnr_of(float(((ro.x_hat - x) ** 2).mean()))
        pp = psnr_of(float(((po.x_hat - x) ** 2).mean()))
        assert abs(pp - rp) < 2.5, (crf, rp, pp)
        assert 0.5 < float(po.bits[0]) / float(ro.bits[0]) < 2.0


def test_the_package_holds_a_calibration_for_both_codecs():
    cal = load_calibration()
    for codec in ("x264", "x265"):
        for mode in ("gray", "4:2:0", "4:4:4"):
            m = cal["codecs"][codec]["crf"][mode]
            assert set(m["qp"]) == {"I", "P"} and set(m["rate"]) == {"I", "P"}
            assert all(w >= 0 for kind in ("I", "P") for w in m["rate"][kind]["weights"])


def test_synthetic_clips_are_deterministic():
    img = np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)
    a = synthetic_clips([img], 2, 3, (32, 48), seed=5)
    b = synthetic_clips([img], 2, 3, (32, 48), seed=5)
    assert len(a) == 2 and a[0].shape == (3, 32, 48, 3) and a[0].dtype == np.uint8
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_dis_flow_pads_frames_under_16_pixels():
    """OpenCV's DIS crashes on frames such as 12x40; dis_flow pads them and crops the flow."""
    from sandwich.proxies.video.flow import dis_flow

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 12, 40), dtype=np.uint8)
    flow = dis_flow(frames)
    assert flow.shape == (2, 2, 12, 40)
    assert np.isfinite(flow).all()
