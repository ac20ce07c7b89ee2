"""Shared fixtures: small test images, PNG writers and two ways of running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(str(resources.files("sandwich") / "assets" / "sample.png"))
CliResult = tuple[int, str, str]


def load_sample() -> np.ndarray:
    """The bundled sample as a writable uint8 (H, W, 3) array."""
    with Image.open(SAMPLE) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8, copy=True)


def smooth_image(h: int, w: int, seed: int = 0, noise: float = 6.0) -> np.ndarray:
    """Smooth colour gradients and waves plus Gaussian noise, uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 60 * np.sin(xx / 7.0 + seed),
            128 + 50 * np.cos(yy / 5.0),
            100 + 40 * np.sin((xx + yy) / 9.0) + 0.5 * yy,
        ],
        axis=-1,
    )
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def sample_full() -> np.ndarray:
    """The whole bundled sample (256x256 RGB)."""
    return load_sample()


@pytest.fixture
def sample_rgb(sample_full: np.ndarray) -> np.ndarray:
    """A 64x80 (H x W) crop of the bundled sample, uint8 RGB, writable."""
    return sample_full[40:104, 60:140].copy()


@pytest.fixture
def small_png(tmp_path: Path, sample_full: np.ndarray) -> Callable[..., Path]:
    """Writer: ``small_png(name, image=None, size=(40, 56), mode=None) -> path`` in tmp_path.

    Without ``image`` it writes a crop of the sample of ``size`` = (H, W); ``mode`` converts the
    picture with Pillow before saving (e.g. ``"L"``).
    """

    def write(
        name: str = "img.png",
        image: np.ndarray | None = None,
        size: tuple[int, int] = (40, 56),
        mode: str | None = None,
    ) -> Path:
        if image is None:
            h, w = size
            image = sample_full[60 : 60 + h, 80 : 80 + w]
        pil = Image.fromarray(np.ascontiguousarray(image))
        if mode is not None:
            pil = pil.convert(mode)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pil.save(path)
        return path

    return write


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], CliResult]:
    """``run_cli(argv) -> (exit_code, stdout, stderr)`` through :func:`sandwich.cli.main`."""
    from sandwich.cli import main

    def run(argv: list[str]) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run_script() -> Callable[..., subprocess.CompletedProcess]:
    """``run_script(argv, cwd=None)``: the real console entry point (``python -m sandwich``)."""

    def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="120")
        return subprocess.run(
            [sys.executable, "-m", "sandwich", *[str(a) for a in argv]],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.fixture
def check_error() -> Callable[[int, str], str]:
    """``check_error(code, stderr) -> message``: a non-zero exit with exactly one error line.

    The line must start with ``error:``; no traceback may be printed.
    """

    def check(code: int, err: str) -> str:
        assert code != 0, "expected a failing exit code"
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one error line, got: {err!r}"
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]

    return check


@pytest.fixture(autouse=True)
def _default_pixel_limit():
    """``--max-pixels`` sets a process-wide limit: put the default back after every test that
    ran the CLI in process."""
    yield
    from sandwich.media.limits import DEFAULT_MAX_PIXELS, max_pixels, set_max_pixels

    if max_pixels() != DEFAULT_MAX_PIXELS:
        set_max_pixels(DEFAULT_MAX_PIXELS)
