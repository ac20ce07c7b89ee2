"""Offline image corpus built from photos that ship inside installable packages.

No data set can be downloaded on the machines this project targets, but package registries are
reachable.  The corpus is therefore assembled from:

* **train**: natural photos of the Debian packages ``lomiri-wallpapers-16.04`` (top-level
  ``usr/share/backgrounds/*.jpg``) and ``mate-backgrounds`` (``.../mate/nature/*.jpg``), fetched
  with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (nothing is installed);
* **extra**: more training photos, added after the first models were trained (so ``train`` keeps
  the images that their recorded commands name): the photographs among the wallpapers of
  ``plasma-workspace-wallpapers`` and ``lomiri-wallpapers-20.04`` (chosen by eye, listed in
  :data:`EXTRA_PHOTOS`). Train on both with ``--data data/corpus/train --data data/corpus/extra``;
* **dev**: photos of the same packages held out of training for model selection (checkpoints,
  hyper-parameters), so that the validation images are only ever used to report results;
* **val**: sample photos inside the installed Python wheels (scikit-image, scikit-learn,
  matplotlib) and, with the Debian step, lossless PNGs of ``libjxl-testdata``.

Every JPEG-sourced image is downscaled by an integer factor with an antialiasing filter to hide
the artefacts of its source, then centre-cropped so both sides are multiples of 16, and saved as
8-bit RGB PNG.  ``OUT/manifest.json`` records where each image came from and under which licence.

With ``bit_depth=16`` (``sandwich data --bit-depth 16``, default folder ``data/corpus16``) the same
sources, split, factors and crops give 16-bit RGB PNGs instead: the downscaling runs in float on
each channel (the same Lanczos filter, no rounding in between) and the result x (0..255 floats)
is stored as round(257 x). Averaging over a 2-6x downscale makes genuinely more than 8 bits of
precision out of 8-bit photos, which is what the ``hdr16`` scenario trains on. (Validation images
coded at factor 1 are 8-bit content times 257.) libjxl-testdata also ships truly 16-bit PNGs
(``jxl/hdr_room.png`` and 64x64 crops in linear or wide-gamut colour spaces), but none of them is
a validation source of this corpus (its validation files from that package, ``flower.png`` and the
``*_srgb8.png`` photos, are 8-bit), so they are left out: the validation set stays the same images
at both bit depths.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from sandwich.data.staging import MANIFEST_NAME, command_line, staged_folder, write_manifest
from sandwich.errors import SandwichError
from sandwich.media.files import encode_png16, load_image, stored_bits
from sandwich.media.files import list_images as list_images  # re-exported for corpus users

MULTIPLE = 16  # both sides of every corpus image are multiples of this
TRAIN_MAX_SIDE = 1024  # training images are downscaled until the longer side fits
MANIFEST_VERSION = 2  # 2: the extra and dev splits
SPLITS = ("train", "extra", "dev", "val")

DEB_TRAIN = ("lomiri-wallpapers-16.04", "mate-backgrounds")
DEB_VAL = ("libjxl-testdata",)
DEB_EXTRA = ("plasma-workspace-wallpapers", "lomiri-wallpapers-20.04")
PLASMA_ROOT = "usr/share/wallpapers"
# Photographs among the wallpapers (the rest are renders and drawings; checked by eye), with
# the split each goes to. Plasma wallpapers are folders with one image per screen size: the
# largest is used. The dev photos span scenes unlike each other (cups, a lake at dusk, a leaf,
# a forest path).
EXTRA_PHOTOS: dict[tuple[str, str], str] = {
    ("plasma-workspace-wallpapers", "BytheWater"): "extra",
    ("plasma-workspace-wallpapers", "ColdRipple"): "extra",
    ("plasma-workspace-wallpapers", "DarkestHour"): "extra",
    ("plasma-workspace-wallpapers", "Grey"): "extra",
    ("plasma-workspace-wallpapers", "Kite"): "extra",
    ("plasma-workspace-wallpapers", "OneStandsOut"): "extra",
    ("plasma-workspace-wallpapers", "summer_1am"): "extra",
    ("lomiri-wallpapers-20.04", "Kleiber_by_Lukas_Baubkus.jpg"): "extra",
    ("lomiri-wallpapers-20.04", "Infinite-Sea_by_Aury88.jpg"): "extra",
    ("plasma-workspace-wallpapers", "ColorfulCups"): "dev",
    ("plasma-workspace-wallpapers", "EveningGlow"): "dev",
    ("plasma-workspace-wallpapers", "FallenLeaf"): "dev",
    ("plasma-workspace-wallpapers", "Path"): "dev",
}
# Files matched by the training patterns that are not natural photos (checked by eye).
NOT_PHOTOS = {
    ("lomiri-wallpapers-16.04", "umang_by_Abhishek_Mudgal.jpg"): "synthetic gradient render",
}


# --------------------------------------------------------------------------------------- helpers


def train_factor(width: int, height: int, max_side: int = TRAIN_MAX_SIDE) -> int:
    """Smallest integer factor >= 2 that brings the longer side down to at most ``max_side``."""
    return max(2, math.ceil(max(width, height) / max_side))


def to_rgb8(img: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB (16-bit greys are scaled, alpha is dropped)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    return img.convert("RGB")


def to_rgb_float(img: Image.Image) -> np.ndarray:
    """Any PIL image as (H, W, 3) float32 RGB on the 0..255 scale without rounding: 16-bit
    greys are divided by 257, other images go through :func:`to_rgb8`."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr * (255.0 / peak), 0.0, 255.0).astype(np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(to_rgb8(img), dtype=np.float32)


