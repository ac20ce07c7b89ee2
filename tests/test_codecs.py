"""The real JPEG codec (libjpeg through Pillow) and the tables shared with its proxy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from sandwich.codecs.jpeg import JpegCodec, ecs_bytes
from sandwich.codecs.jpeg_tables import (
    CHROMA_QTABLE,
    LUMA_QTABLE,
    ZIGZAG,
    quality_qtables,
    quality_scale,
)
from sandwich.evaluation.metrics import psnr


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize(
    ("mode", "pil_mode", "layers"), [("4:2:0", "RGB", 3), ("4:4:4", "RGB", 3), ("gray", "L", 1)]
)
@pytest.mark.parametrize("size", [(64, 80), (37, 53)])
def test_round_trip(
    sample_full: np.ndarray, mode: str, pil_mode: str, layers: int, size: tuple[int, int]
) -> None:
    h, w = size
    img = sample_full[:h, :w].copy()
    if mode == "gray":
        img = img[:, :, 1].copy()
    codec = JpegCodec(mode)
    assert codec.channels == layers
    data = codec.encode(img, 75)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with _open(data) as im:
        assert im.format == "JPEG" and im.mode == pil_mode and im.size == (w, h)
        assert im.layers == layers
    dec = codec.decode(data)
    assert dec.dtype == np.uint8
    assert dec.shape == ((h, w) if mode == "gray" else (h, w, 3))
    assert psnr(img, dec) > 28.0
    assert 0 < ecs_bytes(data) < len(data)


def test_subsampling_is_what_was_asked(sample_rgb: np.ndarray) -> None:
    from PIL import JpegImagePlugin

    for mode, expected in (("4:2:0", 2), ("4:4:4", 0)):
        with _open(JpegCodec(mode).encode(sample_rgb, 60)) as im:
            assert JpegImagePlugin.get_sampling(im) == expected


def test_higher_quality_means_bigger_and_better(sample_rgb: np.ndarray) -> None:
    codec = JpegCodec("4:2:0")
    sizes, scores = [], []
    for q in (10, 50, 90):
        data = codec.encode(sample_rgb, q)
        sizes.append(len(data))
        scores.append(psnr(sample_rgb, codec.decode(data)))
    assert sizes == sorted(sizes) and scores == sorted(scores)


@pytest.mark.parametrize("quality", [0, -5, 101, 100.6, 250])
def test_quality_out_of_range_raises(sample_rgb: np.ndarray, quality: float) -> None:
    with pytest.raises(ValueError, match="1..100"):
        JpegCodec("4:2:0").encode(sample_rgb, quality)


def test_bad_arguments_raise(sample_rgb: np.ndarray) -> None:
    with pytest.raises(ValueError, match="subsampling"):
        JpegCodec("4:2:2")
    with pytest.raises(ValueError, match="uint8"):
        JpegCodec("4:2:0").encode(sample_rgb.astype(np.float32), 50)
    with pytest.raises(ValueError, match="three channels"):
        JpegCodec("4:4:4").encode(sample_rgb[:, :, 0].copy(), 50)
    with pytest.raises(ValueError, match="one channel"):
        JpegCodec("gray").encode(sample_rgb, 50)
    with pytest.raises(ValueError, match="1..100"):
        quality_scale(0)


def test_quality_tables_match_libjpeg_for_every_quality() -> None:
    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    codec = JpegCodec("4:2:0")
    for q in range(1, 101):
        with _open(codec.encode(img, q)) as im:
            pil_tables = im.quantization
        ours = quality_qtables(q)
        assert sorted(pil_tables) == [0, 1], q
        for i, table in enumerate(ours):
            assert table.shape == (8, 8)
            assert list(pil_tables[i]) == table.reshape(64).tolist(), (q, i)
    gray = quality_qtables(50, channels=1)
    assert len(gray) == 1 and np.array_equal(gray[0], LUMA_QTABLE)
    assert np.array_equal(quality_qtables(50)[1], CHROMA_QTABLE)
    assert np.all(quality_qtables(100)[0] == 1) and np.all(quality_qtables(1)[0] == 255)


def test_zigzag_is_a_permutation_in_jpeg_order() -> None:
    assert sorted(ZIGZAG.tolist()) == list(range(64))
    assert ZIGZAG[:10].tolist() == [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]
    assert ZIGZAG[-3:].tolist() == [55, 62, 63]


@pytest.mark.parametrize("mode", ["4:2:0", "4:4:4", "gray"])
def test_custom_qtables_are_used(sample_rgb: np.ndarray, mode: str) -> None:
    img = sample_rgb[:, :, 0].copy() if mode == "gray" else sample_rgb
    luma = np.arange(1, 65, dtype=np.int64).reshape(8, 8)
    chroma = np.full((8, 8), 7, dtype=np.int64)
    custom = JpegCodec(mode, qtables=[luma, chroma])
    data = custom.encode(img, 50)  # the quality is ignored when tables are given
    assert data == custom.encode(img, 5)
    with _open(data) as im:
        tables = im.quantization
    assert list(tables[0]) == luma.reshape(64).tolist()
    if mode == "gray":
        assert sorted(tables) == [0]
    else:
        assert list(tables[1]) == chroma.reshape(64).tolist()
    assert custom.decode(data).shape == img.shape
    assert data != JpegCodec(mode).encode(img, 50)


def test_flat_tables_equal_quality_100(sample_rgb: np.ndarray) -> None:
    ones = [np.ones((8, 8), np.int64), np.ones((8, 8), np.int64)]
    assert JpegCodec("4:4:4", qtables=ones).encode(sample_rgb, 1) == JpegCodec("4:4:4").encode(
        sample_rgb, 100
    )


def test_real_codec_forward_on_batches(sample_rgb: np.ndarray) -> None:
    codec = JpegCodec("4:2:0")
    x = torch.from_numpy(np.stack([sample_rgb, sample_rgb[::-1].copy()])).permute(0, 3, 1, 2)
    out = codec(x.float(), torch.tensor([20.0, 80.0]))
    assert out.x_hat.shape == x.shape and out.bits.shape == (2,)
    for i, q in enumerate((20, 80)):
        img = x[i].permute(1, 2, 0).numpy()
        data = codec.encode(np.ascontiguousarray(img), q)
        assert float(out.bits[i]) == 8 * len(data)
        dec = out.x_hat[i].permute(1, 2, 0).numpy()
        assert np.array_equal(dec, codec.decode(data))


def test_ecs_bytes_counts_the_scan(sample_rgb: np.ndarray) -> None:
    codec = JpegCodec("gray")
    data = codec.encode(sample_rgb[:, :, 0].copy(), 60)
    n = ecs_bytes(data)
    sos = data.index(b"\xff\xda")
    header_len = (data[sos + 2] << 8) | data[sos + 3]
    assert n == len(data) - (sos + 2 + header_len) - 2  # everything between SOS header and EOI
