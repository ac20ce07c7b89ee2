"""Reading images and writing outputs safely (clear errors, no half-written files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sandwich.errors import SandwichError
from sandwich.media.limits import check_pixels, pillow_bombs_as_errors

MIN_SIDE = 8
DEEP_HINT = "(`sandwich models` lists them)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by suffix, any case) directly inside ``folder``.

    Raises :class:`SandwichError` if ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SandwichError(f"{folder} is not a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_images(
    paths: list[Path], lister=None, empty: str = "no images in this folder"
) -> list[Path]:
    """Files as given, folders expanded by ``lister`` (default: their image files, sorted);
    ``empty`` is the error for a folder with none."""
    lister = lister or list_images
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = lister(p)
            if not found:
                raise SandwichError(f"{p}: {empty}")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SandwichError(f"{p}: no such file or folder")
    return out


def stored_bits(im: Image.Image) -> int:
    """Bits per sample of an opened (not yet loaded) image file: 8, or 16 for deeper files.

    Pillow opens 16-bit RGB PNGs (and 16-bit PPM and TIFF) as mode ``RGB`` and silently keeps
    the high byte on load, so the file's raw mode is checked too (it is gone after ``load``).
    """
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return 16
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        args = (args,) if isinstance(args, str) else args
        if not isinstance(args, tuple) or not args:
            continue
        if isinstance(args[0], str) and ";16" in args[0]:
            return 16
        if im.format == "PPM" and len(args) > 1 and isinstance(args[1], int) and args[1] > 255:
            return 16
    return 8


def _deep_samples(p: Path, im: Image.Image) -> np.ndarray:
    """The samples of a loaded high-bit-depth image at full precision: uint16 (H, W) or
    (H, W, 3)."""
    mode = im.mode
    if mode == "F":
        raise SandwichError(f"{p}: is a floating-point image; save it as a 16-bit PNG first")
    if mode == "I" or mode.startswith("I;16"):
        arr = np.asarray(im)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise SandwichError(f"{p}: has more than 16 bits per sample; sandwich reads 8 or 16")
        return arr.astype(np.uint16)
    if im.format != "PNG":
        raise SandwichError(
            f"{p}: 16-bit {im.format or mode} colour files are not supported; save it as a "
            "16-bit PNG"
        )
    import imagecodecs

    try:
        arr = np.asarray(imagecodecs.png_decode(p.read_bytes()))
    except Exception as e:  # imagecodecs raises its own PngError (and others)
        raise SandwichError(f"{p}: cannot read the image ({e}); is the file truncated?") from None
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] != 3:
        raise SandwichError(f"{p}: unexpected 16-bit PNG layout {arr.dtype} {arr.shape}")
    return arr


def _load(
    path: str | Path, allow_gray: bool, deep_ok: bool, deep_hint: str = DEEP_HINT
) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise SandwichError(f"{p}: no such file")
    if p.is_dir():
        raise SandwichError(f"{p}: is a folder; pass an image file (or a folder with -o FOLDER)")
    try:
        with pillow_bombs_as_errors(str(p)), Image.open(p) as im:
            check_pixels(im.size[1], im.size[0], str(p))
            bits = stored_bits(im)
            im.load()
            orientation = im.getexif().get(_ORIENTATION, 1)
            mode = im.mode
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                raise SandwichError(
                    f"{p}: has an alpha channel; sandwich codes opaque RGB images: "
                    "remove the alpha channel first"
                )
            if bits > 8 and not deep_ok:
                raise SandwichError(
                    f"{p}: has more than 8 bits per sample (mode {mode}); 8-bit models take "
                    f"8-bit images: convert it to 8-bit first, or use a 16-bit model {deep_hint}"
                )
            gray = mode in ("1", "L", "P") or (bits > 8 and mode != "RGB")
            if gray and not allow_gray:
                raise SandwichError(f"{p}: is grayscale; this model needs an RGB image")
            if mode == "CMYK":
                raise SandwichError(f"{p}: is CMYK; convert it to RGB first")
            if bits > 8:
                arr = _deep_samples(p, im)
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"))
            arr = orient(arr, orientation)
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


_ORIENTATION = 0x0112  # the EXIF tag that says how a camera held the photo


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """An (H, W, ...) array as it should be shown, given its EXIF orientation (1..8; 1 and
    unknown values: as stored), the way viewers apply it. The tag itself is not carried on:
    outputs are stored upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    op = ops.get(orientation)
    return arr if op is None else np.ascontiguousarray(op(arr))


def load_rgb(path: str | Path, allow_gray: bool = True, deep_hint: str = DEEP_HINT) -> np.ndarray:
    """Load an 8-bit image as (H, W, 3) uint8 RGB.

    Grayscale inputs are expanded to three equal channels (``allow_gray``). Images with an
    alpha channel, more than 8 bits per sample (including 16-bit RGB PNGs, which Pillow would
    silently cut to 8 bits), or fewer than 8 pixels per side are refused with a
    :class:`SandwichError` that says what to do; ``deep_hint`` ends the message for a
    deeper image (the caller that knows the zoo names its 16-bit models there).
    """
    return _load(path, allow_gray, deep_ok=False, deep_hint=deep_hint)


def load_image(path: str | Path, allow_gray: bool = True) -> np.ndarray:
    """Load an 8- or 16-bit image as (H, W, 3) RGB at its own precision: uint8 for 8-bit files,
    uint16 for 16-bit ones (16-bit PNG RGB or gray, and 16-bit grayscale PGM/TIFF).

    The same checks as :func:`load_rgb`, except that more than 8 bits per sample is allowed.
    """
    return _load(path, allow_gray, deep_ok=True)


