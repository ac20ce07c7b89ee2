"""A differentiable optical-flow estimator with no learned weights, and a flow-consistency loss.

Method: coarse-to-fine Horn-Schunck. Each pyramid level warps the second image by the flow
carried up from the coarser level, linearises the brightness-constancy residual around it and
runs a fixed number of Jacobi updates of the Horn-Schunck energy

    sum_p (Ix du + Iy dv + It)^2 + smoothness^2 * (|grad u|^2 + |grad v|^2),

so the whole estimate is an unrolled chain of small fixed filters, products, one divide and one
bilinear warp per level: gradients reach both input images. The images are first converted to
luma and blurred (sigma 1 px); each coarser level gets twice the finer level's updates.

Horn-Schunck rather than Lucas-Kanade because its per-pixel divisor,
``smoothness^2 + Ix^2 + Iy^2``, never drops below ``smoothness^2``: flat or edge-only regions
(where Lucas-Kanade's 2x2 structure tensor is singular) stay well conditioned, and so do the
backward gradients, which matters for a loss. It also yields a dense field with no window size
to tune, and each update is a few cheap elementwise operations.

Convention (the same as OpenCV's ``calc(first, second)`` and :mod:`sandwich.proxies.video.flow`):
``flow`` is (N, 2, H, W) in pixels, channel 0 = dx (horizontal), channel 1 = dy (vertical), with
``first(p) ~= second(p + flow(p))``, i.e. ``warp(second, flow) ~= first``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandwich.errors import SandwichError
from sandwich.media.color import BT709_LUMA

__all__ = [
    "FlowConsistencyLoss",
    "FlowEstimator",
    "estimate_flow",
    "flow_consistency_loss",
    "warp",
]

MIN_SIDE = 8  # the coarsest pyramid level keeps at least this many pixels per side
_EPE_EPS = 1e-6  # px^2; keeps the end-point error's gradient finite at zero error


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warp with replicated borders: ``out(p) = image(p + flow(p))``.

    Args:
        image: (N, C, H, W) float, any range.
        flow: (N, 2, H, W) float, pixels; channel 0 = dx, channel 1 = dy.

    Returns:
        (N, C, H, W), differentiable with respect to both ``image`` and ``flow``.
    """
    n, _, h, w = image.shape
    if flow.shape != (n, 2, h, w):
        raise SandwichError(f"warp: flow must be {(n, 2, h, w)}, got {tuple(flow.shape)}")
    ys = torch.arange(h, device=image.device, dtype=image.dtype).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=image.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _luma(x: Tensor, name: str) -> Tensor:
    """(N, 1|3, H, W) 0..255 -> (N, 1, H, W) luma scaled to 0..1 (BT.709 weights)."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise SandwichError(f"{name} must be (N, 1 or 3, H, W), got {tuple(x.shape)}")
    if x.shape[1] == 3:
        wts = torch.tensor(BT709_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * wts).sum(1, keepdim=True)
    return x / 255.0


# Small fixed filters are applied as sums of shifted slices: on CPU that is several times
# faster than a one-channel convolution, forward and backward.
_BINOMIAL5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
_DERIV5 = (1 / 12, -8 / 12, 0.0, 8 / 12, -1 / 12)  # fourth-order central difference


def _taps(x: Tensor, taps: tuple[float, ...], dim: int) -> Tensor:
    """Correlate (N, C, H, W) ``x`` along ``dim`` (-1 = x, -2 = y) with odd-length ``taps``."""
    r = len(taps) // 2
    n = x.shape[dim]
    p = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="replicate")
    out: Tensor | None = None
    for k, t in enumerate(taps):
        if t == 0.0:
            continue
        term = p.narrow(dim, k, n)
        out = term * t if out is None else torch.add(out, term, alpha=t)
    assert out is not None
    return out


def _blur(x: Tensor) -> Tensor:
    """5-tap binomial blur (sigma = 1 px) of (N, C, H, W), borders replicated."""
    return _taps(_taps(x, _BINOMIAL5, -1), _BINOMIAL5, -2)


def _gradients(x: Tensor) -> Tensor:
    """(N, 1, H, W) -> (N, 2, H, W) spatial derivatives (d/dx, d/dy) per pixel."""
    return torch.cat([_taps(x, _DERIV5, -1), _taps(x, _DERIV5, -2)], dim=1)


def _neighbour_mean(flow: Tensor) -> Tensor:
    """Horn-Schunck's weighted mean of the 8 neighbours of (N, 2, H, W), edges replicated:
    weights 1/6 on the 4 sides, 1/12 on the 4 corners."""
    h, w = flow.shape[-2:]
    p = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    col = torch.add(p[:, :, 0:h] + p[:, :, 2 : h + 2], p[:, :, 1 : h + 1], alpha=2.0)
    box = torch.add(col[..., 0:w] + col[..., 2 : w + 2], col[..., 1 : w + 1], alpha=2.0)
    return torch.add(box, flow, alpha=-4.0) * (1.0 / 12.0)


def _downsample(x: Tensor) -> Tensor:
    """Blur and halve (N, C, H, W), odd sides rounded up; pixel centres align as in
    ``interpolate(..., align_corners=False)``."""
    x = _blur(x)
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return 0.25 * (
        x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    )


def _upsample_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample (N, 2, h, w) flow onto ``size`` and rescale its vectors to the new pixel size."""
    h0, w0 = flow.shape[-2:]
    h, w = size
    f = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    k = torch.tensor([w / w0, h / h0], dtype=f.dtype, device=f.device).view(1, 2, 1, 1)
    return f * k


