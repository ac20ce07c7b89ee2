"""The sandwich marker: an application segment inside a standard JPEG file.

A sandwich JPEG is a plain baseline JPEG of the bottleneck that any viewer opens. One APP11
segment, placed after the JFIF header, records which model made it so ``decompress`` knows which
post-processor to run::

    FF EB  len(2)  "SNDW"  format(1)  height(2)  width(2)  model_version(2)  name_len(1)  name

``height`` and ``width`` are the size of the original image (the bottleneck may be smaller).
The segment costs 16 bytes plus the model name, and it is counted in every reported rate.
"""

from __future__ import annotations

import struct

from sandwich.errors import SandwichError
from sandwich.formats.tag import FileTag

APP11 = 0xEB
MAGIC = b"SNDW"
FORMAT_VERSION = 1


MarkerInfo = FileTag  # what the marker records: the generic tag of a sandwich file


def _segments(data: bytes):
    """Yield (marker, start, end) of the header segments of a JPEG, up to SOS."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise SandwichError("not a JPEG file (no SOI marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise SandwichError("corrupt JPEG: bad marker in the header")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise SandwichError("truncated JPEG: a header segment runs past the end of the file")
        yield marker, i, end
        if marker == 0xDA:
            return
        i = end
    raise SandwichError("truncated JPEG: no image data (SOS) found")


def make_segment(info: MarkerInfo) -> bytes:
    name = info.model.encode("utf-8")
    if len(name) > 255:
        raise ValueError("model name too long for the marker")
    payload = (
        MAGIC
        + struct.pack(
            ">BHHHB", info.format_version, info.height, info.width, info.model_version, len(name)
        )
        + name
    )
    return b"\xff" + bytes([APP11]) + struct.pack(">H", len(payload) + 2) + payload


def insert_marker(jpeg: bytes, info: MarkerInfo) -> bytes:
    """Return ``jpeg`` with the sandwich segment after SOI (and after APP0/JFIF if present)."""
    pos = 2
    for marker, _start, end in _segments(jpeg):
        if marker == 0xE0:
            pos = end
        break
    return jpeg[:pos] + make_segment(info) + jpeg[pos:]


def read_marker(jpeg: bytes) -> MarkerInfo | None:
    """The sandwich segment of a JPEG file, or None for a plain JPEG."""
    for marker, start, end in _segments(jpeg):
        if marker == APP11 and jpeg[start + 4 : start + 8] == MAGIC:
            body = jpeg[start + 8 : end]
            if len(body) < 8:
                raise SandwichError("corrupt sandwich marker (too short)")
            fmt, h, w, ver, n = struct.unpack(">BHHHB", body[:8])
            if fmt > FORMAT_VERSION:
                raise SandwichError(
                    f"sandwich marker format {fmt} is newer than this sandwich "
                    f"({FORMAT_VERSION}); upgrade sandwich"
                )
            if fmt < 1:
                raise SandwichError(f"corrupt sandwich marker (format {fmt})")
            name = body[8 : 8 + n]
            if len(name) != n:
                raise SandwichError("corrupt sandwich marker (model name cut short)")
            return MarkerInfo(name.decode("utf-8", "replace"), ver, h, w, fmt)
    return None
