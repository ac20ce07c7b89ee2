"""WebP, AVIF, JPEG XL, HEIC and 12-bit JPEG behind the codec interface, and their baselines."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.codecs import (
    CODECS,
    AvifCodec,
    HeicCodec,
    Jpeg12Codec,
    JpegCodec,
    JxlCodec,
    WebpCodec,
    get_codec,
)
from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import BASELINES, CodecBaseline, JpegBaseline

# name -> (factory, three increasing qualities in the codec's own scale)
COLOUR = {
    "webp": (lambda: WebpCodec(), (10, 50, 90)),
    "avif-420": (lambda: AvifCodec("4:2:0"), (10, 50, 90)),
    "avif-444": (lambda: AvifCodec("4:4:4"), (10, 50, 90)),
    "jxl": (lambda: JxlCodec(), (20, 60, 95)),
    "heic-420": (lambda: HeicCodec("4:2:0"), (10, 40, 70)),
    "heic-444": (lambda: HeicCodec("4:4:4"), (10, 40, 70)),
}
GRAY = {
    "avif": lambda: AvifCodec("gray"),
    "jxl": lambda: JxlCodec(gray=True),
    "heic": lambda: HeicCodec("gray"),
}
# what Pillow reports when it opens each codec's file
PIL_FORMAT = {WebpCodec: "WEBP", AvifCodec: "AVIF", JxlCodec: "JXL", HeicCodec: "HEIF"}


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def luma(img: np.ndarray) -> np.ndarray:
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def high_bit(img: np.ndarray, peak: int) -> np.ndarray:
    """A smooth high-bit-depth version of an 8-bit image: 3x3 box blur kept at full precision,
    so the samples use the bits below the 8-bit step."""
    f = img.astype(np.float64)
    pad = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = f.shape[:2]
    blur = sum(pad[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    return np.round(blur * (peak / 255.0)).astype(np.uint16)


@pytest.fixture(params=list(COLOUR))
def colour(request):
    factory, qualities = COLOUR[request.param]
    return factory(), qualities


def test_colour_roundtrip_psnr_rises_and_bits(colour, sample_rgb):
    codec, qualities = colour
    scores, sizes = [], []
    for q in qualities:
        data = codec.encode(sample_rgb, q)
        dec = codec.decode(data)
        assert isinstance(data, bytes)
        assert dec.shape == sample_rgb.shape and dec.dtype == np.uint8
        scores.append(psnr(sample_rgb, dec))
        sizes.append(len(data))
    assert scores[0] < scores[1] < scores[2], scores
    assert sizes[0] < sizes[1] < sizes[2], sizes
    assert scores[2] > 30
    # the batched forward counts the real file's bits and returns the decoded pixels
    x = torch.from_numpy(sample_rgb).permute(2, 0, 1)[None].float()
    out = codec(x, qualities[1])
    data = codec.encode(sample_rgb, qualities[1])
    assert out.bits.tolist() == [8.0 * len(data)]
    assert out.x_hat.shape == x.shape
    assert np.array_equal(out.x_hat[0].permute(1, 2, 0).numpy(), codec.decode(data))


def test_reference_decoder_reads_the_files(colour, sample_rgb, tmp_path):
    import pillow_heif
    import pillow_jxl  # noqa: F401  (registers JXL with Pillow)

    pillow_heif.register_heif_opener()
    codec, qualities = colour
    data = codec.encode(sample_rgb, qualities[1])
    path = tmp_path / f"img{codec.extension}"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.format == PIL_FORMAT[type(codec)]
        assert im.size == (sample_rgb.shape[1], sample_rgb.shape[0])
        ref = np.asarray(im.convert("RGB"))
    assert np.abs(ref.astype(int) - codec.decode(data).astype(int)).max() <= 1
    magic = {
        WebpCodec: lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
        AvifCodec: lambda d: d[4:12] == b"ftypavif",
        JxlCodec: lambda d: d[:2] == b"\xff\x0a",
        HeicCodec: lambda d: d[4:12] in (b"ftypheic", b"ftypheix"),  # heix: 4:4:4, 10-bit
    }[type(codec)]
    assert magic(data)


@pytest.mark.parametrize("name", list(COLOUR))
def test_odd_sizes(name, sample_rgb):
    codec, qualities = COLOUR[name][0](), COLOUR[name][1]
    img = np.ascontiguousarray(sample_rgb[:17, :33])
    dec = codec.decode(codec.encode(img, qualities[2]))
    assert dec.shape == (17, 33, 3) and dec.dtype == np.uint8
    assert psnr(img, dec) > 25


@pytest.mark.parametrize("name", list(GRAY))
def test_grayscale(name, sample_rgb):
    codec = GRAY[name]()
    assert codec.channels == 1
    y = luma(sample_rgb)
    lo, hi = codec.encode(y, 20), codec.encode(y, 80)
    dec_lo, dec_hi = codec.decode(lo), codec.decode(hi)
    assert dec_hi.shape == y.shape and dec_hi.dtype == np.uint8
    assert psnr(y, dec_lo) < psnr(y, dec_hi)
    odd = np.ascontiguousarray(y[:17, :33])
    assert codec.decode(codec.encode(odd, 80)).shape == (17, 33)
    out = codec(torch.from_numpy(y)[None, None].float(), 80)
    assert out.x_hat.shape == (1, 1, *y.shape) and out.bits.tolist() == [8.0 * len(hi)]
    with pytest.raises(ValueError):
        codec.encode(sample_rgb, 50)


def test_webp_has_no_gray_mode(sample_rgb):
    with pytest.raises(ValueError, match="RGB"):
        WebpCodec().encode(luma(sample_rgb), 50)


@pytest.mark.parametrize("name", list(COLOUR))
def test_bad_quality_dtype_shape(name, sample_rgb):
    codec = COLOUR[name][0]()
    for q in (-1, 100.5, 1000, float("nan")):
        with pytest.raises(ValueError, match="quality"):
            codec.encode(sample_rgb, q)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(sample_rgb.astype(np.float32), 50)
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(sample_rgb.astype(np.uint16), 50)
    with pytest.raises(ValueError):
        codec.encode(np.zeros((8, 8, 4), np.uint8), 50)
    with pytest.raises(ValueError):
        codec.decode(b"not an image at all")


def test_bad_options():
    with pytest.raises(ValueError, match="subsampling"):
        AvifCodec("4:2:2")
    with pytest.raises(ValueError, match="speed"):
        AvifCodec(speed=11)
    with pytest.raises(ValueError, match="effort"):
        JxlCodec(effort=0)
    with pytest.raises(ValueError, match="bit_depth"):
        HeicCodec(bit_depth=12)
    with pytest.raises(ValueError, match="subsampling"):
        Jpeg12Codec("4:1:1")


def test_jxl_lossless_and_distance(sample_rgb):
    codec = JxlCodec()
    assert np.array_equal(codec.decode(codec.encode(sample_rgb, 100)), sample_rgb)
    near = codec.decode(codec.encode(sample_rgb, 0, distance=0.5))
    far = codec.decode(codec.encode(sample_rgb, 0, distance=8.0))
    assert psnr(sample_rgb, near) > psnr(sample_rgb, far)
    with pytest.raises(ValueError, match="distance"):
        codec.encode(sample_rgb, 50, distance=30.0)


def test_jpeg12_roundtrip_and_marker(sample_rgb):
    img = high_bit(sample_rgb, 4095)
    codec = Jpeg12Codec()
    scores = []
    for q in (5, 50, 95):
        data = codec.encode(img, q)
        dec = codec.decode(data)
        assert dec.shape == img.shape and dec.dtype == np.uint16 and dec.max() <= 4095
        scores.append(psnr(img, dec, 4095))
    assert scores[0] < scores[1] < scores[2], scores
    # extended sequential frame header (SOF1) with 12-bit sample precision
    sof = data.find(b"\xff\xc1")
    assert sof > 0 and data[sof + 4] == 12
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()  # Pillow reads 8-bit JPEG only
    odd = np.ascontiguousarray(img[:17, :33])
    assert codec.decode(codec.encode(odd, 90)).shape == (17, 33, 3)
    gray = Jpeg12Codec("gray")
    y = np.ascontiguousarray(img[:, :, 1])
    assert gray.decode(gray.encode(y, 90)).shape == y.shape
    for q in (0, 101):
        with pytest.raises(ValueError, match="quality"):
            codec.encode(img, q)
    with pytest.raises(ValueError, match="uint16"):
        codec.encode(sample_rgb, 50)
    with pytest.raises(ValueError, match="4095"):
        codec.encode(img * 2, 50)
    with pytest.raises(ValueError, match="12-bit"):
        codec.decode(JpegCodec().encode(sample_rgb, 90))
    with pytest.raises(ValueError):
        codec.decode(b"\xff\xd8\xff\xe0 garbage")


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_jpeg12_beats_8bit_jpeg_at_high_quality(subsampling, sample_rgb):
    img = high_bit(sample_rgb, 4095)
    dec12 = Jpeg12Codec(subsampling).decode(Jpeg12Codec(subsampling).encode(img, 95))
    eight = np.round(img / 4095.0 * 255.0).astype(np.uint8)
    jpeg = JpegCodec(subsampling)
    dec8 = jpeg.decode(jpeg.encode(eight, 95)).astype(np.float64) * (4095.0 / 255.0)
    assert psnr(img, dec12, 4095) > psnr(img, dec8, 4095) + 3


def test_jpeg12_forward_keeps_fine_steps(sample_rgb):
    x = torch.from_numpy(high_bit(sample_rgb, 4095).astype(np.float32) * (255.0 / 4095.0))
    x = x.permute(2, 0, 1)[None]
    out12 = Jpeg12Codec("4:4:4")(x, 95)
    out8 = JpegCodec("4:4:4")(x, 95)
    assert out12.x_hat.shape == x.shape and out12.bits.shape == (1,)
    assert (out12.x_hat - x).pow(2).mean() < (out8.x_hat - x).pow(2).mean()


def test_heic_10bit(sample_rgb, tmp_path):
    import pillow_heif

    codec = HeicCodec("4:4:4", bit_depth=10)
    img = high_bit(sample_rgb, 1023)
    scores = []
    for q in (10, 50, 90):
        data = codec.encode(img, q)
        dec = codec.decode(data)
        assert dec.shape == img.shape and dec.dtype == np.uint16 and dec.max() <= 1023
        scores.append(psnr(img, dec, 1023))
    assert scores[0] < scores[1] < scores[2] and scores[2] > 35, scores
    path = tmp_path / "x.heic"
    path.write_bytes(data)
    heif = pillow_heif.open_heif(path)
    assert heif.info["bit_depth"] == 10
    with pytest.raises(ValueError, match="uint16"):
        codec.encode(sample_rgb, 50)
    with pytest.raises(ValueError, match="1023"):
        codec.encode(img * 4, 50)
    gray = HeicCodec("gray", bit_depth=10)
    y = np.ascontiguousarray(img[:17, :33, 1])
    dy = gray.decode(gray.encode(y, 80))
    assert dy.shape == y.shape and dy.dtype == np.uint16
    x = torch.from_numpy(sample_rgb).permute(2, 0, 1)[None].float()
    assert codec(x, 50).x_hat.shape == x.shape


def test_registry():
    assert list(CODECS) == ["jpeg", "webp", "avif", "jxl", "heic", "jpeg12"]
    assert isinstance(get_codec("avif", subsampling="4:4:4"), AvifCodec)
    assert get_codec("jpeg12").extension == ".jpg"
    for name, cls in CODECS.items():
        codec = get_codec(name)
        assert type(codec) is cls and codec.channels == 3 and codec.extension.startswith(".")
    with pytest.raises(SandwichError, match="jpeg, webp, avif, jxl, heic, jpeg12") as err:
        get_codec("bpg")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("module", "cls", "package"),
    [
        ("pillow_jxl", JxlCodec, "pillow-jxl-plugin"),
        ("pillow_heif", HeicCodec, "pillow-heif"),
        ("imagecodecs", Jpeg12Codec, "imagecodecs"),
    ],
)
def test_missing_package_is_a_clear_error(module, cls, package, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(SandwichError, match=f"pip install {package}"):
        cls()


def test_baselines(sample_rgb):
    assert isinstance(BASELINES["jpeg-420"](), JpegBaseline)
    for name in ("webp", "avif", "jxl", "heic"):
        base = BASELINES[name]()
        assert isinstance(base, CodecBaseline) and base.name == name
        assert len(base.qualities) >= 5 and all(0 <= q < 100 for q in base.qualities)
        lo, hi = base.qualities[0], base.qualities[-1]
        d_lo, r_lo = base.roundtrip(sample_rgb, lo)
        d_hi, r_hi = base.roundtrip(sample_rgb, hi)
        assert r_hi.shape == sample_rgb.shape and r_hi.dtype == np.uint8
        assert len(d_lo) < len(d_hi) and psnr(sample_rgb, r_lo) < psnr(sample_rgb, r_hi)
    gray = CodecBaseline(JxlCodec(gray=True), "jxl-gray")
    _, rec = gray.roundtrip(sample_rgb, 80)
    assert rec.shape == sample_rgb.shape and np.array_equal(rec[..., 0], rec[..., 2])
    deep = CodecBaseline(Jpeg12Codec("4:4:4"), "jpeg12")
    data, rec = deep.roundtrip(sample_rgb, 90)
    assert rec.dtype == np.uint8 and psnr(sample_rgb, rec) > 40 and data[:2] == b"\xff\xd8"
