"""The sandwich model: analytic start, proxy forward and backward, real compress/decompress, zoo."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.codecs.jpeg import JpegCodec
from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import JpegBaseline, LowresBaseline, ModelPipeline
from sandwich.evaluation.metrics import psnr
from sandwich.formats.jpeg_marker import MarkerInfo, make_segment, read_marker
from sandwich.media.files import to_8bit
from sandwich.models.progressive import ProgressiveCodec
from sandwich.models.sandwich import SandwichModel
from sandwich.nets.modem import ChromaDemodulator, ChromaModulator
from sandwich.nets.resample import downsample, upsample
from sandwich.scenarios import SCENARIOS, get_scenario
from sandwich.zoo import ZOO, available, get_entry, load_model

SCENARIO_NAMES = ("rgb", "gray", "lowres2", "lowres4")
TRAINED = [n for n, e in ZOO.items() if e.weights is not None and e.kind == "sandwich"]


def _model(scenario: str) -> SandwichModel:
    torch.manual_seed(0)
    return SandwichModel(scenario, pre_widths=(8,), post_widths=(8, 16)).eval()


def _saved_perturbed_model(scenario: str, path) -> SandwichModel:
    """:func:`_model` with every weight moved off its init (so no layer is trivially zero),
    saved to ``path`` (safetensors + sidecar)."""
    from sandwich.zoo.weights import save_weights

    m = _model(scenario)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_weights(m, path, {"note": "test"})
    return m


def _strip_marker(data: bytes) -> bytes:
    info = read_marker(data)
    assert info is not None
    seg = make_segment(info)
    assert data.count(seg) == 1
    return data.replace(seg, b"", 1)


def test_scenarios_registry() -> None:
    assert set(SCENARIO_NAMES) <= set(SCENARIOS)
    assert get_scenario("gray").bottleneck_channels == 1
    assert get_scenario("lowres4").downscale == 4
    with pytest.raises(SandwichError, match="unknown scenario"):
        get_scenario("cmyk")


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_untrained_processors_are_the_analytic_base(scenario: str) -> None:
    m = _model(scenario)
    s = m.scenario
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 37, 53, generator=g) * 255
    h, w = -(-37 // s.downscale), -(-53 // s.downscale)
    y = torch.rand(2, s.bottleneck_channels, h, w, generator=g) * 255
    with torch.no_grad():
        pre, post = m.pre(x), m.post(y, (37, 53))
        if s.base == "identity":
            assert torch.equal(pre, x)
            assert torch.equal(post, y)
        elif s.base == "resample":
            assert torch.equal(pre, downsample(x, s.downscale))
            assert torch.equal(post, upsample(y, (37, 53)))
        else:
            assert torch.equal(pre, ChromaModulator()(x))
            assert torch.equal(post, ChromaDemodulator()(y))
    assert pre.shape == (2, s.bottleneck_channels, h, w)
    assert post.shape == (2, 3, 37, 53)


def test_untrained_rgb_is_plain_420_jpeg(sample_full: np.ndarray) -> None:
    img = sample_full[20:65, 30:97].copy()  # 45x67
    m = _model("rgb")
    assert np.array_equal(m.bottleneck_image(img), img)
    for q in (20, 75):
        data = m.compress(img, q)
        plain, plain_rec = JpegBaseline("4:2:0").roundtrip(img, q)
        assert _strip_marker(data) == plain  # the same bytes plus the marker
        assert np.array_equal(m.decompress(data), plain_rec)


@pytest.mark.parametrize("factor", [2, 4])
def test_untrained_lowres_is_the_bicubic_baseline(sample_full: np.ndarray, factor: int) -> None:
    # Both run the very same float operations (antialiased bicubic down, 8-bit rounding, JPEG,
    # bicubic up, rounding) and the learned residuals are exactly zero, so the results are
    # identical: the tolerance is zero gray levels, not one.
    img = sample_full[20:65, 30:97].copy()
    m = _model(f"lowres{factor}")
    data = m.compress(img, 60)
    plain, plain_rec = LowresBaseline(factor).roundtrip(img, 60)
    assert _strip_marker(data) == plain
    rec = m.decompress(data)
    assert rec.shape == img.shape
    assert int(np.abs(rec.astype(int) - plain_rec.astype(int)).max()) == 0


def test_untrained_gray_is_the_modem(sample_full: np.ndarray) -> None:
    img = sample_full[100:148, 60:124].copy()
    m = _model("gray")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        composite = ChromaModulator()(x).round().clamp(0, 255).to(torch.uint8)[0, 0].numpy()
    bott = m.bottleneck_image(img)
    assert bott.shape == img.shape[:2] and bott.dtype == np.uint8
    assert np.array_equal(bott, composite)
    data = m.compress(img, 70)
    dec = JpegCodec("gray").decode(data)
    with torch.no_grad():
        expected = ChromaDemodulator()(torch.from_numpy(dec.copy())[None, None].float())
    expected = expected.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(m.decompress(data), expected)


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_forward_proxy_and_backward_odd_size(scenario: str) -> None:
    m = _model(scenario)
    m.train()
    s = m.scenario
    torch.manual_seed(2)
    x = torch.rand(2, 3, 37, 53) * 255
    out = m(x, torch.tensor([30.0, 80.0]))
    h, w = -(-37 // s.downscale), -(-53 // s.downscale)
    assert out.x_hat.shape == (2, 3, 37, 53)
    assert out.bottleneck.shape == (2, s.bottleneck_channels, h, w)
    assert out.decoded.shape == out.bottleneck.shape
    assert out.bits.shape == (2,) and out.bpp.shape == (2,)
    assert torch.all(out.bpp > 0)
    assert torch.allclose(out.bpp, out.bits / (37 * 53))
    loss = ((out.x_hat - x) ** 2).mean() + out.bpp.mean()
    loss.backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    for part in ("pre", "post"):
        assert any(
            g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(part)
        ), part


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_proxy_forward_agrees_with_real_codec(sample_full: np.ndarray, scenario: str) -> None:
    m = _model(scenario)
    img = sample_full[50:87, 120:173].copy()  # 37x53
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        proxy = m(x, 50)
        real = m(x, 50, real=True)
    assert abs(float(proxy.bits[0]) / float(real.bits[0]) - 1) <= 0.03
    assert real.x_hat.min() >= 0 and real.x_hat.max() <= 255
    p_proxy = psnr(img, proxy.x_hat.clamp(0, 255)[0].permute(1, 2, 0).numpy())
    p_real = psnr(img, real.x_hat[0].permute(1, 2, 0).numpy())
    assert abs(p_proxy - p_real) <= 0.1


def test_real_values_forward_real_codec_backward_proxy(sample_full: np.ndarray) -> None:
    """--real-codec training: the decoded values and bits are the real codec's, the gradients
    the proxy's."""
    m = _model("rgb")
    m.train()
    x = torch.from_numpy(sample_full[:48, :64].copy()).permute(2, 0, 1)[None].float()
    q = torch.tensor([90.0])
    with torch.no_grad():
        real = m(x, q, real=True)
    mixed = m(x, q, real_values=True)
    assert torch.equal(mixed.decoded, real.decoded)
    assert torch.equal(mixed.bits, real.bits)
    mixed.x_hat.sum().backward()
    mixed_grads = [p.grad.clone() for p in m.pre.parameters() if p.grad is not None]
    m.zero_grad()
    m(x, q).x_hat.sum().backward()
    proxy_grads = [p.grad for p in m.pre.parameters() if p.grad is not None]
    # untrained, the post-processor is linear in its input, so what reaches the pre-processor
    # through the codec is the proxy's backward at the same bottleneck, exactly
    assert mixed_grads and len(mixed_grads) == len(proxy_grads)
    assert any(g.abs().sum() > 0 for g in mixed_grads)
    assert all(torch.allclose(a, b) for a, b in zip(mixed_grads, proxy_grads, strict=True))


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_compress_decompress_keeps_odd_sizes(sample_full: np.ndarray, scenario: str) -> None:
    img = sample_full[7:52, 11:78].copy()  # 45x67
    m = _model(scenario)
    m.name, m.version = f"test-{scenario}", 3
    data = m.compress(img, 50)
    assert read_marker(data) == MarkerInfo(f"test-{scenario}", 3, 45, 67)
    rec = m.decompress(data)
    assert rec.shape == (45, 67, 3) and rec.dtype == np.uint8
    assert psnr(img, rec) > 15.0
    # without the marker the size is the bottleneck's times the downscale factor
    k = m.scenario.downscale
    plain = _strip_marker(data)
    assert m.decompress(plain).shape == (-(-45 // k) * k, -(-67 // k) * k, 3)


def test_decompress_refuses_wrong_channel_count(sample_rgb: np.ndarray) -> None:
    color = JpegCodec("4:2:0").encode(sample_rgb, 50)
    with pytest.raises(SandwichError, match="channel"):
        _model("gray").decompress(color)
    gray = JpegCodec("gray").encode(sample_rgb[:, :, 0].copy(), 50)
    with pytest.raises(SandwichError, match="channel"):
        _model("lowres2").decompress(gray)


def test_decompress_truncated_is_a_sandwich_error(sample_rgb: np.ndarray) -> None:
    m = _model("gray")
    data = m.compress(sample_rgb, 50)
    for cut in (len(data) // 2, 20):
        with pytest.raises(SandwichError):
            m.decompress(data[:cut])


def test_model_refuses_non_rgb_arrays(sample_rgb: np.ndarray) -> None:
    m = _model("rgb")
    with pytest.raises(SandwichError, match="RGB"):
        m.compress(sample_rgb[:, :, 0].copy(), 50)
    with pytest.raises(SandwichError, match="RGB"):
        m.compress(sample_rgb.astype(np.float32), 50)


def test_weights_round_trip(tmp_path, sample_rgb: np.ndarray) -> None:
    from sandwich.zoo.weights import load_weights

    path = tmp_path / "w.safetensors"
    m = _saved_perturbed_model("lowres2", path)
    assert path.with_suffix(".json").is_file()
    loaded = load_weights(path, name="mine", version=4)
    assert loaded.config() == m.config()
    a, b = m.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(
        loaded.decompress(m.compress(sample_rgb, 40)), m.decompress(m.compress(sample_rgb, 40))
    )
    with pytest.raises(SandwichError, match="missing"):
        load_weights(tmp_path / "nothing.safetensors")


def test_gray_modem_beats_grayscale_jpeg(sample_full: np.ndarray) -> None:
    model = load_model("gray-modem")
    assert model.name == "gray-modem" and not model.training
    data = model.compress(sample_full, 50)
    assert read_marker(data).model == "gray-modem"
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L"
    rec = model.decompress(data)
    _, gray = JpegBaseline("gray").roundtrip(sample_full, 50)
    assert psnr(sample_full, rec) >= psnr(sample_full, gray) + 3.0
    # it also runs as an evaluation pipeline
    data2, rec2 = ModelPipeline(model, "gray-modem").roundtrip(sample_full, 50)
    assert data2 == data and np.array_equal(rec2, rec)


def test_zoo_entries() -> None:
    with pytest.raises(SandwichError, match="unknown model"):
        get_entry("no-such-model")
    with pytest.raises(SandwichError, match="unknown model"):
        load_model("no-such-model")
    for entry in ZOO.values():
        net = load_model(entry.name)
        if isinstance(net, ProgressiveCodec):
            assert net.describe().startswith("learned")
            continue
        assert entry.scenario in SCENARIOS
        if net.media == "clip":
            assert net.describe().startswith(("HEVC", "H.264"))
            continue
        assert net.describe().startswith("JPEG")
    assert available(get_entry("gray-modem"))


@pytest.mark.parametrize("name", TRAINED)
def test_missing_weights_are_a_clear_error(name: str, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("sandwich.zoo.weights_dir", lambda: tmp_path)
    assert not available(get_entry(name))
    with pytest.raises(SandwichError, match="no weights"):
        load_model(name)


@pytest.mark.parametrize("name", TRAINED)
def test_trained_zoo_model(sample_full: np.ndarray, name: str) -> None:
    entry = get_entry(name)
    if not available(entry):
        pytest.skip(f"{name} weights are not installed")
    model = load_model(name)
    assert model.name == name and model.version == entry.version
    assert model.scenario.name == entry.scenario
    img = sample_full[:45, :67].copy()
    n = model.scenario.channels
    if n != 3:  # multichannel (material6): the photo as albedo plus its derived normal map
        from sandwich.data.material import material

        img = material(img)
    data = model.compress(img, 50)
    info = read_marker(data)
    assert info == MarkerInfo(name, entry.version, 45, 67)
    rec = model.decompress(data)
    assert rec.shape == (45, 67, n) and rec.dtype == model.sample_dtype  # uint16 for hdr16
    mse = np.mean((img.astype(float) - to_8bit(rec).astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 20.0


def test_quality_feature_read_back_from_the_file(sample_rgb):
    """A conditioned decoder sees the same quality feature the encoder used."""
    from sandwich.codecs.jpeg import JpegCodec
    from sandwich.models.sandwich import quality_feature, quality_to_feature

    for q in (5, 37, 50, 91):
        data = JpegCodec("4:2:0").encode(sample_rgb, q)
        from_file = quality_feature(torch.tensor([JpegCodec.luma_qtable(data).mean()]))
        assert torch.allclose(from_file, quality_to_feature(q, 1))


def test_quality_conditioned_model_round_trip(sample_rgb):
    torch.manual_seed(0)
    model = SandwichModel("lowres2", (8,), (8,), quality_input=True).eval()
    # make the conditioning matter: a non-zero head that reads the quality channel
    with torch.no_grad():
        model.post.unet.head.weight.normal_(0, 0.05)
    outs = [model.decompress(model.compress(sample_rgb, q)) for q in (20, 80)]
    assert all(o.shape == sample_rgb.shape for o in outs)
    x = torch.from_numpy(sample_rgb.copy()).permute(2, 0, 1)[None].float()
    res = model(x, torch.tensor([30.0]))
    assert res.x_hat.shape == x.shape


@pytest.mark.parametrize("name", TRAINED)
def test_sidecar_commands_parse_today(name: str) -> None:
    """Every recorded ``reproduce`` command is valid for today's CLI (defaults may change, so a
    sidecar must spell out what its run relied on)."""
    import json
    import shlex

    import typer
    import typer.main

    from sandwich.commands import register_all
    from sandwich.zoo import weights_dir

    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    register_all(app, bench)

    side = json.loads((weights_dir() / get_entry(name).weights).with_suffix(".json").read_text())
    commands = side.get("reproduce", side["command"])
    commands = [commands] if isinstance(commands, str) else commands
    group = typer.main.get_command(app)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "sandwich"
        sub = group.get_command(None, argv[1])
        assert sub is not None, command
        ctx = sub.make_context(argv[1], argv[2:])
        if argv[1] == "train":
            assert ctx.params["loss"], f"{name}: {command} relies on the default loss"


def test_widened_unet_is_the_same_function() -> None:
    """load_widened: a wider U-Net (same levels) starts as exactly the narrower one, and its new
    channels get gradients; a narrower or deeper target is refused."""
    from sandwich.nets.unet import UNet, load_widened

    torch.manual_seed(0)
    narrow = UNet(5, 3, (8, 16, 24), "leaky")
    with torch.no_grad():
        for p in narrow.parameters():
            p.normal_(0.0, 0.2)
    wide = UNet(5, 3, (12, 16, 40), "leaky")
    load_widened(wide, narrow.state_dict())
    x = torch.randn(2, 5, 19, 23)
    assert torch.allclose(wide(x), narrow(x), atol=1e-5)
    wide(x).square().mean().backward()
    # weights from the new channels into the old ones start at zero but learn
    assert wide.down[0][2].weight[:8, 8:].abs().max() == 0
    assert wide.down[0][2].weight.grad[:8, 8:].abs().max() > 0
    assert wide.head.weight.grad[:, 8:].abs().max() > 0
    for target in (UNet(5, 3, (4, 16, 24)), UNet(5, 3, (8, 16, 24, 32))):
        with pytest.raises(ValueError):
            load_widened(target, narrow.state_dict())


def test_init_from_narrower_model(tmp_path, sample_rgb: np.ndarray) -> None:
    """train --init with wider U-Nets: the run starts as exactly the source model."""
    from sandwich.training.trainer import TrainConfig, build_model, init_from

    path = tmp_path / "w.safetensors"
    m = _saved_perturbed_model("lowres2", path)
    common = dict(scenario="lowres2", data="-", out="-", activation="relu", pre_widths=[8])
    wide = build_model(TrainConfig(post_widths=[12, 20], **common))
    init_from(wide, str(path))
    x = torch.from_numpy(sample_rgb).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        a, b = m(x, quality=40.0), wide(x, quality=40.0)
    assert torch.allclose(a.x_hat, b.x_hat, atol=1e-3)
    with pytest.raises(SandwichError, match="do not match"):
        init_from(build_model(TrainConfig(post_widths=[4, 16], **common)), str(path))


def test_init_from_with_fresh_post(tmp_path, sample_rgb: np.ndarray) -> None:
    """--fresh-post: everything but the post U-Net comes from --init, which may change shape;
    the run starts as the source model without its post U-Net."""
    from sandwich.training.trainer import TrainConfig, build_model, init_from

    path = tmp_path / "w.safetensors"
    src = _saved_perturbed_model("lowres2", path)
    common = dict(scenario="lowres2", data="-", out="-", activation="relu", pre_widths=[8])
    new = build_model(TrainConfig(post_widths=[4, 8, 16], **common))  # narrower, 3 levels
    init_from(new, str(path), fresh_post=True)
    for k, v in src.state_dict().items():
        if not k.startswith("post.unet."):
            assert torch.equal(new.state_dict()[k], v), k
    with torch.no_grad():
        src.post.unet.head.weight.zero_()
        src.post.unet.head.bias.zero_()
    x = torch.from_numpy(sample_rgb).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        a, b = src.eval()(x, quality=40.0), new.eval()(x, quality=40.0)
    assert torch.allclose(a.x_hat, b.x_hat, atol=1e-3)
    with pytest.raises(SandwichError, match="do not match"):  # without it: a shape mismatch
        init_from(build_model(TrainConfig(post_widths=[4, 8, 16], **common)), str(path))
