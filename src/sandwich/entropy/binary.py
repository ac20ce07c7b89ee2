"""Deterministic context-adaptive entropy coder for the binary code planes of the recurrent codec.

Layout of the data: iteration ``t`` produces ``C`` binary planes of shape ``(h, w)``. Each
iteration is coded into its own range-coder stream, plane by plane (channel 0 first). A plane is
coded in four interleaved phases (the 2x2 sub-lattices ``(0,0), (1,1), (0,1), (1,0)``), each phase
with one vectorised call, so that later phases can use the already-coded spatial neighbours of the
same plane.

Context of a bit at ``(t, c, y, x)`` (only already-coded data is used):

* the bit at the same position in the previous iteration (or "none" for ``t == 0``),
* the bit at the same position in the previous channel of this iteration (or "none" for ``c == 0``),
* the fraction of ones among the already-coded 8-neighbours in the current plane, quantised to 5
  levels (or "none" in the first phase).

Probabilities come only from integer counts: per ``(channel, context)`` counts are backed off to
counts shared by all channels (a Dirichlet prior centred on the shared estimate). All arithmetic is
on integers; the resulting probability ``q / 2**16`` is exactly representable in float64, so the
model passed to the range coder is bit-identical on every machine and thread count. Counts are
updated after each phase (vectorised with ``bincount``) and persist across iterations.
"""

from __future__ import annotations

from collections.abc import Sequence

import constriction
import numpy as np

from sandwich.errors import SandwichError

__all__ = ["BinaryCodeCoder", "coded_bits", "raw_bits"]

_SCALE = 1 << 16  # probabilities are integers in units of 1/65536
_PMIN = _SCALE // 4096  # clip to [1/4096, 1 - 1/4096]
_K_CHANNEL = 16  # strength of the shared-statistics prior for per-channel counts
_K_SHARED = 2  # strength of the p=1/2 prior for the shared counts
_LIMIT_CHANNEL = 1023  # halve per-channel counts of a context once their total exceeds this
_LIMIT_SHARED = 8191  # same for the shared counts
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
_SPATIAL_LEVELS = 4  # quantised fraction of ones among known neighbours: 0..4, plus "none"
_N_PREV = 3  # none / 0 / 1
_N_CHAN = 3  # none / 0 / 1
_N_SPATIAL = _SPATIAL_LEVELS + 2
N_CONTEXTS = _N_PREV * _N_CHAN * _N_SPATIAL


def raw_bits(codes: np.ndarray) -> int:
    """Number of bits of the codes stored uncompressed (one bit per code element)."""
    return int(np.asarray(codes).size)


def coded_bits(chunks: Sequence[bytes]) -> int:
    """Total size of the coded chunks in bits."""
    return 8 * sum(len(c) for c in chunks)


def _words_to_bytes(words: np.ndarray) -> bytes:
    # Big-endian words so that the zero padding of the final word is at the very end; the decoder
    # reads missing words as zeros, so trailing zero bytes can be dropped.
    return np.asarray(words, dtype=np.uint32).astype(">u4").tobytes().rstrip(b"\0")


def _bytes_to_words(data: bytes) -> np.ndarray:
    data = bytes(data)
    data += b"\0" * (-len(data) % 4)
    return np.frombuffer(data, dtype=">u4").astype(np.uint32)


