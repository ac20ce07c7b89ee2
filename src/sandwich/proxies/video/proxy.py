"""Differentiable proxy of an H.264 / HEVC encoder (x264, x265) coding I P P P clips.

It mirrors :class:`sandwich.codecs.video.X264Codec` / ``X265Codec`` with one reference frame
and no B-frames, block by block in spirit:

* colour: RGB -> Y'CbCr BT.709 studio range (:func:`sandwich.media.color.rgb_to_yuv`, what the
  real codecs are fed), 4:2:0 chroma as 2x2 means, every sample rounded to the codec's grid
  (straight-through in training); gray codes the input as the luma plane (full range);
* the first frame of each GOP is an I frame: every 8x8 block is predicted by the mean of its
  left and upper neighbours' means (a DC intra prediction), and the residual goes through an
  orthonormal 8x8 DCT (:mod:`sandwich.proxies.dct`), a uniform quantiser of step
  ``Qstep = 2 ** ((QP - 4) / 6)`` (the H.264 / HEVC step: it doubles every 6 QP and is 1 at
  QP 4) and straight-through rounding (:mod:`sandwich.proxies.rounding`);
* each P frame predicts every 8x8 luma block (with its chroma) either from the previous
  *reconstruction* warped by a fixed optical flow (:mod:`sandwich.proxies.video.flow`, bilinear,
  no gradient into the motion) or by the intra prediction, whichever leaves the smaller squared
  error (a hard choice, no gradient through it); the residual is coded as above with the P
  frame's own step;
* rate control: CRF (or QP) maps to each frame's QP by lines fitted against the real encoder
  (``video_calibration.json``): per frame type ``offset + slope * CRF``, plus a term in the
  frame's complexity (the mean |AC DCT| of its intra or motion-compensated residual on the
  half-size luma, as CRF's qcomp spends more on simple frames) and, for P frames, a term by the
  number of frames left in the clip (x264's macroblock tree / x265's CU tree lower the QP of
  frames that more frames predict from); optionally an adaptive-quantisation offset per 16x16
  macroblock from its luma energy (:func:`aq_offsets`);
* rate: per frame type, a non-negative mix of per-frame features (:data:`FEATURES`: sum of
  log2(1 + |q|) of the quantised luma and chroma coefficients, non-zero coefficients, coded
  blocks, blocks, intra blocks, an H.264-style motion-vector cost from the flow, a constant)
  plus the file's fixed overhead, all fitted once against the real packet sizes. The forward
  bits are that model; the gradient is that of a smooth stand-in (sum of log2(1 + |u|) over
  the unrounded scaled coefficients u) scaled to the same total per frame type.

No real codec runs in :func:`video_proxy`; only the flow (OpenCV DIS, when not given) is computed
outside the graph.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import torch
import torch.nn.functional as F
from torch import Tensor

from sandwich.codecs.base import Knob
from sandwich.codecs.clip_base import ClipCodec, ClipOutput
from sandwich.codecs.video import BIT_DEPTHS, RATE_CONTROLS, SUBSAMPLINGS
from sandwich.media.color import rgb_to_yuv, yuv_to_rgb
from sandwich.proxies.dct import blockify, dct2d, idct2d, unblockify
from sandwich.proxies.rounding import soft_round
from sandwich.proxies.video.flow import clip_flow, scale_flow, warp

CALIBRATION_FILE = "video_calibration.json"
CODECS = ("x264", "x265")
FEATURES = (
    "log_luma",
    "log_chroma",
    "nonzero",
    "coded_blocks",
    "blocks",
    "intra_blocks",
    "motion",
    "frame",
)
BLOCK = 8


def qstep(qp: Tensor) -> Tensor:
    """H.264 / HEVC quantiser step on orthonormal transform coefficients, 0..255 sample scale:
    ``2 ** ((QP - 4) / 6)`` (1 at QP 4, doubling every 6)."""
    return torch.exp2((qp - 4.0) / 6.0)


@functools.lru_cache(maxsize=1)
def load_calibration() -> dict:
    """The stored calibration (``{"codecs": {codec: {rate_control: {subsampling: ...}}}}``)."""
    path = resources.files("sandwich.proxies") / CALIBRATION_FILE
    if not path.is_file():
        return {"codecs": {}}
    return json.loads(path.read_text())


def default_mode_calibration() -> dict:
    """Uncalibrated settings: QP = CRF + 1 for I, CRF + 4 for P, a rough rate model."""
    rate = {"weights": [1.6, 1.6, 1.0, 2.0, 0.1, 0.0, 1.0, 100.0], "alpha": 2.0}
    return {
        "qp": {"I": {"offset": 1.0, "slope": 1.0}, "P": {"offset": 4.0, "slope": 1.0}},
        "rate": {"I": rate, "P": dict(rate)},
        "overhead_bits": 6000.0,
    }


def mode_calibration(codec: str, rate_control: str, subsampling: str, cal: dict | None = None):
    """The calibration of one (codec, rate control, subsampling), or the uncalibrated default."""
    cal = load_calibration() if cal is None else cal
    try:
        return cal["codecs"][codec][rate_control][subsampling]
    except KeyError:
        return default_mode_calibration()


# ---------------------------------------------------------------------------------- colour
def _grid(subsampling: str, bit_depth: int) -> tuple[float, float]:
    """Sample steps per unit of the 0..255 scale: (input RGB / gray, stored Y'CbCr)."""
    peak = (1 << bit_depth) - 1
    return peak / 255.0, (peak + 1) / 256.0


def _on_grid(v: Tensor, k: float, rounding: str) -> Tensor:
    return soft_round(v * k, rounding) / k


def to_planes(frame: Tensor, subsampling: str, bit_depth: int, rounding: str) -> list[Tensor]:
    """(N, C, H, W) 0..255 -> the planes the codec stores, each (N, 1, h, w), 0..255 scale.

    Gray: the frame itself. Colour: Y, Cb, Cr (BT.709 studio range), chroma halved for 4:2:0.
    Samples are rounded to the codec's grid (8 or 10 bits)."""
    k_in, k_yuv = _grid(subsampling, bit_depth)
    x = _on_grid(frame.clamp(0.0, 255.0), k_in, rounding)
    if subsampling == "gray":
        return [x]
    yuv = rgb_to_yuv(x, "bt709", full_range=False)
    cbcr = yuv[:, 1:]
    if subsampling == "4:2:0":
        cbcr = F.avg_pool2d(cbcr, 2)
    return [_on_grid(p, k_yuv, rounding).clamp(0.0, 255.0) for p in (yuv[:, :1], *cbcr.split(1, 1))]


def from_planes(
    planes: list[Tensor], subsampling: str, bit_depth: int, size: tuple[int, int], rounding: str
) -> Tensor:
    """Decoded planes -> (N, C, H, W) 0..255 frame as the real decoder gives it (bilinear
    chroma upsampling, centre siting; BT.709 studio range to RGB; rounded to the grid)."""
    k_in, _ = _grid(subsampling, bit_depth)
    h, w = size
    if subsampling == "gray":
        return planes[0][..., :h, :w]
    luma, cbcr = planes[0], torch.cat(planes[1:], 1)
    if cbcr.shape[-2:] != luma.shape[-2:]:
        cbcr = F.interpolate(cbcr, size=luma.shape[-2:], mode="bilinear", align_corners=False)
    rgb = yuv_to_rgb(torch.cat([luma, cbcr], 1), "bt709", full_range=False)
    return _on_grid(rgb, k_in, rounding).clamp(0.0, 255.0)[..., :h, :w]


# ---------------------------------------------------------------------------------- coding
def _intra_prediction(plane: Tensor, b: int) -> Tensor:
    """DC intra prediction on b x b blocks: the mean of the left and upper blocks' means of
    ``plane`` (one of them at the edges, 128 at the corner), nearest-upsampled; no gradient."""
    m = F.avg_pool2d(plane.detach(), b)
    left = F.pad(m, (1, 0, 0, 0))[..., :, :-1]
    up = F.pad(m, (0, 0, 1, 0))[..., :-1, :]
    has_l = torch.zeros_like(m)
    has_l[..., :, 1:] = 1.0
    has_u = torch.zeros_like(m)
    has_u[..., 1:, :] = 1.0
    count = has_l + has_u
    pred = torch.where(count > 0, (left * has_l + up * has_u) / count.clamp(min=1.0), 128.0)
    return F.interpolate(pred, scale_factor=b, mode="nearest")


def _code_residual(res: Tensor, step: Tensor, rounding: str) -> tuple[Tensor, Tensor, Tensor]:
    """8x8 DCT, quantise, dequantise, inverse DCT of an (N, 1, h, w) residual with steps
    ``step`` (N, 1, h/8, w/8), one per block.

    Returns the decoded residual (N, 1, h, w), the integer coefficients (N, Bh, Bw, 64) and
    the unrounded scaled coefficients u (N, Bh, Bw, 64) for the smooth rate stand-in."""
    coef = dct2d(blockify(res, BLOCK))
    s = step[..., None, None]
    u = coef / s
    q = soft_round(u, rounding)
    rec = unblockify(idct2d(q * s))
    n, _, bh, bw = coef.shape[:4]
    return rec, torch.round(u.detach()).reshape(n, bh, bw, 64), u.reshape(n, bh, bw, 64)


def _features(
    ints: list[Tensor], us: list[Tensor], intra: Tensor, motion: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-frame rate features (N, len(FEATURES)) (exact, no gradient) and the smooth
    stand-in (N,) (differentiable) from each plane's coefficients, the (N, 1, Bh, Bw) intra
    mask of the 8x8 luma blocks and the (N,) motion cost."""
    logs = [torch.log2(1.0 + q.abs()).flatten(1).sum(1) for q in ints]
    log_chroma = sum(logs[1:]) if len(logs) > 1 else torch.zeros_like(logs[0])
    nonzero = sum((q != 0).flatten(1).sum(1) for q in ints).float()
    coded = sum((q != 0).any(-1).flatten(1).sum(1) for q in ints).float()
    blocks = torch.full_like(logs[0], float(intra[0].numel()))
    intra_blocks = intra.flatten(1).sum(1)
    ones = torch.ones_like(logs[0])
    feats = [logs[0], log_chroma, nonzero, coded, blocks, intra_blocks, motion, ones]
    smooth = sum(torch.log2(1.0 + u.abs()).flatten(1).sum(1) for u in us)
    return torch.stack(feats, 1), smooth


def _block_sse(planes: list[Tensor], preds: list[Tensor], factors: list[int]) -> Tensor:
    """Squared error of each prediction summed over the planes per 8x8 luma block:
    (N, 1, H/8, W/8)."""
    total = 0.0
    for p, pr, f in zip(planes, preds, factors, strict=True):
        b = BLOCK // f
        total = total + F.avg_pool2d((p - pr).detach() ** 2, b) * (b * b)
    return total


def motion_cost(flow: Tensor, inter: Tensor) -> Tensor:
    """A motion-vector cost per frame: (N,) sum over inter-coded 16x16 blocks of the
    exp-Golomb length of each vector component's difference from its neighbours' median
    (quarter-pel units), H.264 style.

    Args:
        flow: (N, 2, H, W) backward flow of the frame (H, W multiples of 16).
        inter: (N, 1, H/8, W/8) 1 where the 8x8 luma block is motion-compensated.
    """
    mv = torch.round(F.avg_pool2d(flow.detach(), 2 * BLOCK) * 4.0)
    left = F.pad(mv, (1, 0, 0, 0))[..., :, :-1]
    up = F.pad(mv, (0, 0, 1, 0))[..., :-1, :]
    upright = F.pad(mv, (0, 1, 1, 0))[..., :-1, 1:]
    pred = torch.stack([left, up, upright]).median(0).values
    d = (mv - pred).abs()
    bits = (2.0 * torch.floor(torch.log2(2.0 * d + 1.0)) + 1.0).sum(1, keepdim=True)
    used = (F.avg_pool2d(inter.float(), 2) > 0.5).to(bits)
    return (bits * used).flatten(1).sum(1)


def frame_types(t: int, gop: int | None = None) -> list[str]:
    """``"I"`` for the first frame of each GOP, ``"P"`` for the others."""
    return ["I" if k == 0 or (gop is not None and k % gop == 0) else "P" for k in range(t)]


def luma_planes(x: Tensor, subsampling: str, bit_depth: int = 8) -> Tensor:
    """(N, T, 1, H, W) the luma plane the codec stores for each frame (no gradient)."""
    with torch.no_grad():
        frames = [x[:, k].detach() for k in range(x.shape[1])]
        return torch.stack([to_planes(f, subsampling, bit_depth, "hard")[0] for f in frames], 1)


def _satd(res: Tensor) -> Tensor:
    """(N, 1, h, w) -> (N, 1, h/8, w/8) mean |DCT coefficient| of each 8x8 block, no DC."""
    c = dct2d(blockify(res, BLOCK)).abs()
    return (c.sum((-1, -2)) - c[..., 0, 0]) / 63.0


def aq_offsets(luma: Tensor, strength: float, center: float | None) -> Tensor:
    """Adaptive quantisation (x264 / x265 in spirit): a QP offset per 16x16 macroblock,
    ``strength * (log2(AC energy) - center)``, the AC energy being the sum of squared
    deviations from the block mean of the luma (0..255 scale); ``center`` None uses each
    frame's mean of log2(energy) (x265's auto-variance mode). No gradient.

    Args:
        luma: (N, T, 1, H, W) luma planes, H and W multiples of 16.

    Returns:
        (N, T, 1, H/16, W/16) QP offsets.
    """
    with torch.no_grad():
        y = luma.flatten(0, 1)
        b = 2 * BLOCK
        energy = (F.avg_pool2d(y * y, b) - F.avg_pool2d(y, b) ** 2) * (b * b)
        e = torch.log2(energy.clamp(min=1.0))
        c = e.mean((-1, -2), keepdim=True) if center is None else center
        return (strength * (e - c)).unflatten(0, luma.shape[:2])


def frame_complexity(luma: Tensor, flow: Tensor, types: list[str]) -> Tensor:
    """(N, T) log2 complexity of each frame as a rate control sees it (no gradient): on the
    half-size luma, the mean over 8x8 blocks of the mean |AC DCT coefficient| of the block
    (I frames), or of the smaller of that and of the motion-compensated residual against the
    previous original frame (P frames; x264's lookahead cost in spirit).

    Args:
        luma: (N, T, 1, H, W) luma planes, H and W multiples of 16.
        flow: (N, T-1, 2, H, W) backward flow on that grid.
        types: per frame ``"I"`` / ``"P"``.
    """
    with torch.no_grad():
        half = F.avg_pool2d(luma.flatten(0, 1), 2).unflatten(0, luma.shape[:2])
        out = []
        for k, kind in enumerate(types):
            intra = _satd(half[:, k])
            if kind == "P":
                mc = warp(half[:, k - 1], scale_flow(flow[:, k - 1], half.shape[-2:]))
                intra = torch.minimum(intra, _satd(half[:, k] - mc))
            out.append(torch.log2(intra.flatten(1).mean(1) + 0.25))
        return torch.stack(out, 1)


@dataclass
class ProxyParts:
    """The uncalibrated proxy's output.

    Attributes:
        x_hat: (N, T, C, H, W) reconstruction, 0..255, differentiable.
        features: (N, T, len(FEATURES)) per-frame rate features (no gradient).
        smooth: (N, T) smooth rate stand-in (differentiable).
        frame_types: per clip, ``"I"`` / ``"P"`` per frame.
        intra_share: (N, T) share of 8x8 luma blocks coded intra (1 for I frames).
    """

    x_hat: Tensor
    features: Tensor
    smooth: Tensor
    frame_types: list[list[str]]
    intra_share: Tensor


def pad_to(x: Tensor, mult: int) -> Tensor:
    """(..., C, H, W) padded at the bottom and right by edge replication to multiples of
    ``mult``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    if not (ph or pw):
        return x
    lead = x.shape[:-3]
    y = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pw, 0, ph), mode="replicate")
    return y.reshape(*lead, *y.shape[-3:])


