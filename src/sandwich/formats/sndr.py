"""Versioned file container for the progressive recurrent codec.

Layout (all integers big-endian). Version 1 codes the whole image as one tile::

    header:  b"SNDR" | version u8 (=1) | model name: len u8 + utf-8 (<= 64 bytes)
             | weight hash (8 bytes) | height u32 | width u32 | iterations N u8
             | code channels C u8 | CRC32 of all preceding header bytes (u32)
    N chunks, one per iteration: payload length u32 | payload | CRC32 of payload (u32)

Version 2 codes a large image as a grid of independent tiles (each with its own recurrent state
and entropy-coder statistics, as JPEG's restart intervals are independent)::

    header:  as version 1 with version u8 (=2), then tile side S u16 (a multiple of 16)
             before the header CRC32
    N iteration blocks, each:
        index:    for each of the K tiles: payload length u32 | CRC32 of payload u32
                  | CRC32 of the index (u32)
        payloads: the K tiles' payloads of this iteration, one after the other

The tiles are the ``ceil(height / S) x ceil(width / S)`` grid of S x S squares from the top left,
in row-major order (:func:`tile_grid`); the last row and column are smaller. The blocks are
iteration-major, so a file cut after ``k`` blocks still holds ``k`` iterations of every tile,
and the indexes give the place of every tile's payloads without decoding any: a decoder
reconstructs one tile at a time. Writers use version 1 whenever the image is a single tile.

Each chunk is an independent entropy-coded iteration (of one tile), so a file cut after ``k``
chunks (blocks) still decodes to ``k`` iterations; :func:`parse` and :func:`unpack` report such
files as truncated instead of failing. Every field is checked before anything of its size is
allocated, and every payload's checksum before anything is decoded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sandwich.errors import SandwichError
from sandwich.media.limits import check_pixels

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_TILE",
    "TILE_ALIGN",
    "TILED_VERSION",
    "RnnFile",
    "RnnHeader",
    "is_rnn_file",
    "pack",
    "parse",
    "tile_grid",
    "truncate",
    "unpack",
]

MAGIC = b"SNDR"
FORMAT_VERSION = 1  # one tile: the whole image
TILED_VERSION = 2  # independent tiles
MAX_MODEL_NAME = 64
HASH_BYTES = 8
TILE_ALIGN = 16  # tile sides are multiples of the codec's 16-pixel block
MAX_TILE = 0xFFFF // TILE_ALIGN * TILE_ALIGN  # 65520, the largest side a u16 holds
_FIXED = struct.Struct(">IIBB")  # height, width, iterations, channels
_TILE = struct.Struct(">H")  # tile side (version 2)
_U32 = struct.Struct(">I")
_ENTRY = 8  # bytes per tile in an index: length u32, CRC32 u32


@dataclass(frozen=True)
class RnnHeader:
    """What a progressive file says about its content. ``tile``: side of the square tiles in
    pixels (version 2), or 0 when the whole image is one tile (version 1)."""

    model: str
    weight_hash: bytes
    height: int
    width: int
    iterations: int
    channels: int
    tile: int = 0

    @property
    def version(self) -> int:
        return TILED_VERSION if self.tile else FORMAT_VERSION

    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of every tile, row-major (:func:`tile_grid`)."""
        return tile_grid(self.height, self.width, self.tile)


