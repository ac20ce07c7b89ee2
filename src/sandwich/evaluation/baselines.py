"""The standard pipelines sandwiches are compared with, behind one ``roundtrip`` interface.

Every method maps an (H, W, 3) uint8 RGB image and a quality (JPEG's, or the codec's own scale
for :class:`CodecBaseline`) to (file bytes, reconstruction), the bytes being exactly what would be
stored, so bpp = 8 * len(bytes) / (H * W). The high-bit-depth pipelines (:class:`HdrBaseline`,
and models of 16-bit scenarios) take and return uint16 instead and say so in ``bit_depth``.

Each pipeline's ``qualities`` attribute is its default sweep. The other codecs' quality knobs
differ from JPEG's (see :class:`CodecBaseline`); their sweeps were picked to span about the rates
of JPEG 10..95 (0.2 to 3.5 bpp on the bundled sample photo) without wasting points where the codec
saturates.

N-channel pipelines (:class:`PlanesJpegBaseline`, models of multichannel scenarios) take and
return (H, W, N) uint8 arrays instead and say so in ``channels``; bpp is per pixel of the
N-channel image.
"""

from __future__ import annotations

import numpy as np
import torch

from sandwich.codecs.avif import AvifCodec
from sandwich.codecs.base import RealImageCodec
from sandwich.codecs.heic import HeicCodec
from sandwich.codecs.jpeg import JpegCodec
from sandwich.codecs.jpeg12 import Jpeg12Codec
from sandwich.codecs.jxl import JxlCodec
from sandwich.codecs.webp import WebpCodec
from sandwich.media.planes import stack_array, unstack_array
from sandwich.nets.resample import downsample, upsample
from sandwich.proxies.calibrate import to_codec_input

JPEG_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
"""IJG qualities of a JPEG sweep."""

# Default sweeps of the other codecs (see CodecBaseline for why they differ).
WEBP_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
AVIF_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
JXL_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
HEIC_QUALITIES = (10, 20, 30, 40, 50, 60, 65, 70, 75)
# 12-bit JPEG with the IJG tables: quality 1 is already about 1.7 bpp on 16-bit photos (the
# tables stop at 255, 16x finer than in 8 bits); 1..50 spans about 8-bit JPEG 70..95's rates.
HDR_JPEG12_QUALITIES = (1, 3, 5, 10, 15, 20, 30, 50)


