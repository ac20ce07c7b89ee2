"""Temporal consistency: the differentiable Horn-Schunck flow and its loss (sandwich.nets.flow),
and the flow-EPE / flicker metrics for decoded clips (sandwich.evaluation.temporal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sandwich.errors import SandwichError
from sandwich.evaluation.temporal import flicker, flow_epe, temporal_report
from sandwich.nets.flow import (
    FlowConsistencyLoss,
    FlowEstimator,
    estimate_flow,
    flow_consistency_loss,
    warp,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# A smooth RGB texture defined everywhere, so any sub-pixel shift of it is exact.
_WAVES = [  # (fx, fy, phase, amplitude per channel) in radians per pixel
    (0.21, 0.05, 0.3, (30.0, 20.0, 10.0)),
    (-0.08, 0.27, 1.1, (15.0, 25.0, 20.0)),
    (0.33, -0.19, 2.0, (12.0, 10.0, 18.0)),
    (0.11, 0.14, 4.2, (20.0, 15.0, 25.0)),
    (-0.30, -0.07, 5.0, (10.0, 12.0, 8.0)),
]


def texture(h: int, w: int, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """(3, H, W) float in 0..255: the texture moved by (dx, dy), out(p) = texture(p - d)."""
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) - dy,
        torch.arange(w, dtype=torch.float64) - dx,
        indexing="ij",
    )
    out = torch.full((3, h, w), 128.0, dtype=torch.float64)
    for fx, fy, phase, amps in _WAVES:
        wave = torch.sin(fx * xx + fy * yy + phase)
        out += torch.tensor(amps, dtype=torch.float64).view(3, 1, 1) * wave
    return out.float()


def shifted_pair(shift: tuple[float, float], size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, second), each (1, 3, size, size), with first(p) = second(p + shift)."""
    return texture(size, size)[None], texture(size, size, *shift)[None]


def interior_epe(flow: torch.Tensor, shift: tuple[float, float], margin: int = 8) -> float:
    """Mean end-point error (px) of (1, 2, H, W) ``flow`` against a constant ``shift``."""
    d = flow[0, :, margin:-margin, margin:-margin] - torch.tensor(shift).view(2, 1, 1)
    return d.norm(dim=0).mean().item()


# ---------------------------------------------------------------- differentiable flow


@pytest.mark.parametrize("shift", [(1.0, 0.0), (1.5, -0.75), (-0.4, 0.3), (4.0, 0.0), (4.0, -3.0)])
def test_flow_of_a_known_shift(shift):
    first, second = shifted_pair(shift)
    flow = estimate_flow(first, second)
    assert flow.shape == (1, 2, 64, 64)
    assert interior_epe(flow, shift) < 0.1  # 0.025-0.064 px measured
    # ...and the flow carries the second image onto the first
    moved = warp(second, flow)[..., 8:-8, 8:-8]
    assert (moved - first[..., 8:-8, 8:-8]).abs().mean() < 1.0  # code values


def test_flow_on_luma_odd_sizes_and_module():
    first, second = shifted_pair((1.5, -0.75), size=45)
    first, second = first[:, 1:2, :, :37], second[:, 1:2, :, :37]  # one channel, 45 x 37
    flow = FlowEstimator(iterations=20)(first, second)
    assert flow.shape == (1, 2, 45, 37)
    assert interior_epe(flow, (1.5, -0.75)) < 0.2
    tiny = estimate_flow(first[..., :8, :8], second[..., :8, :8])
    assert tiny.shape == (1, 2, 8, 8) and torch.isfinite(tiny).all()


def test_flow_is_differentiable_wrt_both_inputs():
    first, second = shifted_pair((1.5, -0.75), size=32)
    first.requires_grad_(True)
    second.requires_grad_(True)
    estimate_flow(first, second, iterations=10)[:, 0].mean().backward()
    for x in (first, second):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_warp_identity_and_integer_shift():
    img = texture(24, 32)[None]
    assert torch.allclose(warp(img, torch.zeros(1, 2, 24, 32)), img, atol=1e-4)
    flow = torch.zeros(1, 2, 24, 32)
    flow[:, 0] = 2.0  # out(y, x) = img(y, x + 2)
    assert torch.allclose(warp(img, flow)[..., :-2], img[..., 2:], atol=1e-3)


