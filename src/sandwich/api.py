"""The library calls behind the CLI: compress and decompress files or folders, evaluate a set.

Every call works for any model type of :mod:`sandwich.models.registry` (the sandwich, the
progressive codec, next their clip versions): what a model takes, how its rate is controlled and
which files it reads are asked of the model, never switched on its kind. Errors are
:class:`~sandwich.errors.SandwichError` with one line that says what to do; outputs are written
through a temporary file published in one step, never over an existing file without ``force``.

    >>> from sandwich import api
    >>> api.compress("photo.png", "photo.jpg", model="gray-jpeg", value=50)   # doctest: +SKIP
    >>> api.decompress("photo.jpg", "back.png")                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sandwich.errors import SandwichError

ARRAY_SUFFIX = ".npy"


@dataclass(frozen=True)
class Done:
    """One file handled: ``src`` -> ``dst`` by ``model`` (None: decoded as a plain file) at
    knob ``value`` (None when decoding), ``bpp`` bits per pixel of the file (compress), and a
    few words for messages (``note``) and a warning, if any."""

    src: Path
    dst: Path
    model: str | None
    value: float | None = None
    knob: str = ""
    bpp: float | None = None
    note: str = ""
    warning: str = ""

    def message(self) -> str:
        """The line the CLI prints for this file."""
        if self.bpp is not None:  # compressed
            v = int(self.value) if float(self.value).is_integer() else self.value
            what = f"q={v}" if self.knob == "quality" else f"{v} {self.knob}"
            return f"{self.src} -> {self.dst}: {self.model} {what}, {self.bpp:.4f} bpp"
        if self.model is None:
            return f"{self.src} -> {self.dst}: {self.note}"
        return f"{self.src} -> {self.dst}: {self.model}" + (f", {self.note}" if self.note else "")


Report = Callable[[Done], None]
ErrorReport = Callable[[str], None]


# ---------------------------------------------------------------------------- inputs and pairs
def load_input(model, path: Path) -> np.ndarray:
    """The image file ``path`` as ``model`` takes it: (H, W, N) uint8 arrays (``.npy``) for
    N-channel models, 16-bit RGB (8-bit files scaled by 257) for high-bit-depth ones, 8-bit RGB
    otherwise."""
    from sandwich.media.files import load_array, load_rgb, load_rgb16
    from sandwich.zoo import high_bit_depth_models

    if model.channels != 3:
        return load_array(path, model.channels, f"model {model.name!r}")
    if path.suffix.lower() == ARRAY_SUFFIX:
        raise SandwichError(
            f"{path}: is a .npy array; model {model.name!r} takes RGB image files (PNG, JPEG, ...)"
        )
    if model.bit_depth > 8:
        return load_rgb16(path)
    hint = ", ".join(high_bit_depth_models()) or "sandwich train --scenario hdr16"
    return load_rgb(path, deep_hint=f"({hint})")


def _folder_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SandwichError(f"{out}: input is a folder, so the output must be a folder too")


def pairs(inp: Path, out: str | Path, suffix: str, arrays: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs: a file to a file (or into a folder: an existing one, or ``out``
    ending in ``/``, created), or a folder's images (its ``.npy`` arrays when ``arrays``) to a
    folder, created if needed."""
    from sandwich.media.files import expand_images, list_arrays

    into = str(out).endswith(("/", os.sep))
    out = Path(out)
    if into and not inp.is_dir():
        if out.exists() and not out.is_dir():
            raise SandwichError(f"{out}: is a file, not a folder to write into")
        out.mkdir(parents=True, exist_ok=True)
    if inp.is_dir():
        _folder_out(out)
        if arrays:
            files = list_arrays(inp)
            if not files:
                raise SandwichError(f"{inp}: no .npy arrays in this folder")
        else:
            files = expand_images([inp])
        out.mkdir(parents=True, exist_ok=True)
        return [(f, out / (f.stem + suffix)) for f in files]
    if not inp.exists():
        raise SandwichError(f"{inp}: no such file")
    if out.is_dir():
        return [(inp, out / (inp.stem + suffix))]
    return [(inp, out)]


