"""The progressive codec in independent tiles (``.sndr`` version 2): layout, round trip,
progressive truncation, corruption, version 1 kept for one tile, bit-exact decoding across
thread counts, and the speed and tiling-cost benchmarks' helpers."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from sandwich.errors import SandwichError
from sandwich.evaluation.speed import _mirrored, parse_size
from sandwich.formats import sndr
from sandwich.formats.sndr import RnnHeader, pack, parse, tile_grid, truncate, unpack

SIZE = (48, 64)  # (H, W): with 32-pixel tiles a 2 x 2 grid, the bottom row 16 pixels high
TILE = 32
ITERATIONS = 3


@pytest.fixture(scope="module")
def rnn():
    from sandwich.zoo import load_model

    net = load_model("rnn")
    net.tile = TILE
    return net


@pytest.fixture(scope="module")
def image(sample_full: np.ndarray) -> np.ndarray:
    return sample_full[50 : 50 + SIZE[0], 70 : 70 + SIZE[1]].copy()


@pytest.fixture(scope="module")
def tiled(rnn, image) -> bytes:
    return rnn.compress(image, ITERATIONS)


@pytest.fixture(scope="module")
def decoded(rnn, tiled) -> list[np.ndarray]:
    return rnn.decode_file(tiled)[0]


def _fix_header_crc(data: bytearray, end: int) -> bytes:
    data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[:end])))
    return bytes(data)


# ------------------------------------------------------------------------------- the layout
def test_tile_grid_covers_the_image_once() -> None:
    assert tile_grid(48, 64, 32) == [
        (0, 0, 32, 32),
        (0, 32, 32, 32),
        (32, 0, 16, 32),
        (32, 32, 16, 32),
    ]
    assert tile_grid(48, 64, 0) == [(0, 0, 48, 64)]
    cover = np.zeros((100, 70), int)
    for y, x, h, w in tile_grid(100, 70, 48):
        cover[y : y + h, x : x + w] += 1
    assert (cover == 1).all()


def test_tiled_file_layout(tiled: bytes) -> None:
    f = parse(tiled)
    h = f.header
    assert tiled[4] == sndr.TILED_VERSION and h.version == 2
    assert (h.height, h.width, h.iterations, h.tile) == (*SIZE, ITERATIONS, TILE)
    assert f.spans.shape == (ITERATIONS, 4, 2) and not f.truncated
    # iteration-major: iteration t's index (4 tiles x 8 bytes + CRC), then its 4 payloads
    pos = f.start
    for t in range(ITERATIONS):
        index = tiled[pos : pos + 32]
        assert struct.unpack(">I", tiled[pos + 32 : pos + 36])[0] == zlib.crc32(index)
        entries = struct.unpack(">8I", index)
        pos += 36
        for i in range(4):
            n, crc = entries[2 * i], entries[2 * i + 1]
            assert f.spans[t, i].tolist() == [pos, n] and zlib.crc32(tiled[pos : pos + n]) == crc
            pos += n
        assert f.ends[t] == pos
    assert pos == len(tiled)
    # unpack: one chunk per iteration, the tiles' payloads back to back
    whole = [b"".join(f.tile_chunks(i)[t] for i in range(4)) for t in range(ITERATIONS)]
    assert unpack(tiled)[1] == whole


def test_tile_side_choice() -> None:
    from sandwich.models.progressive import AUTO_TILE, ProgressiveCodec

    m = ProgressiveCodec()
    assert m.tile is None
    assert m.tile_side(1000, 1000) == 0  # up to 1 MP: the whole image
    assert m.tile_side(1200, 1000) == AUTO_TILE == 512
    m.tile = 0
    assert m.tile_side(4000, 3000) == 0
    m.tile = 20  # rounded up to the 16-pixel block
    assert m.tile_side(48, 64) == 32
    m.tile = 64  # the image fits in one tile: not tiled
    assert m.tile_side(48, 64) == 0
    m.tile = -1
    with pytest.raises(SandwichError, match="--tile -1"):
        m.tile_side(48, 64)
    m.tile = 70000
    with pytest.raises(SandwichError, match="65520"):
        m.tile_side(100, 80000)


# ----------------------------------------------------------------------------- round trip
def test_round_trip_tiles_are_independent(rnn, image, tiled, decoded) -> None:
    assert len(decoded) == ITERATIONS and decoded[-1].shape == image.shape
    assert np.array_equal(rnn.decompress(tiled), decoded[-1])
    err = [np.abs(d.astype(int) - image).mean() for d in decoded]
    assert err == sorted(err, reverse=True) and err[-1] < 20
    # each tile decodes to exactly what its crop gives as a file of its own
    alone = rnn.tile
    rnn.tile = 0
    try:
        for y, x, h, w in tile_grid(*SIZE, TILE):
            crop = rnn.decompress(rnn.compress(image[y : y + h, x : x + w].copy(), ITERATIONS))
            np.testing.assert_array_equal(decoded[-1][y : y + h, x : x + w], crop)
    finally:
        rnn.tile = alone


def test_single_tile_still_writes_version_1(rnn, image) -> None:
    saved = rnn.tile
    try:
        rnn.tile = 0
        whole = rnn.compress(image, 2)
        for tile in (None, 64, 100):  # automatic (small image), fits, rounded up and fits
            rnn.tile = tile
            assert rnn.compress(image, 2) == whole
        assert whole[4] == sndr.FORMAT_VERSION and parse(whole).header.tile == 0
        rnn.tile = 20  # rounded up to 32: the same file as 32
        assert rnn.compress(image, 2) == truncate(rnn.compress(image, 3), 2) != whole
    finally:
        rnn.tile = saved


def test_compress_to_bpp_and_note(rnn, image, tiled) -> None:
    pixels = SIZE[0] * SIZE[1]
    k, data = rnn.compress_to_bpp(image, 8 * len(truncate(tiled, 2)) / pixels + 1e-9)
    assert k == 2 and data == truncate(tiled, 2)
    _, note = rnn.decompress_with_note(tiled[:-2])
    assert note.startswith("2 iterations") and "cut short" in note


# ----------------------------------------------------------------------------- truncation
def test_truncated_tiled_file_decodes_fewer_iterations(rnn, tiled, decoded) -> None:
    for k in range(1, ITERATIONS + 1):
        cut = truncate(tiled, k)
        assert cut[4] == sndr.TILED_VERSION and parse(cut).header.iterations == k
        np.testing.assert_array_equal(rnn.decompress(cut), decoded[k - 1])
    assert truncate(tiled, ITERATIONS) == tiled
    ends = parse(tiled).ends
    # cut inside the last block's index, and inside its last payload
    for at in (ends[1] + 5, len(tiled) - 1):
        images, info = rnn.decode_file(tiled[:at])
        assert info.truncated and info.iterations == 2 and info.tile == TILE
        np.testing.assert_array_equal(images[-1], decoded[1])


def test_every_cut_parses_to_a_prefix_or_one_error(tiled) -> None:
    f = parse(tiled)
    for at in range(len(tiled)):
        try:
            g = parse(tiled[:at])
        except SandwichError as e:
            assert "\n" not in str(e) and at < f.ends[0]
            continue
        k = sum(end <= at for end in f.ends)
        assert g.iterations == k >= 1 and g.truncated
        assert [g.tile_chunks(i) for i in range(4)] == [f.tile_chunks(i)[:k] for i in range(4)]


# ----------------------------------------------------------------------------- corruption
def test_corrupt_index_and_payloads_are_one_line_errors(rnn, tiled) -> None:
    f = parse(tiled)
    index = f.start
    cases = {}
    bad = bytearray(tiled)
    bad[index + 1] ^= 0x01  # a length, index CRC not fixed
    cases["index checksum"] = bad
    bad = bytearray(tiled)
    bad[index : index + 4] = struct.pack(">I", 0xFFFFFF00)  # a length, index CRC fixed
    bad[index + 32 : index + 36] = struct.pack(">I", zlib.crc32(bytes(bad[index : index + 32])))
    cases["impossible length"] = bad
    bad = bytearray(tiled)
    bad[index + 36] ^= 0x10  # the first tile's payload
    cases["checksum mismatch in iteration 1, tile 1"] = bad
    bad = bytearray(tiled)
    bad[index + 4 : index + 8] = b"\0\0\0\0"  # a payload CRC, index CRC fixed
    bad[index + 32 : index + 36] = struct.pack(">I", zlib.crc32(bytes(bad[index : index + 32])))
    cases["tile 1"] = bad
    cases["unexpected bytes"] = bytearray(tiled + b"\0")
    for words, data in cases.items():
        with pytest.raises(SandwichError, match=words) as e:
            rnn.decompress(bytes(data))
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("tile", [0, 8, 24, 0xFFFF])
def test_bad_tile_side_in_header(tiled, tile: int) -> None:
    bad = bytearray(tiled)
    end = parse(tiled).start - 4
    bad[end - 2 : end] = struct.pack(">H", tile)
    with pytest.raises(SandwichError, match="tile side"):
        parse(_fix_header_crc(bad, end))


def test_tile_count_follows_the_header_size(tiled) -> None:
    """A header declaring a larger image needs more index entries than the file has: read as
    truncated (no complete iteration), refused before anything of that size is allocated."""
    bad = bytearray(tiled)
    end = parse(tiled).start - 4
    fixed = end - 2 - 10
    bad[fixed : fixed + 8] = struct.pack(">II", 9000, 9000)
    with pytest.raises(SandwichError, match="no complete iteration"):
        parse(_fix_header_crc(bad, end))
    bad[fixed : fixed + 8] = struct.pack(">II", 100000, 100000)
    with pytest.raises(SandwichError, match="limit"):
        parse(_fix_header_crc(bad, end))


def test_version_1_file_with_a_tile_field_is_corrupt(rnn, image) -> None:
    saved = rnn.tile
    rnn.tile = 0
    try:
        whole = bytearray(rnn.compress(image, 1))
    finally:
        rnn.tile = saved
    end = parse(bytes(whole)).start - 4
    whole[4] = sndr.TILED_VERSION
    whole[end:end] = struct.pack(">H", 32)
    with pytest.raises(SandwichError):
        rnn.decompress(_fix_header_crc(whole, end + 2))


def test_pack_checks_tiles() -> None:
    head = RnnHeader("m", bytes(8), 48, 64, 1, 32, 32)
    assert parse(pack(head, [[b"a", b"", b"c", b"d"]])).tile_chunks(2) == [b"c"]
    for header, chunks in (
        (head, [[b"a", b"b", b"c"]]),  # 3 tiles where the grid has 4
        (head, [b"abcd"]),  # bytes instead of the tiles' chunks
        (RnnHeader("m", bytes(8), 48, 64, 1, 32, 24), [[b""] * 6]),  # not a multiple of 16
        (RnnHeader("m", bytes(8), 48, 64, 1, 32, 65536), [[b""]]),  # does not fit a u16
    ):
        with pytest.raises(SandwichError):
            pack(header, chunks)


# ---------------------------------------------------------------------- threads and the CLI
_CODE = """
import hashlib, sys
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from sandwich.zoo import load_model
m = load_model("rnn")
m.tile = 32
img = np.load(sys.argv[2])
data = m.compress(img, 3)
images, _ = m.decode_file(data)
pixels = b"".join(i.tobytes() for i in images)
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(pixels).hexdigest())
"""


def test_tiled_coding_is_bit_identical_with_1_and_2_threads(image, tiled, tmp_path: Path) -> None:
    np.save(tmp_path / "img.npy", image)
    seen = set()
    for threads in ("1", "2"):
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}
        r = subprocess.run(
            [sys.executable, "-c", _CODE, threads, str(tmp_path / "img.npy")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.strip())
    assert len(seen) == 1, "files or decoded images differ between 1 and 2 threads"
    assert seen.pop().split()[0] == hashlib.sha256(tiled).hexdigest()


def test_cli_tile_on_rnn(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("a.png", size=SIZE)
    out = tmp_path / "a.sndr"
    code, stdout, _ = run_cli(["compress", src, "-o", out, "-m", "rnn", "-k", "2", "--tile", "32"])
    assert code == 0 and "2 iterations" in stdout
    assert parse(out.read_bytes()).header.tile == 32
    png = tmp_path / "a.png.out.png"
    code, stdout, _ = run_cli(["decompress", out, "-o", png])
    assert code == 0 and "2 iterations" in stdout and png.is_file()


# ------------------------------------------------------------------------------ benchmarks
def test_speed_sizes_and_mirrored_source() -> None:
    assert parse_size("8192x8192") == (8192, 8192)
    assert parse_size("0.4") == (736, 544) and parse_size("64") == (9232, 6928)
    for bad in ("abc", "0", "4x4"):
        with pytest.raises(SandwichError):
            parse_size(bad)
    photo = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    big = _mirrored(photo, 5, 7)
    assert big.shape == (5, 7, 3)
    np.testing.assert_array_equal(big[:2, :3], photo)
    np.testing.assert_array_equal(big[:2, 3:6], photo[:, ::-1])
    np.testing.assert_array_equal(big[2:4, :3], photo[::-1])


def test_bench_rnn_tiles(run_cli, small_png, tmp_path: Path) -> None:
    import json

    src = small_png("a.png", size=SIZE)
    js = tmp_path / "t.json"
    code, out, _ = run_cli(
        ["bench", "rnn-tiles", src, "--tiles", "0,32", "--iterations", "1,2", "--json", js]
    )
    assert code == 0 and "whole" in out
    rows = json.loads(js.read_text())["rows"]
    assert [(r["tile"], r["iterations"]) for r in rows] == [(0, 1), (0, 2), (32, 1), (32, 2)]
    assert all(r["bpp"] > 0 and r["psnr"] > 10 for r in rows)
