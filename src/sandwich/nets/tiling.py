"""Tiled inference: run the pre- and post-processors over overlapping tiles, exactly.

Every network here is local: an output pixel depends only on the input pixels within its
receptive field. So a large image can be processed one tile at a time, each tile's input window
extended by a *halo* of at least that radius, and each output pixel taken from a tile in which it
lies at least ``halo`` pixels from the window's cut edges (edges that are image borders need no
halo: the untiled run sees the same border there). The windows start on a grid that keeps every
position-dependent part of the computation where the untiled run has it:

* the U-Net's pooling grid (``2**(levels-1)`` pixels; the replicate padding to that multiple sits
  at the bottom/right image border, which a tile reaches at the same place);
* the chroma modem's carriers, fixed to the pixel grid with a period of 4 pixels;
* the resampling of the low-resolution scenarios: a window of ``k * n`` full-resolution pixels
  downsamples (antialiased bicubic) to ``n`` bottleneck pixels and a window of ``n`` bottleneck
  pixels upsamples (bicubic, ``align_corners=False``) to ``k * n``, with exactly the weights and
  taps of the untiled run when ``k`` is a power of two, so that ``1/k`` and the sample positions
  ``(i + 0.5) * s - 0.5`` are exact in float32 and shift by whole pixels from tile to tile;
* and, for the tiles' kept parts (tile sides are rounded up to it), the codec's block grid: 16
  pixels for 4:2:0 JPEG, 8 for gray and 4:4:4 (times ``k`` at full resolution), so that tile
  seams fall on block edges. The processors do not see that grid, so windows (kept part plus
  halo) only need the grids above; under the flips of the decoding self-ensemble, which only
  flip sides of whole macroblocks, windows stay on them too.

With that, convolution, resampling and every elementwise operation compute each kept output pixel
from the same inputs with the same weights. For the same rounding too, a window must also be
large enough that PyTorch runs the same kernels as on the whole image (it sends small
convolutions and small bilinear upsamplings to other implementations, which round differently
in the last bit; see :func:`min_window`): small last tiles are grown inwards. Then the tiled
output is bitwise the untiled one (the tests check it for every zoo sandwich, with and without
the self-ensemble), while the working memory is bounded by the tile instead of the image. One
known exception: run single-threaded, PyTorch computes 1x1 convolutions (the per-pixel MLPs) with
im2col and MKL's GEMM at every size, whose last bit can depend on the image's size; in random
trials 2 of 838 images had one pixel 1 ulp (1.5e-5 on the 0..255 scale) off, which changes an
8-bit output only if that value lies within 1.5e-5 of a rounding boundary.

One case cannot use windows for the resampling: a low-resolution scenario whose image side is not
a multiple of ``k``. Its bottleneck side is ``ceil(H / k)``, so the resampling ratio is
``H / ceil(H / k)`` rather than ``k`` and its float32 sample positions depend on the absolute
output index. There the resampling runs as its two separable 1-D passes (PyTorch computes the 2-D
resampling as the horizontal pass followed by the vertical one, so this is exact), each over
whole rows or whole columns, and only the networks are tiled: the memory is then the tile plus
one intermediate of 1/k of the image in float32 (H x ceil(W/k) for the pre-processor,
ceil(H/k) x W for the post-processor, times the channels).

Shapes are (N, C, H, W); sizes, tiles, halos and alignments are in pixels.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandwich.nets.modem import carriers
from sandwich.nets.prepost import PostProcessor, PreProcessor
from sandwich.nets.unet import UNet

__all__ = [
    "AUTO_TILE",
    "AUTO_TILE_ABOVE",
    "Tiled",
    "array_view",
    "block_grid",
    "carrier_period",
    "conv_reach",
    "min_window",
    "plan_tiles",
    "postprocess_tiled",
    "postprocessor_geometry",
    "preprocess_tiled",
    "preprocessor_geometry",
    "resample_reach",
    "resolve_tile",
    "tiled",
    "unet_alignment",
    "unet_reach",
]

AUTO_TILE = 256  # tile side (full-resolution pixels) for large images: measured fastest
AUTO_TILE_ABOVE = 1024 * 1024  # images of more pixels than this are tiled by default

Sink = Callable[[Tensor, int, int], None]
Transform = tuple[bool, bool, bool]  # (transpose, flip rows, flip columns), as nets.ensemble


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _lcm(*values: int) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def _empty(ref: Tensor, shape: Sequence[int]) -> Tensor:
    """An uninitialised tensor of ``shape`` with the dtype, device and memory layout of ``ref``
    (channels-last when ``ref``'s channels are its innermost dimension), so that assembled
    tiles look like the untiled result to the operations that follow."""
    cl = ref.dim() == 4 and ref.shape[1] > 1 and ref.stride(1) == 1
    fmt = torch.channels_last if cl else torch.contiguous_format
    return torch.empty(tuple(shape), dtype=ref.dtype, device=ref.device, memory_format=fmt)


def resolve_tile(tile: int | None, size: tuple[int, int]) -> int:
    """The tile side to use for an image of ``size`` = (H, W) full-resolution pixels.

    ``tile``: None for automatic (off, i.e. 0, up to :data:`AUTO_TILE_ABOVE` pixels, else
    :data:`AUTO_TILE`), 0 for off, or a side in pixels. Raises ValueError when negative.
    """
    if tile is None:
        return AUTO_TILE if size[0] * size[1] > AUTO_TILE_ABOVE else 0
    if tile < 0:
        raise ValueError(f"tile of {tile} pixels: use 0 (off) or a positive side")
    return int(tile)


def block_grid(subsampling: str) -> int:
    """Side in pixels of the codec's coding block (JPEG's MCU): 16 for 4:2:0, else 8."""
    return 16 if subsampling in ("4:2:0", "4:2:2") else 8


# ------------------------------------------------------------------ receptive fields


def conv_reach(module: nn.Module) -> int:
    """Radius in pixels (at the module's input resolution) of a chain of convolutions: the sum
    over its ``nn.Conv2d`` layers of ``dilation * (kernel - 1) // 2`` (0 for 1x1 layers)."""
    reach = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            reach += max(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation, strict=True))
    return reach