def tile_grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of the tiles of an image, row-major; ``tile`` 0: one tile."""
    if tile == 0:
        return [(0, 0, height, width)]
    return [
        (y, x, min(tile, height - y), min(tile, width - x))
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    ]


def _tile_count(header: RnnHeader) -> int:
    if header.tile == 0:
        return 1
    return -(-header.height // header.tile) * -(-header.width // header.tile)


def _crc(data) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _max_chunk(header: RnnHeader) -> int:
    # Sanity bound on one coded iteration of one tile: at most one code element per pixel and
    # channel, each costing at most 12 bits (probabilities are clipped to 1/4096), plus coder
    # slack. A length field above this is corrupt rather than a sign of truncation.
    side_h = min(header.height, header.tile) if header.tile else header.height
    side_w = min(header.width, header.tile) if header.tile else header.width
    return header.channels * side_h * side_w * 2 + 1024


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
        ("tile", 0, MAX_TILE),
    ):
        v = getattr(header, field)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise SandwichError(f"header {field} must be an integer in [{lo}, {hi}], got {v!r}")
    if header.tile % TILE_ALIGN:
        raise SandwichError(f"header tile must be a multiple of {TILE_ALIGN}, got {header.tile}")
    return name


def _header_bytes(header: RnnHeader) -> bytes:
    """The encoded header, its CRC included."""
    name = _check_header(header)
    head = (
        MAGIC
        + bytes([header.version, len(name)])
        + name
        + bytes(header.weight_hash)
        + _FIXED.pack(header.height, header.width, header.iterations, header.channels)
    )
    if header.tile:
        head += _TILE.pack(header.tile)
    return head + _U32.pack(_crc(head))


def _payload(chunk, what: str, limit: int) -> bytes:
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise SandwichError(f"{what} is {type(chunk).__name__}, expected bytes")
    payload = bytes(chunk)
    if len(payload) > limit:
        raise SandwichError(f"{what} is implausibly large ({len(payload)} bytes)")
    return payload


def pack(header: RnnHeader, chunks: Sequence) -> bytes:
    """Serialise a header and its entropy-coded chunks into file bytes.

    ``chunks``: one per iteration; with ``header.tile`` 0 (version 1) each is the bytes of the
    whole image's iteration, else each is a sequence of the tiles' bytes in
    :func:`tile_grid` order.
    """
    parts = [_header_bytes(header)]
    if len(chunks) != header.iterations:
        raise SandwichError(
            f"header says {header.iterations} iterations but {len(chunks)} chunks were given"
        )
    limit = _max_chunk(header)
    if not header.tile:
        for i, chunk in enumerate(chunks):
            payload = _payload(chunk, f"chunk {i}", limit)
            parts += [_U32.pack(len(payload)), payload, _U32.pack(_crc(payload))]
        return b"".join(parts)
    count = _tile_count(header)
    for i, tiles in enumerate(chunks):
        if isinstance(tiles, (bytes, bytearray, memoryview)) or len(tiles) != count:
            raise SandwichError(f"iteration {i} needs a sequence of {count} tile chunks")
        payloads = [_payload(c, f"chunk {i} of tile {j}", limit) for j, c in enumerate(tiles)]
        index = b"".join(struct.pack(">II", len(p), _crc(p)) for p in payloads)
        parts += [index, _U32.pack(_crc(index)), *payloads]
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
    if version not in (FORMAT_VERSION, TILED_VERSION):
        raise SandwichError(
            f"unsupported progressive file format version {version} (this sandwich reads "
            f"versions {FORMAT_VERSION} and {TILED_VERSION}); use a matching sandwich release"
        )
    name_len = data[pos + 1]
    if name_len > MAX_MODEL_NAME:
        raise SandwichError(f"{_CUT}: bad model name length {name_len} in the header")
    pos += 2
    end = pos + name_len + HASH_BYTES + _FIXED.size
    if version == TILED_VERSION:
        end += _TILE.size
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
    tile = 0
    if version == TILED_VERSION:
        (tile,) = _TILE.unpack_from(data, pos + _FIXED.size)
        if tile < TILE_ALIGN or tile % TILE_ALIGN:
            raise SandwichError(
                f"{_CUT}: invalid tile side {tile} (a multiple of {TILE_ALIGN} is needed)"
            )
    header = RnnHeader(model, weight_hash, height, width, iterations, channels, tile)
    return header, end + 4


@dataclass(frozen=True)
class RnnFile:
    """A parsed progressive file: the header and where each tile's payloads are.

    ``spans[t, i]`` = (offset, length) in ``data`` of tile ``i``'s payload for iteration ``t``,
    for the complete iterations; ``ends[t]`` is the offset just after iteration ``t``'s chunk
    (version 1) or block (version 2), ``start`` that of the first one. Payload checksums are
    verified by :func:`parse`.
    """

    header: RnnHeader
    data: bytes
    start: int
    ends: list[int]
    spans: np.ndarray  # (iterations, tiles, 2) int64
    truncated: bool

    @property
    def iterations(self) -> int:
        """Complete iterations in the file."""
        return len(self.ends)

    def tile_chunks(self, i: int) -> list[bytes]:
        """Tile ``i``'s payload of every complete iteration."""
        return [self.data[o : o + n] for o, n in self.spans[:, i].tolist()]

    def iteration_bytes(self, t: int) -> bytes:
        """All payload bytes of iteration ``t`` (the tiles' payloads back to back)."""
        first, last = self.spans[t, 0].tolist(), self.spans[t, -1].tolist()
        return self.data[first[0] : last[0] + last[1]]


