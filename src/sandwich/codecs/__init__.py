"""Real codecs behind one interface, and registries to pick them by name: image codecs in
:data:`CODECS`, clip codecs (x264, x265 through PyAV) in :data:`CLIP_CODECS`.

The optional back ends (pillow-heif, pillow-jxl-plugin, imagecodecs) are imported when a codec
is constructed, so importing this package never fails for lack of one of them.
"""

from __future__ import annotations

from sandwich.codecs.avif import AvifCodec
from sandwich.codecs.base import CodecOutput, ImageCodec, RealImageCodec
from sandwich.codecs.clip_base import RealClipCodec
from sandwich.codecs.heic import HeicCodec
from sandwich.codecs.jpeg import JpegCodec
from sandwich.codecs.jpeg12 import Jpeg12Codec
from sandwich.codecs.jxl import JxlCodec
from sandwich.codecs.video import CLIP_CODECS, X264Codec, X265Codec
from sandwich.codecs.webp import WebpCodec
from sandwich.errors import SandwichError

CODECS: dict[str, type[RealImageCodec]] = {
    "jpeg": JpegCodec,
    "webp": WebpCodec,
    "avif": AvifCodec,
    "jxl": JxlCodec,
    "heic": HeicCodec,
    "jpeg12": Jpeg12Codec,
}


def get_codec(name: str, **kwargs) -> RealImageCodec:
    """A new codec by registry name; ``kwargs`` go to its constructor (e.g. ``subsampling``)."""
    try:
        cls = CODECS[name]
    except KeyError:
        raise SandwichError(f"unknown codec {name!r}; choose one of: {', '.join(CODECS)}") from None
    return cls(**kwargs)


def get_clip_codec(name: str, **kwargs) -> RealClipCodec:
    """A new clip codec by registry name (``x264``, ``x265``); ``kwargs`` go to its
    constructor (``subsampling``, ``bit_depth``, ``rate_control``, ``gop``, ...)."""
    try:
        cls = CLIP_CODECS[name]
    except KeyError:
        raise SandwichError(
            f"unknown video codec {name!r}; choose one of: {', '.join(CLIP_CODECS)}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "CLIP_CODECS",
    "CODECS",
    "AvifCodec",
    "CodecOutput",
    "HeicCodec",
    "ImageCodec",
    "Jpeg12Codec",
    "JpegCodec",
    "JxlCodec",
    "RealImageCodec",
    "WebpCodec",
    "X264Codec",
    "X265Codec",
    "get_clip_codec",
    "get_codec",
]
