"""JPEG XL (libjxl) through the pillow-jxl-plugin package."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, UnidentifiedImageError

from sandwich.codecs.base import Knob, RealImageCodec
from sandwich.errors import SandwichError

MAX_DISTANCE = 25.0
MIN_DISTANCE = 0.1


def quality_for_distance(distance: float) -> float:
    """The libjxl quality (0..100) whose Butteraugli distance is ``distance`` (0.1..25).

    Inverts libjxl's ``JxlEncoderDistanceFromQuality``: linear above quality 30 (distance
    0.1 + 0.09 * (100 - q)), quadratic below it.
    """
    if not MIN_DISTANCE <= distance <= MAX_DISTANCE:
        raise ValueError(
            f"JPEG XL distance must be in {MIN_DISTANCE}..{MAX_DISTANCE}, got {distance}"
        )
    if distance <= 6.4:  # the value at quality 30, where the two pieces meet
        return 100.0 - (distance - 0.1) / 0.09
    # 53/3000 q^2 - 23/20 q + 25 = distance, the root in 0..30
    a, b, c = 53.0 / 3000.0, -23.0 / 20.0, 25.0 - distance
    q = (-b - math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    return min(max(q, 0.0), 30.0)


class JxlCodec(RealImageCodec):
    """Real JPEG XL (VarDCT for lossy, Modular at quality 100 = mathematically lossless).

    ``quality`` is libjxl's 0..100 (float; 90 is Butteraugli distance 1, "visually lossless";
    100 switches to lossless coding). ``encode(..., distance=d)`` sets the Butteraugli distance
    (0.1..25, lower is better) instead; it is converted with :func:`quality_for_distance`.

    Args:
        gray: code one channel; the codec then takes and returns (H, W) arrays.
        effort: libjxl effort 1 (fast) .. 10 (slowest); 7 is libjxl's default.
        threads: encoder threads (1 keeps runs cheap on small images).
    """

    extension = ".jxl"
    knob = Knob("quality", 0, 100, integer=False, label="JPEG XL quality")
    channels = 3
    differentiable = False

    def __init__(self, gray: bool = False, effort: int = 7, threads: int = 1):
        super().__init__()
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL plugin with Pillow)
        except ImportError as exc:
            raise SandwichError(
                "JPEG XL needs the pillow-jxl-plugin package: pip install pillow-jxl-plugin"
            ) from exc
        if not 1 <= int(effort) <= 10:
            raise ValueError(f"JPEG XL effort must be in 1..10, got {effort}")
        if int(threads) < 1:
            raise ValueError(f"JPEG XL threads must be >= 1, got {threads}")
        self.gray = bool(gray)
        self.channels = 1 if self.gray else 3
        self.effort = int(effort)
        self.threads = int(threads)

    def encode(self, image: np.ndarray, quality: float, distance: float | None = None) -> bytes:
        """Encode uint8 (H, W, 3), or (H, W) when ``gray``, to JPEG XL bytes.

        ``quality`` is 0..100 (100 = lossless); ``distance``, when given, overrides it.
        """
        if distance is not None:
            quality = quality_for_distance(distance)
        elif not 0 <= quality <= 100:
            raise ValueError(f"JPEG XL quality must be in 0..100, got {quality}")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError(f"JPEG XL encodes uint8 images, got {getattr(image, 'dtype', image)}")
        if self.gray:
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[:, :, 0]
            if image.ndim != 2:
                raise ValueError(f"a grayscale JPEG XL carries one channel, got {image.shape}")
            pil = Image.fromarray(np.ascontiguousarray(image), mode="L")
        else:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"a colour JPEG XL carries (H, W, 3), got shape {image.shape}")
            pil = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
        # libjxl refuses distance 0 in lossy mode: quality 100 means lossless
        lossless = float(quality) >= 100.0
        buf = io.BytesIO()
        pil.save(
            buf,
            format="JXL",
            quality=100.0 if lossless else float(quality),
            lossless=lossless,
            effort=self.effort,
            num_threads=self.threads,
            use_container=False,
        )
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ValueError("not a JPEG XL file") from None
        with im:
            if im.format != "JXL":
                raise ValueError("not a JPEG XL file")
            im.load()
            return np.asarray(im.convert("L" if im.mode in ("L", "LA") else "RGB"))