class JpegBaseline:
    """Plain JPEG of the RGB image (``4:2:0``, ``4:4:4``), or of its luma (``gray``: the
    reconstruction is gray, R = G = B = Y)."""

    qualities: tuple[int, ...] = JPEG_QUALITIES

    def __init__(self, subsampling: str = "4:2:0"):
        self.codec = JpegCodec(subsampling)
        self.subsampling = subsampling
        self.name = {"4:2:0": "jpeg-420", "4:4:4": "jpeg-444", "gray": "jpeg-gray"}[subsampling]

    def roundtrip(self, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        data = self.codec.encode(to_codec_input(image, self.subsampling), quality)
        dec = self.codec.decode(data)
        if dec.ndim == 2:
            dec = np.repeat(dec[:, :, None], 3, axis=2)
        return data, dec


class LowresBaseline:
    """Antialiased bicubic downsampling by k, 4:2:0 JPEG, bicubic upsampling back."""

    qualities: tuple[int, ...] = JPEG_QUALITIES

    def __init__(self, factor: int):
        self.factor = factor
        self.codec = JpegCodec("4:2:0")
        self.name = f"lowres{factor}-bicubic"

    def roundtrip(self, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()
        small = downsample(x, self.factor).round().clamp(0, 255).to(torch.uint8)
        data = self.codec.encode(small[0].permute(1, 2, 0).numpy(), quality)
        dec = torch.from_numpy(self.codec.decode(data).copy()).permute(2, 0, 1)[None].float()
        up = upsample(dec, (h, w)).round().clamp(0, 255).to(torch.uint8)
        return data, up[0].permute(1, 2, 0).numpy()


class CodecBaseline:
    """Any real codec of :mod:`sandwich.codecs` applied to the RGB image as it is.

    ``quality`` is passed to ``codec.encode`` unchanged, in the codec's own scale, which is not
    JPEG's: the same number gives a different rate and distortion in each codec. Sweep with
    ``qualities`` (the defaults, for the 8-bit 4:2:0 colour codecs):

    - ``webp``: libwebp quality 0..100; 5..95 spans about JPEG 10..95's rates (100 is not
      lossless and barely better than 95).
    - ``avif``: libavif quality 0..100; 10..95 (0 is still about 0.15 bpp, 90 near JPEG 90's rate).
    - ``jxl``: libjxl quality 0..100 (90 = Butteraugli distance 1); 10..95. Avoid 100: it
      switches to lossless coding, far off the lossy curve.
    - ``heic``: libheif/x265 quality 0..100; 10..75. Above ~75 the rate keeps doubling while
      PSNR saturates (the 4:2:0 chroma bounds it), so those points only stretch the curve.

    A one-channel codec codes the luma (the reconstruction is gray, R = G = B = Y); a codec with
    ``bit_depth`` > 8 (12-bit JPEG, 10-bit HEIC) codes the image rescaled to its sample range and
    the reconstruction is rounded back to 8 bits.
    """

    def __init__(
        self, codec: RealImageCodec, name: str, qualities: tuple[float, ...] = JPEG_QUALITIES
    ):
        self.codec, self.name, self.qualities = codec, name, tuple(qualities)
        self.peak = (1 << int(getattr(codec, "bit_depth", 8))) - 1

    def roundtrip(self, image: np.ndarray, quality: float) -> tuple[bytes, np.ndarray]:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{self.name} takes uint8 (H, W, 3) images, got {image.dtype} {image.shape}"
            )
        arr = to_codec_input(image, "gray") if self.codec.channels == 1 else image
        if self.peak != 255:
            arr = np.round(arr.astype(np.float64) * (self.peak / 255.0)).astype(np.uint16)
        data = self.codec.encode(np.ascontiguousarray(arr), quality)
        dec = self.codec.decode(data)
        if self.peak != 255:
            dec = np.clip(np.round(dec.astype(np.float64) * (255.0 / self.peak)), 0, 255)
            dec = dec.astype(np.uint8)
        if dec.ndim == 2:
            dec = np.repeat(dec[:, :, None], 3, axis=2)
        return data, dec


class HdrBaseline:
    """16-bit RGB through a codec of lower bit depth: scaled to its range, coded, scaled back.

    ``hdr-8bit`` rounds to 8 bits (x16 / 257), codes 4:2:0 JPEG and multiplies the decoded image
    by 257: the 8-bit ceiling a 16-bit sandwich is compared with (an untrained ``hdr16`` model
    is exactly this pipeline). ``hdr-jpeg12`` codes round(x16 * 4095 / 65535) as a 12-bit JPEG
    (its own quality scale, see :class:`~sandwich.codecs.jpeg12.Jpeg12Codec`). Images are uint16
    (H, W, 3) (uint8 is taken as 8-bit content, x * 257); reconstructions are uint16.
    """

    bit_depth = 16

    def __init__(self, codec: RealImageCodec, name: str, qualities: tuple[float, ...]):
        self.codec, self.name, self.qualities = codec, name, tuple(qualities)
        self.codec_peak = (1 << int(getattr(codec, "bit_depth", 8))) - 1

    def roundtrip(self, image: np.ndarray, quality: float) -> tuple[bytes, np.ndarray]:
        from sandwich.media.files import to_16bit

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"{self.name} takes uint16 (H, W, 3) images, got {image.dtype} {image.shape}"
            )
        x = to_16bit(image).astype(np.float64)
        arr = np.rint(x * (self.codec_peak / 65535.0))
        arr = arr.astype(np.uint8 if self.codec_peak == 255 else np.uint16)
        data = self.codec.encode(np.ascontiguousarray(arr), quality)
        dec = self.codec.decode(data).astype(np.float64)
        rec = np.clip(np.rint(dec * (65535.0 / self.codec_peak)), 0, 65535).astype(np.uint16)
        return data, rec