def _predict_p(planes, prev, flow, factors):
    """Motion-compensated or intra prediction per 8x8 luma block: the predictions and the
    (N, 1, Bh, Bw) intra mask."""
    intra = [_intra_prediction(p, BLOCK // f) for p, f in zip(planes, factors, strict=True)]
    mc = [warp(r, scale_flow(flow, r.shape[-2:])) for r in prev]
    use_mc = (_block_sse(planes, mc, factors) <= _block_sse(planes, intra, factors)).to(flow)
    preds = []
    for m, a, f in zip(mc, intra, factors, strict=True):
        mask = F.interpolate(use_mc, scale_factor=BLOCK // f, mode="nearest")
        preds.append(mask * m + (1.0 - mask) * a)
    return preds, 1.0 - use_mc


def video_proxy_parts(
    x: Tensor,
    qps: Tensor,
    subsampling: str,
    flow: Tensor,
    bit_depth: int = 8,
    rounding: str = "ste",
    gop: int | None = None,
    aq: Tensor | None = None,
) -> ProxyParts:
    """Code clips at given per-frame QPs, without the rate calibration.

    Args:
        x: (N, T, C, H, W) clips, 0..255 (C = 1 for gray, 3 for RGB).
        qps: (N, T) QP of every frame (real-valued; see :func:`frame_qps`).
        subsampling: ``"4:2:0"``, ``"4:4:4"`` or ``"gray"``.
        flow: (N, T-1, 2, H, W) backward flow on the frames' grid (see
            :mod:`sandwich.proxies.video.flow`); no gradient flows into it.
        bit_depth: 8 or 10 (the sample grid; the step at a QP is the same on the 0..255 scale).
        rounding: coefficient rounding (:mod:`sandwich.proxies.rounding`); pixel roundings are
            straight-through unless ``"hard"``.
        gop: frames per GOP (an I frame every ``gop`` frames); None for one GOP.
        aq: optional (N, T, 1, H'/16, W'/16) QP offsets per 16x16 macroblock (adaptive
            quantisation, :func:`aq_offsets`; H', W' the sizes padded to multiples of 16).
    """
    n, t, _, h, w = x.shape
    pix = "hard" if rounding == "hard" else "ste"
    fac = 2 if subsampling == "4:2:0" else 1
    xp = pad_to(x, 2 * BLOCK)
    fl = pad_to(flow, 2 * BLOCK) if t > 1 else flow
    mb = (xp.shape[-2] // (2 * BLOCK), xp.shape[-1] // (2 * BLOCK))
    qmap = qps.to(x)[:, :, None, None, None].expand(n, t, 1, *mb)
    if aq is not None:
        qmap = qmap + aq.to(x)
    types = frame_types(t, gop)
    k_yuv = _grid(subsampling, bit_depth)[1]
    outs, feats, smooths, shares = [], [], [], []
    prev: list[Tensor] = []
    for k, kind in enumerate(types):
        planes = to_planes(xp[:, k], subsampling, bit_depth, pix)
        factors = [1] + [fac] * (len(planes) - 1)
        if kind == "I":
            preds = [_intra_prediction(p, BLOCK // f) for p, f in zip(planes, factors, strict=True)]
            intra = x.new_ones(n, 1, xp.shape[-2] // BLOCK, xp.shape[-1] // BLOCK)
            motion = x.new_zeros(n)
        else:
            preds, intra = _predict_p(planes, prev, fl[:, k - 1], factors)
            motion = motion_cost(fl[:, k - 1], 1.0 - intra)
        recs, ints, us = [], [], []
        for p, pr in zip(planes, preds, strict=True):
            step = qstep(qmap[:, k])
            if step.shape[-1] * BLOCK != p.shape[-1]:
                step = F.interpolate(step, scale_factor=2, mode="nearest")
            res, q_int, u = _code_residual(p - pr, step, rounding)
            recs.append(_on_grid(pr + res, k_yuv, pix).clamp(0.0, 255.0))
            ints.append(q_int)
            us.append(u)
        f, s = _features(ints, us, intra, motion)
        prev = recs
        outs.append(from_planes(recs, subsampling, bit_depth, (h, w), pix))
        feats.append(f)
        smooths.append(s)
        shares.append(intra.flatten(1).mean(1))
    return ProxyParts(
        torch.stack(outs, 1),
        torch.stack(feats, 1),
        torch.stack(smooths, 1),
        [list(types) for _ in range(n)],
        torch.stack(shares, 1),
    )


def frame_qps(
    quality: Tensor | float, complexity: Tensor, types: list[str], mode_cal: dict
) -> Tensor:
    """(N, T) QP of each frame for knob value(s) ``quality`` (CRF or QP), as the calibration
    maps it: per frame type ``QP = offset + slope * quality + c * complexity`` (the frame's
    :func:`frame_complexity`: CRF spends more on simple frames), and for P frames a term by
    the number of frames left in the clip (x264's macroblock tree / x265's CU tree give the
    frames that more frames predict from a lower QP)."""
    n, t = complexity.shape
    q = torch.as_tensor(quality, dtype=torch.float32).detach().flatten().cpu()
    q = (q.expand(n) if q.numel() == 1 else q).to(complexity)
    out = torch.empty(n, t, dtype=complexity.dtype, device=complexity.device)
    for k, kind in enumerate(types):
        m = mode_cal["qp"][kind]
        v = m["offset"] + m["slope"] * q + m.get("complexity", 0.0) * complexity[:, k]
        left = m.get("remaining", [])
        if kind == "P" and left:
            v = v + left[min(t - 1 - k, len(left) - 1)]
        out[:, k] = v
    return out


def frame_bits(parts: ProxyParts, mode_cal: dict) -> Tensor:
    """(N, T) calibrated bits per frame: forward value from the rate model on the exact
    features, gradient from the smooth stand-in scaled to the same total."""
    kinds = torch.tensor([[ft == "I" for ft in types] for types in parts.frame_types])
    kinds = kinds.to(parts.features.device)
    out = torch.zeros_like(parts.smooth)
    for kind in ("I", "P"):
        m = mode_cal["rate"][kind]
        wts = torch.tensor(m["weights"], dtype=parts.features.dtype, device=out.device)
        exact = parts.features @ wts
        smooth = m["alpha"] * parts.smooth
        val = exact.to(out) + smooth - smooth.detach()
        out = torch.where(kinds == (kind == "I"), val, out)
    return out


def video_proxy(
    x: Tensor,
    quality: Tensor | float,
    codec: str = "x265",
    subsampling: str = "4:2:0",
    bit_depth: int = 8,
    rounding: str = "ste",
    flow: Tensor | None = None,
    flow_scale: float | None = None,
    rate_control: str = "crf",
    gop: int | None = None,
    calibration: dict | None = None,
) -> ClipOutput:
    """Differentiable x264 / x265 (I P P P, one reference) on a batch of clips.

    Args:
        x: (N, T, C, H, W) clips, 0..255; C = 3 (RGB) or 1 for ``subsampling="gray"``.
        quality: CRF (or QP with ``rate_control="qp"``) 0..51, lower is better; scalar or (N,).
        codec: which encoder's calibration to use, ``"x264"`` or ``"x265"``.
        subsampling: ``"4:2:0"``, ``"4:4:4"`` or ``"gray"``.
        bit_depth: 8 or 10 (calibrated at 8; 10 only refines the sample grid).
        rounding: ``"ste"`` (default), ``"hard"``, ``"noise"`` or ``"cubic"``.
        flow: optional precomputed backward flow (N, T-1, 2, H', W') in pixels of its own grid,
            e.g. measured on the original frames before a pre-processor; None computes DIS
            flow on ``x`` itself. A flow on another grid (low-res mode: flow of the full-size
            frames, ``x`` the small bottleneck) is resampled to ``x``'s grid and its vectors
            scaled by the size ratio, or by ``flow_scale`` when given.
        flow_scale: factor applied to the flow vectors (overrides the size ratio).
        rate_control: ``"crf"`` or ``"qp"`` (the knob's meaning).
        gop: frames per GOP (None: the whole clip is one GOP, as the real codecs by default).
        calibration: a calibration dict (default: the packaged ``video_calibration.json``).

    Returns:
        :class:`ClipOutput`: ``x_hat`` (N, T, C, H, W) 0..255, differentiable w.r.t. ``x``;
        ``bits`` (N,) predicted size of each whole MP4 file in bits (frames plus the fixed
        container/parameter-set overhead), differentiable; ``frame_bits`` (N, T) bits per
        frame (differentiable); ``frame_types`` ``"I"`` then ``"P"``.
    """
    _check(x, codec, subsampling, bit_depth, rate_control)
    n, t, _, h, w = x.shape
    mode_cal = mode_calibration(codec, rate_control, subsampling, calibration)
    if t > 1:
        if flow is None:
            flow = clip_flow(x)
        elif tuple(flow.shape[-2:]) != (h, w) or flow_scale is not None:
            flow = scale_flow(flow, (h, w), flow_scale)
        flow = flow.detach().to(x)
    else:
        flow = x.new_zeros(n, 0, 2, h, w)
    types = frame_types(t, gop)
    luma = pad_to(luma_planes(x, subsampling, bit_depth), 2 * BLOCK)
    cplx = frame_complexity(luma, pad_to(flow, 2 * BLOCK) if t > 1 else flow, types)
    qps = frame_qps(quality, cplx, types, mode_cal)
    aq = None
    if mode_cal.get("aq", {}).get("strength", 0.0):
        aq = aq_offsets(luma, mode_cal["aq"]["strength"], mode_cal["aq"].get("center"))
    parts = video_proxy_parts(x, qps, subsampling, flow, bit_depth, rounding, gop, aq)
    fb = frame_bits(parts, mode_cal).to(x.dtype)
    bits = fb.sum(1) + float(mode_cal["overhead_bits"])
    return ClipOutput(parts.x_hat, bits, fb, parts.frame_types)


def _check(x: Tensor, codec: str, subsampling: str, bit_depth: int, rate_control: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"unknown video codec {codec!r}; use one of {CODECS}")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"unknown subsampling {subsampling!r}; use one of {SUBSAMPLINGS}")
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be one of {BIT_DEPTHS}, got {bit_depth}")
    if rate_control not in RATE_CONTROLS:
        raise ValueError(f"rate_control must be one of {RATE_CONTROLS}, got {rate_control!r}")
    if x.dim() != 5:
        raise ValueError(f"clip codecs take (N, T, C, H, W) tensors, got {tuple(x.shape)}")
    c = 1 if subsampling == "gray" else 3
    if x.shape[2] != c:
        raise ValueError(f"{codec} {subsampling} carries {c} channel(s), got {x.shape[2]}")


class VideoProxy(ClipCodec):
    """``nn.Module`` around :func:`video_proxy`: the differentiable twin of
    :class:`sandwich.codecs.video.X264Codec` / ``X265Codec`` (same ``knob``, ``channels``,
    ``peak`` and ``condition``). ``forward(x, quality, flow=None, flow_scale=None)``."""

    differentiable = True

    def __init__(
        self,
        codec: str = "x265",
        subsampling: str = "4:2:0",
        bit_depth: int = 8,
        rounding: str = "ste",
        rate_control: str = "crf",
        gop: int | None = None,
    ):
        super().__init__()
        _check(torch.zeros(1, 1, 1 if subsampling == "gray" else 3, 8, 8), codec, subsampling,
               bit_depth, rate_control)  # fmt: skip
        self.codec = codec
        self.subsampling = subsampling
        self.bit_depth = int(bit_depth)
        self.rounding = rounding
        self.rate_control = rate_control
        self.gop = gop
        self.channels = 1 if subsampling == "gray" else 3
        self.peak = (1 << self.bit_depth) - 1
        self.knob = Knob(
            rate_control, 0, 51, higher_is_better=False, label=f"{codec} {rate_control.upper()}"
        )

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """CRF or QP / 51: (N,), the same input as the real codec's."""
        q = torch.as_tensor(quality, dtype=torch.float32).flatten()
        return (q.expand(n) if q.numel() == 1 else q) / 51.0

    def forward(
        self,
        x: Tensor,
        quality: Tensor | float,
        flow: Tensor | None = None,
        flow_scale: float | None = None,
    ) -> ClipOutput:
        return video_proxy(
            x,
            quality,
            self.codec,
            self.subsampling,
            self.bit_depth,
            self.rounding,
            flow,
            flow_scale,
            self.rate_control,
            self.gop,
        )