def _refine(first: Tensor, second: Tensor, flow: Tensor, iterations: int, alpha2: float) -> Tensor:
    """One pyramid level: linearise brightness constancy around ``flow`` and run Jacobi
    Horn-Schunck updates of the total flow. (N, 1, H, W) images, (N, 2, H, W) flow."""
    h, w = first.shape[-2:]
    moved = warp(second, flow)
    grad = _gradients(0.5 * (first + moved))
    # second(p + f) - first(p) ~= moved - first + grad . (f - flow) = grad . f + const
    const = moved - first - (grad * flow).sum(1, keepdim=True)
    # No data term where p + flow leaves the frame: border padding there is no evidence.
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    px, py = xs + flow[:, 0].detach(), ys + flow[:, 1].detach()
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    grad = grad * inside.unsqueeze(1).to(grad.dtype)
    gain = grad / (alpha2 + (grad * grad).sum(1, keepdim=True))
    gx, gy = grad[:, :1], grad[:, 1:]
    for _ in range(iterations):
        mean = _neighbour_mean(flow)
        resid = torch.addcmul(torch.addcmul(const, gx, mean[:, :1]), gy, mean[:, 1:])
        flow = torch.addcmul(mean, gain, resid, value=-1.0)
    return flow


def estimate_flow(
    first: Tensor,
    second: Tensor,
    levels: int = 4,
    iterations: int = 20,
    smoothness: float = 0.05,
) -> Tensor:
    """Dense optical flow by pyramidal Horn-Schunck with unrolled (differentiable) iterations.

    Args:
        first: (N, C, H, W) float, 0..255, C = 1 (luma) or 3 (RGB, converted to BT.709 luma).
        second: same shape as ``first``.
        levels: pyramid levels at most; fewer are used when a level would drop below 8 pixels
            per side. Each level halves the size; the default 4 handles shifts of several
            pixels (8 at most, less on weak texture).
        iterations: Jacobi updates at the finest level; each coarser level (a quarter of the
            pixels) gets twice as many. Fixed, so the cost and the graph are fixed.
        smoothness: Horn-Schunck's alpha, in luma units of 0..1 per pixel of flow gradient;
            larger gives smoother flow.

    Returns:
        (N, 2, H, W) flow in pixels of the input grid, channels (dx, dy), such that
        ``first(p) ~= second(p + flow(p))``; differentiable with respect to both inputs.
    """
    if first.shape != second.shape:
        raise SandwichError(
            f"estimate_flow: images differ in shape, {tuple(first.shape)} vs {tuple(second.shape)}"
        )
    a, b = _luma(first, "first"), _luma(second, "second")
    h, w = a.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise SandwichError(f"estimate_flow: images must be at least 8x8, got {h}x{w}")
    a, b = _blur(a), _blur(b)  # tame noise and aliasing before derivatives
    pyramid = [(a, b)]
    for _ in range(max(int(levels), 1) - 1):
        pa, pb = pyramid[-1]
        if (min(pa.shape[-2:]) + 1) // 2 < MIN_SIDE:
            break
        pyramid.append((_downsample(pa), _downsample(pb)))
    flow = a.new_zeros((a.shape[0], 2) + tuple(pyramid[-1][0].shape[-2:]))
    alpha2 = float(smoothness) ** 2
    for level in range(len(pyramid) - 1, -1, -1):
        pa, pb = pyramid[level]
        if flow.shape[-2:] != pa.shape[-2:]:
            flow = _upsample_flow(flow, tuple(pa.shape[-2:]))
        # A coarser level has a quarter of the pixels: give it twice the updates.
        flow = _refine(pa, pb, flow, int(iterations) * 2**level, alpha2)
    return flow


