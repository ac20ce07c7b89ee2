"""Deterministic block motion: estimation, half-pel compensation, vector coding."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from sandwich.errors import SandwichError
from sandwich.motion import (
    BLOCK,
    compensate,
    decode_vectors,
    encode_vectors,
    estimate_motion,
    extrapolate_motion,
    grid,
    luma,
    median_predictor,
    vector_bits,
)

H, W = 128, 160  # 8x10 blocks: large enough for interior blocks, small enough to stay fast


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture, uint8 (h, w, 3): 4x upsampled noise, box-blurred (integers)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h // 4 + 4, w // 4 + 4, 3), dtype=np.int64)
    img = np.repeat(np.repeat(noise, 4, axis=0), 4, axis=1)
    for axis in (0, 1):
        for _ in range(2):
            img = (np.roll(img, 1, axis) + img + np.roll(img, -1, axis) + 1) // 3
    return img[:h, :w].astype(np.uint8)


def shifted_pair(dy: int, dx: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(current, reference) with current[y, x] == reference[y + dy, x + dx] inside the frame."""
    big = texture(H + 64, W + 64, seed)
    ref = big[32 : 32 + H, 32 : 32 + W]
    cur = big[32 + dy : 32 + dy + H, 32 + dx : 32 + dx + W]
    return np.ascontiguousarray(cur), np.ascontiguousarray(ref)


