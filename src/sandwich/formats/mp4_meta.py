"""What sandwich records inside a standard MP4: the file tag and the displayed size of a clip.

Both live in one MP4 metadata entry, the iTunes-style ``comment`` (``©cmt`` in ``moov/udta/meta/
ilst``), which FFmpeg's mp4 muxer writes and every demuxer reads without any special flag::

    sandwich {"format": 1, "model": "name", "model_version": 3, "height": 48, "width": 64,
              "crop": [47, 63]}

``model``, ``model_version``, ``height``, ``width`` and ``format`` are the :class:`FileTag` (only a
tagged file has them); ``crop`` is the displayed (height, width) of a clip whose coded frames were
padded (odd sizes in 4:2:0, see :mod:`sandwich.codecs.video`). A comment that does not start with
``sandwich `` is someone else's and is left alone. The entry costs about 60 bytes plus the model
name, counted in every reported rate.
"""

from __future__ import annotations

import json
import math
import struct

from sandwich.errors import SandwichError
from sandwich.formats.tag import FileTag

COMMENT_KEY = "comment"
PREFIX = "sandwich "
FORMAT_VERSION = 1

# brands of video MP4 / QuickTime files; HEIF and AVIF images also start with 'ftyp' but carry
# image brands (mif1, heic, avif, ...) and none of these
_VIDEO_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"hvc1",
    b"M4V ",
    b"qt  ",
    b"dash",
}
_IMAGE_BRANDS = {b"mif1", b"msf1", b"heic", b"heix", b"heim", b"heis", b"avif", b"avis", b"jxl "}


def sniff_mp4(data: bytes) -> bool:
    """Whether ``data`` starts like a video MP4: an ``ftyp`` box with a video brand (HEIC and
    AVIF images, which also start with ``ftyp``, are not)."""
    head = bytes(data[:64])
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    size = struct.unpack(">I", head[:4])[0]
    if size < 16:
        return False
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    brands = {major} | compatible
    if major in _IMAGE_BRANDS:
        return False
    return bool(brands & _VIDEO_BRANDS)


def make_comment(tag: FileTag | None = None, crop: tuple[int, int] | None = None) -> str | None:
    """The ``comment`` value recording ``tag`` and ``crop`` ((height, width)), or None when
    there is nothing to record."""
    fields: dict = {}
    if tag is not None:
        if not tag.model:
            raise ValueError("a file tag needs a model name")
        fields.update(
            format=tag.format_version,
            model=tag.model,
            model_version=int(tag.model_version),
            height=int(tag.height),
            width=int(tag.width),
        )
        if tag.knob is not None:
            fields["knob"] = float(tag.knob)
    if crop is not None:
        fields["crop"] = [int(crop[0]), int(crop[1])]
    if not fields:
        return None
    return PREFIX + json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def parse_comment(comment: str | None) -> dict:
    """The fields of a sandwich ``comment`` ({} for a missing or foreign comment).

    Raises :class:`SandwichError` for a sandwich comment that is not valid JSON."""
    if not comment or not comment.startswith(PREFIX):
        return {}
    try:
        fields = json.loads(comment[len(PREFIX) :])
    except ValueError:
        raise SandwichError("corrupt sandwich tag in the MP4 metadata (not JSON)") from None
    if not isinstance(fields, dict):
        raise SandwichError("corrupt sandwich tag in the MP4 metadata (not an object)")
    return fields


def tag_from_fields(fields: dict) -> FileTag | None:
    """The :class:`FileTag` in parsed comment ``fields``, or None when they hold none."""
    if "model" not in fields:
        return None
    try:
        knob = fields.get("knob")
        knob = None if knob is None else float(knob)
        if knob is not None and not math.isfinite(knob):
            raise ValueError("knob")
        return FileTag(
            model=str(fields["model"]),
            model_version=int(fields["model_version"]),
            height=int(fields["height"]),
            width=int(fields["width"]),
            format_version=int(fields.get("format", FORMAT_VERSION)),
            knob=knob,
        )
    except (KeyError, TypeError, ValueError):
        raise SandwichError("corrupt sandwich tag in the MP4 metadata (missing fields)") from None


def crop_from_fields(fields: dict) -> tuple[int, int] | None:
    """The displayed (height, width) in parsed comment ``fields``, or None."""
    crop = fields.get("crop")
    if crop is None:
        return None
    try:
        h, w = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise SandwichError("corrupt sandwich crop in the MP4 metadata") from None
    return h, w


def top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level boxes of an MP4 as (type, header size, payload size) in bytes.

    Raises :class:`SandwichError` when a box runs past the end (a truncated file)."""
    out = []
    i, n = 0, len(data)
    while i + 8 <= n:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        header = 8
        if size == 1:
            if i + 16 > n:
                raise SandwichError("truncated MP4: a box header runs past the end of the file")
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
            header = 16
        elif size == 0:
            size = n - i
        if size < header or i + size > n:
            raise SandwichError(f"truncated MP4: box {kind!r} runs past the end of the file")
        out.append((kind, header, size - header))
        i += size
    return out


def mdat_bytes(data: bytes) -> int:
    """Payload bytes of the MP4's ``mdat`` boxes: the coded frames, nothing of the container."""
    return sum(payload for kind, _h, payload in top_boxes(data) if kind == b"mdat")
