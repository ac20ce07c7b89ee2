"""The standard pipelines sandwiches are compared with, behind one ``roundtrip`` interface.

Every method maps an (H, W, 3) uint8 RGB image and a JPEG quality to (file bytes, reconstruction),
the bytes being exactly what would be stored, so bpp = 8 * len(bytes) / (H * W).
"""

from __future__ import annotations

import numpy as np
import torch

from sandwich.codecs.jpeg import JpegCodec
from sandwich.nets.resample import downsample, upsample
from sandwich.proxies.calibrate import to_codec_input


class JpegBaseline:
    """Plain JPEG of the RGB image (``4:2:0``, ``4:4:4``), or of its luma (``gray``: the
    reconstruction is gray, R = G = B = Y)."""

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


class ModelPipeline:
    """A sandwich model's real file round trip (marker included in the bytes)."""

    def __init__(self, model, name: str):
        self.model, self.name = model, name

    def roundtrip(self, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
        data = self.model.compress(image, quality)
        return data, self.model.decompress(data)


BASELINES = {
    "jpeg-420": lambda: JpegBaseline("4:2:0"),
    "jpeg-444": lambda: JpegBaseline("4:4:4"),
    "jpeg-gray": lambda: JpegBaseline("gray"),
    "lowres2-bicubic": lambda: LowresBaseline(2),
    "lowres4-bicubic": lambda: LowresBaseline(4),
}
