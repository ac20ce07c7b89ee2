"""Versioned GOP container for the progressive learned video codec (``.sndv``).

The codec codes every frame as a recurrent residual: iteration ``t`` of a frame refines the
previous ``t - 1``, and each iteration is one independent entropy-coded chunk. Predicted
frames may carry motion side information. Frame ``i`` is intra when ``i % gop == 0``, so frame
0 is always intra and every intra frame starts a group of pictures a player can seek to.

Layout of version 1 (all integers big-endian, CRC32 as :func:`zlib.crc32`)::

    header:  b"SNDV" | version u8 (=1) | model name: length u8 + utf-8 (<= 64 bytes)
             | weight hash (8 bytes) | height u16 | width u16 | frames F u32
             | fps numerator u32 | fps denominator u32 | gop G u16 | prediction u8
             | code channels C u8 | motion block side B u8
             | CRC32 of all preceding header bytes (u32)
    index:   K = ceil(F / G) byte offsets u64 from the start of the file, the k-th being
             where intra frame k * G starts | CRC32 of the K offsets (u32)
    F frames, each:
        frame header: frame number u32 | type u8 (1 intra, 0 predicted)
                      | iterations N u8 (1..255) | CRC32 of these 6 bytes (u32)
        chunk table:  motion length u32 | motion CRC32 u32
                      | N x (iteration payload length u32 | payload CRC32 u32)
                      | CRC32 of the table (u32)
        payloads:     the motion payload (often empty), then the N iteration payloads
                      in order, back to back

``prediction`` is an index into :data:`PREDICTIONS`. Every length sits in a checksummed table,
so a damaged length is reported as corruption, never mistaken for a cut.

A file cut anywhere after its index (a download cut short) parses to the complete frames and
the complete iterations of the frame the cut falls in, with ``truncated=True``; that frame is
dropped when its motion payload or first iteration is incomplete. Any checksum mismatch is a
:class:`~sandwich.errors.SandwichError` naming the damaged part, e.g. ``frame 3, iteration 2:
checksum mismatch (corrupt file)``; frames are numbered from 0 (as in the API) and iterations
from 1. Every size is checked (pixels with :func:`~sandwich.media.limits.check_pixels`) and
every length against the bytes that remain before anything is sliced or allocated.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sandwich.errors import SandwichError
from sandwich.media.limits import check_pixels

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_FRAMES",
    "PREDICTIONS",
    "SndvFile",
    "SndvFrame",
    "SndvHeader",
    "intra_offsets",
    "is_sndv_file",
    "pack",
    "parse",
    "parse_from",
    "truncate",
]

MAGIC = b"SNDV"
FORMAT_VERSION = 1
PREDICTIONS = ("none", "previous", "motion", "extrapolate")
MAX_MODEL_NAME = 64
HASH_BYTES = 8
MAX_FRAMES = 100_000
MAX_ITERATIONS = 255
CODE_BLOCK = 16  # the codec's binary code has C channels per 16 x 16 block and iteration
_U32_MAX = 0xFFFFFFFF
_RANGES = (
    ("height", 1, 0xFFFF),
    ("width", 1, 0xFFFF),
    ("frames", 1, MAX_FRAMES),
    ("fps_num", 1, _U32_MAX),
    ("fps_den", 1, _U32_MAX),
    ("gop", 1, 0xFFFF),
    ("channels", 1, 255),
    ("block", 4, 64),
)
_FIXED = struct.Struct(">HHIIIHBBB")  # height .. block, as in the layout
_FRAME = struct.Struct(">IBB")  # frame number, type, iterations
_ENTRY = struct.Struct(">II")  # payload length, CRC32
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_INTRA, _PREDICTED = 1, 0
_BYTES = (bytes, bytearray, memoryview)

_NOT_SNDV = "not a sandwich video file (.sndv)"
_CUT_HEADER = "the file ends inside its header (truncated .sndv file)"
_CUT_INDEX = "the file ends inside its intra-frame index (truncated .sndv file)"


@dataclass(frozen=True)
class SndvHeader:
    """What a video file says about its content.

    ``height`` x ``width``: frame size in pixels; ``frames``: declared frame count; frame rate
    ``fps_num / fps_den``; frame ``i`` is intra when ``i % gop == 0``; ``prediction``: one of
    :data:`PREDICTIONS`; ``channels``: binary code channels per 16 x 16 block and iteration;
    ``block``: side of the motion blocks in pixels.
    """

    model: str
    weight_hash: bytes
    height: int
    width: int
    frames: int
    fps_num: int
    fps_den: int
    gop: int
    prediction: str
    channels: int
    block: int = 16

    @property
    def fps(self) -> float:
        """Frames per second."""
        if not self.fps_den:
            raise SandwichError("the frame rate's denominator is 0")
        return self.fps_num / self.fps_den

    def is_intra(self, i: int) -> bool:
        """Whether frame ``i`` is an intra frame."""
        return i % self.gop == 0

    @property
    def intra_count(self) -> int:
        """Intra frames among the declared frames (entries of the index)."""
        return -(-self.frames // self.gop)


@dataclass
class SndvFrame:
    """One coded frame: ``motion`` side information (empty when there is none) and one
    entropy-coded payload per iteration (at least one)."""

    intra: bool
    motion: bytes
    chunks: list[bytes]


@dataclass
class SndvFile:
    """A parsed video file: the frames present (complete iterations only) from frame
    ``first`` on (0 unless read by :func:`parse_from`); ``truncated`` when the file ended
    early (fewer frames than declared, or the last frame cut short)."""

    header: SndvHeader
    frames: list[SndvFrame]
    truncated: bool
    first: int = 0


def _crc(data) -> int:
    return zlib.crc32(data) & _U32_MAX


def _corrupt(where: str, what: str) -> SandwichError:
    return SandwichError(f"{where}: {what} (corrupt file)")


def _max_chunk(header: SndvHeader) -> int:
    # Sanity bound on one iteration of one frame: one binary code element per 16 x 16 block and
    # channel, each costing at most 16 bits (the coder clips probabilities far above 2**-16),
    # plus coder slack. A length above it is corrupt.
    blocks = -(-header.height // CODE_BLOCK) * -(-header.width // CODE_BLOCK)
    return header.channels * blocks * 2 + 1024


def _max_motion(header: SndvHeader) -> int:
    # Generous bound on a frame's motion side information: 64 bytes per motion block.
    blocks = -(-header.height // header.block) * -(-header.width // header.block)
    return blocks * 64 + 1024


def _check_fields(header: SndvHeader, parsed: bool) -> bytes:
    """Validate every header field; returns the encoded model name. ``parsed``: the header was
    read from a file (its errors say the file is corrupt) rather than given to :func:`pack`."""
    if not isinstance(header.model, str):
        raise SandwichError("SndvHeader.model must be a string")
    try:
        name = header.model.encode("utf-8")
    except UnicodeEncodeError:
        raise SandwichError(f"model name {header.model!r} cannot be encoded as utf-8") from None
    if len(name) > MAX_MODEL_NAME:
        raise SandwichError(
            f"model name {header.model!r} is {len(name)} bytes in utf-8; at most "
            f"{MAX_MODEL_NAME} fit in the file header"
        )
    if not isinstance(header.weight_hash, _BYTES) or len(header.weight_hash) != HASH_BYTES:
        raise SandwichError(f"SndvHeader.weight_hash must be exactly {HASH_BYTES} bytes")
    for field, lo, hi in _RANGES:
        v = getattr(header, field)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            if parsed:
                raise _corrupt("header", f"{field} {v} is outside {lo}..{hi}")
            raise SandwichError(f"SndvHeader.{field} must be an integer in {lo}..{hi}, got {v!r}")
    if header.prediction not in PREDICTIONS:
        raise SandwichError(
            f"SndvHeader.prediction must be one of {', '.join(PREDICTIONS)}, "
            f"got {header.prediction!r}"
        )
    check_pixels(header.height, header.width, "this .sndv file" if parsed else "SndvHeader")
    return name


def _header_bytes(header: SndvHeader) -> bytes:
    """The encoded header, its CRC included (not the index)."""
    name = _check_fields(header, parsed=False)
    head = (
        MAGIC
        + bytes([FORMAT_VERSION, len(name)])
        + name
        + bytes(header.weight_hash)
        + _FIXED.pack(
            header.height,
            header.width,
            header.frames,
            header.fps_num,
            header.fps_den,
            header.gop,
            PREDICTIONS.index(header.prediction),
            header.channels,
            header.block,
        )
    )
    return head + _U32.pack(_crc(head))


def _payload(data, what: str, limit: int) -> bytes:
    if not isinstance(data, _BYTES):
        raise SandwichError(f"{what} is {type(data).__name__}, expected bytes")
    payload = bytes(data)
    if len(payload) > limit:
        raise SandwichError(f"{what} is implausibly large ({len(payload)} bytes, limit {limit})")
    return payload


def _frame_bytes(header: SndvHeader, i: int, frame: SndvFrame) -> bytes:
    where = f"frame {i}"
    if not isinstance(frame, SndvFrame):
        raise SandwichError(f"{where} is {type(frame).__name__}, expected SndvFrame")
    if not isinstance(frame.intra, bool):
        raise SandwichError(f"{where}: intra must be True or False, got {frame.intra!r}")
    if frame.intra != header.is_intra(i):
        kind = "an intra" if header.is_intra(i) else "a predicted"
        raise SandwichError(f"{where} must be {kind} frame with gop {header.gop}")
    motion = _payload(frame.motion, f"{where}, motion", _max_motion(header))
    chunks = frame.chunks
    if isinstance(chunks, (*_BYTES, str)) or not isinstance(chunks, Sequence):
        raise SandwichError(f"{where}: chunks must be a list of bytes, one per iteration")
    if not 1 <= len(chunks) <= MAX_ITERATIONS:
        raise SandwichError(
            f"{where} has {len(chunks)} iterations; 1..{MAX_ITERATIONS} fit in the file"
        )
    limit = _max_chunk(header)
    payloads = [_payload(c, f"{where}, iteration {j + 1}", limit) for j, c in enumerate(chunks)]
    fixed = _FRAME.pack(i, _INTRA if frame.intra else _PREDICTED, len(payloads))
    table = _ENTRY.pack(len(motion), _crc(motion)) + b"".join(
        _ENTRY.pack(len(p), _crc(p)) for p in payloads
    )
    return b"".join(
        [fixed, _U32.pack(_crc(fixed)), table, _U32.pack(_crc(table)), motion, *payloads]
    )


def pack(header: SndvHeader, frames: Sequence[SndvFrame]) -> bytes:
    """Serialise a header and all its frames (exactly ``header.frames``) into file bytes."""
    head = _header_bytes(header)
    frames = list(frames)
    if len(frames) != header.frames:
        raise SandwichError(f"header declares {header.frames} frames but {len(frames)} were given")
    records = [_frame_bytes(header, i, f) for i, f in enumerate(frames)]
    pos = len(head) + header.intra_count * _U64.size + _U32.size
    offsets = []
    for i, record in enumerate(records):
        if header.is_intra(i):
            offsets.append(pos)
        pos += len(record)
    index = b"".join(_U64.pack(o) for o in offsets)
    return b"".join([head, index, _U32.pack(_crc(index)), *records])


def is_sndv_file(data: bytes) -> bool:
    """True if the bytes start with the video-file magic."""
    return isinstance(data, _BYTES) and bytes(data[: len(MAGIC)]) == MAGIC


def _as_bytes(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise SandwichError(_NOT_SNDV)


def _read_head(data: bytes) -> tuple[SndvHeader, list[int], int]:
    """Parse and verify the header and index -> (header, intra offsets, first frame's offset)."""
    if not data.startswith(MAGIC):
        if data and MAGIC.startswith(data):
            raise SandwichError(_CUT_HEADER)
        raise SandwichError(_NOT_SNDV)
    pos = len(MAGIC)
    if len(data) < pos + 2:
        raise SandwichError(_CUT_HEADER)
    version, name_len = data[pos], data[pos + 1]
    if version > FORMAT_VERSION:
        raise SandwichError(f"made by a newer sandwich (format {version}); upgrade")
    if version < 1:
        raise _corrupt("header", f"unknown format version {version}")
    if name_len > MAX_MODEL_NAME:
        raise _corrupt("header", f"model name length {name_len} exceeds {MAX_MODEL_NAME}")
    pos += 2
    end = pos + name_len + HASH_BYTES + _FIXED.size
    if len(data) < end + _U32.size:
        raise SandwichError(_CUT_HEADER)
    if _crc(memoryview(data)[:end]) != _U32.unpack_from(data, end)[0]:
        raise _corrupt("header", "checksum mismatch")
    try:
        model = data[pos : pos + name_len].decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupt("header", "model name is not valid utf-8") from None
    weight_hash = data[pos + name_len : pos + name_len + HASH_BYTES]
    fields = _FIXED.unpack_from(data, pos + name_len + HASH_BYTES)
    height, width, frames, fps_num, fps_den, gop, prediction, channels, block = fields
    if prediction >= len(PREDICTIONS):
        raise _corrupt("header", f"unknown prediction mode {prediction}")
    header = SndvHeader(
        model,
        weight_hash,
        height,
        width,
        frames,
        fps_num,
        fps_den,
        gop,
        PREDICTIONS[prediction],
        channels,
        block,
    )
    _check_fields(header, parsed=True)
    pos = end + _U32.size
    count = header.intra_count
    index_end = pos + count * _U64.size
    if len(data) < index_end + _U32.size:
        raise SandwichError(_CUT_INDEX)
    if _crc(memoryview(data)[pos:index_end]) != _U32.unpack_from(data, index_end)[0]:
        raise _corrupt("intra-frame index", "checksum mismatch")
    offsets = list(struct.unpack_from(f">{count}Q", data, pos))
    start = index_end + _U32.size
    if offsets[0] != start:
        raise _corrupt("intra-frame index", f"frame 0 at byte {offsets[0]}, not {start}")
    for k in range(1, count):
        if offsets[k] <= offsets[k - 1]:
            raise _corrupt(
                "intra-frame index",
                f"offsets of frames {(k - 1) * gop} and {k * gop} are out of order",
            )
    return header, offsets, start


def _read_frames(
    data: bytes, header: SndvHeader, offsets: list[int], first: int
) -> tuple[list[SndvFrame], bool]:
    """Frames from ``first`` (an intra frame) on -> (complete frames, truncated)."""
    view = memoryview(data)
    size = len(data)
    motion_limit, chunk_limit = _max_motion(header), _max_chunk(header)
    frames: list[SndvFrame] = []
    pos = offsets[first // header.gop]
    for i in range(first, header.frames):
        where = f"frame {i}"
        intra = header.is_intra(i)
        if intra and pos != offsets[i // header.gop]:
            raise _corrupt(
                "intra-frame index", f"frame {i} is at byte {pos}, not {offsets[i // header.gop]}"
            )
        fixed_end = pos + _FRAME.size
        if size < fixed_end + _U32.size:
            return frames, True
        if _crc(view[pos:fixed_end]) != _U32.unpack_from(data, fixed_end)[0]:
            raise _corrupt(where, "frame header checksum mismatch")
        number, kind, count = _FRAME.unpack_from(data, pos)
        if number != i:
            raise _corrupt(where, f"the frame header says frame {number}")
        if kind not in (_INTRA, _PREDICTED):
            raise _corrupt(where, f"unknown frame type {kind}")
        if (kind == _INTRA) != intra:
            kind_name = "an intra" if intra else "a predicted"
            raise _corrupt(where, f"it must be {kind_name} frame with gop {header.gop}")
        if count < 1:
            raise _corrupt(where, "it has no iterations")
        pos = fixed_end + _U32.size
        table_end = pos + (count + 1) * _ENTRY.size
        if size < table_end + _U32.size:
            return frames, True
        if _crc(view[pos:table_end]) != _U32.unpack_from(data, table_end)[0]:
            raise _corrupt(where, "chunk table checksum mismatch")
        entries = [_ENTRY.unpack_from(data, pos + j * _ENTRY.size) for j in range(count + 1)]
        motion_len, motion_crc = entries[0]
        if motion_len > motion_limit:
            raise _corrupt(f"{where}, motion", f"impossible length {motion_len}")
        for j, (length, _) in enumerate(entries[1:]):
            if length > chunk_limit:
                raise _corrupt(f"{where}, iteration {j + 1}", f"impossible length {length}")
        pos = table_end + _U32.size
        if size < pos + motion_len:
            return frames, True
        if _crc(view[pos : pos + motion_len]) != motion_crc:
            raise _corrupt(f"{where}, motion", "checksum mismatch")
        motion = data[pos : pos + motion_len]
        pos += motion_len
        chunks: list[bytes] = []
        for j, (length, crc) in enumerate(entries[1:]):
            if size < pos + length:
                if chunks:
                    frames.append(SndvFrame(intra, motion, chunks))
                return frames, True
            if _crc(view[pos : pos + length]) != crc:
                raise _corrupt(f"{where}, iteration {j + 1}", "checksum mismatch")
            chunks.append(data[pos : pos + length])
            pos += length
        frames.append(SndvFrame(intra, motion, chunks))
    if pos != size:
        raise _corrupt(f"frame {header.frames - 1}", f"{size - pos} unexpected bytes after it")
    return frames, False


def parse(data: bytes) -> SndvFile:
    """Parse and verify file bytes (header, index, every frame and checksum).

    A file cut after its index keeps the complete frames and iterations before the cut, with
    ``truncated=True`` (possibly no frame at all); corruption raises SandwichError.
    """
    data = _as_bytes(data)
    header, offsets, _ = _read_head(data)
    frames, truncated = _read_frames(data, header, offsets, 0)
    return SndvFile(header, frames, truncated)


def intra_offsets(data: bytes) -> list[tuple[int, int]]:
    """(frame index, byte offset) of every declared intra frame, read from the header's index
    without parsing frames (in a truncated file the last offsets may lie past its end)."""
    header, offsets, _ = _read_head(_as_bytes(data))
    return [(k * header.gop, offset) for k, offset in enumerate(offsets)]


def parse_from(data: bytes, frame: int) -> SndvFile:
    """Parse from intra frame ``frame`` on (seeking through the index): the frames before it are
    not read. A file cut before that frame gives no frames and ``truncated=True``."""
    data = _as_bytes(data)
    header, offsets, _ = _read_head(data)
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < header.frames:
        raise SandwichError(f"frame {frame!r} is not in 0..{header.frames - 1}")
    if not header.is_intra(frame):
        before = frame - frame % header.gop
        raise SandwichError(
            f"frame {frame} is not an intra frame (gop {header.gop}); seek to frame {before}"
        )
    if offsets[frame // header.gop] > len(data):
        return SndvFile(header, [], True, frame)
    frames, truncated = _read_frames(data, header, offsets, frame)
    return SndvFile(header, frames, truncated, frame)


def truncate(data: bytes, iterations: int) -> bytes:
    """A valid file with every frame cut to at most ``iterations`` iteration chunks.

    The frames of a truncated input that are present are kept (the header then declares that
    many frames), so the result is a complete file.
    """
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise SandwichError(f"iterations must be a positive integer, got {iterations!r}")
    f = parse(data)
    if not f.frames:
        raise SandwichError("the file holds no complete frame to keep (truncated .sndv file)")
    header = replace(f.header, frames=len(f.frames))
    return pack(header, [SndvFrame(x.intra, x.motion, x.chunks[:iterations]) for x in f.frames])
