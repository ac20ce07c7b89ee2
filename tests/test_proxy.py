"""The differentiable JPEG proxy against the real codec: rate, distortion, batching, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import load_sample, smooth_image

from sandwich.codecs.jpeg import JpegCodec, ecs_bytes
from sandwich.evaluation.metrics import psnr
from sandwich.proxies.calibrate import to_codec_input
from sandwich.proxies.jpeg import (
    JpegProxy,
    jpeg_proxy,
    jpeg_proxy_parts,
    load_calibration,
    qtables_for_quality,
)
from sandwich.proxies.jpeg_rate import huffman_bits, lengths_tensor, size_category
from sandwich.proxies.rounding import soft_round

MODES = ("4:2:0", "4:4:4", "gray")


def _images() -> dict[str, np.ndarray]:
    sample = load_sample()
    return {
        "sample64x80": sample[40:104, 60:140].copy(),
        "smooth40x56": smooth_image(40, 56, seed=3),
        "odd37x53": sample[10:47, 100:153].copy(),
    }


IMAGES = _images()


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(arr, copy=True)).float()
    return x[None, None] if arr.ndim == 2 else x.permute(2, 0, 1)[None]


def _to_array(x: torch.Tensor) -> np.ndarray:
    a = x[0].permute(1, 2, 0).detach().numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


@pytest.mark.parametrize("quality", [10, 50, 90])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(IMAGES))
def test_proxy_matches_real_codec(name: str, mode: str, quality: int) -> None:
    arr = to_codec_input(IMAGES[name], mode)
    codec = JpegCodec(mode)
    data = codec.encode(arr, quality)
    real = codec.decode(data)
    with torch.no_grad():
        out = jpeg_proxy(_to_tensor(arr), quality, mode, rounding="hard")
    prox = _to_array(out.x_hat)
    assert prox.shape == real.shape
    assert prox.min() >= 0 and prox.max() <= 255
    assert np.array_equal(prox, np.round(prox))  # "hard" gives whole 8-bit values
    pixels = arr.shape[0] * arr.shape[1]
    real_bpp, proxy_bpp = 8 * len(data) / pixels, float(out.bits[0]) / pixels
    assert abs(proxy_bpp / real_bpp - 1) <= 0.03, (real_bpp, proxy_bpp)
    assert abs(psnr(arr, prox) - psnr(arr, real)) <= 0.1
    # close pixel by pixel too (libjpeg's integer DCTs flip a few roundings, so not exact)
    assert np.mean(np.abs(prox - real.astype(np.float32))) <= 1.5


@pytest.mark.parametrize("mode", MODES)
def test_header_bits_are_the_real_files_headers(mode: str) -> None:
    """header_bits: the bits outside the entropy-coded segment, the same for any content."""
    for quality in (10, 90):
        arr = to_codec_input(IMAGES["sample64x80"], mode)
        data = JpegCodec(mode).encode(arr, quality)
        out = jpeg_proxy(_to_tensor(arr), quality, mode, rounding="hard")
        real_header = 8 * (len(data) - ecs_bytes(data))
        assert out.header_bits is not None
        assert abs(float(out.header_bits[0]) - real_header) <= 16
        assert float(out.header_bits[0]) < float(out.bits[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(37, 53), (17, 9), (8, 8), (33, 47)])
def test_odd_sizes(mode: str, size: tuple[int, int]) -> None:
    c = 1 if mode == "gray" else 3
    x = torch.rand(2, c, *size, generator=torch.Generator().manual_seed(0)) * 255
    out = jpeg_proxy(x, 40, mode, rounding="ste")
    assert out.x_hat.shape == x.shape
    assert out.bits.shape == (2,) and torch.all(out.bits > 0)
    assert torch.isfinite(out.x_hat).all()


def test_proxy_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channel"):
        jpeg_proxy(torch.zeros(1, 3, 16, 16), 50, "gray")
    with pytest.raises(ValueError, match="channel"):
        jpeg_proxy(torch.zeros(1, 1, 16, 16), 50, "4:2:0")
    with pytest.raises(ValueError, match="subsampling"):
        JpegProxy("4:1:1")
    with pytest.raises(ValueError, match="rounding"):
        jpeg_proxy(torch.zeros(1, 3, 16, 16), 50, "4:2:0", rounding="floor")


@pytest.mark.parametrize("mode", MODES)
def test_per_sample_qualities_equal_separate_calls(mode: str) -> None:
    sample = load_sample()
    crops = [sample[i * 40 : i * 40 + 48, i * 30 : i * 30 + 64] for i in range(3)]
    arrs = [to_codec_input(c, mode) for c in crops]
    x = torch.cat([_to_tensor(a) for a in arrs])
    qualities = torch.tensor([10.0, 50.0, 90.0])
    with torch.no_grad():
        batch = jpeg_proxy(x, qualities, mode, rounding="hard")
        for i, q in enumerate((10, 50, 90)):
            one = jpeg_proxy(x[i : i + 1], q, mode, rounding="hard")
            assert torch.allclose(batch.bits[i], one.bits[0], rtol=1e-6)
            assert torch.equal(batch.x_hat[i], one.x_hat[0])


def test_explicit_qtables_equal_quality() -> None:
    x = _to_tensor(IMAGES["sample64x80"])
    with torch.no_grad():
        by_quality = jpeg_proxy(x, 35, "4:2:0", rounding="hard")
        tables = qtables_for_quality(torch.tensor([35.0]))[0]
        by_tables = jpeg_proxy(x, 99, "4:2:0", rounding="hard", qtables=tables)
    assert torch.equal(by_quality.x_hat, by_tables.x_hat)
    assert torch.equal(by_quality.bits, by_tables.bits)


def test_module_equals_function() -> None:
    x = _to_tensor(IMAGES["smooth40x56"])
    proxy = JpegProxy("4:4:4", rounding="hard")
    assert proxy.differentiable and proxy.channels == 3
    a = proxy(x, 70)
    b = jpeg_proxy(x, 70, "4:4:4", rounding="hard")
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.bits, b.bits)


@pytest.mark.parametrize("rounding", ["ste", "noise", "cubic"])
@pytest.mark.parametrize("mode", ["4:2:0", "gray"])
def test_gradients_flow(mode: str, rounding: str) -> None:
    torch.manual_seed(0)
    arr = to_codec_input(IMAGES["odd37x53"], mode)
    target = _to_tensor(arr)
    # off-integer inputs, so the cubic rounding's gradient is not zero everywhere
    x = (target + torch.rand_like(target) - 0.5).clamp(0, 255).requires_grad_()
    out = jpeg_proxy(x, 50, mode, rounding=rounding)
    loss = F.mse_loss(out.x_hat, target) + out.bits.mean() * 1e-3
    loss.backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0

    x2 = x.detach().clone().requires_grad_()
    jpeg_proxy(x2, 50, mode, rounding=rounding).bits.sum().backward()
    assert x2.grad is not None and torch.isfinite(x2.grad).all()
    assert x2.grad.abs().sum() > 0


def test_bits_gradient_points_to_cheaper_images() -> None:
    """A step against the rate gradient lowers the (exact) rate."""
    x = _to_tensor(IMAGES["sample64x80"]).requires_grad_()
    out = jpeg_proxy(x, 50, "4:4:4", rounding="ste")
    out.bits.sum().backward()
    with torch.no_grad():
        step = x - 20.0 * x.grad / x.grad.abs().max()
        after = jpeg_proxy(step, 50, "4:4:4", rounding="hard").bits
    assert float(after[0]) < float(out.bits.detach()[0])


def test_rounding_modes() -> None:
    x = torch.tensor([0.2, 0.5001, 1.7, -2.4], requires_grad=True)
    for mode in ("hard", "ste", "cubic"):
        assert torch.equal(soft_round(x, mode).detach(), torch.round(x.detach()))
    soft_round(x, "ste").sum().backward()
    assert torch.equal(x.grad, torch.ones(4))
    x.grad = None
    soft_round(x, "cubic").sum().backward()
    r = x.detach() - torch.round(x.detach())
    assert torch.allclose(x.grad, 3 * r**2)
    noisy = soft_round(x, "noise").detach()
    assert torch.all((noisy - x.detach()).abs() <= 0.5)


def test_size_category() -> None:
    v = torch.tensor([0, 1, -1, 2, 3, -4, 7, 8, 255, -1024, 2047])
    assert size_category(v).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 8, 11, 11]


@pytest.mark.parametrize("quality", [10, 50, 90])
@pytest.mark.parametrize("name", ["sample64x80", "odd37x53"])
def test_huffman_bits_match_entropy_coded_segment(name: str, quality: int) -> None:
    arr = to_codec_input(IMAGES[name], "gray")
    data = JpegCodec("gray").encode(arr, quality)
    cal = load_calibration()
    qt = qtables_for_quality(torch.tensor([float(quality)]))
    with torch.no_grad():
        _, exact, smooth = jpeg_proxy_parts(_to_tensor(arr), qt, "gray", "hard", cal["huffman"])
    counted = float(exact[0]) / 8
    real = ecs_bytes(data)
    assert abs(counted / real - 1) <= 0.02, (counted, real)
    assert float(smooth[0]) > 0


def _unstuffed_scan_bytes(data: bytes) -> int:
    """Bytes of the entropy-coded scan without the 0x00 stuffed after each 0xFF."""
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    scan = data[start:-2]  # up to EOI
    assert len(scan) == ecs_bytes(data)
    return len(scan) - scan.count(b"\xff\x00")


@pytest.mark.parametrize("quality", [10, 50, 90])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(IMAGES))
def test_huffman_bits_match_unstuffed_scan(name: str, mode: str, quality: int) -> None:
    """Without byte stuffing, the counted bits are the scan's to about 1%.

    (Not exact: libjpeg rounds its integer DCT output before quantising, which flips a few
    coefficients near a decision boundary.)
    """
    arr = to_codec_input(IMAGES[name], mode)
    data = JpegCodec(mode).encode(arr, quality)
    qt = qtables_for_quality(torch.tensor([float(quality)]))
    huffman = load_calibration()["huffman"]
    with torch.no_grad():
        _, exact, _ = jpeg_proxy_parts(_to_tensor(arr), qt, mode, "hard", huffman)
    assert abs(float(exact[0]) / 8 / _unstuffed_scan_bytes(data) - 1) <= 0.015


@pytest.mark.parametrize("size", [(37, 53), (40, 56), (48, 40)])
def test_huffman_bits_420_partial_mcus(size: tuple[int, int]) -> None:
    """4:2:0 with sizes that are not whole 16x16 MCUs: libjpeg's dummy blocks are counted."""
    h, w = size
    arr = smooth_image(h, w, seed=1, noise=4.0)
    data = JpegCodec("4:2:0").encode(arr, 75)
    cal = load_calibration()
    qt = qtables_for_quality(torch.tensor([75.0]))
    with torch.no_grad():
        _, exact, _ = jpeg_proxy_parts(_to_tensor(arr), qt, "4:2:0", "hard", cal["huffman"])
    assert abs(float(exact[0]) / 8 / ecs_bytes(data) - 1) <= 0.02