def clip_pairs(inp: Path, out: str | Path, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) for one clip: a video file or a folder of numbered PNG frames, to a
    file (or into a folder: an existing one, or ``out`` ending in ``/``, created)."""
    into = str(out).endswith(("/", os.sep))
    out = Path(out)
    if not inp.exists():
        raise SandwichError(f"{inp}: no such file or folder")
    if into:
        if out.exists() and not out.is_dir():
            raise SandwichError(f"{out}: is a file, not a folder to write into")
        out.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        return [(inp, out / (inp.stem + suffix))]
    return [(inp, out)]


def save_clip(dst: Path, clip, force: bool = False) -> None:
    """Write a decoded :class:`~sandwich.media.clips.Clip`: ``.mp4`` as a viewing copy (H.264
    4:2:0 at CRF 12, which any player opens; close to the frames, not equal), ``.mkv`` as
    lossless FFV1, a name without a suffix as a folder of numbered PNG frames."""
    from sandwich.media.clips import write_clip

    if dst.suffix.lower() == ".mp4":
        from sandwich.codecs.video import X264Codec
        from sandwich.media.files import atomic_write_bytes, check_writable

        check_writable(dst, force)
        atomic_write_bytes(dst, X264Codec(fps=clip.fps).encode(clip.frames, 12), force)
        return
    write_clip(dst, clip.frames, clip.fps, force)


class _Images:
    """How the API reads, codes and writes images (models whose ``media`` is ``image``)."""

    @staticmethod
    def pairs(net, inp: Path, out: str | Path) -> list[tuple[Path, Path]]:
        return pairs(inp, out, net.file_suffix, arrays=net.channels != 3)

    @staticmethod
    def load(net, src: Path):
        return load_input(net, src)

    @staticmethod
    def compress(net, item, value: float) -> bytes:
        return net.compress(item, value)

    @staticmethod
    def save(dst: Path, item, force: bool) -> None:
        from sandwich.media.files import save_npy, save_png

        (save_npy if dst.suffix.lower() == ARRAY_SUFFIX else save_png)(dst, item, force)


class _Clips:
    """How the API reads, codes and writes clips (models whose ``media`` is ``clip``): a video
    file or a folder of numbered PNG frames in; MP4 out; decoded clips to a frames folder,
    ``.mkv`` or an ``.mp4`` viewing copy. Long clips show a progress bar."""

    @staticmethod
    def pairs(net, inp: Path, out: str | Path) -> list[tuple[Path, Path]]:
        return clip_pairs(inp, out, net.file_suffix)

    @staticmethod
    def load(net, src: Path):
        from sandwich.media.clips import Clip, read_clip

        frames, fps = read_clip(src)
        return Clip(frames, fps)

    @staticmethod
    def compress(net, item, value: float) -> bytes:
        from tqdm import tqdm

        with tqdm(total=item.frames.shape[0], desc="frames", unit="f", leave=False) as bar:
            return net.compress(item, value, progress=bar.update)

    @staticmethod
    def save(dst: Path, item, force: bool) -> None:
        save_clip(dst, item, force)


MEDIA = {"image": _Images, "clip": _Clips}  # a model's ``media`` -> how files are handled


def run_each(
    todo: list[tuple[Path, Path]],
    fn: Callable[[Path, Path], Done],
    report: Report | None,
    on_error: ErrorReport | None,
) -> list[Done]:
    """``fn`` on every pair. One pair: its error is raised. Several: each error is reported
    (``on_error``) and the others go on; then one error says how many failed."""
    done, failed = [], 0
    for src, dst in todo:
        try:
            d = fn(src, dst)
        except SandwichError as e:
            if len(todo) == 1:
                raise
            if on_error is not None:
                on_error(str(e))
            failed += 1
            continue
        done.append(d)
        if report is not None:
            report(d)
    if failed:
        raise SandwichError(f"{failed} of {len(todo)} file(s) failed")
    return done


# ---------------------------------------------------------------------------------- compress
def check_knob(model, value: float | None, option: str | None = None) -> None:
    """Refuse a knob value outside the model's range, naming the option (``--quality``)."""
    if value is None:
        return
    knob = model.knob
    if value not in knob:
        flag = option or f"--{knob.name}"
        lo, hi = int(knob.lo), int(knob.hi)
        raise SandwichError(
            f"{flag} {value}: {model.name} takes {lo}..{hi}"
            if knob.name != "quality"
            else f"{flag} {value}: use {lo}..{hi}"
        )