def slow_compensate(ref: np.ndarray, vectors: np.ndarray, block: int) -> np.ndarray:
    """Per-pixel reading of the compensate() specification."""
    h, w = ref.shape[:2]
    out = np.zeros_like(ref)
    for y in range(h):
        for x in range(w):
            vy, vx = (int(v) for v in vectors[y // block, x // block])
            py, px = 2 * y + vy, 2 * x + vx
            ys = [min(max(py // 2, 0), h - 1), min(max(py // 2 + py % 2, 0), h - 1)]
            xs = [min(max(px // 2, 0), w - 1), min(max(px // 2 + px % 2, 0), w - 1)]
            for ch in range(3):
                total = sum(int(ref[a, b, ch]) for a in ys for b in xs)
                out[y, x, ch] = (total + 2) // 4
    return out


def interior(field: np.ndarray) -> np.ndarray:
    return field[1:-1, 1:-1].reshape(-1, 2)


def test_luma_and_grid() -> None:
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [10, 20, 30]]], dtype=np.uint8)
    assert luma(px).tolist() == [[255, 0, 77, (77 * 10 + 150 * 20 + 29 * 30 + 128) >> 8]]
    assert luma(px).dtype == np.int32
    assert grid(256, 448) == (16, 28)
    assert grid(37, 23) == (3, 2)
    assert grid(1, 1) == (1, 1)
    assert grid(16, 16) == (1, 1)
    assert grid(17, 16, block=8) == (3, 2)


@pytest.mark.parametrize("size", [(H, W), (37, 23), (1, 1), (16, 16), (17, 33)])
def test_zero_vectors_identity(size: tuple[int, int]) -> None:
    frame = texture(*size, seed=3)
    rows, cols = grid(*size)
    out = compensate(frame, np.zeros((rows, cols, 2), np.int16))
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert np.array_equal(out, frame)


@pytest.mark.parametrize(
    "size,block",
    [((37, 23), BLOCK), ((1, 1), BLOCK), ((16, 16), BLOCK), ((19, 13), 8), ((5, 7), 3)],
)
def test_compensate_matches_specification(size: tuple[int, int], block: int) -> None:
    rng = np.random.default_rng(size[0] * 100 + size[1])
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    rows, cols = grid(*size, block=block)
    vectors = rng.integers(-9, 10, (rows, cols, 2)).astype(np.int16)
    vectors[0, 0] = (-2000, 2001)  # far outside: clamped to the edge
    assert np.array_equal(compensate(frame, vectors, block), slow_compensate(frame, vectors, block))


def test_edge_clamping() -> None:
    frame = texture(37, 23, seed=5)
    rows, cols = grid(37, 23)
    up = compensate(frame, np.full((rows, cols, 2), (-1000, 0), np.int16))
    assert np.array_equal(up, np.broadcast_to(frame[:1], frame.shape))
    right = compensate(frame, np.full((rows, cols, 2), (0, 999), np.int16))
    assert np.array_equal(right, np.broadcast_to(frame[:, -1:], frame.shape))
    down_one = compensate(frame, np.full((rows, cols, 2), (-2, 0), np.int16))
    assert np.array_equal(down_one[1:], frame[:-1])
    assert np.array_equal(down_one[0], frame[0])
    extreme = np.full((rows, cols, 2), (32767, -32768), np.int16)
    assert np.array_equal(compensate(frame, extreme), np.broadcast_to(frame[-1:, :1], frame.shape))


def test_integer_shift_found_exactly() -> None:
    cur, ref = shifted_pair(3, -5)
    vectors = estimate_motion(cur, ref)
    assert vectors.dtype == np.int16 and vectors.shape == (*grid(H, W), 2)
    assert (interior(vectors) == (6, -10)).all()
    err = np.abs(compensate(ref, vectors).astype(np.int32) - cur)
    assert err[16:-16, 16:-16].max() == 0
    static = np.abs(ref.astype(np.int32) - cur)
    assert err.mean() < 0.1 * static.mean()  # only the uncovered border strips differ


def test_large_shift_within_search() -> None:
    cur, ref = shifted_pair(-14, 11, seed=2)
    vectors = estimate_motion(cur, ref)
    assert (interior(vectors) == (-28, 22)).all()


def test_half_pel_shift_found() -> None:
    big = texture(H + 64, W + 64, seed=4)
    ref = np.ascontiguousarray(big[32 : 32 + H, 32 : 32 + W])
    rows, cols = grid(H, W)
    cur = compensate(ref, np.full((rows, cols, 2), (7, -3), np.int16))  # (3.5, -1.5) pixels
    vectors = estimate_motion(cur, ref)
    assert (interior(vectors) == (7, -3)).all()
    err = np.abs(compensate(ref, vectors).astype(np.int32) - cur)
    assert err[16:-16, 16:-16].max() == 0


@pytest.mark.parametrize("size", [(37, 23), (1, 1), (16, 16), (3, 40)])
def test_partial_blocks(size: tuple[int, int]) -> None:
    big = texture(size[0] + 16, size[1] + 16, seed=6)
    ref = np.ascontiguousarray(big[8 : 8 + size[0], 8 : 8 + size[1]])
    cur = np.ascontiguousarray(big[9 : 9 + size[0], 6 : 6 + size[1]])
    vectors = estimate_motion(cur, ref)
    assert vectors.shape == (*grid(*size), 2) and vectors.dtype == np.int16
    pred = compensate(ref, vectors)
    assert pred.shape == cur.shape
    zero_err = np.abs(ref.astype(np.int32) - cur).sum()
    assert np.abs(pred.astype(np.int32) - cur).sum() <= zero_err


def test_determinism() -> None:
    cur, ref = shifted_pair(2, 7, seed=8)
    rng = np.random.default_rng(0)
    cur = np.clip(cur.astype(np.int32) + rng.integers(-8, 9, cur.shape), 0, 255).astype(np.uint8)
    first = estimate_motion(cur, ref, lmbda=2)
    second = estimate_motion(cur.copy(), ref.copy(), lmbda=2)
    assert np.array_equal(first, second)
    assert np.array_equal(compensate(ref, first), compensate(ref.copy(), second.copy()))
    assert encode_vectors(first) == encode_vectors(second)


def test_extrapolate_constant_velocity() -> None:
    big = texture(H + 64, W + 64, seed=9)
    velocity = (-2, 3)  # content moves by (2, -3) pixels per frame

    def frame(t: int) -> np.ndarray:
        y, x = 32 + velocity[0] * t, 32 + velocity[1] * t
        return np.ascontiguousarray(big[y : y + H, x : x + W])

    vectors = extrapolate_motion(frame(1), frame(0))
    assert (interior(vectors) == (-4, 6)).all()
    pred = compensate(frame(1), vectors).astype(np.int32)
    err = np.abs(pred - frame(2))
    static = np.abs(frame(1).astype(np.int32) - frame(2))
    assert err[16:-16, 16:-16].max() == 0
    assert err.mean() < 0.1 * static.mean()


def test_median_predictor_edges() -> None:
    field = np.zeros((3, 3, 2), np.int16)
    field[0] = [(1, 1), (2, -2), (3, 5)]
    field[1] = [(4, 0), (9, 9), (0, 0)]
    assert median_predictor(field, 0, 0) == (0, 0)
    assert median_predictor(field, 0, 2) == (2, -2)  # left only
    assert median_predictor(field, 1, 0) == (1, 1)  # first column: top
    assert median_predictor(field, 1, 1) == (3, 0)  # median(left, top, top-right)
    assert median_predictor(field, 1, 2) == (3, 5)  # last column: top-left replaces top-right
    one_col = np.array([[[5, 6]], [[0, 0]]], np.int16)
    assert median_predictor(one_col, 1, 0) == (5, 6)


def test_vector_bits() -> None:
    assert vector_bits(0, 0) == 2
    assert vector_bits(1, 0) == 4
    assert vector_bits(-1, 2) == 3 + 5
    assert vector_bits(-3, 3) == 10  # se(-3) -> ue(6), se(3) -> ue(5): 5 bits each


def smooth_field(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    return np.stack([6 + yy // 4, -10 + xx // 7], axis=-1).astype(np.int16)


def test_round_trip() -> None:
    rng = np.random.default_rng(11)
    fields = [
        np.zeros((16, 28, 2), np.int16),
        smooth_field(16, 28),
        rng.integers(-32, 33, (16, 28, 2)).astype(np.int16),
        rng.integers(-32768, 32768, (5, 7, 2)).astype(np.int16),
        np.full((3, 4, 2), (32767, -32768), np.int16),
        np.zeros((1, 1, 2), np.int16),
        np.array([[[0, -1]], [[0, 3]]], np.int16),
        np.zeros((0, 5, 2), np.int16),
    ]
    for field in fields:
        data = encode_vectors(field)
        out = decode_vectors(data, field.shape[0], field.shape[1])
        assert out.dtype == np.int16 and np.array_equal(out, field)
    assert len(encode_vectors(fields[0])) <= 6  # all-zero: header plus ~2 bytes
    assert len(encode_vectors(fields[1])) * 8 < 2 * 16 * 28  # smooth: < 2 bits per vector
    # estimated fields round-trip too
    cur, ref = shifted_pair(1, 2, seed=12)
    est = estimate_motion(cur, ref)
    assert np.array_equal(decode_vectors(encode_vectors(est), *est.shape[:2]), est)


def _decode_or_error(data: bytes, rows: int, cols: int) -> None:
    try:
        out = decode_vectors(data, rows, cols)
    except SandwichError as exc:
        assert "\n" not in str(exc)
        return
    assert out.shape == (rows, cols, 2) and out.dtype == np.int16


def test_truncated_and_corrupt_data() -> None:
    rng = np.random.default_rng(13)
    smooth = smooth_field(6, 7)
    noisy = rng.integers(-40, 41, (6, 7, 2)).astype(np.int16)
    for field in (smooth, noisy):
        data = encode_vectors(field)
        for cut in range(len(data)):
            with pytest.raises(SandwichError):
                decode_vectors(data[:cut], 6, 7)
        with pytest.raises(SandwichError):
            decode_vectors(data + b"\x00", 6, 7)
        with pytest.raises(SandwichError):
            decode_vectors(data, 7, 6)
        with pytest.raises(SandwichError):
            decode_vectors(b"\x09" + data[1:], 6, 7)
    with pytest.raises(SandwichError):
        decode_vectors(b"", -1, 3)
    with pytest.raises(SandwichError):
        decode_vectors(None, 6, 7)  # type: ignore[arg-type]

    base = [encode_vectors(smooth), encode_vectors(noisy)]
    for case in range(1000):
        rng = np.random.default_rng(case)
        kind = case % 4
        if kind == 0:  # bit flips in a valid stream
            buf = bytearray(base[case % 2])
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, len(buf)))
                buf[i] ^= 1 << int(rng.integers(0, 8))
            data = bytes(buf)
        elif kind == 1:  # random bytes
            data = rng.integers(0, 256, int(rng.integers(0, 60)), dtype=np.uint8).tobytes()
        else:  # random payload behind a valid header: exercises the bit parser itself
            payload = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
            if kind == 3:
                payload = bytes(b & int(rng.integers(0, 256)) for b in payload)  # more zeros
            crc = zlib.crc32((6).to_bytes(8, "big") + (7).to_bytes(8, "big") + payload)
            data = b"\x01" + (crc & 0xFFFF).to_bytes(2, "big") + payload
        _decode_or_error(data, 6, 7)
