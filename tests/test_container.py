"""The APP11 sandwich marker inside standard JPEG files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sandwich.codecs.jpeg import JpegCodec
from sandwich.errors import SandwichError
from sandwich.formats.jpeg_marker import (
    APP11,
    FORMAT_VERSION,
    MAGIC,
    MarkerInfo,
    insert_marker,
    make_segment,
    read_marker,
)


@pytest.fixture(params=["4:2:0", "gray"])
def plain_jpeg(request: pytest.FixtureRequest, sample_rgb: np.ndarray) -> bytes:
    img = sample_rgb[:, :, 0].copy() if request.param == "gray" else sample_rgb
    return JpegCodec(request.param).encode(img, 60)


def _pixels(data: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        im.load()
        return im.mode, np.asarray(im).copy()


@pytest.mark.parametrize(
    "info",
    [
        MarkerInfo("gray-jpeg", 1, 64, 80),
        MarkerInfo("x", 0, 1, 1),
        MarkerInfo("lowres2-jpeg", 65535, 65535, 65535),
        MarkerInfo("naïve-modèle", 7, 300, 200),
        MarkerInfo("", 3, 10, 20),
    ],
)
def test_round_trip(plain_jpeg: bytes, info: MarkerInfo) -> None:
    marked = insert_marker(plain_jpeg, info)
    assert read_marker(marked) == info
    assert len(marked) == len(plain_jpeg) + 16 + len(info.model.encode("utf-8"))
    got = read_marker(marked)
    assert got is not None
    assert (got.model, got.model_version, got.height, got.width) == (
        info.model,
        info.model_version,
        info.height,
        info.width,
    )
    assert got.format_version == FORMAT_VERSION


def test_marked_file_is_a_standard_jpeg(plain_jpeg: bytes) -> None:
    marked = insert_marker(plain_jpeg, MarkerInfo("gray-modem", 1, 64, 80))
    mode_a, a = _pixels(plain_jpeg)
    mode_b, b = _pixels(marked)
    assert mode_a == mode_b
    assert np.array_equal(a, b)
    assert marked.count(MAGIC) == 1


def test_segment_layout(plain_jpeg: bytes) -> None:
    info = MarkerInfo("abc", 258, 513, 1027)
    seg = make_segment(info)
    assert seg[:2] == bytes([0xFF, APP11])
    assert int.from_bytes(seg[2:4], "big") == len(seg) - 2
    assert seg[4:8] == MAGIC
    assert seg[8] == FORMAT_VERSION
    assert int.from_bytes(seg[9:11], "big") == 513
    assert int.from_bytes(seg[11:13], "big") == 1027
    assert int.from_bytes(seg[13:15], "big") == 258
    assert seg[15] == 3 and seg[16:] == b"abc"
    marked = insert_marker(plain_jpeg, info)
    # after SOI and the JFIF APP0 segment, the rest unchanged
    app0_end = 4 + int.from_bytes(plain_jpeg[4:6], "big")
    assert plain_jpeg[2:4] == b"\xff\xe0"
    assert marked == plain_jpeg[:app0_end] + seg + plain_jpeg[app0_end:]


def test_marker_goes_after_soi_without_jfif(plain_jpeg: bytes) -> None:
    app0_end = 4 + int.from_bytes(plain_jpeg[4:6], "big")
    no_jfif = plain_jpeg[:2] + plain_jpeg[app0_end:]
    info = MarkerInfo("m", 1, 64, 80)
    marked = insert_marker(no_jfif, info)
    assert marked[2:4] == bytes([0xFF, APP11])
    assert read_marker(marked) == info


def test_name_too_long() -> None:
    with pytest.raises(ValueError, match="too long"):
        make_segment(MarkerInfo("x" * 256, 1, 8, 8))


def test_plain_jpeg_has_no_marker(plain_jpeg: bytes) -> None:
    assert read_marker(plain_jpeg) is None


def test_other_app11_segments_are_not_ours(plain_jpeg: bytes) -> None:
    payload = b"JPXT-not-sandwich"
    seg = bytes([0xFF, APP11]) + (len(payload) + 2).to_bytes(2, "big") + payload
    other = plain_jpeg[:2] + seg + plain_jpeg[2:]
    assert read_marker(other) is None
    info = MarkerInfo("gray-modem", 1, 64, 80)
    assert read_marker(insert_marker(other, info)) == info


@pytest.mark.parametrize("keep", [3, 4, 10, 19, 20, 30])
def test_truncated_header_raises(plain_jpeg: bytes, keep: int) -> None:
    marked = insert_marker(plain_jpeg, MarkerInfo("gray-modem", 1, 64, 80))
    with pytest.raises(SandwichError, match="truncated|JPEG"):
        read_marker(marked[:keep])


def test_truncated_before_sos(plain_jpeg: bytes) -> None:
    sos = plain_jpeg.index(b"\xff\xda")
    # a plain JPEG is read up to SOS to look for the marker: cut before it, it is an error
    with pytest.raises(SandwichError, match="truncated"):
        read_marker(plain_jpeg[:sos])
    # the marker comes first, so it is still found in a file cut later on (decoding fails then)
    info = MarkerInfo("gray-modem", 1, 64, 80)
    marked = insert_marker(plain_jpeg, info)
    assert read_marker(marked[: marked.index(b"\xff\xda")]) == info


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"hello world, not a jpeg at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"\xff\xd8\x00\x00\x00\x00\x00",
    ],
)
def test_non_jpeg_bytes_raise(data: bytes) -> None:
    with pytest.raises(SandwichError):
        read_marker(data)
    with pytest.raises(SandwichError):
        insert_marker(data, MarkerInfo("m", 1, 8, 8))


def test_png_bytes_raise(sample_rgb: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(sample_rgb).save(buf, format="PNG")
    with pytest.raises(SandwichError, match="not a JPEG"):
        read_marker(buf.getvalue())


def test_newer_format_is_refused(plain_jpeg: bytes) -> None:
    seg = bytearray(make_segment(MarkerInfo("m", 1, 8, 8)))
    seg[8] = FORMAT_VERSION + 1
    data = plain_jpeg[:2] + bytes(seg) + plain_jpeg[2:]
    with pytest.raises(SandwichError, match="upgrade"):
        read_marker(data)


def test_corrupt_marker_body(plain_jpeg: bytes) -> None:
    short = MAGIC + b"\x01\x00"
    seg = bytes([0xFF, APP11]) + (len(short) + 2).to_bytes(2, "big") + short
    with pytest.raises(SandwichError, match="too short"):
        read_marker(plain_jpeg[:2] + seg + plain_jpeg[2:])
    cut = bytearray(make_segment(MarkerInfo("abcdef", 1, 8, 8)))
    cut[15] = 50  # claims a 50-byte name
    with pytest.raises(SandwichError, match="cut short"):
        read_marker(plain_jpeg[:2] + bytes(cut) + plain_jpeg[2:])
