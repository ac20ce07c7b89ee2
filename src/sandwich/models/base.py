"""The interface every model of sandwich implements, as CompressAI's models do.

``forward`` trains (differentiable; the model's own output type), ``compress`` turns one image
into the bytes of a file and ``decompress`` turns them back. The rest tells callers (the library
API, the CLI, the evaluation harness) what to feed the model and how its rate is controlled, so
that none of them needs to know which kind of model it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from torch import nn

from sandwich.codecs.base import Knob, MediaKind
from sandwich.errors import SandwichError


class CodecModel(nn.Module):
    """Base of the sandwich and the progressive codec (and next, their clip versions).

    Class attributes:
        kind: the model type's key in :data:`sandwich.models.registry.MODEL_TYPES`, recorded in
            weight sidecars.
        file_suffix: suffix of the files ``compress`` writes (``.jpg``, ``.sndr``).
        media: ``"image"`` ((H, W, C) arrays) or ``"clip"`` (:class:`sandwich.media.clips.Clip`
            of (T, H, W, C) frames): what :meth:`compress` takes and :meth:`decompress` gives.

    Instances have ``name`` and ``version`` (recorded in the files they write).
    """

    kind: ClassVar[str] = ""
    file_suffix: ClassVar[str] = ".bin"
    media: ClassVar[MediaKind] = "image"  # what compress takes: an image, or a clip of frames
    name: str
    version: int

    # ---- what the model takes and returns -------------------------------------------------
    @property
    def channels(self) -> int:
        """Channels of the images in and out (3 for RGB; 6 for albedo + normals)."""
        return 3

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the images in and out (8, or 16 for high-bit-depth models)."""
        return 8

    @property
    def output_suffix(self) -> str:
        """Suffix of decoded outputs: ``.png`` for RGB images, ``.npy`` for N-channel arrays,
        "" for clips (a folder of frames)."""
        return ".png" if self.channels == 3 else ".npy"

    plain_output_suffix: ClassVar[str] = ".png"  # of a plain file of this type's format

    def output_kind(self) -> str:
        """What :meth:`decompress` returns, for messages."""
        return f"{self.channels}-channel images"

    # ---- rate control ------------------------------------------------------------------------
    @property
    def knob(self) -> Knob:
        """What :meth:`compress`'s ``value`` means (JPEG quality 1..100, iterations 1..K)."""
        raise NotImplementedError

    @property
    def default_knob(self) -> float:
        """The knob value used when the caller gives none."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for tables: what carries the bits (e.g. ``JPEG 4:0:0``)."""
        return self.kind

    def configure(self, **settings: object) -> None:
        """Apply per-call coding settings (CLI options such as ``--prediction``; None values
        are ignored). A model takes only its own: any other is a one-line error."""
        given = [k for k, v in settings.items() if v is not None]
        if given:
            raise SandwichError(f"--{given[0].replace('_', '-')} is not a setting of {self.name}")

    # ---- real use ----------------------------------------------------------------------------
    def compress(self, image: np.ndarray, value: float) -> bytes:
        """An (H, W, C) image -> the bytes of a file, at knob ``value``."""
        raise NotImplementedError

    def decompress(self, data: bytes) -> np.ndarray:
        """The bytes of a file -> the (H, W, C) image."""
        raise NotImplementedError

    def decompress_with_note(self, data: bytes) -> tuple[np.ndarray, str]:
        """:meth:`decompress` and a few words on what was decoded (for messages), or ""."""
        return self.decompress(data), ""

    def compress_to_bpp(self, image: np.ndarray, target_bpp: float) -> tuple[float, bytes]:
        """(knob value, file) of the largest file of at most ``target_bpp`` bits per pixel.

        Bisection over the knob's legal values with the real codec (the file size grows
        monotonically along :meth:`Knob.values`). Raises :class:`SandwichError` when even the
        smallest file is larger.
        """
        pixels = self.pixels(image)
        values = self.knob.values()
        lo, hi, best = 0, len(values) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            data = self.compress(image, _number(values[mid]))
            if 8 * len(data) / pixels <= target_bpp:
                best = (_number(values[mid]), data)
                lo = mid + 1
            else:
                hi = mid - 1
        if best is None:
            smallest = self.compress(image, _number(values[0]))
            raise SandwichError(
                f"--target-bpp {target_bpp} is below the smallest file this model makes "
                f"({8 * len(smallest) / pixels:.3f} bpp at {self.knob.name} "
                f"{_number(values[0])})"
            )
        return best

    def pixels(self, item) -> int:
        """Pixels of what :meth:`compress` takes (the denominator of bits per pixel): H * W of
        an image, T * H * W of a clip."""
        return int(item.shape[0] * item.shape[1])

    # ---- files -------------------------------------------------------------------------------
    @classmethod
    def identify(cls, data: bytes) -> tuple[str, str | None, int | None] | None:
        """Whether ``data`` is a file of this model type: None if not, else (format name, the
        model named in the file or None for a plain file, its version or None if the file does
        not record it). Raises :class:`SandwichError` for a file of this type whose tag is
        corrupt."""
        return None

    @classmethod
    def sniff_head(cls, head: bytes) -> bool:
        """Whether the first 64 bytes of a file look like this type's format (cheap; no
        parsing of the rest)."""
        return False

    @classmethod
    def formats(cls) -> list[str]:
        """Names of the file formats this model type writes (for messages)."""
        return []

    @classmethod
    def suffixes(cls) -> tuple[str, ...]:
        """File name suffixes of the files this model type writes (what a folder decode
        picks up)."""
        return (cls.file_suffix,)

    @classmethod
    def decode_plain(cls, data: bytes) -> np.ndarray:
        """Decode a plain file of this type's format (no model named in it) as the standard
        codec would."""
        raise SandwichError("this file names no model; give one with --model")

    @classmethod
    def from_config(cls, config: dict, name: str = "local", version: int = 0) -> CodecModel:
        """A new (untrained) model from :meth:`config`'s dictionary, as weight sidecars store it."""
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError


class ClipMedia:
    """Mixin of the model types whose ``media`` is ``"clip"`` (put it before the
    :class:`CodecModel` base): decoded outputs are folders of frames (no suffix), rates are per
    pixel of every frame."""

    media: ClassVar[MediaKind] = "clip"
    plain_output_suffix: ClassVar[str] = ""

    @property
    def output_suffix(self) -> str:
        return ""

    def output_kind(self) -> str:
        return "clips"

    def pixels(self, item) -> int:
        """T * H * W of a clip (:class:`~sandwich.media.clips.Clip` or (T, H, W, 3) frames)."""
        t, h, w = item.shape[:3]
        return int(t * h * w)


MAX_WIDTH = 1024  # channels of any layer a sidecar may ask for
MAX_LEVELS = 8  # U-Net levels / recurrent stages


def check_config(config: object, fields: dict[str, Callable[[object], bool]], what: str) -> dict:
    """Validate a weights sidecar's ``config`` before anything is built from it.

    ``fields`` maps each key that must be present to a test of its value; a missing key, a value
    that fails its test, or a config that is not a JSON object raises a one-line
    :class:`SandwichError` naming the key (never a traceback, never a huge allocation).
    """
    if not isinstance(config, dict):
        raise SandwichError(f"{what}: the sidecar's config is not a JSON object")
    for key, ok in fields.items():
        if key not in config:
            raise SandwichError(f"{what}: the sidecar's config has no {key!r}")
        try:
            good = ok(config[key])
        except (TypeError, ValueError):
            good = False
        if not good:
            raise SandwichError(f"{what}: the sidecar's config has a bad {key!r}")
    return config


def widths(levels: int | tuple[int, int] = (1, MAX_LEVELS)) -> Callable[[object], bool]:
    """A test for a list of channel widths: ``levels`` entries (or a range), each 1..MAX_WIDTH."""
    lo, hi = (levels, levels) if isinstance(levels, int) else levels
    return lambda v: (
        isinstance(v, list | tuple)
        and lo <= len(v) <= hi
        and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_WIDTH for w in v)
    )


def one_of(*values: object) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str | bool) and v in values


def int_in(lo: int, hi: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)
