"""Hostile and broken files: every case is one ``error:`` line, a non-zero exit, nothing written,
and no case allocates a large buffer before failing (peak memory of the real command measured)."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zlib
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sandwich.formats import sndr
from sandwich.formats.jpeg_marker import MAGIC

MAX_RSS_MB = 1024  # no failing case may come near this (a plain `sandwich` run is ~250 MB)


def _run(argv: list, cwd: Path) -> tuple[int, str, float]:
    """Run the real command in a fresh process: (exit code, stderr, peak memory in MB)."""
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(peak)\n"
        "sys.exit(p.returncode)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "sandwich", *map(str, argv)]
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr, float(p.stdout.strip() or 0)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = np.arange(64)[:, None] * 3
    Image.fromarray(rgb).save(d / "p.png")
    from sandwich import api

    api.compress(d / "p.png", d / "r.jpg", model="rgb-jpeg", value=50)
    api.compress(d / "p.png", d / "a.sndr", model="rnn", value=2)
    data = (d / "r.jpg").read_bytes()
    at = data.index(MAGIC) + len(MAGIC)  # then: format(1) height(2) width(2) version(2)
    for name, (h, w) in {"big": (65535, 65535), "zero": (0, 0), "lie": (1024, 1024)}.items():
        b = bytearray(data)
        struct.pack_into(">HH", b, at + 1, h, w)
        (d / f"marker_{name}.jpg").write_bytes(bytes(b))
    b = bytearray(data)
    b[at] = 0
    (d / "marker_format0.jpg").write_bytes(bytes(b))
    # a marker naming weights on disk, next to a copy of real zoo weights
    from sandwich.formats.jpeg_marker import MarkerInfo, insert_marker
    from sandwich.zoo import weights_dir

    for ext in (".safetensors", ".json"):
        (d / f"x{ext}").write_bytes((weights_dir() / f"rgb-jpeg{ext}").read_bytes())
    plain = data[:2] + data[data.index(b"\xff\xdb") :]  # marker removed
    tagged = insert_marker(plain, MarkerInfo("./x.safetensors", 0, 64, 64))
    (d / "local_weights.jpg").write_bytes(tagged)
    (d / "plain.jpg").write_bytes(plain)
    # .sndr headers written by hand, as a hostile writer would (valid CRC)
    head, chunks, _ = sndr.unpack((d / "a.sndr").read_bytes())
    for name, (h, w) in {"huge": (100000, 100000), "thin": (2**32 - 1, 1)}.items():
        nm = head.model.encode()
        body = sndr.MAGIC + bytes([sndr.FORMAT_VERSION, len(nm)]) + nm + head.weight_hash
        body += sndr._FIXED.pack(h, w, head.iterations, head.channels)
        (d / f"{name}.sndr").write_bytes(body + struct.pack(">I", zlib.crc32(body)))
    named = sndr.pack(sndr.RnnHeader("rgb-jpeg", *astuple(head)[1:]), chunks)
    (d / "sandwich_named.sndr").write_bytes(named)
    (d / "empty.sndr").write_bytes(b"")
    (d / "text.sndr").write_bytes(b"hello\n")
    # a .sndv (progressive video) header claiming 65535x65535 frames (valid CRC)
    from sandwich.zoo import load_model

    clip = np.stack([rgb[:32, :32], rgb[1:33, :32]])
    video = load_model("rnn-video").compress(clip, 1)
    at = 6 + video[5] + 8  # magic, version, name length, name, weight hash: then height, width
    b = bytearray(video)
    struct.pack_into(">HH", b, at, 65535, 65535)
    end = at + 21  # height, width, frames, fps (2), gop, prediction, channels, block
    struct.pack_into(">I", b, end, zlib.crc32(bytes(b[:end])))
    (d / "huge.sndv").write_bytes(bytes(b))
    # a 12000x12000 JPEG frame header over a tiny image (SOF patched)
    small = bytearray(plain)
    sof = small.index(b"\xff\xc0")
    struct.pack_into(">HH", small, sof + 5, 12000, 12000)
    (d / "sof_huge.jpg").write_bytes(bytes(small))
    # decompression bomb: a tiny PNG of 20000x20000
    Image.new("1", (20000, 20000)).save(d / "bomb.png", optimize=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(d / "eight.png")
    Image.new("RGB", (8, 40), (10, 20, 30)).save(d / "thin8.png")
    return d


CASES = {
    "marker 65535x65535": (["decompress", "marker_big.jpg", "-o", "o.png"], "limit"),
    "marker 0x0": (["decompress", "marker_zero.jpg", "-o", "o.png"], "corrupt"),
    "marker lies about size": (["decompress", "marker_lie.jpg", "-o", "o.png"], "does not make"),
    "marker format 0": (["decompress", "marker_format0.jpg", "-o", "o.png"], "corrupt"),
    "marker names local weights": (
        ["decompress", "local_weights.jpg", "-o", "o.png"],
        "not a zoo model",
    ),
    ".sndr 100000x100000": (["decompress", "huge.sndr", "-o", "o.png"], "limit"),
    ".sndr 1 x 2^32-1": (["decompress", "thin.sndr", "-o", "o.png"], "limit"),
    "empty .sndr": (["decompress", "empty.sndr", "-o", "o.png"], "not a JPEG, progressive"),
    "text .sndr": (["decompress", "text.sndr", "-o", "o.png"], "not a JPEG, progressive"),
    ".sndv frames 65535x65535": (["decompress", "huge.sndv", "-o", "out"], "limit"),
    "JPEG frame 12000x12000": (["decompress", "sof_huge.jpg", "-o", "o.png"], "limit"),
    "PNG bomb": (["compress", "bomb.png", "-o", "o.jpg"], "limit"),
    "rnn on a JPEG": (["decompress", "plain.jpg", "-o", "o.png", "-m", "rnn"], "cannot decode"),
    "plain JPEG to .npy": (["decompress", "plain.jpg", "-o", "o.npy"], "ending in .png"),
    ".sndr naming a sandwich": (["decompress", "sandwich_named.sndr", "-o", "o.png"], "cannot"),
    "folder to an existing file": (["decompress", ".", "-o", "p.png"], "must be a folder"),
    "-q abc": (["compress", "p.png", "-o", "o.jpg", "-q", "abc"], "--quality"),
    "--target-bpp nan": (["compress", "p.png", "-o", "o.jpg", "--target-bpp", "nan"], "positive"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_case_is_one_line_and_small(files: Path, check_error, case: str) -> None:
    argv, words = CASES[case]
    before = sorted(p.name for p in files.iterdir())
    code, err, peak_mb = _run(argv, files)
    assert words in check_error(code, err)
    assert peak_mb < MAX_RSS_MB, f"{case}: peak {peak_mb:.0f} MB"
    assert sorted(p.name for p in files.iterdir()) == before  # nothing written


def test_local_weights_only_from_the_command_line(files: Path, run_cli) -> None:
    out = files / "by_user.png"
    code, _, err = run_cli(
        ["decompress", files / "local_weights.jpg", "-o", out, "-m", files / "x.safetensors"]
    )
    assert code == 0, err
    out.unlink()


def test_smallest_images_and_gray_models(files: Path, run_cli, tmp_path: Path) -> None:
    for name in ("eight.png", "thin8.png"):
        jpg = tmp_path / (name + ".jpg")
        assert run_cli(["compress", files / name, "-o", jpg, "-m", "gray-jpeg"])[0] == 0
        assert run_cli(["decompress", jpg, "-o", tmp_path / (name + ".out.png")])[0] == 0


def test_output_into_new_folder_and_read_only_folder(files: Path, run_cli, check_error, tmp_path):
    code, _, err = run_cli(
        ["compress", files / "p.png", "-o", f"{tmp_path}/new/", "-m", "gray-modem"]
    )
    assert code == 0, err and (tmp_path / "new" / "p.jpg").is_file()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: nothing to test
            pytest.skip("running as a user who can write anywhere")
        code, _, err = run_cli(
            ["compress", files / "p.png", "-o", ro / "x.jpg", "-m", "gray-modem"]
        )
        assert "cannot write" in check_error(code, err)
    finally:
        ro.chmod(0o700)


def test_racing_writers_never_replace_each_other(tmp_path: Path) -> None:
    from sandwich.errors import SandwichError
    from sandwich.media.files import _publish

    out = tmp_path / "o.bin"
    first, second = tmp_path / "a.part", tmp_path / "b.part"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    _publish(str(first), out, force=False)
    with pytest.raises(SandwichError, match="already exists"):
        _publish(
            str(second), out, force=False
        )  # the other writer got there between check and write
    assert out.read_bytes() == b"first"


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    from sandwich.media.files import load_rgb

    a = np.zeros((20, 30, 3), np.uint8)
    a[:5] = 255  # a white band at the top
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # stored on its side: rotate 90 degrees clockwise to show
    im.save(tmp_path / "o.jpg", exif=exif, quality=95)
    got = load_rgb(tmp_path / "o.jpg")
    assert got.shape == (30, 20, 3) and got[:, -5:].mean() > 200 and got[:, :5].mean() < 50


def test_max_pixels_option(files: Path, run_cli, check_error) -> None:
    code, _, err = run_cli(
        ["compress", files / "p.png", "-o", files / "no.jpg", "--max-pixels", "100"]
    )
    assert "limit of 100" in check_error(code, err)
    assert not (files / "no.jpg").exists()
    from sandwich.media.limits import DEFAULT_MAX_PIXELS, set_max_pixels

    set_max_pixels(DEFAULT_MAX_PIXELS)


def test_peak_memory_measure_works(tmp_path: Path) -> None:
    """The memory figure above comes from the child process, not this one."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_fuzzed_files_give_one_line_errors_only() -> None:
    """A few hundred seeded mutations of real files (``sandwich bench fuzz N`` runs more)."""
    from sandwich.evaluation.fuzz import run_fuzz

    report = run_fuzz(300, seed=1, time_limit=20.0)
    assert report.counts["crash"] == 0 and report.counts["hang"] == 0, report.failures
    assert report.counts["error"] > 100 and sum(report.counts.values()) == 300


@pytest.mark.parametrize(
    ("extra", "words"),
    [([], "not an image"), (["--batch", "0"], "--batch 0"), (["--steps", "0"], "--steps 0")],
)
def test_failing_training_leaves_no_run_folder(run_cli, check_error, tmp_path, extra, words):
    data = tmp_path / "data"
    data.mkdir()
    if not extra:
        (data / "a.png").write_bytes(b"junk")
    else:
        Image.new("RGB", (64, 64), (1, 2, 3)).save(data / "a.png")
    out = tmp_path / "run"
    argv = ["train", "--scenario", "gray", "--data", data, "--out", out, "--steps", "3", *extra]
    code, _, err = run_cli(argv)
    assert words in check_error(code, err)
    assert not out.exists()