def compress(
    inp: str | Path,
    out: str | Path,
    model=None,
    value: float | None = None,
    target_bpp: float | None = None,
    force: bool = False,
    report: Report | None = None,
    on_error: ErrorReport | None = None,
    tile: int | None = None,
    settings: dict[str, object] | None = None,
) -> list[Done]:
    """Compress an image file (or a folder of them), or a clip (a video file or a folder of
    numbered PNG frames, for video models), with a zoo model or local weights.

    Args:
        inp, out: a file and its output file (or a folder to write into), or two folders;
            for video models a clip and its MP4 (or a folder to write into).
        model: zoo name, ``*.safetensors`` or a loaded model (default: the zoo's default).
        value: the model's knob (``model.knob``: JPEG quality, iterations); default
            ``model.default_knob``.
        target_bpp: instead of ``value``, the largest file of at most this many bits per pixel.
        force: overwrite existing outputs.
        report, on_error: called with each file done / each error (folders go on after one).
        tile: tile side in pixels for the networks (0: whole image; None: automatic), for
            models that tile (:mod:`sandwich.nets.tiling`: the output does not change; the
            progressive codec codes independent tiles instead, a slightly larger file).
        settings: the model's own coding settings (:meth:`CodecModel.configure`), e.g.
            ``{"prediction": "motion", "gop": 16}`` for the progressive video codec.
    """
    from sandwich.media.files import atomic_write_bytes, check_writable
    from sandwich.zoo import DEFAULT_MODEL, load_model

    if target_bpp is not None and not 0 < target_bpp < float("inf"):
        raise SandwichError(f"--target-bpp {target_bpp}: give a positive number of bits per pixel")
    net = load_model(model or DEFAULT_MODEL) if model is None or isinstance(model, str) else model
    set_tile(net, tile)
    net.configure(**(settings or {}))
    if value is not None and target_bpp is not None:
        raise SandwichError(f"give --{net.knob.name} or --target-bpp, not both")
    check_knob(net, value)
    media = MEDIA[net.media]
    todo = media.pairs(net, Path(inp), out)

    def one(src: Path, dst: Path) -> Done:
        check_writable(dst, force)
        img = media.load(net, src)
        pixels = net.pixels(img)
        if target_bpp is not None:
            v, data = net.compress_to_bpp(img, target_bpp)
        else:
            v = net.default_knob if value is None else value
            data = media.compress(net, img, v)
        atomic_write_bytes(dst, data, force)
        return Done(src, dst, net.name, v, net.knob.name, 8 * len(data) / pixels)

    return run_each(todo, one, report, on_error)


# -------------------------------------------------------------------------------- decompress
def set_tile(net, tile: int | None) -> None:
    """Give ``net`` a tile size (None: keep its automatic choice); refused for models that do
    not tile."""
    if tile is None:
        return
    if not hasattr(net, "tile"):
        raise SandwichError(f"--tile: model {net.name} does not tile its networks")
    if tile < 0:
        raise SandwichError(f"--tile {tile}: give a side in pixels, or 0 for the whole image")
    net.tile = tile


class ModelCache:
    """Models loaded once per call, by name, with the decoding options applied."""

    def __init__(self, ensemble: int, tile: int | None = None):
        self.ensemble, self.tile, self.cache = ensemble, tile, {}

    def get(self, name: str):
        from sandwich.zoo import load_model

        if name not in self.cache:
            net = load_model(name)
            if hasattr(net, "ensemble"):
                net.ensemble = self.ensemble
            if hasattr(net, "tile"):
                set_tile(net, self.tile)
            self.cache[name] = net
        return self.cache[name]