def test_huffman_bits_of_a_hand_made_block() -> None:
    cal = load_calibration()["huffman"]
    dc, ac = lengths_tensor(cal["dc_luma"]), lengths_tensor(cal["ac_luma"])
    q = torch.zeros(1, 2, 64)
    q[0, 0, 0] = 5  # DC diff 5: category 3
    q[0, 0, 1] = -1  # run 0, size 1
    q[0, 0, 20] = 2  # run 18 -> ZRL + (run 2, size 2)
    q[0, 1, 0] = 5  # DC diff 0, then all-zero AC: EOB
    expected = (
        (dc[3] + 3) + (ac[0x01] + 1) + (ac[0xF0] + ac[0x22] + 2) + ac[0x00] + (dc[0] + 0) + ac[0x00]
    )
    assert float(huffman_bits(q, dc, ac)[0]) == float(expected)


def test_marginal_rate_gradient() -> None:
    """Same bits forward; the gradient scaled by the per-quality fit of the bits of change."""
    from sandwich.proxies.jpeg import grad_alpha_at

    cal = load_calibration()["modes"]["4:2:0"]
    table = cal["grad_alpha"]
    q0, q1 = table["qualities"][:2]
    a = grad_alpha_at(table, torch.tensor([float(q0), (q0 + q1) / 2, 1.0, 100.0]), 4)
    lo, hi = table["alpha"][0], table["alpha"][1]
    assert a[0] == pytest.approx(lo) and a[1] == pytest.approx((lo + hi) / 2)
    assert a[2] == pytest.approx(lo) and a[3] == pytest.approx(table["alpha"][-1])  # clamped

    x0 = _to_tensor(IMAGES["sample64x80"])
    grads, bits = {}, {}
    for kind in ("total", "marginal"):
        x = x0.clone().requires_grad_(True)
        out = jpeg_proxy(x, q0, "4:2:0", rate_grad=kind)
        out.bits.sum().backward()
        grads[kind], bits[kind] = x.grad, out.bits.detach()
    assert torch.allclose(bits["total"], bits["marginal"], rtol=1e-6)  # forward: same count
    ratio = grads["marginal"].norm() / grads["total"].norm()
    assert float(ratio) == pytest.approx(lo / cal["alpha"], rel=1e-4)
    assert lo > cal["alpha"]  # the total fit underprices change at low quality
    with pytest.raises(ValueError, match="qtables"):
        jpeg_proxy(x0, 50, rate_grad="marginal", qtables=qtables_for_quality(torch.tensor([50.0])))
    with pytest.raises(ValueError, match="rate gradient"):
        jpeg_proxy(x0, 50, rate_grad="steep")


def test_fit_grad_alpha_measures_the_real_bits_of_change() -> None:
    from sandwich.proxies.calibrate import fit_grad_alpha

    huffman = load_calibration()["huffman"]
    fit = fit_grad_alpha([load_sample()[:96, :128]], [10, 90], "4:2:0", huffman)
    assert fit["qualities"] == [10, 90]
    assert all(np.isfinite(a) and a > 0 for a in fit["alpha"])
