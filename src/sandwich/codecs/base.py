"""The interface every codec of sandwich implements, real or proxy.

A codec maps a batch of images to their reconstruction and their rate. Real codecs (libjpeg via
Pillow, x264 via PyAV, ...) also turn single images into standard bytes and back. A differentiable
proxy implements the same ``forward`` so a model swaps one for the other between training and use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from sandwich.formats.tag import FileTag

MediaKind = Literal["image", "clip"]


@dataclass(frozen=True)
class Knob:
    """The rate control of a codec: what a user turns to trade bits for quality.

    Attributes:
        name: the setting's name (``quality`` for JPEG, ``crf`` or ``qp`` for x264, ``iterations``
            for the progressive codec).
        lo, hi: the legal range, inclusive.
        higher_is_better: True when a larger value gives a larger, better file (JPEG quality,
            iterations); False for quantiser-like knobs (x264 CRF 0..51, QP).
        integer: only whole values are legal.
        label: how tables and messages name it (``JPEG quality``).
    """

    name: str
    lo: float
    hi: float
    higher_is_better: bool = True
    integer: bool = True
    label: str = ""

    def __contains__(self, value: float) -> bool:
        return self.lo <= value <= self.hi and (not self.integer or float(value).is_integer())

    def describe(self) -> str:
        """``JPEG quality 1..100 (higher is better)``: the knob for messages and help."""
        lo, hi = (int(self.lo), int(self.hi)) if self.integer else (self.lo, self.hi)
        way = "higher" if self.higher_is_better else "lower"
        return f"{self.label or self.name} {lo}..{hi} ({way} is better)"

    def values(self) -> list[float]:
        """Every legal value of an integer knob, from the smallest file to the largest."""
        vals = [float(v) for v in range(int(self.lo), int(self.hi) + 1)]
        return vals if self.higher_is_better else vals[::-1]


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
    """A codec over (N, C, H, W) tensors with values in 0..255: a real codec or its proxy.

    ``media`` is what it codes (``image``; ``clip`` codecs take (N, T, C, H, W)), ``channels``
    what it carries (1 for a grayscale codec, 3 for a colour one), ``peak`` its largest sample
    value (255 for 8 bits, 4095 for 12-bit JPEG: one notion of bit depth), and ``knob`` its rate
    control; ``quality`` in :meth:`forward` is a scalar or an (N,) tensor on the knob's scale.
    """

    media: ClassVar[MediaKind] = "image"
    channels: int = 3
    differentiable: bool = False
    peak: int = 255  # largest sample value of the codec's images (4095 for 12-bit JPEG)
    knob: ClassVar[Knob] = Knob("quality", 1, 100, label="quality")

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """The networks' quality input for knob value(s) ``quality``: (N,), about 0..1, rising
        as the codec quantises more coarsely. Codecs whose models take no quality input need
        not define it."""
        raise NotImplementedError(f"{type(self).__name__} gives no quality input to networks")

    @abstractmethod
    def forward(self, x: Tensor, quality: Tensor | float) -> CodecOutput: ...


class StandardFile:
    """What a real codec's file format offers, images and clips alike: its name and suffixes,
    the largest side it stores, and the sandwich tag it can carry (:class:`FileTag`)."""

    extension: str = ".bin"
    suffixes: tuple[str, ...] = ()  # file name suffixes of the format (default: extension)
    format_name: str = "coded"  # how messages name the format ("JPEG")
    max_side: int = 65535  # largest height or width the format stores

    def tag(self, data: bytes, tag: FileTag) -> bytes:
        """``data`` (this codec's standard bytes) with ``tag`` recorded inside, still a standard
        file. Codecs that sandwiches do not write to need not define it."""
        raise NotImplementedError(f"{type(self).__name__} files carry no sandwich tag")

    @staticmethod
    def sniff(data: bytes) -> bool:
        """Whether ``data`` looks like a file of this codec's format (its magic bytes)."""
        return False

    def read_tag(self, data: bytes) -> FileTag | None:
        """The tag recorded in ``data`` by :meth:`tag`, or None for a plain file."""
        return None


class RealImageCodec(ImageCodec, StandardFile):
    """A standard codec: bytes in and out; ``forward`` runs it image by image (no gradients)."""

    @abstractmethod
    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Encode an (H, W, C) or (H, W) uint8 array to the codec's standard bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode standard bytes to an (H, W, C) or (H, W) uint8 array."""

    def condition_from_file(self, data: bytes) -> float | None:
        """What :meth:`condition` needs, read back from a coded file (the knob is not always
        stored); None when the file does not tell."""
        return None

    def condition_value(self, value: float | None, n: int = 1) -> Tensor:
        """:meth:`condition` from what :meth:`condition_from_file` returned."""
        raise NotImplementedError(f"{type(self).__name__} gives no quality input to networks")

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