class PlanesJpegBaseline:
    """An (H, W, N) uint8 image as ``planes`` 3-channel JPEG planes stacked vertically in ONE
    standard JPEG (channel group g = channels 3g..3g+2 in rows g*H..(g+1)*H; missing channels of
    the last group filled with 128), at one quality: ``material-jpeg`` is albedo + normal map as
    two 4:2:0 planes, exactly what an untrained ``material6`` sandwich writes (minus its
    marker). The reconstruction is the decoded planes unstacked, (H, W, N) uint8."""

    qualities: tuple[int, ...] = JPEG_QUALITIES

    def __init__(self, channels: int, planes: int, name: str, subsampling: str = "4:2:0"):
        if planes * 3 < channels:
            raise ValueError(f"{planes} 3-channel planes cannot carry {channels} channels")
        self.channels, self.planes, self.name = channels, planes, name
        self.codec = JpegCodec(subsampling)

    def roundtrip(self, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        n = self.channels
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != n:
            raise ValueError(
                f"{self.name} takes uint8 (H, W, {n}) images, got {image.dtype} {image.shape}"
            )
        data = self.codec.encode(stack_array(image, self.planes), quality)
        return data, unstack_array(self.codec.decode(data), self.planes, n)


class ModelPipeline:
    """A sandwich model's real file round trip (marker included in the bytes)."""

    def __init__(self, model, name: str):
        self.model, self.name = model, name

    @property
    def bit_depth(self) -> int:
        """Bit depth of the images the model takes and returns (16 for ``hdr16``)."""
        return int(getattr(getattr(self.model, "scenario", None), "bit_depth", 8))

    @property
    def channels(self) -> int:
        """Channels of the images the model takes and returns (6 for ``material6``)."""
        return int(getattr(getattr(self.model, "scenario", None), "channels", 3))

    def roundtrip(self, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        data = self.model.compress(image, quality)
        return data, self.model.decompress(data)


BASELINES = {
    "jpeg-420": lambda: JpegBaseline("4:2:0"),
    "jpeg-444": lambda: JpegBaseline("4:4:4"),
    "jpeg-gray": lambda: JpegBaseline("gray"),
    "lowres2-bicubic": lambda: LowresBaseline(2),
    "lowres4-bicubic": lambda: LowresBaseline(4),
    "webp": lambda: CodecBaseline(WebpCodec(), "webp", WEBP_QUALITIES),
    "avif": lambda: CodecBaseline(AvifCodec("4:2:0"), "avif", AVIF_QUALITIES),
    "jxl": lambda: CodecBaseline(JxlCodec(), "jxl", JXL_QUALITIES),
    "heic": lambda: CodecBaseline(HeicCodec("4:2:0"), "heic", HEIC_QUALITIES),
    "hdr-8bit": lambda: HdrBaseline(JpegCodec("4:2:0"), "hdr-8bit", JPEG_QUALITIES),
    "hdr-jpeg12": lambda: HdrBaseline(Jpeg12Codec("4:2:0"), "hdr-jpeg12", HDR_JPEG12_QUALITIES),
    "hdr-8bit-444": lambda: HdrBaseline(JpegCodec("4:4:4"), "hdr-8bit-444", JPEG_QUALITIES),
    "hdr-jpeg12-444": lambda: HdrBaseline(
        Jpeg12Codec("4:4:4"), "hdr-jpeg12-444", HDR_JPEG12_QUALITIES
    ),
    "material-jpeg": lambda: PlanesJpegBaseline(6, 2, "material-jpeg"),
}