class FlowEstimator(nn.Module):
    """Module form of :func:`estimate_flow`; holds its settings (it has no weights)."""

    def __init__(self, levels: int = 4, iterations: int = 20, smoothness: float = 0.05) -> None:
        super().__init__()
        self.levels = levels
        self.iterations = iterations
        self.smoothness = smoothness

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        """(N, C, H, W) 0..255 pair -> (N, 2, H, W) flow in pixels; see :func:`estimate_flow`."""
        return estimate_flow(first, second, self.levels, self.iterations, self.smoothness)


def _clip_pairs(x: Tensor) -> tuple[Tensor, Tensor]:
    """(N, T, C, H, W) -> frames t and t-1 for t >= 1, each (N * (T-1), C, H, W)."""
    n, t = x.shape[:2]
    cur = x[:, 1:].reshape(n * (t - 1), *x.shape[2:])
    prev = x[:, :-1].reshape(n * (t - 1), *x.shape[2:])
    return cur, prev


def flow_consistency_loss(original: Tensor, decoded: Tensor, **flow_kwargs: float) -> Tensor:
    """Mean end-point error between the decoded and the original clips' frame-to-frame flow.

    For every t >= 1 the flow from frame t back into frame t-1 (``estimate_flow(x_t, x_{t-1})``)
    is measured on both clips; the originals' flow is computed without gradient. The end-point
    error is ``sqrt(|d|^2 + eps) - sqrt(eps)`` with eps = 1e-6 px^2, which is exactly 0 for equal
    flows and keeps a finite gradient there.

    Args:
        original: (N, T, C, H, W) float, 0..255, T >= 2, C = 1 or 3.
        decoded: same shape.
        **flow_kwargs: ``levels``, ``iterations``, ``smoothness`` for :func:`estimate_flow`.

    Returns:
        Scalar tensor, mean over pairs and pixels, in pixels; differentiable wrt ``decoded``.
    """
    if original.shape != decoded.shape:
        raise SandwichError(
            f"flow_consistency_loss: clips differ in shape, "
            f"{tuple(original.shape)} vs {tuple(decoded.shape)}"
        )
    if original.dim() != 5 or original.shape[1] < 2:
        raise SandwichError(
            "flow_consistency_loss: clips must be (N, T >= 2, C, H, W), "
            f"got {tuple(original.shape)}"
        )
    with torch.no_grad():
        target = estimate_flow(*_clip_pairs(original.detach()), **flow_kwargs)
    flow = estimate_flow(*_clip_pairs(decoded), **flow_kwargs)
    sq = (flow - target).pow(2).sum(1)
    return ((sq + _EPE_EPS).sqrt() - _EPE_EPS**0.5).mean()


class FlowConsistencyLoss(nn.Module):
    """Module form of :func:`flow_consistency_loss`; holds the estimator's settings."""

    def __init__(self, levels: int = 4, iterations: int = 20, smoothness: float = 0.05) -> None:
        super().__init__()
        self.levels = levels
        self.iterations = iterations
        self.smoothness = smoothness

    def forward(self, original: Tensor, decoded: Tensor) -> Tensor:
        """(N, T, C, H, W) 0..255 clips -> scalar mean flow end-point error in pixels."""
        return flow_consistency_loss(
            original,
            decoded,
            levels=self.levels,
            iterations=self.iterations,
            smoothness=self.smoothness,
        )
