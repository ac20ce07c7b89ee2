"""Time and peak memory of whole ``sandwich compress`` / ``decompress`` commands at several sizes.

Each measurement is a fresh process (what a user runs: interpreter start, imports, model load,
reading, coding, writing), timed on the wall clock; its peak resident memory is read from the
kernel's accounting of that process alone (``ru_maxrss`` of a wrapper's only child). Plain JPEG
(Pillow at quality 75, 4:2:0) is measured the same way as the reference. Test images are the
bundled sample scaled to the size (bicubic) with a little noise, so that they code like photos.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(json.dumps({'code': code, 'seconds': dt, 'peak_bytes': peak, 'err': err}))\n"
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
    """One command at one size: ``seconds`` of wall time and ``peak_mb`` of resident memory
    (MiB), or ``error`` when it failed or ran out of time."""

    model: str
    megapixels: float
    width: int
    height: int
    op: str
    seconds: float | None
    peak_mb: float | None
    error: str = ""


def test_image(megapixels: float, folder: Path, seed: int = 0) -> Path:
    """A PNG of about ``megapixels`` (4:3): the bundled sample scaled up, plus mild noise."""
    from importlib import resources

    from PIL import Image

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 16)) * 16
    h = int(round(w * 3 / 4 / 16)) * 16
    path = folder / f"speed_{w}x{h}.png"
    if path.exists():
        return path
    with Image.open(str(resources.files("sandwich") / "assets" / "sample.png")) as im:
        big = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC), np.int16)
    rng = np.random.default_rng(seed)
    noisy = big + rng.integers(-3, 4, size=big.shape, dtype=np.int16)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, compress_level=1)
    return path


def _measure(argv: list[str], timeout: float) -> tuple[float | None, float | None, str]:
    cmd = [sys.executable, "-c", _WRAPPER, str(timeout), *argv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return None, None, f"over {timeout:.0f} s"
    except (ValueError, IndexError):
        return None, None, (out.stderr.strip().splitlines() or ["failed"])[-1][:200]
    if r["code"] != 0:
        return None, r["peak_bytes"] / 2**20, (r["err"] or ["failed"])[-1][:200]
    return r["seconds"], r["peak_bytes"] / 2**20, ""


def measure(
    models: list[str],
    sizes: list[float],
    folder: Path,
    timeout: float = 900.0,
    extra: list[str] | None = None,
    progress=None,
) -> list[SpeedRow]:
    """Rows for plain JPEG and every model at every size (megapixels): compress, then
    decompress of what compress wrote. ``extra`` arguments go to every sandwich command (e.g.
    ``--tile 512``)."""
    rows = []
    for mp in sizes:
        img = test_image(mp, folder)
        w, h = (int(v) for v in img.stem.split("_")[1].split("x"))
        for model in ["plain-jpeg", *models]:
            coded = folder / f"{model}_{w}x{h}.bin"
            back = folder / f"{model}_{w}x{h}.out.png"
            for op, src, dst in (("compress", img, coded), ("decompress", coded, back)):
                dst.unlink(missing_ok=True)
                if model == "plain-jpeg":
                    argv = [sys.executable, "-c", _PLAIN_JPEG, op, str(src), str(dst)]
                else:
                    argv = [sys.executable, "-m", "sandwich", op, str(src), "-o", str(dst)]
                    argv += ["-m", model] if op == "compress" else []
                    argv += ["--max-pixels", str(int(mp * 1e6) * 2 + 10**6), *(extra or [])]
                    if op == "compress" and model == "rnn":
                        argv += ["-k", "8"]
                t0 = time.perf_counter()
                seconds, peak, error = _measure(argv, timeout)
                if seconds is None and not error:
                    seconds = time.perf_counter() - t0
                rows.append(SpeedRow(model, mp, w, h, op, seconds, peak, error))
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