def downscale_float(arr: np.ndarray, factor: int) -> np.ndarray:
    """:func:`downscale` of an (H, W, 3) float array: the same Lanczos filter and crop, run on
    each channel as a 32-bit float image (Pillow mode ``F``), so nothing is rounded to 8 bits."""
    if factor < 1:
        raise ValueError(f"downscale factor must be >= 1, got {factor}")
    if factor == 1:
        return arr.astype(np.float32)
    h, w = arr.shape[0] // factor, arr.shape[1] // factor
    if w < 1 or h < 1:
        raise ValueError(f"image {arr.shape[1]}x{arr.shape[0]} too small for factor {factor}")
    box = (0, 0, w * factor, h * factor)
    planes = []
    for c in range(arr.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(arr[:, :, c], dtype=np.float32))
        planes.append(np.asarray(plane.resize((w, h), Image.Resampling.LANCZOS, box=box)))
    return np.stack(planes, axis=2)


def downscale(img: Image.Image, factor: int) -> Image.Image:
    """Shrink by an exact integer ``factor`` with a Lanczos (antialiasing) filter.

    A few right/bottom pixels are dropped first so that both sides divide by ``factor``.
    """
    if factor < 1:
        raise ValueError(f"downscale factor must be >= 1, got {factor}")
    if factor == 1:
        return img
    w, h = img.size[0] // factor, img.size[1] // factor
    if w < 1 or h < 1:
        raise ValueError(f"image {img.size} too small for factor {factor}")
    return img.resize((w, h), Image.Resampling.LANCZOS, box=(0, 0, w * factor, h * factor))


def crop_box(width: int, height: int, multiple: int = MULTIPLE) -> tuple[int, int, int, int]:
    """Centred crop box whose sides are the largest multiples of ``multiple`` that fit."""
    cw, ch = width - width % multiple, height - height % multiple
    if cw == 0 or ch == 0:
        raise ValueError(f"image {width}x{height} is smaller than {multiple}x{multiple}")
    left, top = (width - cw) // 2, (height - ch) // 2
    return left, top, left + cw, top + ch


