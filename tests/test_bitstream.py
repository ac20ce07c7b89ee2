"""The versioned progressive-file container: round trip, truncation, corruption."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from sandwich.entropy import BinaryCodeCoder
from sandwich.errors import SandwichError
from sandwich.formats.sndr import RnnHeader, is_rnn_file, pack, truncate, unpack

HEADER = RnnHeader(
    model="rnn-gru-32", weight_hash=bytes(range(8)), height=37, width=21, iterations=3, channels=32
)
CHUNKS = [b"\x01\x02\x03", b"", b"hello world"]


def small_file() -> bytes:
    return pack(HEADER, CHUNKS)


def test_round_trip() -> None:
    data = small_file()
    assert data.startswith(b"SNDR") and is_rnn_file(data) and is_rnn_file(data[:4])
    header, chunks, truncated = unpack(data)
    assert header == HEADER
    assert chunks == CHUNKS
    assert truncated is False


def test_round_trip_unicode_name_and_bytearray_input() -> None:
    header = RnnHeader("modèle-ü", b"\xff" * 8, 1, 1, 1, 1)
    got, chunks, truncated = unpack(bytearray(pack(header, [b"x"])))
    assert got == header and chunks == [b"x"] and not truncated


def test_is_rnn_file() -> None:
    assert not is_rnn_file(b"\x89PNG\r\n")
    assert not is_rnn_file(b"SND")
    assert not is_rnn_file(b"")


def test_every_truncation_gives_prefix_or_clear_error() -> None:
    data = small_file()
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    ends = np.cumsum([header_len] + [len(c) + 8 for c in CHUNKS])
    for cut in range(len(data)):
        try:
            header, chunks, truncated = unpack(data[:cut])
        except SandwichError as exc:
            msg = str(exc)
            assert "\n" not in msg
            assert "truncated" in msg
            # Only cuts before the end of the first chunk may fail.
            assert cut < ends[1]
            continue
        k = int(np.searchsorted(ends, cut, side="right")) - 1
        assert k >= 1
        assert truncated is True
        assert header == HEADER
        assert chunks == CHUNKS[:k]
    assert unpack(data)[2] is False


def test_flipped_payload_byte_is_corrupt() -> None:
    data = small_file()
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    pos = header_len
    for chunk in CHUNKS:
        for i in range(len(chunk)):
            bad = bytearray(data)
            bad[pos + 4 + i] ^= 0x10
            with pytest.raises(SandwichError, match="corrupt"):
                unpack(bytes(bad))
        # The payload checksum itself.
        bad = bytearray(data)
        bad[pos + 4 + len(chunk)] ^= 0x01
        with pytest.raises(SandwichError, match="corrupt"):
            unpack(bytes(bad))
        pos += len(chunk) + 8


def test_flipped_header_byte_is_an_error() -> None:
    data = small_file()
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    for i in range(header_len):
        bad = bytearray(data)
        bad[i] ^= 0x04
        with pytest.raises(SandwichError):
            unpack(bytes(bad))


def test_bad_magic() -> None:
    with pytest.raises(SandwichError, match="bad magic"):
        unpack(b"XNDR" + small_file()[4:])
    with pytest.raises(SandwichError, match="bad magic"):
        unpack(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


def test_unknown_version() -> None:
    data = bytearray(small_file())
    data[4] = 3
    with pytest.raises(SandwichError, match="version 3"):
        unpack(bytes(data))


def test_trailing_junk() -> None:
    with pytest.raises(SandwichError, match="unexpected bytes"):
        unpack(small_file() + b"\0")
    with pytest.raises(SandwichError, match="unexpected bytes"):
        unpack(small_file() + small_file())


def test_impossible_chunk_length_is_corrupt() -> None:
    data = bytearray(small_file())
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    data[header_len : header_len + 4] = struct.pack(">I", 0xFFFFFFF0)
    with pytest.raises(SandwichError, match="corrupt"):
        unpack(bytes(data))


def test_zero_chunks_is_an_error() -> None:
    data = small_file()
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    with pytest.raises(SandwichError, match="nothing to decode"):
        unpack(data[:header_len])


def test_header_crc_covers_fields() -> None:
    # A consistent-looking header with a wrong CRC is rejected even when only the CRC differs.
    data = bytearray(small_file())
    header_len = len(data) - sum(len(c) + 8 for c in CHUNKS)
    crc = struct.unpack(">I", data[header_len - 4 : header_len])[0]
    assert crc == zlib.crc32(bytes(data[: header_len - 4]))
    data[header_len - 1] ^= 0xFF
    with pytest.raises(SandwichError, match="checksum"):
        unpack(bytes(data))


def test_truncate() -> None:
    data = small_file()
    for k in (1, 2, 3):
        cut = truncate(data, k)
        header, chunks, truncated = unpack(cut)
        assert header.iterations == k
        assert header.model == HEADER.model and header.weight_hash == HEADER.weight_hash
        assert chunks == CHUNKS[:k]
        assert truncated is False
    assert truncate(data, 3) == data
    # A truncated file can be truncated further, but not extended.
    partial = data[:-3]
    assert unpack(truncate(partial, 2))[1] == CHUNKS[:2]
    with pytest.raises(SandwichError):
        truncate(partial, 3)
    with pytest.raises(SandwichError):
        truncate(data, 0)


@pytest.mark.parametrize(
    "header,chunks",
    [
        (RnnHeader("x" * 65, bytes(8), 4, 4, 1, 32), [b""]),
        (RnnHeader("m", bytes(7), 4, 4, 1, 32), [b""]),
        (RnnHeader("m", bytes(8), 0, 4, 1, 32), [b""]),
        (RnnHeader("m", bytes(8), 4, 4, 256, 32), [b""] * 256),
        (RnnHeader("m", bytes(8), 4, 4, 1, 0), [b""]),
        (RnnHeader("m", bytes(8), 4, 4, 2, 32), [b""]),
        (RnnHeader("m", bytes(8), 4, 4, 0, 32), []),
    ],
    ids=["long-name", "short-hash", "zero-height", "too-many-iters", "zero-ch", "count", "none"],
)
def test_pack_rejects_invalid(header: RnnHeader, chunks: list[bytes]) -> None:
    with pytest.raises(SandwichError):
        pack(header, chunks)


def test_end_to_end_with_entropy_coder() -> None:
    rng = np.random.default_rng(0)
    codes = (rng.random((4, 32, 3, 2)) < 0.3).astype(np.uint8)
    coder = BinaryCodeCoder(32)
    header = RnnHeader("rnn", b"\xab" * 8, 40, 20, 4, 32)
    data = pack(header, coder.encode(codes))
    # Cut in the middle of the last chunk: three iterations survive.
    got, chunks, truncated = unpack(data[:-5])
    assert truncated and len(chunks) == 3
    np.testing.assert_array_equal(coder.decode(chunks, 3, 2), codes[:3])
    got, chunks, truncated = unpack(truncate(data, 2))
    np.testing.assert_array_equal(coder.decode(chunks, 3, 2), codes[:2])
