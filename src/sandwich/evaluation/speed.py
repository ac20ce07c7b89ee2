"""Time and peak memory of whole ``sandwich compress`` / ``decompress`` commands at several sizes.

Each measurement is a fresh process (what a user runs: interpreter start, imports, model load,
reading, coding, writing), timed on the wall clock; its peak resident memory is read from the
kernel's accounting of that process alone (``ru_maxrss`` of a wrapper's only child, the figure
``/usr/bin/time -v`` reports as "Maximum resident set size"), with its CPU time (user + system),
which other work on the machine does not inflate as it does the wall time. Plain JPEG (Pillow at
quality 75, 4:2:0) is measured the same way as the reference. Test images are the bundled sample
scaled to the size (bicubic) with a little noise, so that they code like photos, or a given
photo mirrored (repeated with alternate copies flipped, no seams) out to the size at its own
scale. The progressive codec (``rnn``) is run at a fixed number of iterations, and tiles images
above 1 MP (:meth:`sandwich.models.progressive.ProgressiveCodec.tile_side`).

What those tiles cost in rate (:func:`tiling_cost`, ``sandwich bench rnn-tiles``): the same
images coded whole and as tiles of a few sides, bpp (whole file) and PSNR per iteration.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sandwich.errors import SandwichError

RNN_ITERATIONS = 8  # iterations of the progressive codec in the speed table

# a wrapper that runs one command and prints its wall time and the peak memory of that command
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "try:\n"
    "    p = subprocess.run(sys.argv[2:], capture_output=True, text=True,\n"
    "                       timeout=float(sys.argv[1]))\n"
    "    code, err = p.returncode, p.stderr.strip().splitlines()[-1:]\n"
    "except subprocess.TimeoutExpired:\n"
    "    code, err = -1, [f'over {sys.argv[1]} s']\n"
    "dt = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'code': code, 'seconds': dt, 'cpu': u.ru_utime + u.ru_stime,\n"
    "                  'peak_bytes': u.ru_maxrss * 1024, 'err': err}))\n"
)

_PLAIN_JPEG = (
    "import sys\n"
    "from PIL import Image\n"
    "Image.MAX_IMAGE_PIXELS = None\n"
    "if sys.argv[1] == 'compress':\n"
    "    Image.open(sys.argv[2]).convert('RGB').save(sys.argv[3], format='JPEG', quality=75)\n"
    "else:\n"
    "    Image.open(sys.argv[2]).save(sys.argv[3], format='PNG')\n"
)


@dataclass
class SpeedRow:
    """One command at one size: ``seconds`` of wall time, ``cpu_seconds`` (user + system) and
    ``peak_mb`` of resident memory (MiB), or ``error`` when it failed or ran out of time."""

    model: str
    megapixels: float
    width: int
    height: int
    op: str
    seconds: float | None
    peak_mb: float | None
    error: str = ""
    cpu_seconds: float | None = None


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` in pixels, or megapixels (4:3, sides multiples of 16) -> (width, height)."""
    text = text.strip().lower()
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if w < 8 or h < 8:
            raise SandwichError(f"size {text}: at least 8x8 pixels")
        return w, h
    try:
        mp = float(text)
    except ValueError:
        raise SandwichError(f"size {text!r}: give megapixels (12) or pixels (4096x4096)") from None
    if not 0 < mp <= 1000:
        raise SandwichError(f"size {text}: give megapixels in (0, 1000]")
    w = max(16, int(round((mp * 1e6 * 4 / 3) ** 0.5 / 16)) * 16)
    return w, max(16, int(round(w * 3 / 4 / 16)) * 16)