def unet_alignment(unet: UNet) -> int:
    """The pooling grid of a U-Net, ``2**(levels-1)`` pixels: tile windows start on it."""
    return 2 ** (len(unet.down) - 1)


def unet_reach(unet: UNet) -> int:
    """Radius in input pixels of a U-Net's receptive field, from its structure.

    Along the longest path (down to the deepest level and back up): the convolutions of a level
    ``l`` block reach ``2**l`` input pixels per tap radius; a 2x2 average pool into level ``l``
    adds the ``2**(l-1)`` pixels of the finer pixel it merges; a bilinear x2 upsampling
    (``align_corners=False``) into level ``l`` reads up to one coarse pixel on either side,
    ``2**(l+1)`` input pixels. The skip paths are shorter. For two levels of two 3x3
    convolutions: 2 + (1 + 4) + (2 + 2) = 11.
    """
    levels = len(unet.down)
    reach = 0
    for level, block in enumerate(unet.down):
        f = 2**level
        reach += f // 2 if level else 0  # the pool merging two finer pixels
        reach += f * conv_reach(block)
    for i, block in enumerate(unet.up):
        f = 2 ** (levels - 2 - i)
        reach += 2 * f + f * conv_reach(block)  # bilinear x2, then the convolutions
    return reach + conv_reach(unet.head)


