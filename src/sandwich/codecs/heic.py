"""HEIC (an HEVC intra frame in HEIF; x265 to encode, libde265 to decode) via pillow-heif."""

from __future__ import annotations

import io

import numpy as np

from sandwich.codecs.base import Knob, RealImageCodec
from sandwich.errors import SandwichError

SUBSAMPLINGS = ("4:2:0", "4:4:4", "gray")
BIT_DEPTHS = (8, 10)
_CHROMA = {"4:2:0": "420", "4:4:4": "444"}
_MODE_CHANNELS = {"L": 1, "I": 1, "LA": 2, "RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4}


class HeicCodec(RealImageCodec):
    """Real HEIC through pillow-heif (libheif + x265), full-range BT.601 YUV.

    ``quality`` is libheif's 0..100 (rounded to an integer; 0 smallest file, 100 best, not
    lossless). With ``bit_depth=10`` the codec writes a 10-bit (Main 10) stream and takes and
    returns uint16 arrays with values 0..1023; ``forward`` then maps its 0..255 tensors onto
    that scale (4x the 8-bit precision).

    Args:
        subsampling: ``"4:2:0"`` (default), ``"4:4:4"`` or ``"gray"`` (monochrome; the codec
            then takes and returns (H, W) arrays).
        bit_depth: 8 (uint8 in and out) or 10 (uint16 0..1023 in and out).
        preset: optional x265 preset (``"ultrafast"`` .. ``"placebo"``); libheif's default
            (``"slow"``) when None.
    """

    extension = ".heic"
    knob = Knob("quality", 0, 100, label="HEIC quality")
    channels = 3
    differentiable = False

    def __init__(self, subsampling: str = "4:2:0", bit_depth: int = 8, preset: str | None = None):
        super().__init__()
        try:
            import pillow_heif
        except ImportError as exc:
            raise SandwichError(
                "HEIC needs the pillow-heif package: pip install pillow-heif"
            ) from exc
        if not pillow_heif.libheif_info().get("HEIF"):
            raise SandwichError("this pillow-heif has no HEVC encoder: pip install -U pillow-heif")
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(f"unknown HEIC subsampling {subsampling!r}; use one of {SUBSAMPLINGS}")
        if bit_depth not in BIT_DEPTHS:
            raise ValueError(f"HEIC bit_depth must be one of {BIT_DEPTHS}, got {bit_depth}")
        self._heif = pillow_heif
        self.subsampling = subsampling
        self.channels = 1 if subsampling == "gray" else 3
        self.bit_depth = int(bit_depth)
        self.peak = (1 << self.bit_depth) - 1
        self.preset = preset

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Encode (H, W, 3), or (H, W) for ``gray``: uint8 at 8 bits, uint16 0..1023 at 10."""
        if not 0 <= quality <= 100:
            raise ValueError(f"HEIC quality must be in 0..100, got {quality}")
        want = np.uint8 if self.bit_depth == 8 else np.uint16
        if not isinstance(image, np.ndarray) or image.dtype != want:
            raise ValueError(
                f"{self.bit_depth}-bit HEIC encodes {np.dtype(want).name} images, "
                f"got {getattr(image, 'dtype', image)}"
            )
        if self.subsampling == "gray":
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[:, :, 0]
            if image.ndim != 2:
                raise ValueError(f"a grayscale HEIC carries one channel, got shape {image.shape}")
        elif image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"a colour HEIC carries (H, W, 3), got shape {image.shape}")
        if self.bit_depth == 8:
            mode = "L" if image.ndim == 2 else "RGB"
            raw = np.ascontiguousarray(image)
        else:
            if image.size and int(image.max()) > self.peak:
                raise ValueError(f"10-bit HEIC samples must be <= {self.peak}, got {image.max()}")
            mode = "L;16" if image.ndim == 2 else "RGB;16"
            # pillow-heif takes 16-bit samples and keeps their top 10 bits
            raw = np.ascontiguousarray(image.astype("<u2") << 6)
        kwargs: dict = {"quality": int(round(quality))}
        if image.ndim == 3:
            kwargs["chroma"] = _CHROMA[self.subsampling]
        if self.preset is not None:
            kwargs["enc_params"] = {"preset": self.preset}
        h, w = image.shape[:2]
        buf = io.BytesIO()
        self._heif.encode(mode, (w, h), raw.tobytes(), buf, **kwargs)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decode to uint8 (8-bit codec) or uint16 0..1023 (10-bit codec), (H, W, 3) or (H, W)."""
        if data[4:8] != b"ftyp":
            raise ValueError("not a HEIF file")
        try:
            heif = self._heif.open_heif(
                io.BytesIO(data), convert_hdr_to_8bit=self.bit_depth == 8, hdr_to_16bit=False
            )
            img = heif[heif.primary_index]
            pixels = bytes(img.data)
        except (EOFError, SyntaxError, RuntimeError, OSError) as exc:
            raise ValueError(f"unreadable HEIF file: {exc}") from None
        w, h = img.size
        nch = _MODE_CHANNELS.get(img.mode.split(";")[0])
        if nch is None:
            raise ValueError(f"unsupported HEIC image mode {img.mode!r}")
        depth = int(img.info.get("bit_depth", 8))
        wide = depth > 8 or img.mode.startswith("I")
        dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
        row = img.stride // dtype.itemsize
        flat = np.frombuffer(pixels, dtype=dtype, count=h * row).reshape(h, row)
        arr = flat[:, : w * nch].reshape(h, w, nch)
        if img.mode.startswith("BGR"):
            arr = arr[:, :, [2, 1, 0, *range(3, nch)]]
        arr = arr[:, :, :3] if nch >= 3 else arr[:, :, :1]  # drop any alpha
        arr = arr.astype(np.int64)
        if wide and depth != self.bit_depth:  # rescale a file of another depth to ours
            arr = np.round(arr * (self.peak / ((1 << depth) - 1)))
        elif not wide and self.bit_depth == 10:
            arr = np.round(arr * (self.peak / 255.0))
        arr = np.clip(arr, 0, self.peak).astype(np.uint8 if self.bit_depth == 8 else np.uint16)
        return arr[:, :, 0] if arr.shape[2] == 1 else arr
