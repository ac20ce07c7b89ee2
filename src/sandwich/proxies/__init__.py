"""Differentiable proxies of the real codecs, and a registry to pick them by name.

Each proxy mirrors one real codec of :mod:`sandwich.codecs` behind the same interface (same
``forward``, ``knob``, ``channels`` and quality input), so a model trains through the proxy and
runs the real codec in use. A scenario names its proxy by the key of :data:`PROXIES` (images) or
:data:`CLIP_PROXIES` (clips: :mod:`sandwich.proxies.video`, calibrated against x264 and x265).
"""

from __future__ import annotations

from sandwich.codecs.base import ImageCodec
from sandwich.codecs.clip_base import ClipCodec
from sandwich.errors import SandwichError
from sandwich.proxies.jpeg import JpegProxy
from sandwich.proxies.video import VideoProxy

PROXIES: dict[str, type[ImageCodec]] = {
    "jpeg": JpegProxy,
}
# clip proxies: one class mirrors x264 and x265 (its ``codec`` argument picks the calibration)
CLIP_PROXIES: dict[str, type[ClipCodec]] = {
    "x264": VideoProxy,
    "x265": VideoProxy,
}


def get_proxy(name: str, **kwargs) -> ImageCodec:
    """A new proxy by registry name; ``kwargs`` go to its constructor (``subsampling``,
    ``rounding``)."""
    try:
        cls = PROXIES[name]
    except KeyError:
        raise SandwichError(
            f"unknown proxy {name!r}; choose one of: {', '.join(PROXIES)}"
        ) from None
    return cls(**kwargs)


def get_clip_proxy(name: str, **kwargs) -> ClipCodec:
    """The differentiable twin of clip codec ``name`` (``x264``, ``x265``); ``kwargs`` go to
    its constructor (``subsampling``, ``rounding``, ...)."""
    try:
        cls = CLIP_PROXIES[name]
    except KeyError:
        raise SandwichError(
            f"unknown clip proxy {name!r}; choose one of: {', '.join(CLIP_PROXIES)}"
        ) from None
    return cls(codec=name, **kwargs)


__all__ = [
    "CLIP_PROXIES",
    "PROXIES",
    "JpegProxy",
    "VideoProxy",
    "get_clip_proxy",
    "get_proxy",
]
