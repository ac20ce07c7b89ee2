"""Tiled inference (nets.tiling): the tiled pre- and post-processors give the untiled output.

Every zoo sandwich, on an image of awkward size cut into several small tiles: the bottleneck
bytes, the JPEG file and the decoded image are identical, and the post-processor's float output
is identical too (checked to 1e-6 on the 0..255 scale), also with the decoding self-ensemble.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smooth_image

from sandwich.media.planes import unstack
from sandwich.nets import tiling
from sandwich.nets.ensemble import ensemble_members, self_ensemble
from sandwich.nets.mlp import PixelMLP
from sandwich.nets.modem import ChromaDemodulator, ChromaModulator
from sandwich.nets.unet import UNet
from sandwich.zoo import ZOO, load_model

SANDWICHES = [name for name, e in ZOO.items() if e.kind == "sandwich"]
SIZE = (150, 230)  # not a multiple of 4, 8 or 16 either way: several partial tiles
TILE = 64
QUALITY = 60


def _image(model, size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """A natural-looking test image in the model's input format (uint16 for 16-bit models,
    6 channels for material6)."""
    s = model.scenario
    img = smooth_image(*size, seed=seed)
    if s.channels != 3:
        extra = smooth_image(*size, seed=seed + 1)
        img = np.concatenate([img, extra], axis=2)[:, :, : s.channels]
    if s.bit_depth > 8:
        rng = np.random.default_rng(seed)
        low = rng.integers(0, 257, img.shape)
        img = np.minimum(img.astype(np.int64) * 257 + low, s.peak).astype(np.uint16)
    return img


def _count_calls(module: torch.nn.Module) -> list[int]:
    """Counts the forward calls of ``module`` (one per tile for a processor's U-Net)."""
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _decoded(model, data: bytes) -> tuple[torch.Tensor, float | None]:
    """The file's decoded bottleneck as (1, P*C, h, w) uint8 and its quality input."""
    dec = model.real.decode(data)
    dec = dec[:, :, None] if dec.ndim == 2 else dec
    y = unstack(torch.from_numpy(dec.copy()).permute(2, 0, 1)[None], model.scenario.planes)
    return y, (model.real.condition_from_file(data) if model.quality_input else None)


def _post_floats(model, data: bytes, size: tuple[int, int], members: int = 1):
    """The post-processor's float output for a file, (1, O, H, W) 0..255 before rounding:
    untiled (as ``decompress`` computes it) and tiled into ``TILE`` tiles."""
    s = model.scenario
    y, step = _decoded(model, data)
    cond = model.real.condition_value(step) if model.quality_input else None
    kept = ensemble_members(tuple(y.shape[-2:]), size, members, s.transposable)
    with torch.inference_mode():
        if members == 1:
            ref = model.post(y.float(), size, cond)
        else:
            post = lambda t, z: model.post(t, z, cond)  # noqa: E731
            ref = self_ensemble(post, y.float(), size, members, s.transposable)
        got = tiling.postprocess_tiled(
            model.post,
            y,
            size,
            TILE,
            cond,
            block=tiling.block_grid(s.subsampling),
            members=kept if members > 1 else None,
        )
    assert got is not None and got.shape == ref.shape
    return ref, got


@pytest.mark.parametrize("name", SANDWICHES)
def test_tiled_equals_untiled(name: str) -> None:
    """Bottleneck bytes and decoded image identical; the post-processor's floats within 1e-6
    (they are in fact bitwise equal); several tiles really ran."""
    model = load_model(name)
    img = _image(model)
    pre_calls, post_calls = _count_calls(model.pre.unet), _count_calls(model.post.unet)

    model.tile = 0
    ref_b = model.bottleneck_image(img, QUALITY)
    assert pre_calls[0] == 1 and post_calls[0] == 0
    model.tile = TILE
    b = model.bottleneck_image(img, QUALITY)
    assert pre_calls[0] > 4, "the tiled pre-processor ran as one tile"
    assert b.dtype == ref_b.dtype == np.uint8 and np.array_equal(b, ref_b)

    data = model.compress(img, QUALITY)
    calls = post_calls[0]
    out = model.decompress(data)
    assert post_calls[0] - calls > 2, "the tiled post-processor ran as one tile"
    model.tile = 0
    assert model.compress(img, QUALITY) == data
    ref_out = model.decompress(data)
    assert out.dtype == ref_out.dtype == model.sample_dtype
    assert np.array_equal(out, ref_out)
    ref, got = _post_floats(model, data, SIZE)
    assert (got - ref).abs().max().item() <= 1e-6
    assert np.array_equal(model._from_output(ref), ref_out)


@pytest.mark.parametrize(
    ("name", "size", "passes"),
    [
        ("rgb-jpeg", (96, 128), 8),  # whole macroblocks: flips and transposes
        ("gray-jpeg", (96, 128), 4),  # the modem: flips only
        ("lowres4-jpeg", (90, 130), 2),  # sides not multiples of 4: identity and transpose
    ],
)
def test_tiled_self_ensemble(name: str, size: tuple[int, int], passes: int) -> None:
    """The decoding self-ensemble, tiled (inside each tile, or over whole-column strips for
    the stretched resampling), is the untiled one: floats within 1e-6, 8-bit identical."""
    model = load_model(name)
    model.ensemble = 8
    data = model.compress(_image(model, size, seed=3), QUALITY)
    ref, got = _post_floats(model, data, size, members=8)
    y, _ = _decoded(model, data)
    assert (
        len(ensemble_members(tuple(y.shape[-2:]), size, 8, model.scenario.transposable)) == passes
    )
    assert (got - ref).abs().max().item() <= 1e-6
    model.tile = TILE
    assert np.array_equal(model.decompress(data), model._from_output(ref))


def test_lowres2_odd_sides() -> None:
    """Odd sides with a 2x downscale: the separable resampling path, still identical."""
    model = load_model("lowres2-jpeg")
    img = _image(model, (97, 181), seed=5)
    model.tile = 0
    ref_b = model.bottleneck_image(img, QUALITY)
    model.tile = 48
    assert np.array_equal(model.bottleneck_image(img, QUALITY), ref_b)
    data = model.compress(img, QUALITY)
    ref, got = _post_floats(model, data, (97, 181))
    assert (got - ref).abs().max().item() <= 1e-6
    assert np.array_equal(model.decompress(data), model._from_output(ref))


def test_tile_sizes_rounded_and_whole_image() -> None:
    """A tile that is not a multiple of the grid is rounded up; a tile larger than the image
    is one window, the untiled call; both give the untiled bytes."""
    plan = tiling.plan_tiles((150, 230), tile=50, halo=5, align=16)
    cores = sorted({(a, b) for (a, b, _, _), _ in plan})
    assert cores == [(0, 64), (64, 128), (128, 150)]
    for (a, b, _, d), (wa, wb, wc, wd) in plan:
        assert wa % 16 == 0 and wc % 16 == 0  # windows start on the grid
        assert wa == 0 or a - wa >= 16  # a halo of 16 (5 rounded up) on cut sides
        assert wb == 150 or wb - b >= 16
        assert wd == 230 or wd - d >= 16
    grown = tiling.plan_tiles((150, 230), tile=64, halo=16, align=16, min_area=90 * 90)
    assert all((wb - wa) * (wd - wc) >= 90 * 90 for _, (wa, wb, wc, wd) in grown)
    assert tiling.plan_tiles((150, 230), tile=4096, halo=16) == [((0, 150, 0, 230),) * 2]

    model = load_model("gray-jpeg")
    img = _image(model, (120, 136))
    model.tile = 0
    ref_b = model.bottleneck_image(img, QUALITY)
    calls = _count_calls(model.pre.unet)
    for tile, windows in ((50, 9), (4096, 1)):  # 50 -> 56 (grid 8): 3 x 3 tiles
        model.tile, calls[0] = tile, 0
        assert np.array_equal(model.bottleneck_image(img, QUALITY), ref_b)
        assert calls[0] == windows


def test_automatic_tile() -> None:
    """None: off up to 1024x1024 pixels, 256 above; 0 is off; a negative tile is an error."""
    assert load_model("gray-modem").tile is None
    assert tiling.resolve_tile(None, (1024, 1024)) == 0
    assert tiling.resolve_tile(None, (1024, 1025)) == tiling.AUTO_TILE == 256
    assert tiling.resolve_tile(0, (8192, 8192)) == 0
    assert tiling.resolve_tile(100, (10, 10)) == 100
    with pytest.raises(ValueError, match="tile of -1"):
        tiling.resolve_tile(-1, (10, 10))


def _reach_measured(fn, channels: int, size: int = 64) -> int:
    """How far (in pixels, Chebyshev) an output moves when one input pixel changes."""
    torch.manual_seed(0)
    x = torch.rand(1, channels, size, size) * 255
    x2 = x.clone()
    x2[..., size // 2, size // 2] += 100.0
    with torch.inference_mode():
        moved = (fn(x2) - fn(x)).abs().amax(dim=(0, 1)) > 0
    rows, cols = moved.nonzero(as_tuple=True)
    return int(max((rows - size // 2).abs().max(), (cols - size // 2).abs().max()))


def test_receptive_fields_from_structure() -> None:
    """The reach computed from the networks' structure bounds the measured one, tightly."""
    torch.manual_seed(0)
    for widths in [(8,), (8, 16), (8, 16, 32)]:
        unet = UNet(3, 3, widths)
        computed, measured = tiling.unet_reach(unet), _reach_measured(unet, 3)
        assert measured <= computed <= measured + 2 ** (len(widths) - 1), (widths, measured)
    assert tiling.unet_reach(UNet(3, 3, (32, 64))) == 11
    assert tiling.unet_alignment(UNet(3, 3, (32, 64, 128))) == 4
    assert tiling.conv_reach(PixelMLP(3, 3)) == 0
    assert _reach_measured(ChromaModulator(), 3) == 8
    assert _reach_measured(ChromaDemodulator(), 1) == 8
    assert tiling.carrier_period() == 4
    assert tiling.resample_reach(1) == 0 and tiling.resample_reach(4) == 9
    model = load_model("gray-jpeg")
    # (step, align, halo). gray: 4:0:0 JPEG blocks of 8, carriers of period 4; pre reach
    # max(8, 11) = 11, post 8 + 11 = 19, rounded up to 4
    assert tiling.preprocessor_geometry(model.pre, 8) == (8, 4, 12)
    assert tiling.postprocessor_geometry(model.post, 1, 8) == (8, 4, 20)
    low = load_model("lowres4-jpeg")  # 4:2:0: 16-pixel MCUs of the quarter-size bottleneck
    # pre: (11 + 9) / 4 = 5 bottleneck pixels; post: 11 + 9 = 20 full-resolution pixels
    assert tiling.preprocessor_geometry(low.pre, 16) == (16, 1, 5)
    assert tiling.postprocessor_geometry(low.post, 4, 16) == (64, 4, 20)


def test_tiled_module_and_errors() -> None:
    """The module wrapper computes its halo and grid from a U-Net; bad geometry is refused."""
    torch.manual_seed(1)
    unet = UNet(3, 2, (8, 16)).eval()
    x = torch.rand(2, 3, 150, 230)
    with torch.inference_mode():
        ref = unet(x)
    tiled = tiling.Tiled(unet, tile=32)
    assert (tiled.halo, tiled.align) == (11, 2)
    out = tiled(x)
    assert out.shape == ref.shape and (out - ref).abs().max().item() <= 1e-6
    region = tiling.tiled(unet, x, 32, 11, 2, region=(10, 50, 20, 90), min_area=10241)
    assert region is not None and torch.equal(region, out[..., 10:50, 20:90])
    with pytest.raises(ValueError, match="out_scale"):
        tiling.tiled(unet, x, 32, 11, 2, out_scale=1.5)
    with pytest.raises(ValueError, match="does not downsample by 4"):
        tiling.tiled(unet, x, 32, 11, 2, out_scale=0.25)
    with pytest.raises(ValueError, match="not a multiple of the upsampling"):
        tiling.tiled(unet, x, 32, 11, 3, out_scale=2)
    with pytest.raises(ValueError, match="not inside"):
        tiling.plan_tiles((150, 230), 32, 11, region=(0, 151, 0, 10))
    with pytest.raises(ValueError, match="maps a"):
        tiling.tiled(lambda t: t[..., :-1, :], x, 64, 0)
