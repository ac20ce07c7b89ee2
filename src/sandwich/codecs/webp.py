"""Lossy WebP (libwebp via Pillow): a VP8 intra frame in a RIFF container, always 4:2:0."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from sandwich.codecs.base import Knob, RealImageCodec
from sandwich.errors import SandwichError


class WebpCodec(RealImageCodec):
    """Real lossy WebP through Pillow's built-in libwebp.

    WebP has no grayscale mode: the codec carries RGB (H, W, 3) uint8 only. ``quality`` is
    libwebp's 0..100 (float accepted; 0 smallest file, 100 best lossy quality, never lossless).

    Args:
        method: libwebp effort, 0 (fast) .. 6 (slowest, best); Pillow's default is 4.
    """

    extension = ".webp"
    knob = Knob("quality", 0, 100, integer=False, label="WebP quality")
    channels = 3
    differentiable = False

    def __init__(self, method: int = 4):
        super().__init__()
        if not features.check("webp"):
            raise SandwichError(
                "this Pillow was built without WebP support; install a Pillow wheel: "
                "pip install -U pillow"
            )
        if not 0 <= int(method) <= 6:
            raise ValueError(f"WebP method must be in 0..6, got {method}")
        self.method = int(method)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Encode uint8 (H, W, 3) to lossy WebP bytes at libwebp ``quality`` (0..100)."""
        if not 0 <= quality <= 100:
            raise ValueError(f"WebP quality must be in 0..100, got {quality}")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError(f"WebP encodes uint8 images, got {getattr(image, 'dtype', image)}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"WebP carries RGB images (H, W, 3), got shape {image.shape}")
        pil = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
        buf = io.BytesIO()
        pil.save(buf, format="WEBP", quality=float(quality), method=self.method, lossless=False)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ValueError("not a WebP file") from None
        with im:
            if im.format != "WEBP":
                raise ValueError("not a WebP file")
            im.load()
            return np.asarray(im.convert("RGB"))