def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """Parse a machine-readable Debian copyright file into ``(patterns, licence, copyright)``.

    Only ``Files`` paragraphs are returned, in file order (in DEP-5 the last match wins).
    """
    entries: list[tuple[list[str], str, str]] = []
    for para in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = None
        for line in para.split("\n"):
            if not line.strip():
                continue
            if line[0] in " \t":
                if key is not None:
                    fields[key].append(line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep:
                key = None
                continue
            key = name.strip().lower()
            fields[key] = [value.strip()]
        if "files" not in fields:
            continue
        patterns = " ".join(fields["files"]).split()
        licence = fields.get("license", [""])[0]
        holders = "; ".join(v for v in fields.get("copyright", []) if v)
        entries.append((patterns, licence, holders))
    return entries


def _pattern_matches(relpath: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(relpath, pattern) or fnmatch.fnmatchcase(relpath, "*/" + pattern):
        return True
    # Upstream layouts differ from the installed one (lomiri lists "16.04/NAME.jpg" but installs
    # "backgrounds/NAME.jpg"): fall back to the file name when the pattern names one file.
    base = pattern.rsplit("/", 1)[-1]
    return not any(c in base for c in "*?[") and base == relpath.rsplit("/", 1)[-1]


def dep5_licence(entries: list[tuple[list[str], str, str]], relpath: str) -> tuple[str, str]:
    """``(licence, copyright)`` of ``relpath`` (path relative to the data root) or ``("", "")``."""
    found = ("", "")
    for patterns, licence, holders in entries:
        if any(_pattern_matches(relpath, p) for p in patterns):
            found = (licence, holders)
    return found


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _last_line(text: bytes | str | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    # apt prints a harmless "unsandboxed" warning as root; prefer a real error line
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or ["no output"])[-1]


@dataclass(frozen=True)
class FetchHints:
    """What the one-line errors of :func:`run_tool` and :func:`fetch_deb` advise: when a tool is
    missing, when it fails, and when a download yields no package file."""

    missing: str = "pass --no-debian to build only the validation images"
    failed: str = "try `apt-get update`, or pass --no-debian to build only the validation images"
    empty: str = "pass --no-debian to skip it"


CORPUS_HINTS = FetchHints()


def run_tool(cmd: list[str], cwd: Path, what: str, hints: FetchHints = CORPUS_HINTS) -> None:
    """Run an external tool (``apt-get``, ``dpkg-deb``, ...) quietly in ``cwd``; a missing tool
    or a failure is a one-line :class:`SandwichError` naming ``what`` (the tool's last error
    line) and the advice in ``hints``."""
    try:
        subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)
    except FileNotFoundError as e:
        raise SandwichError(f"{what}: {cmd[0]} not found; {hints.missing}") from e
    except subprocess.CalledProcessError as e:
        raise SandwichError(
            f"{what} failed ({_last_line(e.stderr or e.stdout)}); {hints.failed}"
        ) from e


# ------------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class _Item:
    """One source image to convert."""

    split: str  # one of SPLITS
    name: str  # output file stem
    path: Path  # file on disk
    source: str  # package name
    source_version: str
    original_path: str  # path as shipped by the package
    factor: int | None  # None: training rule (train_factor)
    licence: str
    copyright: str | None = None
    copyright_file: str | None = None


@dataclass(frozen=True)
class DebPackage:
    """A downloaded Debian package unpacked (not installed) into ``root``, with the licences of
    its machine-readable copyright file (:func:`parse_dep5`)."""

    name: str
    version: str
    deb: Path
    root: Path  # extraction dir
    copyright_file: str | None  # path inside the package
    entries: list[tuple[list[str], str, str]]


_Deb = DebPackage


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _wheel_items() -> tuple[list[_Item], list[dict]]:
    """Validation photos shipped in installed wheels; files that are missing are skipped."""
    import matplotlib
    import skimage
    import skimage.data
    import sklearn

    skimage_notes = {
        "astronaut.png": "public domain (NASA), per skimage.data.astronaut",
        "coffee.png": "CC0 (photographer Rachel Michetti), per skimage.data.coffee",
        "chelsea.png": "CC0 (photographer Stefan van der Walt), per skimage.data.chelsea",
        "rocket.jpg": "public domain (SpaceX), per skimage.data.rocket",
    }
    sklearn_notes = {
        "china.jpg": "CC-BY-2.0 (danielbuechele on Flickr), per sklearn/datasets/images/README.txt",
        "flower.jpg": "CC-BY-2.0 (vultilion on Flickr), per sklearn/datasets/images/README.txt",
    }
    groups: list[tuple[str, str, object, Path, dict[str, str]]] = [
        ("scikit-image", "skimage", skimage, Path(skimage.data.data_dir), skimage_notes),
        (
            "scikit-learn",
            "sklearn",
            sklearn,
            Path(sklearn.__file__).parent / "datasets" / "images",
            sklearn_notes,
        ),
        (
            "matplotlib",
            "mpl",
            matplotlib,
            Path(matplotlib.get_data_path()) / "sample_data",
            {"grace_hopper.jpg": "public domain (U.S. Navy photo), matplotlib sample data"},
        ),
    ]
    items: list[_Item] = []
    skipped: list[dict] = []
    for dist, tag, module, folder, notes in groups:
        site = Path(module.__file__).parent.parent  # type: ignore[attr-defined]
        for filename, note in notes.items():
            path = folder / filename
            if not path.is_file():  # would need a pooch download: never fetch
                skipped.append({"source": dist, "file": filename, "reason": "not in the wheel"})
                continue
            try:
                shipped = path.resolve().relative_to(site.resolve()).as_posix()
            except ValueError:
                shipped = str(path)
            items.append(
                _Item(
                    split="val",
                    name=f"{tag}_{Path(filename).stem}",
                    path=path,
                    source=dist,
                    source_version=_dist_version(dist),
                    original_path=shipped,
                    factor=2,
                    licence=note,
                )
            )
    return items, skipped


def fetch_deb(
    name: str,
    cache: Path,
    work: Path,
    say: Callable[[str], None],
    hints: FetchHints = CORPUS_HINTS,
) -> DebPackage:
    """Download (or reuse from ``cache``) and unpack one Debian package without installing it:
    ``apt-get download`` into ``cache``, ``dpkg-deb -x`` into ``work/name``."""
    found = sorted(cache.glob(f"{name}_*.deb"))
    if not found:
        say(f"apt-get download {name}")
        run_tool(
            ["apt-get", "download", name], cwd=cache, what=f"apt-get download {name}", hints=hints
        )
        found = sorted(cache.glob(f"{name}_*.deb"))
        if not found:
            raise SandwichError(f"apt-get download {name} produced no .deb; {hints.empty}")
    deb = found[-1]
    root = work / name
    root.mkdir(parents=True, exist_ok=True)
    run_tool(
        ["dpkg-deb", "-x", str(deb), str(root)],
        cwd=work,
        what=f"dpkg-deb -x {deb.name}",
        hints=hints,
    )
    version = deb.name.split("_")[1] if deb.name.count("_") >= 2 else "unknown"
    copyright_path = root / "usr" / "share" / "doc" / name / "copyright"
    entries: list[tuple[list[str], str, str]] = []
    rel_copyright = None
    if copyright_path.is_file():
        rel_copyright = "/" + copyright_path.relative_to(root).as_posix()
        entries = parse_dep5(copyright_path.read_text(encoding="utf-8", errors="replace"))
    return DebPackage(name, version.replace("%3a", ":"), deb, root, rel_copyright, entries)


def _deb_item(
    deb: DebPackage, path: Path, split: str, name: str, factor: int | None, licence_path: str
) -> _Item:
    """One image of an unpacked package, its licence looked up in the package's DEP-5 file by
    ``licence_path`` (the path its ``Files`` patterns are matched against)."""
    licence, holders = dep5_licence(deb.entries, licence_path)
    return _Item(
        split=split,
        name=name,
        path=path,
        source=deb.name,
        source_version=deb.version,
        original_path="/" + path.relative_to(deb.root).as_posix(),
        factor=factor,
        licence=licence or "see copyright_file",
        copyright=holders or None,
        copyright_file=deb.copyright_file,
    )


def _deb_items(
    deb: DebPackage,
    split: str,
    tag: str,
    data_root: str,
    pattern: str,
    factor: int | None,
    skipped: list[dict],
) -> list[_Item]:
    base = deb.root / data_root
    items = []
    for path in sorted(base.glob(pattern)):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        reason = NOT_PHOTOS.get((deb.name, rel))
        if reason:
            skipped.append({"source": deb.name, "file": rel, "reason": reason})
            continue
        name = f"{tag}_{path.stem.removesuffix('_srgb8')}"
        items.append(_deb_item(deb, path, split, name, factor, rel))
    if not items:
        raise SandwichError(
            f"package {deb.name} has no files matching {data_root}/{pattern}; "
            "pass --no-debian to skip the Debian images"
        )
    return items


def largest_plasma_image(folder: Path) -> Path | None:
    """The largest ``contents/images/WxH.ext`` of a Plasma wallpaper folder, or None."""
    best: tuple[int, Path] | None = None
    for path in (folder / "contents" / "images").glob("*"):
        w, x, h = path.stem.partition("x")
        if not (path.is_file() and x and w.isdigit() and h.isdigit()):
            continue
        if best is None or int(w) * int(h) > best[0]:
            best = (int(w) * int(h), path)
    return best[1] if best else None


def _extra_items(debs: dict[str, DebPackage], skipped: list[dict]) -> list[_Item]:
    """The :data:`EXTRA_PHOTOS` of the ``extra`` and ``dev`` splits (training rule factors)."""
    items = []
    for (package, entry), split in EXTRA_PHOTOS.items():
        deb = debs[package]
        if package == "plasma-workspace-wallpapers":
            path = largest_plasma_image(deb.root / PLASMA_ROOT / entry)
            tag, stem = "plasma", entry
        else:
            path = deb.root / "usr/share/backgrounds" / entry
            tag, stem = "lomiri20", Path(entry).stem
        if path is None or not path.is_file():
            skipped.append({"source": package, "file": entry, "reason": "not in this version"})
            continue
        rel = path.relative_to(deb.root).as_posix()
        items.append(_deb_item(deb, path, split, f"{tag}_{stem}", None, rel))
    return items


def _debian_items(
    cache: Path, work: Path, out_tmp: Path, say: Callable[[str], None], skipped: list[dict]
) -> tuple[list[_Item], dict]:
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SandwichError(
                f"{tool} not found (Debian packages are needed for the training images); "
                "pass --no-debian to build only the validation images"
            )
    names = DEB_TRAIN + DEB_VAL + DEB_EXTRA
    debs = {name: fetch_deb(name, cache, work, say) for name in names}
    lomiri, mate, jxl = (debs[n] for n in DEB_TRAIN + DEB_VAL)
    items = [
        *_deb_items(lomiri, "train", "lomiri", "usr/share/backgrounds", "*.jpg", None, skipped),
        *_deb_items(
            mate, "train", "mate", "usr/share/backgrounds/mate", "nature/*.jpg", None, skipped
        ),
        *_deb_items(
            jxl, "val", "jxl", "usr/share/libjxl-testdata", "jxl/flower/flower.png", 3, skipped
        ),
        *_deb_items(
            jxl,
            "val",
            "wesaturate",
            "usr/share/libjxl-testdata",
            "external/wesaturate/500px/*_srgb8.png",
            1,
            skipped,
        ),
        *_extra_items(debs, skipped),
    ]
    packages = {}
    licences = out_tmp / "licenses"
    for deb in debs.values():
        info: dict = {
            "kind": "deb",
            "version": deb.version,
            "deb": deb.deb.name,
            "sha256": sha256_file(deb.deb),
            "copyright_file": deb.copyright_file,
        }
        if deb.copyright_file:
            licences.mkdir(exist_ok=True)
            copy = licences / f"{deb.name}.copyright"
            shutil.copyfile(deb.root / deb.copyright_file.lstrip("/"), copy)
            info["copyright_copy"] = copy.relative_to(out_tmp).as_posix()
        packages[deb.name] = info
    return items, packages


# ------------------------------------------------------------------------------------ building


def _convert16(item: _Item, dest: Path) -> tuple[tuple[int, int], int, tuple, tuple[int, int]]:
    """The 16-bit version of :func:`_convert`: float downscale, round(257 x), 16-bit PNG.

    Returns (original size, factor, crop box, final size)."""
    with Image.open(item.path) as src:
        deep = stored_bits(src) > 8 and src.mode == "RGB"
        if not deep:
            arr = to_rgb_float(ImageOps.exif_transpose(src))
    if deep:  # a 16-bit colour PNG: Pillow would keep only 8 bits of it
        arr = load_image(item.path).astype(np.float32) / np.float32(257.0)
    original = (arr.shape[1], arr.shape[0])
    factor = item.factor if item.factor is not None else train_factor(*original)
    arr = downscale_float(arr, factor)
    box = crop_box(arr.shape[1], arr.shape[0])
    arr = arr[box[1] : box[3], box[0] : box[2]]
    x16 = np.clip(np.rint(arr.astype(np.float64) * 257.0), 0, 65535).astype(np.uint16)
    dest.write_bytes(encode_png16(x16))
    return original, factor, box, (x16.shape[1], x16.shape[0])


def _convert(item: _Item, dest: Path, bit_depth: int = 8) -> dict:
    if bit_depth > 8:
        original, factor, box, final = _convert16(item, dest)
    else:
        with Image.open(item.path) as src:
            img = ImageOps.exif_transpose(src)
            img = to_rgb8(img)
        original = img.size
        factor = item.factor if item.factor is not None else train_factor(*original)
        img = downscale(img, factor)
        box = crop_box(*img.size)
        img = img.crop(box)
        img.save(dest, format="PNG", optimize=False, compress_level=6)
        final = img.size
    entry = {
        "file": dest.relative_to(dest.parent.parent).as_posix(),
        "split": item.split,
        "source": item.source,
        "source_version": item.source_version,
        "original_path": item.original_path,
        "original_size": list(original),
        "downscale": factor,
        "crop": list(box),
        "final_size": list(final),
        "licence": item.licence,
    }
    if item.copyright:
        entry["copyright"] = item.copyright
    if item.copyright_file:
        entry["copyright_file"] = item.copyright_file
    return entry


def _totals(images: Iterable[dict]) -> dict:
    totals: dict[str, dict[str, int]] = {s: {"count": 0, "pixels": 0} for s in SPLITS}
    for entry in images:
        w, h = entry["final_size"]
        totals[entry["split"]]["count"] += 1
        totals[entry["split"]]["pixels"] += w * h
    return totals


def _reuse_cache(old_cache: Path, new_cache: Path) -> None:
    """Hard-link (or copy) previously downloaded .deb files so --force needs no download."""
    if not old_cache.is_dir():
        return
    for deb in old_cache.glob("*.deb"):
        link_or_copy(deb, new_cache / deb.name)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (a copy where links are impossible): reuses a
    download cache without copying it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_corpus(
    out: Path,
    debian: bool = True,
    force: bool = False,
    progress: bool = True,
    bit_depth: int = 8,
    deb_cache: Path | None = None,
) -> dict:
    """Build the corpus in ``out`` (``train/``, ``extra/``, ``dev/``, ``val/``, ``manifest.json``);
    return the manifest.

    With ``debian=False`` only the validation images from Python wheels are built (the other
    splits stay empty). ``bit_depth=16`` writes 16-bit PNGs of the same images (see the module
    notes).
    ``deb_cache``: another corpus folder whose downloaded .deb files are reused (e.g. the 8-bit
    corpus when building the 16-bit one). The corpus is assembled in a temporary folder next to
    ``out`` and renamed at the end, so an interrupted run never leaves a half-built corpus behind.
    """
    from tqdm.auto import tqdm

    if bit_depth not in (8, 16):
        raise SandwichError(f"--bit-depth {bit_depth}: use 8 or 16")
    out = Path(out).absolute()

    def say(msg: str) -> None:
        if progress:
            tqdm.write(f"sandwich data: {msg}", file=sys.stderr)

    with staged_folder(out, force) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir()
        items, skipped = _wheel_items()
        packages: dict[str, dict] = {
            dist: {"kind": "wheel", "version": _dist_version(dist)}
            for dist in sorted({i.source for i in items})
        }
        if debian:
            cache = tmp / ".cache" / "deb"
            work = tmp / ".cache" / "extract"
            cache.mkdir(parents=True)
            work.mkdir()
            _reuse_cache(out / ".cache" / "deb", cache)
            if deb_cache is not None:
                for deb in (Path(deb_cache) / ".cache" / "deb").glob("*.deb"):
                    if not (cache / deb.name).exists():
                        link_or_copy(deb, cache / deb.name)
            deb_items, deb_packages = _debian_items(cache, work, tmp, say, skipped)
            items = deb_items + items
            packages.update(deb_packages)
        names = [f"{i.split}/{i.name}" for i in items]
        if len(set(names)) != len(names):
            raise SandwichError("two source images map to the same output name")

        images = []
        for item in tqdm(items, desc="corpus", unit="img", disable=not progress, file=sys.stderr):
            images.append(_convert(item, tmp / item.split / f"{item.name}.png", bit_depth))
        if debian:
            shutil.rmtree(tmp / ".cache" / "extract")

        manifest = {
            "version": MANIFEST_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command_line(),
            "debian": debian,
            "multiple": MULTIPLE,
            "train_max_side": TRAIN_MAX_SIDE,
            "resample": "LANCZOS",
            "bit_depth": bit_depth,
            "totals": _totals(images),
            "packages": packages,
            "skipped": skipped,
            "images": images,
        }
        write_manifest(tmp, manifest)
    return manifest


def load_manifest(out: Path) -> dict:
    """Read ``OUT/manifest.json`` written by :func:`build_corpus`."""
    path = Path(out) / MANIFEST_NAME
    if not path.is_file():
        raise SandwichError(f"{path} not found; run `sandwich data --out {out}` first")
    return json.loads(path.read_text(encoding="utf-8"))