def _lowpass_reach(base: nn.Module | None) -> int:
    """Radius of an analytic base: the largest half-width of its (C, 1, k, k) kernels (the
    modem's low-passes, each applied once, in parallel); 0 for none (identity)."""
    if base is None:
        return 0
    return max((p.shape[-1] // 2 for p in base.parameters() if p.ndim == 4), default=0)


def carrier_period(max_period: int = 64) -> int:
    """Period in pixels of the modem's carriers (:func:`sandwich.nets.modem.carriers`), read off
    the carriers themselves: 4."""
    c = carriers(1, 2 * max_period)[0].flatten()
    for p in range(1, max_period + 1):
        if torch.equal(c[p:], c[:-p]):
            return p
    raise ValueError("the modem's carriers are not periodic")


def resample_reach(k: int) -> int:
    """How far, in full-resolution pixels, the bicubic resampling by ``k`` reaches beyond the
    pixels a tile keeps: the antialiased downsampling's support is 2k input pixels around an
    output centre ``k * (i + 0.5)``, i.e. 1.5k beyond the k pixels of its own, and the
    upsampling reads 4 taps around ``(i + 0.5) / k - 0.5``, i.e. 1.5 bottleneck pixels (1.5k
    output pixels); 2k + 1 bounds both with rounding. 0 for k = 1 (no resampling)."""
    return 0 if k == 1 else 2 * k + 1


ONEDNN_MIN_NUMEL = 20480  # PyTorch's thresholds, see min_window
BILINEAR_GENERIC_SPAN = 128


def _convs_by_level(net: nn.Module) -> list[tuple[nn.Conv2d, int]]:
    """The convolutions of ``net``, each with the level it runs at (0 = the network's input
    resolution, l = 2**l times smaller): by block inside its U-Nets, 0 elsewhere."""
    out, seen = [], set()
    for unet in (m for m in net.modules() if isinstance(m, UNet)):
        levels = len(unet.down)
        blocks = [(b, lvl) for lvl, b in enumerate(unet.down)]
        blocks += [(b, levels - 2 - i) for i, b in enumerate(unet.up)] + [(unet.head, 0)]
        for block, level in blocks:
            for m in block.modules():
                if isinstance(m, nn.Conv2d):
                    out.append((m, level))
                    seen.add(id(m))
    others = [m for m in net.modules() if isinstance(m, nn.Conv2d) and id(m) not in seen]
    return out + [(m, 0) for m in others]


def min_window(*nets: nn.Module) -> tuple[int, int]:
    """(area, span): the smallest window, in pixels at the networks' input resolution (area
    h * w, span h + w), on which the networks ``nets`` (U-Nets, per-pixel MLPs) run the same
    PyTorch CPU kernels as on a large image.

    PyTorch picks some kernels by size, and they round differently in the last bit:

    * a float32 convolution of a batch of one (no groups, kernels of at most 3x3) goes to
      oneDNN only when its input holds more than 20480 numbers, else to an im2col + GEMM path;
      a level ``l`` convolution with ``c`` input channels sees ``c * area / 4**l`` numbers;
    * a bilinear upsampling of a channels-first tensor takes a generic kernel when its output's
      height + width exceeds 128, else a vectorised one; the U-Net's upsampling into level
      ``l`` has a span of ``span / 2**l``.

    A large image takes oneDNN and the generic kernel everywhere, so the tiles must too for
    their output to be bitwise the untiled one. (Grouped and larger kernels, like the modem's
    low-passes, always take oneDNN.)
    """
    area, span = 0, 0
    for net in nets:
        for conv, level in _convs_by_level(net):
            if conv.groups > 1 or min(conv.kernel_size) > 3:
                continue
            area = max(area, ONEDNN_MIN_NUMEL * 4**level // conv.in_channels + 1)
        for unet in (m for m in net.modules() if isinstance(m, UNet) and len(m.down) > 1):
            span = max(span, BILINEAR_GENERIC_SPAN * 2 ** (len(unet.down) - 2) + 1)
    return area, span


def _network_alignment(unet: UNet, base: nn.Module | None) -> int:
    return _lcm(unet_alignment(unet), carrier_period() if base is not None else 1)


def _pre_reach(pre: PreProcessor) -> int:
    """Full-resolution radius of the pre-processor before its downsampling: base, MLP and U-Net
    run side by side on the image."""
    return max(_lowpass_reach(pre.base), conv_reach(pre.mlp), unet_reach(pre.unet))


def _post_reach(post: PostProcessor) -> int:
    """Full-resolution radius of the post-processor after its upsampling: the MLP and the
    U-Net read the analytic base's output."""
    return _lowpass_reach(post.base) + max(conv_reach(post.mlp), unet_reach(post.unet))


def _windowed_resampling(k: int) -> bool:
    """True when resampling by ``k`` is exact on windows: ``1/k`` is exact in float32."""
    return k & (k - 1) == 0


def preprocessor_geometry(pre: PreProcessor, block: int = 8) -> tuple[int, int, int]:
    """(step, align, halo) of the pre-processor's tiles, in bottleneck (output) pixels.

    ``step``: the codec's ``block``; tile sides are rounded up to it, so the tiles' kept parts
    start on block edges. ``align``: the windows start on multiples of it, so that at full
    resolution (``k`` times) they keep the U-Net's pooling grid and the modem's carrier phase.
    ``halo``: the networks' reach plus the downsampling's, rounded up to ``align``.
    """
    k = pre.downscale
    net = _network_alignment(pre.unet, pre.base)
    align = net // math.gcd(net, k)
    halo = -(-(_pre_reach(pre) + resample_reach(k)) // k)
    return block, align, _round_up(halo, align)


def postprocessor_geometry(post: PostProcessor, k: int = 1, block: int = 8) -> tuple[int, int, int]:
    """(step, align, halo) of the post-processor's tiles, in full-resolution (output) pixels,
    for a bottleneck upsampled ``k`` times: tile sides are rounded up to ``step``, ``k``
    codec blocks; windows start on multiples of ``align`` (whole bottleneck pixels, and the
    networks' grid); the halo covers the upsampling's reach plus the networks', rounded up to
    ``align``."""
    align = _lcm(k, _network_alignment(post.unet, post.base))
    return k * block, align, _round_up(_post_reach(post) + resample_reach(k), align)


# ------------------------------------------------------------------ the tiler


def _cuts(start: int, stop: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) cut on the multiples of ``tile``: the tiles' kept (core) ranges."""
    edges = [start, *range(_round_up(start + 1, tile), stop, tile), stop]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _grow(a: int, b: int, n: int, length: int, align: int) -> tuple[int, int]:
    """Window [a, b) of [0, n) grown to at least ``length`` (or all of [0, n)), towards the
    far side first, keeping its start (and, inside the image, its end) on ``align``."""
    if b - a >= min(length, n):
        return a, b
    b = min(n, _round_up(a + length, align))
    if b - a < length:
        a = max(0, (b - length) // align * align)
    return a, b


def plan_tiles(
    size: tuple[int, int],
    tile: int,
    halo: int,
    align: int = 1,
    region: tuple[int, int, int, int] | None = None,
    min_area: int = 0,
    min_span: int = 0,
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """The tiles :func:`tiled` runs over an output of ``size`` = (H, W) pixels: a list of
    (kept part, window), each (top, bottom, left, right) in output pixels, row by row. The kept
    parts cut ``region`` (default all) on the multiples of ``tile`` (rounded up to ``align``);
    each window is its kept part plus ``halo`` (rounded up to ``align``) on its cut sides,
    starts on a multiple of ``align``, and is grown to ``min_area`` / ``min_span``."""
    top, bottom, left, right = region if region is not None else (0, size[0], 0, size[1])
    if not (0 <= top < bottom <= size[0] and 0 <= left < right <= size[1]):
        raise ValueError(f"region {region} is not inside the {size[0]}x{size[1]} output")
    tile, halo = _round_up(tile, align), _round_up(halo, align)
    side = max(math.isqrt(min_area - 1) + 1 if min_area > 0 else 0, -(-min_span // 2))

    def window(a: int, b: int, n: int) -> tuple[int, int]:  # kept range -> window range
        wa, wb = max(0, a // align * align - halo), min(n, _round_up(b, align) + halo)
        return _grow(wa, wb, n, side, align)

    tiles = []
    for a, b in _cuts(top, bottom, tile):
        wa, wb = window(a, b, size[0])
        for c, d in _cuts(left, right, tile):
            wc, wd = window(c, d, size[1])
            rows, cols = wb - wa, wd - wc
            if rows * cols < min_area or rows + cols < min_span:  # one side is all the image
                if rows < size[0]:
                    need = max(-(-min_area // cols), min_span - cols)
                    wa, wb = _grow(wa, wb, size[0], need, align)
                else:
                    need = max(-(-min_area // rows), min_span - rows)
                    wc, wd = _grow(wc, wd, size[1], need, align)
            tiles.append(((a, b, c, d), (wa, wb, wc, wd)))
    return tiles


def tiled(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    tile: int,
    halo: int,
    align: int = 1,
    out_scale: int | Fraction = 1,
    *,
    region: tuple[int, int, int, int] | None = None,
    min_area: int = 0,
    min_span: int = 0,
    sink: Sink | None = None,
) -> Tensor | None:
    """``fn(x)`` (or the part of it in ``region``) computed over overlapping tiles of ``x``.

    Args:
        fn: an image-to-image function, (N, C, h, w) -> (N, C', h * s, w * s) with ``s`` =
            ``out_scale``, whose output pixels depend on input pixels within ``halo`` output
            pixels and do not move when the input window starts ``align`` output pixels later.
        x: (N, C, H, W), any dtype (``fn`` gets windows of it as they are: views, so an
            integer image can stay integer and be converted per tile inside ``fn``).
        tile: side of the kept part of each tile in output pixels, rounded up to a multiple of
            ``align`` (a tile as large as the image: one window, the untiled call).
        halo: output pixels added around each tile's kept part on its cut sides (not at the
            image's borders), rounded up to a multiple of ``align``.
        align: output pixels; every window starts on a multiple of it.
        out_scale: ``k`` (an int, output ``k`` times larger: ``align`` must be a multiple of
            ``k``) or ``Fraction(1, k)`` (output ``k`` times smaller: H and W must be multiples
            of ``k``).
        region: (top, bottom, left, right) in output pixels, the part of the output computed
            (default all of it).
        min_area, min_span: windows of fewer output pixels than ``min_area``, or whose
            height + width is less than ``min_span`` (small last tiles), are grown towards the
            image's inside until they reach them or the whole image: extra context changes
            nothing, and PyTorch picks some kernels by size (see :func:`min_window`).
        sink: when given, called as ``sink(core, top, left)`` with each tile's kept part
            (N, C', h, w) and its position in the output, and nothing is returned (the caller
            writes it away, e.g. rounded to 8 bits, so no full-size float output exists).

    Returns (N, C', bottom - top, right - left), or None with a ``sink``. Runs under
    ``torch.inference_mode`` with one tile in memory at a time.
    """
    scale = Fraction(out_scale)
    up, down = scale.numerator, scale.denominator
    if scale <= 0 or (up != 1 and down != 1):
        raise ValueError(f"out_scale {out_scale}: use an integer k or 1/k")
    if align < 1 or tile < 1 or halo < 0:
        raise ValueError(f"tile {tile}, halo {halo}, align {align}: tile and align must be >= 1")
    if align % up:
        raise ValueError(f"align {align} is not a multiple of the upsampling factor {up}")
    h_in, w_in = x.shape[-2:]
    if h_in % down or w_in % down:
        raise ValueError(f"a {h_in}x{w_in} input does not downsample by {down} exactly")
    size = (h_in * up // down, w_in * up // down)
    tiles = plan_tiles(size, tile, halo, align, region, min_area, min_span)
    top, left = tiles[0][0][0], tiles[0][0][2]
    bottom, right = tiles[-1][0][1], tiles[-1][0][3]
    out = None
    with torch.inference_mode():
        for (a, b, c, d), (wa, wb, wc, wd) in tiles:
            win = x[..., wa * down // up : wb * down // up, wc * down // up : wd * down // up]
            y = fn(win)
            if tuple(y.shape[-2:]) != (wb - wa, wd - wc):
                raise ValueError(
                    f"fn maps a {tuple(win.shape[-2:])} window to {tuple(y.shape[-2:])}, "
                    f"not {(wb - wa, wd - wc)} (out_scale {scale})"
                )
            core = y[..., a - wa : b - wa, c - wc : d - wc]
            if sink is not None:
                sink(core, a, c)
                continue
            if out is None:
                shape = (*y.shape[:-2], bottom - top, right - left)
                out = _empty(y, shape)
            out[..., a - top : b - top, c - left : d - left] = core
    return out


class Tiled(nn.Module):
    """A module run tile by tile (see :func:`tiled`), in the kornia style:
    ``Tiled(UNet(3, 3), tile=256)(x)`` equals ``UNet(3, 3)(x)`` for x (N, C, H, W).

    For a :class:`~sandwich.nets.unet.UNet` (or any plain chain of convolutions, e.g. a
    :class:`~sandwich.nets.mlp.PixelMLP`) the halo, the alignment and the smallest window are
    computed from its structure (:func:`unet_reach`, :func:`unet_alignment`,
    :func:`min_window`); other modules, which map (N, C, h, w) to (N, C', h * s, w * s) with
    ``s`` = ``out_scale``, need ``halo`` and ``align``.
    """

    def __init__(
        self,
        net: nn.Module,
        tile: int,
        halo: int | None = None,
        align: int | None = None,
        out_scale: int | Fraction = 1,
    ):
        super().__init__()
        self.net, self.tile, self.out_scale = net, tile, out_scale
        unet = isinstance(net, UNet)
        if halo is None and not unet and any(isinstance(m, nn.Conv2d) for m in net.modules()):
            halo = conv_reach(net)
        if halo is None:
            if not unet:
                raise ValueError(f"give the halo of a {type(net).__name__}")
            halo = unet_reach(net)
        self.halo = halo
        self.align = align if align is not None else unet_alignment(net) if unet else 1
        self.min_area, self.min_span = min_window(net)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> net(x), tile by tile."""
        out = tiled(
            self.net,
            x,
            self.tile,
            self.halo,
            self.align,
            self.out_scale,
            min_area=self.min_area,
            min_span=self.min_span,
        )
        assert out is not None
        return out


# ------------------------------------------------------------------ pre- and post-processors


def _resize(x: Tensor, size: tuple[int, int], antialias: bool) -> Tensor:
    """Bicubic resize as :mod:`sandwich.nets.resample` does it (antialiased when down)."""
    return F.interpolate(x, size=size, mode="bicubic", antialias=antialias, align_corners=False)


class _Collect:
    """A sink that assembles the parts into one (N, C, H, W) tensor, ``out``."""

    def __init__(self, size: tuple[int, int]):
        self.size, self.out = size, None

    def __call__(self, core: Tensor, r: int, c: int) -> None:
        if self.out is None:
            self.out = _empty(core, (*core.shape[:-2], *self.size))
        self.out[..., r : r + core.shape[-2], c : c + core.shape[-1]] = core


def preprocess_tiled(
    pre: PreProcessor,
    x: Tensor,
    tile: int,
    cond: Tensor | None = None,
    prepare: Callable[[Tensor], Tensor] = lambda t: t.float(),
    block: int = 8,
    sink: Sink | None = None,
) -> Tensor | None:
    """``pre(prepare(x), cond)`` computed tile by tile, bitwise equal to the untiled call.

    Args:
        pre: the pre-processor (downsampling by ``k = pre.downscale``).
        x: (N, I, H, W) image in any dtype; ``prepare`` turns a window of it into the float
            0..255 input of ``pre`` (e.g. uint16 / 257), so the whole image is never float.
        tile: side of the tiles in full-resolution pixels (rounded up to the grid).
        cond: (N,) quality feature or None.
        block: the codec's block side in bottleneck pixels (:func:`block_grid`).
        sink: as in :func:`tiled`, called with parts of the (N, C, ceil(H/k), ceil(W/k))
            bottleneck; without it the bottleneck is returned.

    When H and W are multiples of ``k`` (a power of two) each tile runs the whole
    pre-processor and memory is bounded by the tile. Otherwise the downsampling runs as its
    horizontal pass over bands of whole rows (into an (N, C, H, ceil(W/k)) float intermediate)
    and its vertical pass over whole columns, and only the networks are tiled.
    """
    k = pre.downscale
    height, width = x.shape[-2:]
    if k == 1 or (height % k == 0 and width % k == 0 and _windowed_resampling(k)):
        step, align, halo = preprocessor_geometry(pre, block)
        run = lambda t: pre(prepare(t), cond)  # noqa: E731
        area, span = min_window(pre.mlp, pre.unet)  # at full resolution: k times the output
        area, span = -(-area // k**2), -(-span // k)
        return tiled(
            run,
            x,
            _round_up(max(1, tile // k), step),
            halo,
            align,
            Fraction(1, k),
            min_area=area,
            min_span=span,
            sink=sink,
        )
    net = copy.copy(pre)  # the same modules and parameters, without the final downsampling
    net.downscale = 1
    align = _network_alignment(pre.unet, pre.base)  # windows at full resolution
    halo = _round_up(_pre_reach(pre), align)
    tile = _round_up(tile, k * block)  # kept parts on the blocks of the bottleneck
    area, span = min_window(pre.mlp, pre.unet)
    size = (-(-height // k), -(-width // k))
    collect = _Collect(size) if sink is None else None
    with torch.inference_mode():
        inter = None  # (N, C, H, ceil(W/k)): the horizontal pass of the whole image
        run = lambda t: net(prepare(t), cond)  # noqa: E731
        for r0, r1 in _cuts(0, height, tile):
            band = tiled(
                run, x, tile, halo, align, region=(r0, r1, 0, width), min_area=area, min_span=span
            )
            assert band is not None
            band = _resize(band, (r1 - r0, size[1]), antialias=True)
            if inter is None:
                inter = _empty(band, (*band.shape[:2], height, size[1]))
            inter[..., r0:r1, :] = band
        assert inter is not None
        for c0, c1 in _cuts(0, size[1], tile // k):
            part = _resize(inter[..., c0:c1], (size[0], c1 - c0), antialias=True)
            (sink or collect)(part, 0, c0)
    return collect.out if collect is not None else None


def _transform(x: Tensor, t: Transform) -> Tensor:
    """An ensemble member's view: flips, then the transpose (as nets.ensemble)."""
    dims = [d for d, on in ((-2, t[1]), (-1, t[2])) if on]
    x = x.flip(dims) if dims else x
    return x.transpose(-2, -1) if t[0] else x


def _untransform(x: Tensor, t: Transform) -> Tensor:
    x = x.transpose(-2, -1) if t[0] else x
    dims = [d for d, on in ((-2, t[1]), (-1, t[2])) if on]
    return x.flip(dims) if dims else x


def _transform_size(size: tuple[int, int], t: Transform) -> tuple[int, int]:
    return (size[1], size[0]) if t[0] else (size[0], size[1])


def _untransform_rect(
    r: int, c: int, shape: Sequence[int], size: tuple[int, int], t: Transform
) -> tuple[int, int, int, int]:
    """Where a block at (r, c) of an ensemble member's output lands in the output of ``size``
    (H, W): (top, bottom, left, right); ``shape``: the (h, w) of the block untransformed."""
    if t[0]:
        r, c = c, r
    top, bottom, left, right = r, r + shape[0], c, c + shape[1]
    if t[1]:
        top, bottom = size[0] - bottom, size[0] - top
    if t[2]:
        left, right = size[1] - right, size[1] - left
    return top, bottom, left, right


def _members_mean(
    fn: Callable[[Tensor, tuple[int, int]], Tensor], members: Sequence[Transform], k: int
) -> Callable[[Tensor], Tensor]:
    """Window -> mean of ``fn`` over the ensemble ``members``, summed in their order and divided
    as :func:`sandwich.nets.ensemble.self_ensemble` does (so bitwise the same per pixel)."""

    def run(y: Tensor) -> Tensor:
        total = None
        for t in members:
            yt = _transform(y, t)
            out = _untransform(fn(yt, (k * yt.shape[-2], k * yt.shape[-1])), t)
            total = out if total is None else total + out
        assert total is not None
        return total / len(members)

    return run


def postprocess_tiled(
    post: PostProcessor,
    y: Tensor,
    size: tuple[int, int],
    tile: int,
    cond: Tensor | None = None,
    prepare: Callable[[Tensor], Tensor] = lambda t: t.float(),
    block: int = 8,
    members: Sequence[Transform] | None = None,
    sink: Sink | None = None,
) -> Tensor | None:
    """``post(prepare(y), size, cond)`` computed tile by tile, bitwise equal to the untiled call;
    with ``members`` (a self-ensemble's transforms, from
    :func:`sandwich.nets.ensemble.ensemble_members` on the whole image) the mean of the passes,
    bitwise equal to :func:`sandwich.nets.ensemble.self_ensemble`.

    Args:
        post: the post-processor.
        y: (N, C, h, w) decoded bottleneck in any dtype (``prepare`` makes windows float).
        size: (H, W) of the output, full-resolution pixels.
        tile: side of the tiles in output pixels (rounded up to the grid).
        cond: (N,) quality feature or None.
        block: the codec's block side in bottleneck pixels (:func:`block_grid`).
        members: (transpose, flip rows, flip columns) of each ensemble pass; None: one pass.
        sink: as in :func:`tiled`, called with parts of the (N, O, H, W) output; without it
            the output is returned.

    When (H, W) = (k*h, k*w) for ``k`` 1 or a power of two the ensemble runs inside each tile
    and memory is bounded by the tile. Otherwise (sides not multiples of ``k``) the upsampling
    runs as whole-row and whole-column passes (an (N, C, h, W) float intermediate) and an
    ensemble of several passes adds one (N, O, H, W) float sum.
    """
    h, w = y.shape[-2:]
    k = max(1, round(size[0] / h))
    members = list(members) if members else [(False, False, False)]
    if tuple(size) == (k * h, k * w) and _windowed_resampling(k):
        step, align, halo = postprocessor_geometry(post, k, block)
        run = _members_mean(lambda t, s: post(prepare(t), s, cond), members, k)
        area, span = min_window(post.mlp, post.unet)
        tile = _round_up(tile, step)
        return tiled(run, y, tile, halo, align, k, min_area=area, min_span=span, sink=sink)
    collect = _Collect(size) if sink is None else None
    if len(members) == 1 and not any(members[0]):
        _post_stretched(post, y, size, tile, cond, prepare, block, sink or collect)
        return collect.out if collect is not None else None
    total = _Collect(size)  # the sum over the members, in their order
    for i, t in enumerate(members):

        def add(core: Tensor, r: int, c: int, t: Transform = t, first: bool = i == 0) -> None:
            core = _untransform(core, t)
            top, bottom, left, right = _untransform_rect(r, c, core.shape[-2:], size, t)
            if first:
                total(core, top, left)
            else:
                assert total.out is not None
                total.out[..., top:bottom, left:right] += core

        t_size = _transform_size(size, t)
        _post_stretched(post, _transform(y, t), t_size, tile, cond, prepare, block, add)
    assert total.out is not None
    mean = total.out / len(members)
    (sink or collect)(mean, 0, 0)
    return collect.out if collect is not None else None


def _post_stretched(
    post: PostProcessor,
    y: Tensor,
    size: tuple[int, int],
    tile: int,
    cond: Tensor | None,
    prepare: Callable[[Tensor], Tensor],
    block: int,
    sink: Sink,
) -> None:
    """``post(prepare(y), size, cond)`` for any ``size``, into ``sink``: the bicubic upsampling
    as its horizontal pass over whole rows (an (N, C, h, W) float intermediate), then its
    vertical pass over whole columns, one strip of columns (plus halo) at a time, the networks
    tiled within each strip."""
    h, w = y.shape[-2:]
    height, width = size
    k = max(1, -(-height // h), -(-width // w))
    align = _network_alignment(post.unet, post.base)
    halo = _round_up(_post_reach(post), align)
    tile = _round_up(tile, k * block)  # kept parts on the blocks of the bottleneck
    area, span = min_window(post.mlp, post.unet)
    net = lambda t: post(t, (t.shape[-2], t.shape[-1]), cond)  # noqa: E731 (no upsampling)
    with torch.inference_mode():
        inter = None
        for a, b in _cuts(0, h, max(1, tile // k)):
            part = _resize(prepare(y[..., a:b, :]), (b - a, width), antialias=False)
            if inter is None:
                inter = _empty(part, (*part.shape[:2], h, width))
            inter[..., a:b, :] = part
        assert inter is not None
        # strips as wide as the tiles inside them must be (see min_window), plus the halo
        side = max(math.isqrt(area - 1) + 1, -(-span // 2), -(-area // height), span - height)
        for c0, c1 in _cuts(0, width, tile):
            wa, wb = _grow(max(0, c0 - halo), min(width, c1 + halo), width, side, align)
            u = _resize(inter[..., wa:wb], (height, wb - wa), antialias=False)

            def put(core: Tensor, r: int, c: int, wa: int = wa) -> None:
                sink(core, r, c + wa)

            region = (0, height, c0 - wa, c1 - wa)
            tiled(net, u, tile, halo, align, region=region, min_area=area, min_span=span, sink=put)


def array_view(image: np.ndarray) -> Tensor:
    """(H, W, C) array -> (1, C, H, W) tensor sharing its memory, for :func:`tiled` to take
    windows of (each converted on its own). Read only: a read-only array is accepted (without
    PyTorch's warning) as nothing writes to it; arrays with negative strides are copied."""
    if any(s < 0 for s in image.strides):
        image = np.ascontiguousarray(image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        t = torch.from_numpy(image)
    return t.permute(2, 0, 1)[None]