def test_flow_shape_errors():
    a = torch.zeros(1, 3, 16, 16)
    with pytest.raises(SandwichError):
        estimate_flow(a, torch.zeros(1, 3, 16, 17))
    with pytest.raises(SandwichError):
        estimate_flow(torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16))
    with pytest.raises(SandwichError):
        estimate_flow(torch.zeros(1, 1, 7, 16), torch.zeros(1, 1, 7, 16))
    with pytest.raises(SandwichError):
        warp(a, torch.zeros(1, 2, 8, 8))


# ---------------------------------------------------------------- flow-consistency loss


def panning_clip(frames: int, size: int, step: tuple[float, float]) -> torch.Tensor:
    """(frames, 3, size, size) 0..255: the texture moving by ``step`` pixels per frame."""
    return torch.stack([texture(size, size, t * step[0], t * step[1]) for t in range(frames)])


def test_loss_zero_for_a_perfect_decode_and_gradient_reaches_decoded():
    original = torch.stack([panning_clip(3, 32, (1.0, 0.5)), panning_clip(3, 32, (-0.5, 1.0))])
    assert flow_consistency_loss(original, original.clone()).item() == pytest.approx(0, abs=1e-6)

    g = torch.Generator().manual_seed(0)
    decoded = (original + 8.0 * torch.randn(original.shape, generator=g)).requires_grad_(True)
    loss = FlowConsistencyLoss(iterations=10)(original, decoded)
    assert loss.dim() == 0 and loss.item() > 0.01
    loss.backward()
    assert decoded.grad is not None
    assert torch.isfinite(decoded.grad).all() and decoded.grad.abs().sum() > 0

    # finite gradient also at the zero-error point (the EPE's sqrt is smoothed there)
    same = original.clone().requires_grad_(True)
    flow_consistency_loss(original, same, iterations=5).backward()
    assert same.grad is not None and torch.isfinite(same.grad).all()


def test_loss_shape_errors():
    clip = torch.zeros(1, 3, 3, 16, 16)
    with pytest.raises(SandwichError):
        flow_consistency_loss(clip, torch.zeros(1, 3, 3, 16, 18))
    with pytest.raises(SandwichError):
        flow_consistency_loss(clip[:, :1], clip[:, :1])


# ---------------------------------------------------------------- metrics on uint8 clips


def u8_clip(frames: int = 4, h: int = 48, w: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8 clip panning by (1, 0.5) px per frame."""
    x = torch.stack([texture(h, w, t * 1.0, t * 0.5) for t in range(frames)])
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_flicker():
    clip = u8_clip()
    assert flicker(clip, clip) == 0.0
    offset = np.clip(clip.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    assert np.all(clip < 245)  # so the offset is constant, not clipped
    assert flicker(clip, offset) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    noisy = np.clip(clip + rng.normal(0, 4, clip.shape), 0, 255).round().astype(np.uint8)
    score = flicker(clip, noisy)
    assert 2.0 < score < 8.0  # |n_t - n_{t-1}| with n ~ N(0, 4): about 4.5
    assert flicker(clip, clip.astype(np.float64) + 0.5) == pytest.approx(0.0, abs=1e-12)


def test_flow_epe_identical_vs_jittered_frame():
    clip = u8_clip()
    assert flow_epe(clip, clip) == pytest.approx(0.0, abs=1e-6)
    jittered = clip.copy()
    jittered[2] = np.roll(clip[2], shift=(2, -2), axis=(0, 1))  # frame 2 jumps by ~2.8 px
    epe = flow_epe(clip, jittered)
    assert epe > 1.0  # two pairs of four see a ~2.8 px error: about 2 px over the clip
    report = temporal_report(clip, jittered)
    assert set(report) == {"flow_epe_px", "flicker"}
    assert report["flow_epe_px"] == pytest.approx(epe)
    assert report["flicker"] > 0 and math.isfinite(report["flicker"])


def test_metric_shape_errors():
    clip = u8_clip(frames=2, h=16, w=16)
    for fn in (flow_epe, flicker, temporal_report):
        with pytest.raises(SandwichError):
            fn(clip, clip[:, :, :15])
        with pytest.raises(SandwichError):
            fn(clip[:1], clip[:1])
        with pytest.raises(SandwichError):
            fn(clip[..., 0], clip[..., 0])
    small = u8_clip(frames=2, h=12, w=40)  # DIS cannot take frames this thin
    with pytest.raises(SandwichError):
        flow_epe(small, small)
    assert flicker(small, small) == 0.0
