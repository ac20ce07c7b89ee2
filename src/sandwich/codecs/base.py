"""The interface every codec of sandwich implements, real or proxy.

A codec maps a batch of images to their reconstruction and their rate. Real codecs (libjpeg via
Pillow, x264 via PyAV, ...) also turn single images into standard bytes and back. A differentiable
proxy implements the same ``forward`` so a model swaps one for the other between training and use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass
class CodecOutput:
    """What a codec returns for a batch.

    Attributes:
        x_hat: (N, C, H, W) reconstruction, float, 0..255 (same scale as the input).
        bits: (N,) size of each coded image in bits (whole file for real codecs).
        header_bits: (N,) the part of ``bits`` that does not depend on the content (markers,
            tables), or None when the codec does not tell it apart.
    """

    x_hat: Tensor
    bits: Tensor
    header_bits: Tensor | None = None


class ImageCodec(nn.Module, ABC):
    """A codec over (N, C, H, W) tensors with values in 0..255.

    ``channels`` is what the codec carries (1 for a grayscale codec, 3 for a colour one).
    ``quality`` is a scalar or an (N,) tensor, in the codec's own quality scale.
    """

    channels: int = 3
    differentiable: bool = False

    @abstractmethod
    def forward(self, x: Tensor, quality: Tensor | float) -> CodecOutput: ...


class RealImageCodec(ImageCodec):
    """A standard codec: bytes in and out; ``forward`` runs it image by image (no gradients)."""

    extension: str = ".bin"
    peak: int = 255  # largest sample value of the codec's images (4095 for 12-bit JPEG)

    @abstractmethod
    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Encode an (H, W, C) or (H, W) uint8 array to the codec's standard bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode standard bytes to an (H, W, C) or (H, W) uint8 array."""

    def forward(self, x: Tensor, quality: Tensor | float) -> CodecOutput:
        """Code each image of ``x`` (0..255 floats). A codec with ``peak`` > 255 (12-bit JPEG,
        10-bit HEIC) codes ``x`` mapped to 0..``peak`` integers, and the reconstruction keeps
        its finer steps of 255 / peak."""
        n = x.shape[0]
        q = torch.as_tensor(quality, dtype=torch.float32).flatten().cpu()
        if q.numel() == 1:
            q = q.expand(n)
        dtype = np.uint8 if self.peak <= 255 else np.uint16
        outs, bits = [], []
        with torch.no_grad():
            scaled = (x.detach().float().cpu() * (self.peak / 255.0)).round().clamp(0, self.peak)
            for i in range(n):
                arr = scaled[i].to(torch.int32).permute(1, 2, 0).numpy().astype(dtype)
                if arr.shape[2] == 1:
                    arr = arr[:, :, 0]
                data = self.encode(np.ascontiguousarray(arr), float(q[i]))
                dec = self.decode(data).astype(np.float32)
                if dec.ndim == 2:
                    dec = dec[:, :, None]
                outs.append(torch.from_numpy(dec).permute(2, 0, 1) * (255.0 / self.peak))
                bits.append(8 * len(data))
        x_hat = torch.stack(outs).to(device=x.device, dtype=x.dtype)
        return CodecOutput(x_hat, torch.tensor(bits, dtype=torch.float32, device=x.device))