def load_rgb16(path: str | Path, allow_gray: bool = True) -> np.ndarray:
    """Load an image as (H, W, 3) uint16 RGB, 0..65535; 8-bit files are scaled by 257 (so
    255 -> 65535), 16-bit ones are kept as they are."""
    return to_16bit(load_image(path, allow_gray))


def to_16bit(image: np.ndarray) -> np.ndarray:
    """uint8 -> uint16 scaled by 257 (exact: x8 * 257 / 257 = x8); uint16 unchanged."""
    if image.dtype == np.uint16:
        return image
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 or uint16 samples, got {image.dtype}")
    return image.astype(np.uint16) * np.uint16(257)


def to_8bit(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8, round(x / 257) (the nearest 8-bit value); uint8 unchanged."""
    if image.dtype == np.uint8:
        return image
    if image.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16 samples, got {image.dtype}")
    return np.rint(image.astype(np.float64) / 257.0).astype(np.uint8)


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
    """Write ``data`` to ``out`` through a temporary file in the same folder, then publish it
    in one step: without ``force`` by a hard link that fails if ``out`` exists (so a racing
    writer is refused, never silently replaced), with ``force`` by a rename. Nothing
    half-written is ever visible under ``out``."""
    check_writable(out, force)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sandwich-", suffix=".part", dir=parent)
    except OSError as e:
        raise SandwichError(f"{parent}: cannot write there ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
        _publish(tmp, out, force)
    except OSError as e:
        raise SandwichError(f"{out}: cannot write it ({e.strerror})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _publish(tmp: str, out: Path, force: bool) -> None:
    if force:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # atomic, and refuses an existing name
    except FileExistsError:
        raise SandwichError(f"{out}: already exists; pass --force to overwrite it") from None
    except OSError:  # a file system without hard links: the best a rename can do
        if out.exists():
            raise SandwichError(f"{out}: already exists; pass --force to overwrite it") from None
        os.replace(tmp, out)


def save_png(out: Path, image: np.ndarray, force: bool = False) -> None:
    """Save a uint8 (H, W, 3) or (H, W) array as PNG, atomically; uint16 arrays are written as
    16-bit PNGs (:func:`save_png16`)."""
    import io

    if image.dtype == np.uint16:
        save_png16(out, image, force)
        return
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue(), force)


def encode_png16(image: np.ndarray) -> bytes:
    """A uint16 (H, W, 3) or (H, W) array as 16-bit PNG bytes (RGB or gray, via libpng)."""
    import imagecodecs

    if image.dtype != np.uint16:
        raise ValueError(f"a 16-bit PNG stores uint16 samples, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"a 16-bit PNG stores (H, W) or (H, W, 3) arrays, got {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(image)))


def save_png16(out: Path, image: np.ndarray, force: bool = False) -> None:
    """Save a uint16 (H, W, 3) or (H, W) array as a 16-bit PNG, atomically."""
    atomic_write_bytes(out, encode_png16(image), force)


# ----------------------------------------------------------------- N-channel arrays (.npy)
ARRAY_SUFFIX = ".npy"


def list_arrays(folder: str | Path) -> list[Path]:
    """Sorted ``.npy`` files (any case) directly inside ``folder``: N-channel images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SandwichError(f"{folder} is not a folder of arrays")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ARRAY_SUFFIX)


def read_array(path: str | Path) -> np.ndarray:
    """An N-channel image stored as a NumPy ``.npy`` file: (H, W, N) uint8, N >= 1.

    Refuses (one-line :class:`SandwichError`) missing files, other file types, pickled or
    unreadable arrays, arrays that are not (H, W, N) uint8 and images smaller than 8x8.
    """
    p = Path(path)
    if not p.exists():
        raise SandwichError(f"{p}: no such file")
    if p.is_dir():
        raise SandwichError(f"{p}: is a folder; pass a .npy file (or a folder with -o FOLDER)")
    if p.suffix.lower() != ARRAY_SUFFIX:
        raise SandwichError(
            f"{p}: is not a .npy array; N-channel images are (H, W, N) uint8 .npy files"
        )
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SandwichError(f"{p}: cannot read the .npy array ({reason})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.dtype != np.uint8:
        shape = "x".join(map(str, getattr(arr, "shape", ())))
        raise SandwichError(
            f"{p}: holds a {shape} {getattr(arr, 'dtype', '?')} array; N-channel images are "
            "(H, W, N) uint8"
        )
    h, w = arr.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise SandwichError(
            f"{p}: is {w}x{h} pixels; sandwich needs at least {MIN_SIDE}x{MIN_SIDE}"
        )
    return np.ascontiguousarray(arr)


def load_array(path: str | Path, channels: int, who: str = "this model") -> np.ndarray:
    """:func:`read_array` of an image for a pipeline of ``channels`` channels: (H, W, channels)
    uint8. Image files (PNG, JPEG, ...) and arrays with another channel count are refused with
    a one-line :class:`SandwichError` naming ``who`` (e.g. "model 'material6'")."""
    p = Path(path)
    if p.exists() and p.is_file() and p.suffix.lower() != ARRAY_SUFFIX:
        raise SandwichError(
            f"{p}: {who} works on {channels}-channel images given as (H, W, {channels}) uint8 "
            f".npy arrays, not {p.suffix or 'extensionless'} files"
        )
    arr = read_array(p)
    if arr.shape[2] != channels:
        raise SandwichError(
            f"{p}: has {arr.shape[2]} channel(s); {who} works on {channels}-channel "
            f"images (H, W, {channels})"
        )
    return arr


def save_npy(out: Path, image: np.ndarray, force: bool = False) -> None:
    """Save an (H, W, N) array as a ``.npy`` file (no pickle), atomically."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(image), allow_pickle=False)
    atomic_write_bytes(out, buf.getvalue(), force)
