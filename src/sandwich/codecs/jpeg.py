"""Baseline JPEG through Pillow's libjpeg(-turbo): the real codec the JPEG sandwiches wrap."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from sandwich.codecs.base import Knob, RealImageCodec
from sandwich.codecs.jpeg_tables import quality_feature, quality_to_feature
from sandwich.formats.jpeg_marker import insert_marker, read_marker
from sandwich.formats.tag import FileTag
from sandwich.media.limits import check_pixels, pillow_bombs_as_errors

SUBSAMPLINGS = ("4:2:0", "4:4:4", "gray")
_PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:0": 2}


class JpegCodec(RealImageCodec):
    """Real JPEG (libjpeg-turbo via Pillow), standard Huffman tables, baseline, no extra markers.

    Args:
        subsampling: ``"4:2:0"``, ``"4:4:4"`` or ``"gray"`` (one component, 4:0:0).
        qtables: optional custom quantisation tables (8x8 natural order, one for luma and one for
            chroma); when given, ``quality`` is ignored.
    """

    extension = ".jpg"
    differentiable = False
    knob = Knob("quality", 1, 100, label="JPEG quality")
    format_name = "JPEG"
    suffixes = (".jpg", ".jpeg")
    max_side = 65535  # a JPEG frame stores its height and width in 16 bits

    def __init__(self, subsampling: str = "4:2:0", qtables: list[np.ndarray] | None = None):
        super().__init__()
        if subsampling not in SUBSAMPLINGS:
            raise ValueError(f"unknown JPEG subsampling {subsampling!r}; use one of {SUBSAMPLINGS}")
        self.subsampling = subsampling
        self.channels = 1 if subsampling == "gray" else 3
        self.qtables = qtables

    def encode(self, image: np.ndarray, quality: float, extra: bytes | None = None) -> bytes:
        """Encode uint8 (H, W, 3) or (H, W) to JPEG bytes at IJG ``quality`` (1..100)."""
        q = int(round(quality))
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        if image.dtype != np.uint8:
            raise ValueError(f"JPEG encodes uint8 images, got {image.dtype}")
        if self.subsampling == "gray":
            if image.ndim == 3:
                if image.shape[2] != 1:
                    raise ValueError("a grayscale JPEG carries one channel")
                image = image[:, :, 0]
            pil = Image.fromarray(image, mode="L")
            kwargs: dict = {}
        else:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError("a colour JPEG carries three channels (H, W, 3)")
            pil = Image.fromarray(image, mode="RGB")
            kwargs = {"subsampling": _PIL_SUBSAMPLING[self.subsampling]}
        if self.qtables is not None:
            kwargs["qtables"] = [np.asarray(t).reshape(64).tolist() for t in self.qtables]
        else:
            kwargs["quality"] = q
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", optimize=False, progressive=False, **kwargs)
        return buf.getvalue()

    @staticmethod
    def luma_qtable(data: bytes) -> np.ndarray:
        """The first (luma) quantisation table of a JPEG file, 8x8 natural order."""
        with Image.open(io.BytesIO(data)) as im:
            tables = getattr(im, "quantization", None) or {}
        if 0 not in tables:
            raise ValueError("JPEG file has no quantisation table 0")
        return np.asarray(tables[0], dtype=np.float64).reshape(8, 8)

    def condition(self, quality: Tensor | float, n: int) -> Tensor:
        """log2(mean luma quantisation step) / 8 at IJG ``quality``: (N,), 0 at quality 100."""
        return quality_to_feature(quality, n)

    def condition_from_file(self, data: bytes) -> float | None:
        """The mean luma quantisation step of the file's own DQT table (covers custom tables)."""
        return float(np.mean(self.luma_qtable(data)))

    def condition_value(self, value: float | None, n: int = 1) -> Tensor:
        """:meth:`condition` from a file's mean luma step (quality 75 when it is unknown)."""
        if value is None:
            return quality_to_feature(75, n)
        return quality_feature(torch.tensor([value] * n))

    def tag(self, data: bytes, tag: FileTag) -> bytes:
        """The JPEG with an APP11 segment naming the model (:mod:`sandwich.formats.jpeg_marker`)."""
        return insert_marker(data, tag)

    @staticmethod
    def sniff(data: bytes) -> bool:
        """A JPEG starts with the SOI marker."""
        return bytes(data[:2]) == b"\xff\xd8"

    def read_tag(self, data: bytes) -> FileTag | None:
        return read_marker(data)

    def decode(self, data: bytes) -> np.ndarray:
        """JPEG bytes -> (H, W) or (H, W, 3) uint8; the frame size in the header is checked
        against the pixel limit (:mod:`sandwich.media.limits`) before anything is decoded."""
        with pillow_bombs_as_errors("this JPEG"), Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG":
                raise ValueError("not a JPEG file")
            check_pixels(im.size[1], im.size[0], "this JPEG's frame header")
            im.load()
            arr = np.asarray(im.convert("L" if im.mode == "L" else "RGB"))
        return arr


def ecs_bytes(data: bytes) -> int:
    """Length of the entropy-coded segment(s) of a baseline JPEG (between SOS and EOI)."""
    i = 2
    total = 0
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError("malformed JPEG marker stream")
        marker = data[i + 1]
        if marker == 0xD9:
            break
        length = (data[i + 2] << 8) | data[i + 3]
        i += 2 + length
        if marker == 0xDA:
            start = i
            while i + 1 < n and not (
                data[i] == 0xFF and data[i + 1] not in (0x00,) and not 0xD0 <= data[i + 1] <= 0xD7
            ):
                i += 1
            total += i - start
    return total
