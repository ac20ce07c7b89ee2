"""Reading images and writing outputs safely (clear errors, no half-written files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sandwich.errors import SandwichError

MIN_SIDE = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by suffix, any case) directly inside ``folder``.

    Raises :class:`SandwichError` if ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SandwichError(f"{folder} is not a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: str | Path, allow_gray: bool = True) -> np.ndarray:
    """Load an 8-bit image as (H, W, 3) uint8 RGB.

    Grayscale inputs are expanded to three equal channels (``allow_gray``). Images with an
    alpha channel, more than 8 bits per sample, or fewer than 8 pixels per side are refused with
    a :class:`SandwichError` that says what to do.
    """
    p = Path(path)
    if not p.exists():
        raise SandwichError(f"{p}: no such file")
    if p.is_dir():
        raise SandwichError(f"{p}: is a folder; pass an image file (or a folder with -o FOLDER)")
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                raise SandwichError(
                    f"{p}: has an alpha channel; sandwich codes opaque RGB images: "
                    "remove the alpha channel first"
                )
            if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
                raise SandwichError(
                    f"{p}: is a {mode} (more than 8 bits per sample) image; the JPEG models take "
                    "8-bit images: convert it to 8-bit first"
                )
            if mode in ("1", "L", "P") and not allow_gray:
                raise SandwichError(f"{p}: is grayscale; this model needs an RGB image")
            if mode == "CMYK":
                raise SandwichError(f"{p}: is CMYK; convert it to RGB first")
            arr = np.asarray(im.convert("RGB"))
    except SandwichError:
        raise
    except UnidentifiedImageError:
        raise SandwichError(f"{p}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise SandwichError(f"{p}: cannot read the image ({e}); is the file truncated?") from None
    h, w = arr.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise SandwichError(
            f"{p}: is {w}x{h} pixels; sandwich needs at least {MIN_SIDE}x{MIN_SIDE}"
        )
    return arr


def check_writable(out: Path, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force``."""
    if out.exists() and not force:
        raise SandwichError(f"{out}: already exists; pass --force to overwrite it")
    if out.exists() and out.is_dir():
        raise SandwichError(f"{out}: is a folder; give a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise SandwichError(f"{parent}: output folder does not exist; create it first")


def atomic_write_bytes(out: Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``out`` through a temporary file and a rename."""
    check_writable(out, force)
    fd, tmp = tempfile.mkstemp(prefix=".sandwich-", suffix=".part", dir=out.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png(out: Path, image: np.ndarray, force: bool = False) -> None:
    """Save a uint8 (H, W, 3) or (H, W) array as PNG, atomically."""
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue(), force)
