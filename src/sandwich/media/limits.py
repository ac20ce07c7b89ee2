"""How large an image sandwich agrees to handle: checked before any buffer is allocated.

Every size read from a file (an image's header, a sandwich marker, a ``.sndr`` header, later MP4
and GOP headers) goes through :func:`check_pixels` before decoding, so a small hostile file cannot
make the decoder allocate gigabytes. The default, :data:`DEFAULT_MAX_PIXELS`, is far above any
camera's photo; ``--max-pixels`` (or :func:`set_max_pixels`) raises or lowers it. Pillow's own
decompression-bomb check is set to the same limit and turned into a one-line error.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

from PIL import Image

from sandwich.errors import SandwichError

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP per image or frame (a 12 MP photo is 12)
_limit = [DEFAULT_MAX_PIXELS]


def max_pixels() -> int:
    """The current limit, in pixels per image (or per frame)."""
    return _limit[0]


def set_max_pixels(n: int) -> None:
    """Change the limit (``--max-pixels``); Pillow's bomb check follows it."""
    if not isinstance(n, int) or n < 64:
        raise SandwichError(f"--max-pixels {n}: give a whole number of at least 64")
    _limit[0] = n
    Image.MAX_IMAGE_PIXELS = n


CLIP_BUDGET_FRAMES = 10  # a decoded clip may hold this many max-size frames' pixels in all


def clip_budget() -> int:
    """Most pixels (frames x height x width) a decoded clip may hold: 10 times the per-image
    limit (1 G-pixels, 3 GB of RGB, by default), so a long or huge video cannot exhaust memory."""
    return CLIP_BUDGET_FRAMES * _limit[0]


def check_pixels(height: int, width: int, what: str) -> None:
    """Refuse a size before anything of that size is allocated: non-positive sides, or more
    pixels than :func:`max_pixels`. ``what`` names where the size came from."""
    if height < 1 or width < 1:
        raise SandwichError(f"{what} declares a size of {width}x{height} pixels; it is corrupt")
    if height * width > max_pixels():
        raise SandwichError(
            f"{what} declares {width}x{height} pixels, more than the limit of {max_pixels():,}; "
            "if you trust it, raise the limit with --max-pixels"
        )


@contextmanager
def pillow_bombs_as_errors(what: str):
    """Pillow's decompression-bomb warning and error as one-line :class:`SandwichError`s."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise SandwichError(
                f"{what} is larger than the limit of {max_pixels():,} pixels; if you trust it, "
                "raise the limit with --max-pixels"
            ) from None


Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
