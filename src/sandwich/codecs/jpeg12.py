"""12-bit JPEG (extended sequential, SOF1) through imagecodecs' libjpeg-turbo.

A 12-bit JPEG carries samples 0..4095, so a sandwich's bottleneck image (float) loses less to
rounding than in 8 bits. Pillow cannot read these files; imagecodecs (libjpeg-turbo) can.
"""

from __future__ import annotations

import numpy as np

from sandwich.codecs.base import Knob, RealImageCodec
from sandwich.errors import SandwichError

SUBSAMPLINGS = ("4:2:0", "4:4:4", "gray")
PEAK = 4095


class Jpeg12Codec(RealImageCodec):
    """Real 12-bit JPEG: uint16 samples 0..4095 in, uint16 0..4095 out.

    ``quality`` is the IJG scale 1..100 (rounded to an integer). libjpeg writes the same
    quantisation tables as in 8 bits, but 12-bit DCT coefficients are 16x larger, so a given
    quality quantises 16x more finely than 8-bit JPEG at that quality: files are much larger
    and qualities are not comparable across bit depths (sweep low qualities, 1..50, for 8-bit
    JPEG-like rates). ``forward`` takes the usual 0..255 tensors and codes them on the 0..4095
    scale (16x the 8-bit precision).

    Args:
        subsampling: ``"4:2:0"`` (default), ``"4:4:4"`` or ``"gray"`` (one component; the
            codec then takes and returns (H, W) arrays).
    """

    extension = ".jpg"
    knob = Knob("quality", 1, 100, label="12-bit JPEG quality")
    peak = PEAK
    channels = 3
    differentiable = False
    bit_depth = 12

    def __init__(self, subsampling: str = "4:2:0"):
        super().__init__()
        try:
            import imagecodecs
        except ImportError as exc:
            raise SandwichError(
                "12-bit JPEG needs the imagecodecs package: pip install imagecodecs"
            ) from exc
        if not imagecodecs.JPEG8.available:
            raise SandwichError(
                "this imagecodecs build has no JPEG codec: pip install -U imagecodecs"
            )
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(
                f"unknown 12-bit JPEG subsampling {subsampling!r}; use one of {SUBSAMPLINGS}"
            )
        self._ic = imagecodecs
        self.subsampling = subsampling
        self.channels = 1 if subsampling == "gray" else 3

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Encode uint16 (H, W, 3), or (H, W) for ``gray``, with values 0..4095."""
        if not 1 <= quality <= 100:
            raise ValueError(f"12-bit JPEG quality must be in 1..100, got {quality}")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint16:
            raise ValueError(
                f"12-bit JPEG encodes uint16 images (values 0..4095), "
                f"got {getattr(image, 'dtype', image)}"
            )
        if self.subsampling == "gray":
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[:, :, 0]
            if image.ndim != 2:
                raise ValueError(f"a grayscale 12-bit JPEG carries one channel, got {image.shape}")
            sub = None
        else:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"a colour 12-bit JPEG carries (H, W, 3), got {image.shape}")
            sub = self.subsampling.replace(":", "")
        if image.size and int(image.max()) > PEAK:
            raise ValueError(f"12-bit JPEG samples must be <= {PEAK}, got {int(image.max())}")
        return bytes(
            self._ic.jpeg8_encode(
                np.ascontiguousarray(image),
                level=int(round(quality)),
                subsampling=sub,
                bitspersample=12,
                optimize=False,
            )
        )

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a 12-bit JPEG to uint16 (H, W, 3) or (H, W), values 0..4095."""
        if data[:2] != b"\xff\xd8":
            raise ValueError("not a JPEG file")
        try:
            arr = np.asarray(self._ic.jpeg8_decode(data))
        except self._ic.Jpeg8Error as exc:
            raise ValueError(f"unreadable JPEG file: {exc}") from None
        if arr.dtype != np.uint16:
            raise ValueError(f"not a 12-bit JPEG (decoded {arr.dtype})")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        return arr
