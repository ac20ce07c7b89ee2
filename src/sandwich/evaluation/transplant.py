"""A JPEG-trained sandwich with another real codec in the middle, without retraining.

``TransplantPipeline(model, "avif")`` feeds the model's bottleneck to AVIF (or WebP, JPEG XL,
HEIC) instead of JPEG and post-processes what that codec decodes. The rate is the other codec's
whole file (no sandwich marker: these files are evaluation artefacts, not ``sandwich compress``
outputs). Grayscale bottlenecks use the codec's one-plane mode (WebP has none).
"""

from __future__ import annotations

import numpy as np

from sandwich.errors import SandwichError

# the other codecs' default sweeps (their own quality scales, see baselines.CodecBaseline)
TRANSPLANT_QUALITIES = {
    "webp": tuple(range(5, 96, 10)),
    "avif": tuple(range(10, 96, 10)),
    "jxl": tuple(range(10, 96, 10)),
    "heic": tuple(range(10, 76, 8)),
}


def transplant_codec(name: str, channels: int):
    """The real codec ``name`` set up to carry a ``channels``-channel 8-bit bottleneck."""
    from sandwich.codecs import get_codec

    if name not in TRANSPLANT_QUALITIES:
        raise SandwichError(
            f"cannot put {name!r} under a sandwich; use one of {', '.join(TRANSPLANT_QUALITIES)}"
        )
    if channels == 1:
        if name == "webp":
            raise SandwichError(
                "WebP has no grayscale mode: it cannot carry a 1-channel bottleneck"
            )
        return get_codec(name, gray=True) if name == "jxl" else get_codec(name, subsampling="gray")
    return get_codec(name)


class TransplantPipeline:
    """``roundtrip(image, quality)`` of a sandwich whose bottleneck goes through ``codec``."""

    def __init__(self, model, codec: str, name: str | None = None):
        self.model = model
        self.codec_name = codec
        self.codec = transplant_codec(codec, model.scenario.bottleneck_channels)
        self.name = name or f"{model.name}@{codec}"
        self.qualities = TRANSPLANT_QUALITIES[codec]

    def roundtrip(self, image: np.ndarray, quality: float) -> tuple[bytes, np.ndarray]:
        b = self.model.bottleneck_image(image, 75)
        data = self.codec.encode(np.ascontiguousarray(b), quality)
        dec = self.codec.decode(data)
        return data, self.model.reconstruct(dec, image.shape[:2])