def _neighbour_sums(plane: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ones, known) counts over the 8-neighbourhood; outside the plane counts as unknown."""
    h, w = plane.shape
    ones = np.zeros((h + 2, w + 2), np.int64)
    have = np.zeros((h + 2, w + 2), np.int64)
    ones[1:-1, 1:-1] = plane * known
    have[1:-1, 1:-1] = known
    s = np.zeros((h, w), np.int64)
    k = np.zeros((h, w), np.int64)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            s += ones[dy : dy + h, dx : dx + w]
            k += have[dy : dy + h, dx : dx + w]
    return s, k


class _Counts:
    """Integer symbol counts per (channel, context), backed off to counts shared by channels."""

    def __init__(self, channels: int) -> None:
        self.n0 = np.zeros((channels, N_CONTEXTS), np.int64)
        self.n1 = np.zeros((channels, N_CONTEXTS), np.int64)
        self.s0 = np.zeros(N_CONTEXTS, np.int64)
        self.s1 = np.zeros(N_CONTEXTS, np.int64)

    def probabilities(self, c: int, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) for each context id of channel ``c``, as float64 multiples of 2**-16."""
        s0, s1 = self.s0[ctx], self.s1[ctx]
        q_shared = (s1 * _SCALE + _K_SHARED * (_SCALE // 2)) // (s0 + s1 + _K_SHARED)
        n0, n1 = self.n0[c, ctx], self.n1[c, ctx]
        q = (n1 * _SCALE + _K_CHANNEL * q_shared) // (n0 + n1 + _K_CHANNEL)
        q = np.clip(q, _PMIN, _SCALE - _PMIN)
        return q.astype(np.float64) / _SCALE  # exact: q < 2**16

    def update(self, c: int, ctx: np.ndarray, bits: np.ndarray) -> None:
        ones = np.bincount(ctx[bits == 1], minlength=N_CONTEXTS)
        zeros = np.bincount(ctx[bits == 0], minlength=N_CONTEXTS)
        self.n0[c] += zeros
        self.n1[c] += ones
        self.s0 += zeros
        self.s1 += ones
        big = self.n0[c] + self.n1[c] > _LIMIT_CHANNEL
        if big.any():
            self.n0[c, big] = (self.n0[c, big] + 1) // 2
            self.n1[c, big] = (self.n1[c, big] + 1) // 2
        big = self.s0 + self.s1 > _LIMIT_SHARED
        if big.any():
            self.s0[big] = (self.s0[big] + 1) // 2
            self.s1[big] = (self.s1[big] + 1) // 2


class BinaryCodeCoder:
    """Lossless coder for (T, C, h, w) binary codes; one independent byte string per iteration.

    ``encode`` and ``decode`` each start from fresh statistics, so both are pure functions of their
    input, and decoding the first ``k`` chunks gives the first ``k`` iterations.
    """

    def __init__(self, channels: int = 32) -> None:
        if not isinstance(channels, (int, np.integer)) or channels < 1:
            raise SandwichError(f"code channels must be a positive integer, got {channels!r}")
        self.channels = int(channels)
        self._family = constriction.stream.model.Bernoulli(perfect=False)

    # -- shared driver -------------------------------------------------------------------------

    def _code_iteration(self, counts, prev, current, code_fn) -> None:
        """Run the context model over one iteration; ``code_fn(probs, sel_bits)`` codes a phase.

        ``current`` is filled in place: for encoding it already holds the bits (``code_fn`` returns
        them unchanged), for decoding ``code_fn`` returns the decoded bits.
        """
        _, h, w = current.shape
        for c in range(self.channels):
            plane = current[c]
            # context id = ((prev-iteration bit) * 3 + previous-channel bit) * 6 + spatial level
            base = np.zeros((h, w), np.int64) if prev is None else 1 + prev[c].astype(np.int64)
            base *= _N_CHAN
            if c > 0:
                base += 1 + current[c - 1].astype(np.int64)
            base *= _N_SPATIAL
            known = np.zeros((h, w), np.int64)
            for py, px in _PHASES:
                if py >= h or px >= w:
                    continue
                if known.any():
                    s, k = _neighbour_sums(plane.astype(np.int64), known)
                    sub_s = s[py::2, px::2]
                    sub_k = k[py::2, px::2]
                    level = np.zeros(sub_s.shape, np.int64)
                    m = sub_k > 0
                    level[m] = 1 + (sub_s[m] * _SPATIAL_LEVELS + sub_k[m] // 2) // sub_k[m]
                else:
                    level = np.zeros(plane[py::2, px::2].shape, np.int64)
                ctx = (base[py::2, px::2] + level).ravel()
                probs = counts.probabilities(c, ctx)
                bits = code_fn(probs, plane[py::2, px::2].ravel())
                plane[py::2, px::2] = bits.reshape(level.shape)
                counts.update(c, ctx, bits.astype(np.int64))
                known[py::2, px::2] = 1

    # -- public API ----------------------------------------------------------------------------

    def encode(self, codes: np.ndarray) -> list[bytes]:
        """codes: (T, C, h, w) uint8 in {0,1} -> one byte string per iteration."""
        codes = self._check_codes(codes)
        counts = _Counts(self.channels)
        chunks: list[bytes] = []
        prev = None
        for t in range(codes.shape[0]):
            encoder = constriction.stream.queue.RangeEncoder()
            family = self._family

            def encode_phase(probs, bits, encoder=encoder, family=family):
                encoder.encode(bits.astype(np.int32), family, probs)
                return bits

            current = codes[t].copy()
            self._code_iteration(counts, prev, current, encode_phase)
            chunks.append(_words_to_bytes(encoder.get_compressed()))
            prev = current
        return chunks

    def decode(self, chunks: Sequence[bytes], height: int, width: int) -> np.ndarray:
        """Inverse of encode for the first len(chunks) iterations -> (len(chunks), C, h, w) uint8.

        ``height`` and ``width`` are the size of the code planes (h, w), not of the image.
        """
        for name, v in (("height", height), ("width", width)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise SandwichError(f"code plane {name} must be a positive integer, got {v!r}")
        if isinstance(chunks, (bytes, bytearray, memoryview)):
            raise SandwichError("decode expects a list of per-iteration chunks, not a byte string")
        h, w = int(height), int(width)
        out = np.zeros((len(chunks), self.channels, h, w), np.uint8)
        counts = _Counts(self.channels)
        prev = None
        for t, chunk in enumerate(chunks):
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise SandwichError(f"chunk {t} is {type(chunk).__name__}, expected bytes")
            chunk = bytes(chunk)
            # Every chunk is re-encoded while decoding; a chunk that is not exactly the encoding
            # of what it decodes to is corrupt (the range decoder itself never notices).
            check = constriction.stream.queue.RangeEncoder()
            family = self._family
            try:
                decoder = constriction.stream.queue.RangeDecoder(_bytes_to_words(chunk))

                def decode_phase(probs, _bits, decoder=decoder, check=check, family=family):
                    bits = np.asarray(decoder.decode(family, probs), dtype=np.int32)
                    if bits.shape != probs.shape or ((bits != 0) & (bits != 1)).any():
                        raise ValueError("decoder returned invalid symbols")
                    check.encode(bits, family, probs)
                    return bits.astype(np.uint8)

                current = out[t]
                self._code_iteration(counts, prev, current, decode_phase)
                ok = _words_to_bytes(check.get_compressed()) == chunk
            except SandwichError:
                raise
            except Exception as exc:  # constriction raises assorted errors on garbage
                raise SandwichError(
                    f"entropy-coded data of iteration {t + 1} is corrupt ({exc})"
                ) from None
            if not ok:
                raise SandwichError(f"entropy-coded data of iteration {t + 1} is corrupt")
            prev = current
        return out

    # -- validation ----------------------------------------------------------------------------

    def _check_codes(self, codes: np.ndarray) -> np.ndarray:
        if not isinstance(codes, np.ndarray):
            raise SandwichError(f"codes must be a numpy array, got {type(codes).__name__}")
        if codes.dtype not in (np.uint8, np.bool_):
            raise SandwichError(f"codes must be uint8 in {{0,1}}, got dtype {codes.dtype}")
        if codes.ndim != 4:
            raise SandwichError(f"codes must have shape (T, C, h, w), got shape {codes.shape}")
        t, c, h, w = codes.shape
        if c != self.channels:
            raise SandwichError(f"codes have {c} channels, the coder expects {self.channels}")
        if h < 1 or w < 1:
            raise SandwichError(f"code planes must be at least 1x1, got {h}x{w}")
        codes = codes.astype(np.uint8)
        if t and int(codes.max()) > 1:
            raise SandwichError("codes must contain only the values 0 and 1")
        return codes
