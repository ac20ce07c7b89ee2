"""Differentiable proxies of the real codecs, and a registry to pick them by name.

Each proxy mirrors one real codec of :mod:`sandwich.codecs` behind the same interface (same
``forward``, ``knob``, ``channels`` and quality input), so a model trains through the proxy and
runs the real codec in use. A scenario names its proxy by the key of :data:`PROXIES`.
"""

from __future__ import annotations

from sandwich.codecs.base import ImageCodec
from sandwich.errors import SandwichError
from sandwich.proxies.jpeg import JpegProxy

PROXIES: dict[str, type[ImageCodec]] = {
    "jpeg": JpegProxy,
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


__all__ = ["PROXIES", "JpegProxy", "get_proxy"]
