"""The interface of codecs over clips (short videos), real or proxy: the video side of base.py.

A clip codec maps a batch of clips (N, T, C, H, W) (N clips of T frames, C channels, H x W
pixels, values 0..255) to their reconstruction and their rate, the whole clip's bits and each
frame's. Real clip codecs (x264, x265 through PyAV) also turn one clip, frames (T, H, W, C) or
(T, H, W), into standard bytes (an MP4) and back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from sandwich.codecs.base import Knob, MediaKind, StandardFile


@dataclass
class ClipOutput:
    """What a clip codec returns for a batch.

    Attributes:
        x_hat: (N, T, C, H, W) reconstruction, float, 0..255 (the input's scale).
        bits: (N,) size of each coded clip in bits (the whole file for real codecs: frames,
            parameter sets, container).
        frame_bits: (N, T) bits of each frame, display order (for real codecs the size of each
            frame's packet, so ``bits - frame_bits.sum(1)`` is the container and headers).
        frame_types: per clip, the type of each frame, ``"I"``, ``"P"`` or ``"B"``.
    """

    x_hat: Tensor
    bits: Tensor
    frame_bits: Tensor
    frame_types: list[list[str]]


@dataclass(frozen=True)
class ClipInfo:
    """What decoding a clip file told besides its frames.

    Attributes:
        fps: frames per second.
        frame_types: per frame (display order), ``"I"``, ``"P"`` or ``"B"``.
        frame_bits: per frame (display order), the bits of its packet.
        pixel_format: FFmpeg's name of the decoded frames' format (``yuv420p``, ``gray10le``...).
        height, width: the displayed frame size in pixels (after any recorded crop).
        codec: the stream's codec (``h264``, ``hevc``).
        file_bits: the whole file in bits.
        reordered: True when the packets are stored out of display order (B-frames).
    """

    fps: float
    frame_types: tuple[str, ...]
    frame_bits: tuple[int, ...]
    pixel_format: str
    height: int
    width: int
    codec: str
    file_bits: int = 0
    reordered: bool = False

    @property
    def frames(self) -> int:
        return len(self.frame_types)

    @property
    def overhead_bits(self) -> int:
        """Bits of the file that belong to no frame: container boxes, parameter sets, tags."""
        return self.file_bits - sum(self.frame_bits)

    def bits_by_type(self) -> dict[str, int]:
        """Total packet bits per frame type, e.g. ``{"I": 15000, "P": 4200}``."""
        out: dict[str, int] = {}
        for kind, bits in zip(self.frame_types, self.frame_bits, strict=True):
            out[kind] = out.get(kind, 0) + bits
        return out


class ClipCodec(nn.Module, ABC):
    """A codec over (N, T, C, H, W) tensors with values in 0..255: a real clip codec or its
    proxy. ``channels`` is what a frame carries (1 for a 4:0:0 codec, 3 for colour), ``peak``
    the largest sample value (255 for 8 bits, 1023 for 10), ``knob`` the rate control (for
    x264/x265 CRF or QP 0..51, lower is better); ``quality`` in :meth:`forward` is a scalar or
    an (N,) tensor on the knob's scale."""

    media: ClassVar[MediaKind] = "clip"
    channels: int = 3
    differentiable: bool = False
    peak: int = 255
    knob: Knob = Knob("crf", 0, 51, higher_is_better=False, label="CRF")

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """The networks' quality input for knob value(s) ``quality``: (N,), about 0..1, rising
        as the codec quantises more coarsely."""
        raise NotImplementedError(f"{type(self).__name__} gives no quality input to networks")

    @abstractmethod
    def forward(self, x: Tensor, quality: Tensor | float) -> ClipOutput: ...


class RealClipCodec(ClipCodec, StandardFile):
    """A standard video codec: frames to bytes and back; ``forward`` runs it clip by clip
    (no gradients)."""

    extension: str = ".mp4"
    suffixes: tuple[str, ...] = (".mp4",)
    format_name: str = "MP4"
    max_side: int = 8192

    @abstractmethod
    def encode(self, frames: np.ndarray, quality: float) -> bytes:
        """Encode (T, H, W, C) or (T, H, W) frames (uint8 0..255, or uint16 0..``peak`` for
        deeper codecs) to the codec's standard bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> tuple[np.ndarray, ClipInfo]:
        """Decode standard bytes to frames (T, H, W, C) or (T, H, W) (the dtype and scale
        :meth:`encode` takes) and what the file told (:class:`ClipInfo`)."""

    def forward(self, x: Tensor, quality: Tensor | float) -> ClipOutput:
        """Code each clip of ``x`` (N, T, C, H, W), 0..255 floats. A codec with ``peak`` > 255
        codes ``x`` mapped to 0..``peak`` integers; the reconstruction keeps the finer steps."""
        if x.dim() != 5:
            raise ValueError(f"clip codecs take (N, T, C, H, W) tensors, got {tuple(x.shape)}")
        n, t = x.shape[:2]
        q = torch.as_tensor(quality, dtype=torch.float32).flatten().cpu()
        if q.numel() == 1:
            q = q.expand(n)
        dtype = np.uint8 if self.peak <= 255 else np.uint16
        outs, bits, frame_bits, types = [], [], [], []
        with torch.no_grad():
            scaled = (x.detach().float().cpu() * (self.peak / 255.0)).round().clamp(0, self.peak)
            for i in range(n):
                arr = scaled[i].to(torch.int32).permute(0, 2, 3, 1).numpy().astype(dtype)
                if arr.shape[3] == 1:
                    arr = arr[..., 0]
                data = self.encode(np.ascontiguousarray(arr), float(q[i]))
                dec, info = self.decode(data)
                dec = dec.astype(np.float32)
                if dec.ndim == 3:
                    dec = dec[..., None]
                outs.append(torch.from_numpy(dec).permute(0, 3, 1, 2) * (255.0 / self.peak))
                bits.append(8 * len(data))
                frame_bits.append(list(info.frame_bits))
                types.append(list(info.frame_types))
        x_hat = torch.stack(outs).to(device=x.device, dtype=x.dtype)
        return ClipOutput(
            x_hat,
            torch.tensor(bits, dtype=torch.float32, device=x.device),
            torch.tensor(frame_bits, dtype=torch.float32, device=x.device).reshape(n, t),
            types,
        )
