"""Differentiable proxy of baseline JPEG (libjpeg-turbo as Pillow drives it).

It mirrors :class:`sandwich.codecs.jpeg.JpegCodec` step by step: 8-bit input, BT.601 YCbCr,
libjpeg's 2x2 box chroma downsampling (4:2:0), edge-replicated padding to whole MCUs, 8x8 DCT,
the IJG tables scaled by quality, rounding, dequantisation, inverse DCT, libjpeg's "fancy"
(triangular) chroma upsampling and the conversion back to RGB, with every integer rounding of the
real codec in place. Its rate is the exact standard-Huffman bit count of the quantised
coefficients (:mod:`sandwich.proxies.jpeg_rate`) plus header and byte-stuffing terms calibrated once
against the real codec and stored in ``jpeg_calibration.json``; gradients flow through a smooth
surrogate of that count. No real codec runs inside ``forward``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import torch
import torch.nn.functional as F
from torch import Tensor

from sandwich.codecs.base import CodecOutput, ImageCodec
from sandwich.codecs.jpeg import SUBSAMPLINGS, JpegCodec
from sandwich.codecs.jpeg_tables import ZIGZAG, qtables_for_quality, quality_to_feature
from sandwich.media.color import rgb_to_ycbcr, ycbcr_to_rgb
from sandwich.proxies.dct import blockify, dct2d, idct2d, unblockify
from sandwich.proxies.jpeg_rate import codec_constants, huffman_bits, lengths_tensor, surrogate_bits
from sandwich.proxies.rounding import soft_round

CALIBRATION_FILE = "jpeg_calibration.json"


@functools.lru_cache(maxsize=1)
def load_calibration() -> dict:
    """The stored calibration (Huffman code lengths, header bytes, stuffing, surrogate scale)."""
    path = resources.files("sandwich.proxies") / CALIBRATION_FILE
    if not path.is_file():
        return codec_constants()
    return json.loads(path.read_text())


_LENGTHS: dict[tuple[int, str, str], Tensor] = {}


def _lengths(huffman: dict, key: str, device) -> Tensor:
    """Code lengths of one Huffman table as an int64 tensor on ``device``, converted once."""
    k = (id(huffman), key, str(device))
    if k not in _LENGTHS:
        _LENGTHS[k] = lengths_tensor(huffman[key], device)
    return _LENGTHS[k]


def fancy_upsample2(x: Tensor) -> Tensor:
    """libjpeg's h2v2 "fancy" upsampling: separable taps (3/4, 1/4), edges replicated.

    (N, C, h, w) -> (N, C, 2h, 2w), not rounded.
    """
    p = F.pad(x, (0, 0, 1, 1), mode="replicate")
    up = 0.75 * p[:, :, 1:-1] + 0.25 * p[:, :, :-2]
    down = 0.75 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    x = torch.stack([up, down], dim=3).flatten(2, 3)
    p = F.pad(x, (1, 1, 0, 0), mode="replicate")
    left = 0.75 * p[..., 1:-1] + 0.25 * p[..., :-2]
    right = 0.75 * p[..., 1:-1] + 0.25 * p[..., 2:]
    return torch.stack([left, right], dim=4).flatten(3, 4)


def _mcu_order(blocks: Tensor) -> Tensor:
    """(N, Bh, Bw, 64) luma blocks of a 4:2:0 image -> (N, B, 64) in interleaved-MCU order."""
    n, bh, bw, k = blocks.shape
    b = blocks.reshape(n, bh // 2, 2, bw // 2, 2, k).permute(0, 1, 3, 2, 4, 5)
    return b.reshape(n, bh * bw, k)


def _dummy_blocks(q_int: Tensor, h: int, w: int) -> Tensor:
    """4:2:0 luma blocks that lie wholly outside the image -> libjpeg's dummy blocks.

    libjpeg codes only ceil(H/8) x ceil(W/8) real luma blocks; the rest of the last MCU row or
    column is filled with "dummy" blocks: AC zero, DC copied from the block before it in the MCU
    (jccoefct.c), so they cost almost nothing. ``q_int`` is (N, Bh, Bw, 64), zig-zag order.
    """
    _, bh, bw, _ = q_int.shape
    rb, cb = -(-h // 8), -(-w // 8)
    if rb == bh and cb == bw:
        return q_int
    q_int = q_int.clone()
    if cb < bw:  # right edge: DC of the block to the left
        q_int[:, :, cb:, 1:] = 0
        q_int[:, :, cb:, 0] = q_int[:, :, cb - 1 : cb, 0]
    if rb < bh:  # bottom row: DC of the last block of the MCU's upper row
        q_int[:, rb:] = 0
        q_int[:, rb:, :, 0] = q_int[:, rb - 1, 1::2, 0].repeat_interleave(2, dim=-1)[:, None]
    return q_int


def _code_plane(plane: Tensor, table: Tensor, rounding: str) -> tuple[Tensor, Tensor, Tensor]:
    """Quantise one (N, 1, H, W) plane through the DCT.

    Returns the reconstructed plane (before pixel rounding), the integer coefficients as
    (N, Bh, Bw, 64) in zig-zag order, and the (possibly noisy) scaled coefficients for the
    rate surrogate.
    """
    blocks = blockify(plane - 128.0)
    coef = dct2d(blocks)
    step = table.view(-1, 1, 1, 1, 8, 8)
    u = coef / step
    q = soft_round(u, rounding)
    rec = unblockify(idct2d(q * step)) + 128.0
    n, _, bh, bw = blocks.shape[:4]
    q_int = torch.round(u.detach()).reshape(n, bh, bw, 64)[..., torch.as_tensor(ZIGZAG)]
    return rec, q_int, q


def jpeg_proxy_parts(
    x: Tensor,
    qt: Tensor,
    subsampling: str,
    rounding: str,
    huffman: dict,
) -> tuple[Tensor, Tensor, Tensor]:
    """The uncalibrated proxy: reconstruction, raw Huffman bits, raw surrogate.

    Args:
        x: (N, C, H, W), 0..255.
        qt: (N, 2, 8, 8) quantisation steps (luma, chroma).
        subsampling, rounding: as in :func:`jpeg_proxy`.
        huffman: code lengths {"dc_luma", "ac_luma", "dc_chroma", "ac_chroma"}: 256 ints each.

    Returns:
        x_hat (N, C, H, W); exact entropy-coded bits (N,) before byte stuffing; surrogate
        sum log2(1 + |q|) (N,), differentiable.
    """
    n, c, h, w = x.shape
    gray = subsampling == "gray"
    mcu = 16 if subsampling == "4:2:0" else 8
    ph, pw = (-h) % mcu, (-w) % mcu
    coef_rounding = rounding
    rounding = "hard" if rounding == "hard" else "ste"  # pixel-domain roundings
    x8 = soft_round(x.clamp(0.0, 255.0), rounding)
    if ph or pw:
        x8 = F.pad(x8, (0, pw, 0, ph), mode="replicate")

    if gray:
        planes = [x8]
    else:
        ycc = soft_round(rgb_to_ycbcr(x8), rounding)
        chroma = ycc[:, 1:]
        if subsampling == "4:2:0":
            chroma = soft_round(F.avg_pool2d(chroma, 2), rounding)
        planes = [ycc[:, :1], chroma[:, :1], chroma[:, 1:]]

    recs, ints, softs = [], [], []
    for i, plane in enumerate(planes):
        rec, q_int, q_soft = _code_plane(plane, qt[:, min(i, 1)], coef_rounding)
        recs.append(soft_round(rec, rounding).clamp(0.0, 255.0))
        ints.append(q_int)
        softs.append(q_soft)

    if gray:
        out = recs[0]
    else:
        chroma = torch.cat(recs[1:], dim=1)
        if subsampling == "4:2:0":
            chroma = soft_round(fancy_upsample2(chroma), rounding)
        out = ycbcr_to_rgb(torch.cat([recs[0], chroma], dim=1))
        out = soft_round(out, rounding).clamp(0.0, 255.0)
    out = out[:, :, :h, :w]

    dev = x.device
    exact = torch.zeros(n, device=dev)
    for i, q_int in enumerate(ints):
        kind = "luma" if i == 0 else "chroma"
        dc_len = _lengths(huffman, f"dc_{kind}", dev)
        ac_len = _lengths(huffman, f"ac_{kind}", dev)
        if i == 0 and subsampling == "4:2:0":
            blocks = _mcu_order(_dummy_blocks(q_int, h, w))
        else:
            blocks = q_int.flatten(1, 2)
        exact = exact + huffman_bits(blocks, dc_len, ac_len)
    smooth = sum(surrogate_bits(s) for s in softs)
    return out, exact, smooth


RATE_GRADS = ("total", "marginal")


def jpeg_proxy(
    x: Tensor,
    quality: Tensor | float,
    subsampling: str = "4:2:0",
    rounding: str = "ste",
    qtables: Tensor | None = None,
    rate_grad: str = "total",
) -> CodecOutput:
    """Differentiable baseline JPEG.

    Args:
        x: (N, 3, H, W) RGB or, for ``subsampling="gray"``, (N, 1, H, W); 0..255.
        quality: IJG quality 1..100, scalar or (N,); ignored if ``qtables`` is given.
        subsampling: ``"4:2:0"``, ``"4:4:4"`` or ``"gray"``.
        rounding: how the DCT coefficients are rounded: ``"hard"``, ``"ste"``, ``"noise"`` or
            ``"cubic"`` (see :mod:`sandwich.proxies.rounding`). The pixel-domain roundings of
            libjpeg (8-bit input, colour conversions, chroma resampling, decoded pixels) are
            straight-through in training and exact with ``"hard"``.
        qtables: optional (2, 8, 8) or (N, 2, 8, 8) quantisation steps (luma, chroma).
        rate_grad: scale of the rate gradient: ``"total"``, the surrogate fitted to the total
            bits, or ``"marginal"``, the per-quality scale fitted to the real bits of a change
            (:func:`sandwich.proxies.calibrate.fit_grad_alpha`; 1.2 to 3 times larger). Only
            the gradient differs; needs ``quality``, not ``qtables``.

    Returns:
        :class:`CodecOutput` with ``x_hat`` (N, C, H, W), 0..255, and ``bits`` (N,): predicted
        size of the whole JPEG file in bits (forward value: exact Huffman count, calibrated for
        byte stuffing, plus headers; gradient: the smooth surrogate) and ``header_bits`` (N,),
        the calibrated header size in that count.
    """
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"unknown JPEG subsampling {subsampling!r}; use one of {SUBSAMPLINGS}")
    n, c = x.shape[:2]
    gray = subsampling == "gray"
    if c != (1 if gray else 3):
        raise ValueError(f"JPEG {subsampling} carries {1 if gray else 3} channel(s), got {c}")
    if rate_grad not in RATE_GRADS:
        raise ValueError(f"unknown rate gradient {rate_grad!r}; use one of {RATE_GRADS}")
    cal = load_calibration()
    mode = cal["modes"][subsampling]
    if rate_grad == "marginal" and (qtables is not None or "grad_alpha" not in mode):
        raise ValueError(
            "rate_grad='marginal' needs a quality (not qtables) and a calibration with "
            "grad_alpha (run `sandwich calibrate-proxy`)"
        )
    if qtables is None:
        qt = torch.as_tensor(quality, dtype=torch.float32).flatten()
        qt = qtables_for_quality(qt.expand(n) if qt.numel() == 1 else qt)
    else:
        qt = qtables.float()
        qt = qt.expand(n, 2, 8, 8) if qt.dim() == 3 else qt
    qt = qt.to(device=x.device, dtype=x.dtype)
    out, exact, smooth = jpeg_proxy_parts(x, qt, subsampling, rounding, cal["huffman"])
    header = torch.full_like(exact, 8.0 * mode["header_bytes"] + 4.0)
    exact = exact * mode["stuffing"] + header
    if rate_grad == "marginal":
        smooth = grad_alpha_at(mode["grad_alpha"], quality, n).to(smooth) * smooth
    else:
        smooth = mode["alpha"] * smooth
    bits = exact.to(x.dtype) + smooth - smooth.detach()
    return CodecOutput(out, bits, header.to(x.dtype))


def grad_alpha_at(table: dict, quality: Tensor | float, n: int) -> Tensor:
    """(N,) surrogate scale per sample, linear in quality between the calibrated ones."""
    q = torch.as_tensor(quality, dtype=torch.float64).detach().cpu().flatten().expand(n)
    qs = torch.tensor(table["qualities"], dtype=torch.float64)
    alphas = torch.tensor(table["alpha"], dtype=torch.float64)
    q = q.clamp(float(qs[0]), float(qs[-1]))
    i = torch.searchsorted(qs, q, right=True).clamp(1, len(qs) - 1)
    w = (q - qs[i - 1]) / (qs[i] - qs[i - 1])
    return (alphas[i - 1] * (1 - w) + alphas[i] * w).float()


class JpegProxy(ImageCodec):
    """``nn.Module`` around :func:`jpeg_proxy`; same ``forward`` as :class:`JpegCodec`."""

    differentiable = True
    knob = JpegCodec.knob

    def __init__(self, subsampling: str = "4:2:0", rounding: str = "ste", rate_grad: str = "total"):
        super().__init__()
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(f"unknown JPEG subsampling {subsampling!r}; use one of {SUBSAMPLINGS}")
        self.subsampling = subsampling
        self.rounding = rounding
        self.rate_grad = rate_grad
        self.channels = 1 if subsampling == "gray" else 3

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """The same quality input as :meth:`JpegCodec.condition`."""
        return quality_to_feature(quality, n)

    def forward(self, x: Tensor, quality: Tensor | float) -> CodecOutput:
        return jpeg_proxy(x, quality, self.subsampling, self.rounding, rate_grad=self.rate_grad)
