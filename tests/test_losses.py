"""Training distortions: per image, lower for better reconstructions, differentiable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sandwich.evaluation.metrics import ms_ssim
from sandwich.scenarios import SCENARIOS
from sandwich.training.losses import DISTORTIONS, distortion, min_patch, parse_loss


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_distortion_orders_reconstructions(kind: str, sample_full: np.ndarray) -> None:
    side = max(64, min_patch(kind))
    x = torch.from_numpy(sample_full[:side, : side + 32].copy()).permute(2, 0, 1)[None].float()
    x = x.repeat(2, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    close = (x + 2 * noise).clamp(0, 255).requires_grad_(True)
    far = (x + 20 * noise).clamp(0, 255)
    d_close, d_far = distortion(close, x, kind), distortion(far, x, kind)
    assert d_close.shape == (2,)
    assert (d_close < d_far).all()
    d_close.sum().backward()
    assert close.grad is not None and close.grad.abs().sum() > 0


def _noisy_pair(a: np.ndarray, seed: int):
    """``a`` plus uniform noise in -12..12 (uint8 ``b``), and both as (1, 3, H, W) floats."""
    b = np.clip(a.astype(int) + np.random.default_rng(seed).integers(-12, 13, a.shape), 0, 255)
    b = b.astype(np.uint8)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float()
    return b, ta, tb


def test_msssim_distortion_is_minus_msssim_in_db(sample_full: np.ndarray) -> None:
    a = sample_full[:96, :96].copy()
    b, ta, tb = _noisy_pair(a, 1)
    d = float(distortion(tb, ta, "msssim")[0])
    assert d < 0
    # three scales on a small patch: close to, not equal to, the full MS-SSIM of the metric
    assert abs((1 - 10 ** (d / 10)) - ms_ssim(a, b)) < 0.05


def test_dssim5_is_the_reported_msssim(sample_full: np.ndarray) -> None:
    a = sample_full[:176, :192].copy()
    b, ta, tb = _noisy_pair(a, 2)
    assert abs(float(distortion(tb, ta, "dssim5")[0]) - (1 - ms_ssim(a, b))) < 1e-5


def test_min_patch_of_a_loss() -> None:
    assert min_patch("dssim5+0.001*mse") == 161

    from sandwich.evaluation.perceptual import LPIPS_MIN_SIDE

    assert min_patch("lpips+0.5*dssim") == LPIPS_MIN_SIDE["alex"] == 32


def test_every_scenario_names_a_known_distortion() -> None:
    for s in SCENARIOS.values():
        assert s.distortion in DISTORTIONS


def test_weighted_sum_of_distortions(sample_full: np.ndarray) -> None:
    x = torch.from_numpy(sample_full[:64, :64].copy()).permute(2, 0, 1)[None].float()
    y = (x + 5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 255)
    assert parse_loss("dssim + 0.0002*mse") == [(1.0, "dssim"), (0.0002, "mse")]
    total = distortion(y, x, "dssim+0.0002*mse")
    expected = distortion(y, x, "dssim") + 0.0002 * distortion(y, x, "mse")
    assert torch.allclose(total, expected)
    with pytest.raises(ValueError, match="not a number"):
        parse_loss("x*mse")
    with pytest.raises(ValueError, match="unknown distortion"):
        parse_loss("mse+ssim")


def test_unknown_distortion() -> None:
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown distortion"):
        distortion(x, x, "psnr-hvs")


def test_slope_lambda_trades_like_the_log_domain() -> None:
    """D + lambda*R with the slope's lambda has the gradient of 10 log10 D + slope log2 R
    scaled by D / (10 / ln 10), for each sample."""
    from sandwich.training.losses import SlopeLambda, slope_lambda

    d = torch.tensor([40.0, 3.0, 0.02], requires_grad=True)
    r = torch.tensor([0.5, 0.05, 2.0], requires_grad=True)
    lam = slope_lambda(d, r, 3.0)
    assert not lam.requires_grad and torch.equal(lam, SlopeLambda(3.0)(d, r))
    (d + lam * r).sum().backward()
    g_lin = torch.stack([d.grad.clone(), r.grad.clone()])
    d.grad, r.grad = None, None
    (10 * torch.log10(d) + 3.0 * torch.log2(r)).sum().backward()
    g_log = torch.stack([d.grad, r.grad]) * d.detach() * math.log(10) / 10
    assert torch.allclose(g_lin, g_log, rtol=1e-5)
    # a patch that costs almost nothing gets a bounded weight
    small = slope_lambda(torch.tensor([1.0]), torch.tensor([1e-6]), 3.0)
    assert float(small) == pytest.approx(3.0 * math.log(10) / (10 * math.log(2)) / 0.01)


def test_payload_bpp_leaves_out_the_header() -> None:
    from sandwich.models.sandwich import SandwichModel

    model = SandwichModel("rgb", (8,), (8,))
    x = torch.full((2, 3, 32, 32), 128.0)
    with torch.no_grad():
        res = model(x, 50.0)
    header_bpp = res.bpp - res.payload_bpp
    assert torch.all(header_bpp > 4)  # 5000 header bits over 1024 pixels
    assert torch.all(res.payload_bpp > 0) and torch.all(res.payload_bpp < 0.2)  # flat grey
