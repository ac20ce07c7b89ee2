"""Versioned file container for the progressive recurrent codec.

Layout (all integers big-endian)::

    header:  b"SNDR" | version u8 (=1) | model name: len u8 + utf-8 (<= 64 bytes)
             | weight hash (8 bytes) | height u32 | width u32 | iterations N u8
             | code channels C u8 | CRC32 of all preceding header bytes (u32)
    N chunks, one per iteration: payload length u32 | payload | CRC32 of payload (u32)

Each chunk is an independent entropy-coded iteration, so a file cut after ``k`` chunks still
decodes to ``k`` iterations; ``unpack`` reports such files as truncated instead of failing.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

from sandwich.errors import SandwichError
from sandwich.media.limits import check_pixels

__all__ = ["FORMAT_VERSION", "MAGIC", "RnnHeader", "is_rnn_file", "pack", "truncate", "unpack"]

MAGIC = b"SNDR"
FORMAT_VERSION = 1
MAX_MODEL_NAME = 64
HASH_BYTES = 8
_FIXED = struct.Struct(">IIBB")  # height, width, iterations, channels
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class RnnHeader:
    """What a progressive file says about its content."""

    model: str
    weight_hash: bytes
    height: int
    width: int
    iterations: int
    channels: int


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _max_chunk(header: RnnHeader) -> int:
    # Sanity bound on one coded iteration: at most one code element per pixel and channel, each
    # costing at most 12 bits (probabilities are clipped to 1/4096), plus coder slack. A length
    # field above this is corrupt rather than a sign of truncation.
    return header.channels * header.height * header.width * 2 + 1024


def _check_header(header: RnnHeader) -> bytes:
    """Validate header fields for writing; returns the encoded model name."""
    if not isinstance(header.model, str):
        raise SandwichError("model name must be a string")
    name = header.model.encode("utf-8")
    if len(name) > MAX_MODEL_NAME:
        raise SandwichError(
            f"model name {header.model!r} is {len(name)} bytes in utf-8; at most "
            f"{MAX_MODEL_NAME} fit in the file header"
        )
    weight_hash = header.weight_hash
    if not isinstance(weight_hash, (bytes, bytearray)) or len(weight_hash) != HASH_BYTES:
        raise SandwichError(f"weight hash must be exactly {HASH_BYTES} bytes")
    for field, lo, hi in (
        ("height", 1, 0xFFFFFFFF),
        ("width", 1, 0xFFFFFFFF),
        ("iterations", 1, 255),
        ("channels", 1, 255),
    ):
        v = getattr(header, field)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise SandwichError(f"header {field} must be an integer in [{lo}, {hi}], got {v!r}")
    return name


def pack(header: RnnHeader, chunks: list[bytes]) -> bytes:
    """Serialise a header and one entropy-coded chunk per iteration into file bytes."""
    name = _check_header(header)
    if len(chunks) != header.iterations:
        raise SandwichError(
            f"header says {header.iterations} iterations but {len(chunks)} chunks were given"
        )
    head = (
        MAGIC
        + bytes([FORMAT_VERSION, len(name)])
        + name
        + bytes(header.weight_hash)
        + _FIXED.pack(header.height, header.width, header.iterations, header.channels)
    )
    parts = [head, _U32.pack(_crc(head))]
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise SandwichError(f"chunk {i} is {type(chunk).__name__}, expected bytes")
        payload = bytes(chunk)
        if len(payload) > _max_chunk(header):
            raise SandwichError(f"chunk {i} is implausibly large ({len(payload)} bytes)")
        parts += [_U32.pack(len(payload)), payload, _U32.pack(_crc(payload))]
    return b"".join(parts)


def is_rnn_file(data_prefix: bytes) -> bool:
    """True if the bytes start with the progressive-file magic."""
    return bytes(data_prefix[: len(MAGIC)]) == MAGIC


_CUT = "progressive file is corrupt or truncated"


def _parse_header(data: bytes) -> tuple[RnnHeader, int]:
    """Parse and verify the header; returns it and the offset of the first chunk."""
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise SandwichError(f"{_CUT}: the file ends inside the header")
        raise SandwichError(
            "not a sandwich progressive file (bad magic); expected a file written by "
            "the recurrent codec"
        )
    pos = len(MAGIC)
    if len(data) < pos + 2:
        raise SandwichError(f"{_CUT}: the file ends inside the header")
    version = data[pos]
    if version != FORMAT_VERSION:
        raise SandwichError(
            f"unsupported progressive file format version {version} (this sandwich reads "
            f"version {FORMAT_VERSION}); use a matching sandwich release"
        )
    name_len = data[pos + 1]
    if name_len > MAX_MODEL_NAME:
        raise SandwichError(f"{_CUT}: bad model name length {name_len} in the header")
    pos += 2
    end = pos + name_len + HASH_BYTES + _FIXED.size
    if len(data) < end + 4:
        raise SandwichError(f"{_CUT}: the file ends inside the header")
    (stored_crc,) = _U32.unpack_from(data, end)
    if _crc(data[:end]) != stored_crc:
        raise SandwichError(f"{_CUT}: header checksum mismatch")
    try:
        model = data[pos : pos + name_len].decode("utf-8")
    except UnicodeDecodeError:
        raise SandwichError(f"{_CUT}: model name is not valid utf-8") from None
    pos += name_len
    weight_hash = data[pos : pos + HASH_BYTES]
    pos += HASH_BYTES
    height, width, iterations, channels = _FIXED.unpack_from(data, pos)
    if height < 1 or width < 1 or iterations < 1 or channels < 1:
        raise SandwichError(
            f"{_CUT}: invalid header ({height}x{width}, {iterations} iterations, "
            f"{channels} channels)"
        )
    check_pixels(height, width, "this progressive file")
    header = RnnHeader(model, weight_hash, height, width, iterations, channels)
    return header, end + 4


def unpack(data: bytes) -> tuple[RnnHeader, list[bytes], bool]:
    """Parse file bytes -> (header, complete chunks, truncated).

    A file cut at or inside a chunk gives the complete chunks before the cut and
    ``truncated=True``; corruption (checksum mismatch, trailing bytes) raises SandwichError.
    """
    data = bytes(data)
    header, pos = _parse_header(data)
    limit = _max_chunk(header)
    chunks: list[bytes] = []
    truncated = False
    for i in range(header.iterations):
        if len(data) < pos + 4:
            truncated = True
            break
        (length,) = _U32.unpack_from(data, pos)
        if length > limit:
            raise SandwichError(f"{_CUT}: chunk {i + 1} has an impossible length {length}")
        if len(data) < pos + 4 + length + 4:
            truncated = True
            break
        payload = data[pos + 4 : pos + 4 + length]
        (stored_crc,) = _U32.unpack_from(data, pos + 4 + length)
        if _crc(payload) != stored_crc:
            raise SandwichError(f"{_CUT}: checksum mismatch in iteration {i + 1}")
        chunks.append(payload)
        pos += 4 + length + 4
    if not truncated and pos != len(data):
        raise SandwichError(f"{_CUT}: {len(data) - pos} unexpected bytes after the last iteration")
    if not chunks:
        raise SandwichError(f"{_CUT}: it contains no complete iteration, nothing to decode")
    return header, chunks, truncated


def truncate(data: bytes, k: int) -> bytes:
    """A valid file holding only the first ``k`` iterations of ``data`` (header says N=k)."""
    header, chunks, _ = unpack(data)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SandwichError(f"number of iterations must be a positive integer, got {k!r}")
    if k > len(chunks):
        raise SandwichError(
            f"cannot keep {k} iterations: the file has only {len(chunks)} complete iterations"
        )
    return pack(replace(header, iterations=k), chunks[:k])
