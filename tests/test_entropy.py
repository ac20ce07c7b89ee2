"""The context-adaptive binary coder of the progressive codec: lossless, prefix-decodable,
deterministic, and actually compressing correlated codes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from sandwich.entropy import BinaryCodeCoder, coded_bits, raw_bits
from sandwich.errors import SandwichError


def random_codes(t: int, c: int, h: int, w: int, seed: int = 0, p: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((t, c, h, w)) < p).astype(np.uint8)


def correlated_codes(t: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Bits that are spatially blocky, similar to the previous channel and previous iteration."""
    rng = np.random.default_rng(seed)
    out = np.zeros((t, c, h, w), np.uint8)

    def blocky() -> np.ndarray:
        coarse = rng.random(((h + 1) // 2, (w + 1) // 2)) < 0.5
        return np.kron(coarse, np.ones((2, 2), bool))[:h, :w]

    def flips(p: float) -> np.ndarray:
        return rng.random((h, w)) < p

    for i in range(t):
        for k in range(c):
            if k == 0:
                plane = blocky() if i == 0 else out[i - 1, k].astype(bool) ^ flips(0.2)
            else:
                plane = out[i, k - 1].astype(bool) ^ (blocky() & flips(0.5))
                if i > 0:
                    plane = np.where(flips(0.5), plane, out[i - 1, k].astype(bool))
            out[i, k] = plane
    return out


SHAPES = [(1, 1), (3, 5), (17, 9), (2, 1), (1, 6)]


@pytest.mark.parametrize("h,w", SHAPES)
@pytest.mark.parametrize("t", [1, 2, 6])
@pytest.mark.parametrize("kind", ["random", "correlated"])
def test_round_trip(kind: str, t: int, h: int, w: int) -> None:
    make = random_codes if kind == "random" else correlated_codes
    codes = make(t, 32, h, w, seed=t * 100 + h * 10 + w)
    coder = BinaryCodeCoder(32)
    chunks = coder.encode(codes)
    assert len(chunks) == t and all(isinstance(c, bytes) for c in chunks)
    decoded = coder.decode(chunks, h, w)
    assert decoded.dtype == np.uint8 and decoded.shape == codes.shape
    np.testing.assert_array_equal(decoded, codes)


@pytest.mark.parametrize("channels", [1, 3, 7])
def test_round_trip_other_channel_counts(channels: int) -> None:
    codes = correlated_codes(3, channels, 6, 7, seed=channels)
    coder = BinaryCodeCoder(channels)
    np.testing.assert_array_equal(coder.decode(coder.encode(codes), 6, 7), codes)


def test_extreme_codes_round_trip() -> None:
    # All zeros / all ones drive the probabilities to the clip limits; then a surprise.
    coder = BinaryCodeCoder(4)
    codes = np.zeros((5, 4, 8, 8), np.uint8)
    codes[1] = 1
    codes[4, 2, 3, 3] = 1
    chunks = coder.encode(codes)
    np.testing.assert_array_equal(coder.decode(chunks, 8, 8), codes)
    assert coded_bits(chunks[2:4]) < 0.05 * raw_bits(codes[2:4])


def test_correlated_codes_compress() -> None:
    codes = correlated_codes(6, 32, 16, 24, seed=7)
    chunks = BinaryCodeCoder(32).encode(codes)
    ratio = coded_bits(chunks) / raw_bits(codes)
    assert ratio < 0.8, ratio  # measured 0.73


def test_iid_codes_cost_little_more_than_raw() -> None:
    codes = random_codes(4, 32, 16, 16, seed=3)
    chunks = BinaryCodeCoder(32).encode(codes)
    ratio = coded_bits(chunks) / raw_bits(codes)
    assert ratio <= 1.03, ratio


def test_biased_iid_codes_compress() -> None:
    codes = random_codes(3, 32, 16, 16, seed=4, p=0.1)
    chunks = BinaryCodeCoder(32).encode(codes)
    entropy = -(0.1 * np.log2(0.1) + 0.9 * np.log2(0.9))  # ~0.469 bits per bit
    assert coded_bits(chunks) / raw_bits(codes) < entropy + 0.05


def test_prefix_of_chunks_decodes_prefix_of_codes() -> None:
    codes = correlated_codes(6, 32, 5, 9, seed=11)
    coder = BinaryCodeCoder(32)
    chunks = coder.encode(codes)
    for k in range(1, 7):
        np.testing.assert_array_equal(coder.decode(chunks[:k], 5, 9), codes[:k])
        # Encoding a prefix gives the same chunks: later iterations do not affect earlier ones.
        assert coder.encode(codes[:k]) == chunks[:k]
    assert coder.decode([], 5, 9).shape == (0, 32, 5, 9)


def test_encode_is_deterministic_and_pure() -> None:
    codes = correlated_codes(4, 32, 9, 13, seed=5)
    coder = BinaryCodeCoder(32)
    first = coder.encode(codes)
    other = BinaryCodeCoder(32).encode(random_codes(3, 32, 9, 13, seed=1))
    assert coder.encode(codes) == first
    assert BinaryCodeCoder(32).encode(codes.copy()) == first
    assert other != first[:3]
    np.testing.assert_array_equal(coder.decode(first, 9, 13), codes)
    np.testing.assert_array_equal(coder.decode(first, 9, 13), codes)


_THREAD_SCRIPT = r"""
import hashlib, sys
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
from test_entropy import correlated_codes
from sandwich.entropy import BinaryCodeCoder
import sandwich.entropy.binary
codes = correlated_codes(3, 32, 11, 7, seed=42)
coder = BinaryCodeCoder(32)
chunks = coder.encode(codes)
assert (coder.decode(chunks, 11, 7) == codes).all()
print(torch.get_num_threads(), hashlib.sha256(b"|".join(chunks)).hexdigest())
"""


def test_bit_exact_across_thread_counts() -> None:
    codes = correlated_codes(3, 32, 11, 7, seed=42)
    expected = hashlib.sha256(b"|".join(BinaryCodeCoder(32).encode(codes))).hexdigest()
    here = os.path.dirname(os.path.abspath(__file__))
    for threads in (1, 2):
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        res = subprocess.run(
            [sys.executable, "-c", _THREAD_SCRIPT, str(threads), here],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        n, digest = res.stdout.split()
        assert int(n) == threads
        assert digest == expected


def test_module_does_not_need_torch() -> None:
    code = "import sys, sandwich.entropy; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.parametrize(
    "codes",
    [
        np.zeros((2, 32, 4, 4), np.float32),
        np.zeros((2, 32, 4, 4), np.int64),
        np.zeros((32, 4, 4), np.uint8),
        np.zeros((2, 31, 4, 4), np.uint8),
        np.zeros((2, 32, 0, 4), np.uint8),
        np.full((2, 32, 4, 4), 2, np.uint8),
        [[[[0]]]],
    ],
    ids=["float", "int64", "3d", "channels", "empty-plane", "value-2", "list"],
)
def test_invalid_codes_raise(codes) -> None:
    with pytest.raises(SandwichError):
        BinaryCodeCoder(32).encode(codes)


def test_invalid_decode_arguments_raise() -> None:
    coder = BinaryCodeCoder(32)
    chunks = coder.encode(random_codes(1, 32, 3, 3))
    with pytest.raises(SandwichError):
        coder.decode(chunks, 0, 3)
    with pytest.raises(SandwichError):
        coder.decode(chunks[0], 3, 3)
    with pytest.raises(SandwichError):
        coder.decode(["abc"], 3, 3)
    with pytest.raises(SandwichError):
        BinaryCodeCoder(0)


def test_corrupted_chunks_raise_sandwich_error_or_decode() -> None:
    # A range-coded stream is nearly a bijection, so some corruptions decode to other valid codes
    # (the container's CRC catches those); the rest must be a SandwichError, never another type.
    codes = correlated_codes(2, 32, 6, 6, seed=9)
    coder = BinaryCodeCoder(32)
    chunks = coder.encode(codes)
    rng = np.random.default_rng(0)
    data = chunks[1]
    detected = 0
    positions = range(0, len(data), 3)
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        try:
            out = coder.decode([chunks[0], bytes(bad)], 6, 6)
        except SandwichError as exc:
            assert "corrupt" in str(exc) and "\n" not in str(exc)
            detected += 1
            continue
        assert out.shape == (2, 32, 6, 6) and out.dtype == np.uint8 and out.max() <= 1
        np.testing.assert_array_equal(out[0], codes[0])
    assert detected >= len(positions) // 2
    junk = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    for bad in (data[:-1], data + b"\x01", b"\xff" * len(data), junk):
        with pytest.raises(SandwichError, match="corrupt"):
            coder.decode([chunks[0], bad], 6, 6)
    # Decoding with the wrong plane size is detected too.
    with pytest.raises(SandwichError, match="corrupt"):
        coder.decode(chunks, 6, 5)


def test_raw_and_coded_bits() -> None:
    assert raw_bits(np.zeros((2, 32, 3, 5), np.uint8)) == 2 * 32 * 3 * 5
    assert coded_bits([b"ab", b"", b"c"]) == 24