class _OutputError(SandwichError):
    """An error about the output path (its message names the output, not the input)."""


CLIP_OUTPUTS = ("", ".mp4", ".mkv")  # a folder of PNG frames, a viewing copy, lossless


def _check_output(dst: Path, suffix: str, why: str) -> None:
    """N-channel images go to ``.npy`` arrays, RGB images to image files (not ``.npy``), clips
    (``suffix`` "") to a folder of PNG frames, an ``.mp4`` or an ``.mkv``."""
    ext = dst.suffix.lower()
    if suffix == "":
        if ext not in CLIP_OUTPUTS:
            raise _OutputError(
                f"{dst}: {why}; give a folder name (PNG frames) or a name ending in .mp4 or .mkv"
            )
        return
    if ext in CLIP_OUTPUTS[1:]:
        raise _OutputError(f"{dst}: {why}; give an output ending in .png")
    is_array = dst.suffix.lower() == ARRAY_SUFFIX
    if suffix == ARRAY_SUFFIX and not is_array:
        raise _OutputError(f"{dst}: {why}; give an output ending in .npy")
    if suffix != ARRAY_SUFFIX and is_array:
        raise _OutputError(f"{dst}: {why}; give an output ending in .png")


def _choose_model(named: str | None, model: str | None) -> str | None:
    """The model to decode a file with: the zoo model the file names; the user's ``model`` for a
    file that names none, or names weights outside the zoo (a file never chooses what is
    loaded from disk); None for a plain file."""
    from sandwich.zoo import is_zoo_name

    if named is None or is_zoo_name(named):
        return named or model
    if model is None:
        shown = named if len(named) <= 80 else named[:77] + "..."
        raise SandwichError(
            f"made by {shown!r}, which is not a zoo model; decode it with -m and the "
            "weights you trust"
        )
    return model


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode` made of a file's bytes: the image ((H, W, C) uint8, uint16 for
    high-bit-depth models), the model that decoded it (None: a plain file), a few words on
    what was decoded and a warning, if any."""

    image: np.ndarray
    model: str | None
    note: str = ""
    warning: str = ""
    media: str = "image"  # "clip": ``image`` is a :class:`~sandwich.media.clips.Clip`


def decode(
    data: bytes,
    model: str | None = None,
    any_version: bool = False,
    models: ModelCache | None = None,
    check: Callable[[str, str], None] | None = None,
) -> Decoded:
    """Decode the bytes of any file sandwich writes, the model read from the file (``model``
    for files that name none or name weights outside the zoo; a plain file without either
    decodes as its codec does). ``check(suffix, why)`` is called with the kind of output
    (``.png`` or ``.npy``) before any decoding work. Errors are one-line
    :class:`SandwichError`s, whatever the bytes."""
    from sandwich.models.registry import identify_file, known_formats

    models = models or ModelCache(1)
    found = identify_file(data)
    if found is None:
        raise SandwichError(f"not a {known_formats()} file; decode files sandwich wrote")
    kind, fmt, named, version = found
    name = _choose_model(named, model)
    if named is None or name != named:
        version = None  # the user's weights: nothing in the file to check them against
    if name is None:
        if check is not None:
            check(kind.plain_output_suffix, f"it is a plain {fmt}")
        plain = kind.decode_plain(data)
        return Decoded(plain, None, note=f"plain {fmt} (no sandwich marker)", media=kind.media)
    net = models.get(name)
    if not isinstance(net, kind) or net.media != kind.media:
        raise SandwichError(f"is a {fmt} file, which model {name} ({net.kind}) cannot decode")
    warning = ""
    if version is not None and version != net.version:
        made = f"made by {name} version {version}, this install has version {net.version}"
        if not any_version:
            raise SandwichError(f"{made}; decode with it anyway by --any-version")
        warning = f"{made}; decoding with it"
    if check is not None:
        check(net.output_suffix, f"model {name} returns {net.output_kind()}")
    img, note = net.decompress_with_note(data)
    return Decoded(img, name, note, warning, net.media)


def decompress_file(
    src: Path,
    dst: Path,
    model: str | None = None,
    ensemble: int = 1,
    any_version: bool = False,
    force: bool = False,
    models: ModelCache | None = None,
    suffix_from_model: bool = False,
) -> Done:
    """Decode one file to an image file (``.png``; ``.npy`` for N-channel models): see
    :func:`decode`. With ``suffix_from_model`` (decoding a folder) ``dst`` gets the suffix of
    what the model returns instead of being checked against it."""
    from sandwich.media.files import check_writable

    out = [dst]

    def check(suffix: str, why: str) -> None:  # called once the model is known
        if not suffix_from_model:
            _check_output(dst, suffix, why)
            return
        out[0] = dst.with_suffix(suffix)
        try:
            check_writable(out[0], force)
        except SandwichError as e:
            raise _OutputError(str(e)) from None

    if not suffix_from_model:
        check_writable(dst, force)
    if not src.is_file():
        raise SandwichError(f"{src}: no such file")
    data = src.read_bytes()
    try:
        d = decode(data, model, any_version, models or ModelCache(ensemble), check)
    except _OutputError:
        raise
    except SandwichError as e:
        raise SandwichError(f"{src}: {e}") from None
    dst = out[0]
    MEDIA[d.media].save(dst, d.image, force)
    warning = f"{src}: {d.warning}" if d.warning else ""
    return Done(src, dst, d.model, note=d.note, warning=warning)


def _is_clip_file(path: Path) -> bool:
    """True for a file of a model type whose media is clips (read from its first bytes)."""
    from sandwich.models.registry import MODEL_TYPES

    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(64)
    return any(cls.media == "clip" and cls.sniff_head(head) for cls in MODEL_TYPES.values())


def decompress(
    inp: str | Path,
    out: str | Path,
    model: str | None = None,
    ensemble: int = 1,
    any_version: bool = False,
    force: bool = False,
    report: Report | None = None,
    on_error: ErrorReport | None = None,
    tile: int | None = None,
) -> list[Done]:
    """Decode a file (or a folder of ``.jpg`` / ``.sndr`` files) to images; see
    :func:`decompress_file`. ``ensemble`` > 1 averages that many post-processor passes (sandwich
    models). In a folder, N-channel outputs are written as ``NAME.npy``."""
    from sandwich.models.registry import known_suffixes
    from sandwich.nets.ensemble import check_ensemble

    try:
        check_ensemble(ensemble)
    except ValueError as e:
        raise SandwichError(f"--ensemble: {e}") from None
    inp = Path(inp)
    if inp.is_dir():
        out = Path(out)
        suffixes = known_suffixes()
        files = sorted(f for f in inp.iterdir() if f.suffix.lower() in suffixes)
        if not files:
            raise SandwichError(f"{inp}: no {' or '.join(suffixes)} files in this folder")
        _folder_out(out)
        out.mkdir(parents=True, exist_ok=True)
        todo = [(f, out / (f.stem + ".png")) for f in files]
    elif _is_clip_file(inp) and not str(out).endswith(("/", os.sep)):
        todo = [(inp, Path(out))]  # -o names the clip's output (a frames folder, .mp4, .mkv)
    else:
        todo = pairs(inp, out, ".png")
    if tile is not None and tile < 0:
        raise SandwichError(f"--tile {tile}: give a side in pixels, or 0 for the whole image")
    models = ModelCache(ensemble, tile)

    into = inp.is_dir() or todo[0][1] != Path(out)  # into a folder: the suffix is the model's

    def one(src: Path, dst: Path) -> Done:
        return decompress_file(src, dst, model, ensemble, any_version, force, models, into)

    return run_each(todo, one, report, on_error)