def _parse_v1(data: bytes, header: RnnHeader, pos: int) -> tuple[list, list[int], bool]:
    limit = _max_chunk(header)
    spans: list = []
    ends: list[int] = []
    for i in range(header.iterations):
        if len(data) < pos + 4:
            return spans, ends, True
        (length,) = _U32.unpack_from(data, pos)
        if length > limit:
            raise SandwichError(f"{_CUT}: chunk {i + 1} has an impossible length {length}")
        if len(data) < pos + 4 + length + 4:
            return spans, ends, True
        payload = memoryview(data)[pos + 4 : pos + 4 + length]
        (stored_crc,) = _U32.unpack_from(data, pos + 4 + length)
        if _crc(payload) != stored_crc:
            raise SandwichError(f"{_CUT}: checksum mismatch in iteration {i + 1}")
        spans.append([[pos + 4, length]])
        pos += 4 + length + 4
        ends.append(pos)
    return spans, ends, False


def _parse_v2(data: bytes, header: RnnHeader, pos: int) -> tuple[list, list[int], bool]:
    limit = _max_chunk(header)
    count = _tile_count(header)
    view = memoryview(data)
    spans: list = []
    ends: list[int] = []
    for t in range(header.iterations):
        index_end = pos + count * _ENTRY
        if len(data) < index_end + 4:
            return spans, ends, True  # checked before the index is read: no allocation
        (stored_crc,) = _U32.unpack_from(data, index_end)
        if _crc(view[pos:index_end]) != stored_crc:
            raise SandwichError(f"{_CUT}: index checksum mismatch in iteration {t + 1}")
        entries = np.frombuffer(data, ">u4", count * 2, pos).reshape(count, 2).astype(np.int64)
        lengths = entries[:, 0]
        if (lengths > limit).any():
            bad = int(np.argmax(lengths > limit))
            raise SandwichError(
                f"{_CUT}: tile {bad + 1} of iteration {t + 1} has an impossible length "
                f"{int(lengths[bad])}"
            )
        offsets = index_end + 4 + np.cumsum(lengths) - lengths
        end = index_end + 4 + int(lengths.sum())
        if len(data) < end:
            return spans, ends, True
        for i, (o, n, crc) in enumerate(
            zip(offsets.tolist(), lengths.tolist(), entries[:, 1].tolist(), strict=True)
        ):
            if _crc(view[o : o + n]) != crc:
                raise SandwichError(f"{_CUT}: checksum mismatch in iteration {t + 1}, tile {i + 1}")
        spans.append(np.stack([offsets, lengths], axis=1))
        pos = end
        ends.append(pos)
    return spans, ends, False


def parse(data: bytes) -> RnnFile:
    """Parse and verify file bytes (header, indexes, every payload's checksum).

    A file cut at or inside a chunk (version 2: a block) keeps the complete iterations before
    the cut, with ``truncated=True``; corruption (checksum mismatch, impossible lengths,
    trailing bytes) and a file without a complete iteration raise SandwichError.
    """
    data = bytes(data)
    header, start = _parse_header(data)
    reader = _parse_v2 if header.tile else _parse_v1
    spans, ends, truncated = reader(data, header, start)
    end = ends[-1] if ends else start
    if not truncated and end != len(data):
        raise SandwichError(f"{_CUT}: {len(data) - end} unexpected bytes after the last iteration")
    if not ends:
        raise SandwichError(f"{_CUT}: it contains no complete iteration, nothing to decode")
    table = np.asarray(spans, dtype=np.int64).reshape(len(ends), _tile_count(header), 2)
    return RnnFile(header, data, start, ends, table, truncated)


def unpack(data: bytes) -> tuple[RnnHeader, list[bytes], bool]:
    """Parse file bytes -> (header, complete chunks, truncated).

    One chunk per complete iteration: its payload (version 2: the tiles' payloads back to back,
    see :meth:`RnnFile.tile_chunks` for one tile's); see :func:`parse`.
    """
    f = parse(data)
    return f.header, [f.iteration_bytes(t) for t in range(f.iterations)], f.truncated


def truncate(data: bytes, k: int) -> bytes:
    """A valid file holding only the first ``k`` iterations of ``data`` (header says N=k)."""
    f = parse(data)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SandwichError(f"number of iterations must be a positive integer, got {k!r}")
    if k > f.iterations:
        raise SandwichError(
            f"cannot keep {k} iterations: the file has only {f.iterations} complete iterations"
        )
    return _header_bytes(replace(f.header, iterations=k)) + f.data[f.start : f.ends[k - 1]]
