"""Six-channel "material" images derived from the photo corpus: RGB albedo + a normal map.

Textures with more than three channels do not ship offline, so they are derived the standard way
normal maps are made from photos: the height field is the smoothed luminance of the photo, and
the tangent-space normal of a height field h is n = normalise(-s dh/dx, s dh/dy, 1), with the
gradient taken by central finite differences (one-sided at the borders) and ``s`` the strength.

Conventions:

* height: BT.601 luma / 255 (0..1), Gaussian-smoothed with ``sigma`` pixels (edges replicated);
* x to the right, y up (OpenGL / "green up" normal maps): image rows grow downwards, so
  dh/dy = -dh/drow and n_y = -s * dh/dy = s * dh/drow;
* a unit vector n in -1..1 is stored as round((n + 1) / 2 * 255), uint8: flat is (128, 128, 255).

``build_material(corpus, out)`` writes, for every PNG of ``corpus/{train,val}``:

* ``out/{train,val}/NAME.npy``: (H, W, 6) uint8, channels 0..2 the albedo (the photo itself),
  3..5 the normal map;
* ``out/normals/{train,val}/NAME.png``: the normal map alone as an RGB PNG (the ``normals``
  scenario trains and evaluates on these);
* ``out/manifest.json``: the parameters, the source corpus and every file.

The split is the corpus's: validation images stay validation images.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from PIL import Image

from sandwich.data.staging import command_line, staged_folder, write_manifest
from sandwich.errors import SandwichError
from sandwich.media.color import luma

MANIFEST_VERSION = 1
DEFAULT_STRENGTH = 4.0
DEFAULT_SIGMA = 1.0


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps, radius ceil(3 sigma), float64."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) float64 array, edges replicated; sigma 0 = copy."""
    if sigma <= 0:
        return x.copy()
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    h, w = x.shape
    p = np.pad(x, ((r, r), (0, 0)), mode="edge")
    x = sum(k[i] * p[i : i + h] for i in range(len(k)))
    p = np.pad(x, ((0, 0), (r, r)), mode="edge")
    return sum(k[i] * p[:, i : i + w] for i in range(len(k)))


def height_field(rgb: np.ndarray, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float64 height in 0..1: BT.601 luma / 255, smoothed with a
    Gaussian of ``sigma`` pixels."""
    return _blur(luma(rgb) / 255.0, sigma)


def normal_map(height: np.ndarray, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """(H, W) height field in 0..1 -> (H, W, 3) uint8 tangent-space normals,
    round((n + 1) / 2 * 255), OpenGL convention (y up). A height step of 1 is ``strength``
    pixels of relief.

    n = normalise(-strength * dh/dcol, strength * dh/drow, 1), gradients by central differences
    (one-sided at the borders), in height units per pixel.
    """
    d_row, d_col = np.gradient(np.asarray(height, np.float64))
    n = np.stack([-strength * d_col, strength * d_row, np.ones_like(d_col)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.clip(np.rint((n + 1.0) * 0.5 * 255.0), 0, 255).astype(np.uint8)


def decode_normals(encoded: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 stored normals -> (H, W, 3) float64 unit vectors (renormalised)."""
    n = np.asarray(encoded, np.float64) / 255.0 * 2.0 - 1.0
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def material(
    rgb: np.ndarray, strength: float = DEFAULT_STRENGTH, sigma: float = DEFAULT_SIGMA
) -> np.ndarray:
    """(H, W, 3) uint8 photo -> (H, W, 6) uint8 material: albedo (the photo) + normal map."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    normals = normal_map(height_field(rgb, sigma), strength)
    return np.concatenate([rgb, normals], axis=2)


def build_material(
    corpus: Path,
    out: Path,
    force: bool = False,
    strength: float = DEFAULT_STRENGTH,
    sigma: float = DEFAULT_SIGMA,
) -> dict:
    """Build ``out`` (see the module notes) from the 8-bit corpus in ``corpus``; return the
    manifest. Assembled in a temporary folder and renamed, so nothing is left half-built."""
    from sandwich.media.files import list_images, load_rgb, save_npy

    corpus, out = Path(corpus), Path(out).absolute()
    if not (corpus / "train").is_dir() and not (corpus / "val").is_dir():
        raise SandwichError(f"{corpus}: no train/ or val/ folder; build it with `sandwich data`")
    if strength <= 0 or sigma < 0:
        raise SandwichError("--strength must be positive and --sigma not negative")
    with staged_folder(out, force) as tmp:
        images, totals = [], {}
        for split in ("train", "val"):
            (tmp / split).mkdir()
            (tmp / "normals" / split).mkdir(parents=True)
            files = list_images(corpus / split) if (corpus / split).is_dir() else []
            totals[split] = {"count": 0, "pixels": 0}
            for f in files:
                m = material(load_rgb(f), strength, sigma)
                save_npy(tmp / split / f"{f.stem}.npy", m)
                normals = Image.fromarray(np.ascontiguousarray(m[:, :, 3:]))
                normals.save(tmp / "normals" / split / f"{f.stem}.png", compress_level=1)
                h, w = m.shape[:2]
                images.append(
                    {
                        "file": f"{split}/{f.stem}.npy",
                        "normals": f"normals/{split}/{f.stem}.png",
                        "split": split,
                        "source": str(f),
                        "size": [w, h],
                    }
                )
                totals[split]["count"] += 1
                totals[split]["pixels"] += w * h
        manifest = {
            "version": MANIFEST_VERSION,
            "kind": "material",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command_line(),
            "corpus": str(corpus),
            "channels": ["albedo_r", "albedo_g", "albedo_b", "normal_x", "normal_y", "normal_z"],
            "layout": "(H, W, 6) uint8 .npy",
            "height": "BT.601 luma / 255, Gaussian blur",
            "sigma": sigma,
            "strength": strength,
            "normal_convention": "tangent space, OpenGL (x right, y up), round((n + 1) / 2 * 255)",
            "totals": totals,
            "images": images,
        }
        write_manifest(tmp, manifest)
    return manifest