def _mirrored(photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """``photo`` repeated out to h x w, every other copy flipped so that the seams are smooth."""
    row = np.concatenate([photo, photo[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-h // block.shape[0]), -(-w // block.shape[1]), 1)
    return np.tile(block, reps)[:h, :w]


def test_image(size: tuple[int, int], folder: Path, source: Path | None = None) -> Path:
    """A PNG of ``size`` = (width, height): the bundled sample scaled up plus mild noise, or the
    photo ``source`` mirrored out to the size (:func:`_mirrored`) at its own scale."""
    from importlib import resources

    from PIL import Image

    w, h = size
    tag = "" if source is None else "_" + Path(source).stem
    path = folder / f"speed_{w}x{h}{tag}.png"
    if path.exists():
        return path
    if source is not None:
        with Image.open(source) as im:
            img = _mirrored(np.asarray(im.convert("RGB")), h, w)
    else:
        with Image.open(str(resources.files("sandwich") / "assets" / "sample.png")) as im:
            big = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC), np.int16)
        rng = np.random.default_rng(0)
        big += rng.integers(-3, 4, size=big.shape, dtype=np.int16)
        img = big.clip(0, 255).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(img)).save(path, compress_level=1)
    return path


def _measure(argv: list[str], timeout: float, env: dict | None) -> tuple:
    """(wall seconds, peak MiB, error, CPU seconds) of one command."""
    cmd = [sys.executable, "-c", _WRAPPER, str(timeout), *argv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, env=env)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return None, None, f"over {timeout:.0f} s", None
    except (ValueError, IndexError):
        return None, None, (out.stderr.strip().splitlines() or ["failed"])[-1][:200], None
    if r["code"] != 0:
        return None, r["peak_bytes"] / 2**20, (r["err"] or ["failed"])[-1][:200], None
    return r["seconds"], r["peak_bytes"] / 2**20, "", r["cpu"]


def _argv(model: str, op: str, src: Path, dst: Path, pixels: int, extra, iterations: int):
    if model == "plain-jpeg":
        return [sys.executable, "-c", _PLAIN_JPEG, op, str(src), str(dst)]
    argv = [sys.executable, "-m", "sandwich", op, str(src), "-o", str(dst)]
    argv += ["-m", model] if op == "compress" else []
    argv += ["--max-pixels", str(pixels * 2 + 10**6), *(extra or [])]
    if op == "compress" and model == "rnn":
        argv += ["-k", str(iterations)]
    return argv


def measure(
    models: list[str],
    sizes: list[tuple[int, int]],
    folder: Path,
    timeout: float = 900.0,
    extra: list[str] | None = None,
    progress=None,
    source: Path | None = None,
    threads: int | None = None,
    iterations: int = RNN_ITERATIONS,
) -> list[SpeedRow]:
    """Rows for plain JPEG and every model at every size ((width, height) in pixels):
    compress, then decompress of what compress wrote. ``extra`` arguments go to every sandwich
    command (e.g. ``--tile 512``); ``threads`` sets the commands' CPU threads (OMP_NUM_THREADS;
    None: PyTorch's default, every core); ``iterations``: the progressive codec's."""
    env = None
    if threads is not None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    rows = []
    for w, h in sizes:
        img = test_image((w, h), folder, source)
        mp = w * h / 1e6
        for model in ["plain-jpeg", *models]:
            coded = folder / f"{model}_{w}x{h}.bin"
            back = folder / f"{model}_{w}x{h}.out.png"
            for op, src, dst in (("compress", img, coded), ("decompress", coded, back)):
                dst.unlink(missing_ok=True)
                argv = _argv(model, op, src, dst, w * h, extra, iterations)
                t0 = time.perf_counter()
                seconds, peak, error, cpu = _measure(argv, timeout, env)
                if seconds is None and not error:
                    seconds = time.perf_counter() - t0
                rows.append(SpeedRow(model, mp, w, h, op, seconds, peak, error, cpu))
                if progress is not None:
                    progress()
                if error and op == "compress":  # nothing to decompress
                    rows.append(SpeedRow(model, mp, w, h, "decompress", None, None, "no file"))
                    break
            for p in (coded, back):
                p.unlink(missing_ok=True)
    return rows


def as_json(rows: list[SpeedRow]) -> list[dict]:
    return [asdict(r) for r in rows]


def tiling_cost(
    model, images: dict[str, np.ndarray], tiles: list[int], iterations: list[int], progress=None
) -> list[dict]:
    """Rows of (tile, iterations): mean bpp (whole file: header, indexes and checksums
    included) and mean PSNR over ``images``, each coded once per tile side (0: whole image)
    with the model's tiles set to it, the file cut after each of ``iterations``."""
    from sandwich.evaluation.metrics import psnr
    from sandwich.formats.sndr import truncate

    saved = model.tile
    top = max(iterations)
    rows = []
    try:
        for tile in tiles:
            model.tile = tile
            bpp = {k: [] for k in iterations}
            db = {k: [] for k in iterations}
            for img in images.values():
                full = model.compress(img, top)
                recs, _ = model.decode_file(full)
                for k in iterations:
                    bpp[k].append(8 * len(truncate(full, k)) / (img.shape[0] * img.shape[1]))
                    db[k].append(psnr(img, recs[k - 1]))
                if progress is not None:
                    progress()
            for k in iterations:
                rows.append(
                    {
                        "tile": tile,
                        "iterations": k,
                        "bpp": float(np.mean(bpp[k])),
                        "psnr": float(np.mean(db[k])),
                    }
                )
    finally:
        model.tile = saved
    return rows
