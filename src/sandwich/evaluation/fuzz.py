"""Fuzzing the decoders: mutated sandwich files must fail with one-line errors, never crash or hang.

Seeds are real files made on the fly by zoo models on small images (JPEG with the sandwich marker,
over colour and grayscale; progressive ``.sndr``, whole and in tiles: versions 1 and 2; a
progressive video ``.sndv`` with motion vectors). Each case
mutates one seed (bit flips, byte overwrites, cuts, insertions, and targeted edits of the marker's
and the ``.sndr`` header's fields, its format version and its tiles' index entries, with their
checksums fixed so that the parser gets past the CRC) and decodes it through
:func:`sandwich.api.decode`, as ``sandwich decompress`` does. A case ends as ``decoded``,
``error`` (a :class:`SandwichError`: what a user sees as one line), ``crash`` (any other
exception: a bug) or ``hang`` (over the time limit).
"""

from __future__ import annotations

import signal
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sandwich.errors import SandwichError

# (zoo model, knob, tile side or None); rnn with 16-pixel tiles writes a tiled (version 2) file
SEED_MODELS = (("gray-modem", 50, None), ("rgb-jpeg", 30, None), ("rnn", 2, None), ("rnn", 2, 16))
SEED_VIDEO_MODEL = "rnn-video"  # also seeds a .sndv file (GOP of 2, motion prediction)
OUTCOMES = ("decoded", "error", "crash", "hang")


@dataclass
class FuzzReport:
    """Counts per outcome and per mutation, and the first crashes and hangs (for reproducing)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    by_mutation: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, mutation: str, outcome: str, detail: str = "", case: int = -1) -> None:
        self.counts[outcome] += 1
        row = self.by_mutation.setdefault(mutation, dict.fromkeys(OUTCOMES, 0))
        row[outcome] += 1
        if outcome in ("crash", "hang") and len(self.failures) < 20:
            self.failures.append({"case": case, "mutation": mutation, "detail": detail})


def seed_files(size: tuple[int, int] = (24, 40)) -> list[bytes]:
    """Real files to mutate: each model of :data:`SEED_MODELS` on a small smooth image."""
    from sandwich.zoo import load_model

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 5, yy * 7, (xx + yy) * 3], axis=2).astype(np.uint8)
    files = []
    for name, value, tile in SEED_MODELS:
        net = load_model(name)
        saved = getattr(net, "tile", None)
        if tile is not None:
            net.tile = tile
        try:
            files.append(net.compress(img, value))
        finally:
            if tile is not None:
                net.tile = saved
    # a progressive video file: three frames of the image moving, motion prediction
    clip = np.stack([np.roll(img, (i, 2 * i), axis=(0, 1)) for i in range(3)])
    video = load_model(SEED_VIDEO_MODEL)
    video.configure(prediction="motion", gop=2)
    files.append(video.compress(clip, 2))
    return files


# --------------------------------------------------------------------------------- mutations
def _flip(data: bytearray, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))


def _overwrite(data: bytearray, rng: np.random.Generator) -> None:
    i = int(rng.integers(len(data)))
    n = int(rng.integers(1, 9))
    fill = [0x00, 0xFF, 0x7F, 0x80, int(rng.integers(256))][int(rng.integers(5))]
    data[i : i + n] = bytes([fill]) * len(data[i : i + n])


def _cut(data: bytearray, rng: np.random.Generator) -> None:
    del data[int(rng.integers(len(data))) :]


def _insert(data: bytearray, rng: np.random.Generator) -> None:
    i = int(rng.integers(len(data) + 1))
    data[i:i] = rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8).tobytes()


def _marker_field(data: bytearray, rng: np.random.Generator) -> None:
    """A field of the JPEG's sandwich marker set to an extreme or random value."""
    at = data.find(b"SNDW")
    if at < 0:
        return _overwrite(data, rng)
    # after the magic: format(1) height(2) width(2) version(2) name length(1)
    offset, width = [(4, 1), (5, 2), (7, 2), (9, 2), (11, 1)][int(rng.integers(5))]
    value = [0, 1, (1 << (8 * width)) - 1, int(rng.integers(1 << (8 * width)))][
        int(rng.integers(4))
    ]
    data[at + offset : at + offset + width] = value.to_bytes(width, "big")


def _extreme(width: int, rng: np.random.Generator) -> int:
    """0, 1, the largest or a random value of a ``width``-byte field."""
    return [0, 1, (1 << (8 * width)) - 1, int(rng.integers(1 << (8 * width)))][int(rng.integers(4))]


def _sndr_layout(data: bytearray) -> tuple[int, int, int]:
    """(offset of height, offset of the header CRC, format version) of a ``.sndr`` header."""
    from sandwich.formats import sndr

    n = data[len(sndr.MAGIC) + 1]
    fixed = len(sndr.MAGIC) + 2 + n + sndr.HASH_BYTES  # start of height, width, iters, channels
    version = data[len(sndr.MAGIC)]
    end = fixed + sndr._FIXED.size + (sndr._TILE.size if version == sndr.TILED_VERSION else 0)
    return fixed, end, version


def _sndr_field(data: bytearray, rng: np.random.Generator) -> None:
    """A field of a ``.sndr`` header (or a chunk length, or the format version with the tile
    field added or removed) changed, with the header CRC fixed."""
    from sandwich.formats import sndr

    if not data.startswith(sndr.MAGIC):
        return _overwrite(data, rng)
    n = data[len(sndr.MAGIC) + 1]
    fixed, end, version = _sndr_layout(data)
    if len(data) < end + 4:
        return _cut(data, rng)
    choice = ("field", "field", "field", "name", "length", "version")[int(rng.integers(6))]
    if choice == "field":  # height, width, iterations, channels; the tile side (version 2)
        fields = [(0, 4), (4, 4), (8, 1), (9, 1)]
        fields += [(10, 2)] if version == sndr.TILED_VERSION else []
        offset, width = fields[int(rng.integers(len(fields)))]
        data[fixed + offset : fixed + offset + width] = _extreme(width, rng).to_bytes(width, "big")
    elif choice == "name":  # the model name, to a zoo sandwich or to a path on disk
        name = [b"rgb-jpeg", b"./x.safetensors", b"\xff\xfe"][int(rng.integers(3))]
        data[len(sndr.MAGIC) + 1] = len(name)
        data[len(sndr.MAGIC) + 2 : len(sndr.MAGIC) + 2 + n] = name
        end += len(name) - n
    elif choice == "length":  # the first chunk's length (version 2: the first tile's index entry)
        if len(data) >= end + 8:
            data[end + 4 : end + 8] = struct.pack(">I", int(rng.integers(1 << 32)))
        return None
    elif version == sndr.TILED_VERSION:  # version 2 -> 1: the tile field removed
        data[len(sndr.MAGIC)] = sndr.FORMAT_VERSION
        del data[end - sndr._TILE.size : end]
        end -= sndr._TILE.size
    else:  # version 1 -> 2: a tile field added
        data[len(sndr.MAGIC)] = sndr.TILED_VERSION
        data[end:end] = _extreme(2, rng).to_bytes(2, "big")
        end += sndr._TILE.size
    data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[:end])))
    return None


def _sndr_blocks(data: bytearray) -> list[tuple[int, int]]:
    """(offset, tile count) of the index of each complete iteration block of a tiled file."""
    from sandwich.formats import sndr

    _, end, _ = _sndr_layout(data)
    try:
        header, _ = sndr._parse_header(bytes(data[: end + 4]))
    except SandwichError:
        return []
    count = len(header.tiles())
    pos, blocks = end + 4, []
    while pos + 8 * count + 4 <= len(data):
        blocks.append((pos, count))
        lengths = struct.unpack_from(f">{2 * count}I", data, pos)[::2]
        pos += 8 * count + 4 + sum(lengths)
    return blocks


def _sndr_table(data: bytearray, rng: np.random.Generator) -> None:
    """In a tiled file, a tile's index entry (its payload length or checksum) set to an extreme
    or random value, or two tiles of an iteration swapped (entries and payloads), with the index
    CRC fixed; other files: a bit flip."""
    from sandwich.formats import sndr

    if not data.startswith(sndr.MAGIC) or data[len(sndr.MAGIC)] != sndr.TILED_VERSION:
        return _flip(data, rng)
    blocks = _sndr_blocks(data)
    if not blocks:
        return _flip(data, rng)
    pos, count = blocks[int(rng.integers(len(blocks)))]
    i = int(rng.integers(count))
    if rng.integers(3) == 0 and count > 1:  # two tiles of the iteration swapped, payloads too
        j = (i + 1 + int(rng.integers(count - 1))) % count
        entries = [bytes(data[pos + 8 * k : pos + 8 * k + 8]) for k in range(count)]
        start = pos + 8 * count + 4
        payloads = []
        for entry in entries:
            n = struct.unpack(">I", entry[:4])[0]
            payloads.append(bytes(data[start : start + n]))
            start += n
        for seq in (entries, payloads):
            seq[i], seq[j] = seq[j], seq[i]
        data[pos : pos + 8 * count] = b"".join(entries)
        data[pos + 8 * count + 4 : start] = b"".join(payloads)
    else:  # a length or a checksum
        at = pos + 8 * i + 4 * int(rng.integers(2))
        data[at : at + 4] = _extreme(4, rng).to_bytes(4, "big")
    index_end = pos + 8 * count
    data[index_end : index_end + 4] = struct.pack(">I", zlib.crc32(bytes(data[pos:index_end])))
    return None


MUTATIONS: dict[str, Callable[[bytearray, np.random.Generator], None]] = {
    "flip": _flip,
    "overwrite": _overwrite,
    "cut": _cut,
    "insert": _insert,
    "marker-field": _marker_field,
    "sndr-field": _sndr_field,
    "sndr-table": _sndr_table,
}


class _TimeoutError(Exception):
    pass


def _alarm(_signum, _frame) -> None:
    raise _TimeoutError


def run_fuzz(
    cases: int,
    seed: int = 0,
    time_limit: float = 10.0,
    progress: Callable[[], None] | None = None,
) -> FuzzReport:
    """Decode ``cases`` mutated files (seeded: the same ``seed`` gives the same cases) and count
    the outcomes. Each decode gets ``time_limit`` seconds (wall clock, via SIGALRM on the main
    thread) before it counts as a hang."""
    from sandwich.api import ModelCache, decode

    seeds = seed_files()
    rng = np.random.default_rng(seed)
    names = list(MUTATIONS)
    models = ModelCache(1)
    report = FuzzReport()
    start = time.perf_counter()
    use_alarm = hasattr(signal, "SIGALRM")
    old = signal.signal(signal.SIGALRM, _alarm) if use_alarm else None
    try:
        for case in range(cases):
            data = bytearray(seeds[int(rng.integers(len(seeds)))])
            mutation = names[int(rng.integers(len(names)))]
            MUTATIONS[mutation](data, rng)
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                decode(bytes(data), models=models)
                outcome, detail = "decoded", ""
            except SandwichError as e:
                outcome, detail = "error", str(e)
                if "\n" in detail:  # a user would see more than one line
                    outcome = "crash"
            except _TimeoutError:
                outcome, detail = "hang", f"over {time_limit} s"
            except Exception as e:  # noqa: BLE001 - any other exception is what we look for
                outcome, detail = "crash", f"{type(e).__name__}: {e}"
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            report.add(mutation, outcome, detail[:300], case)
            if progress is not None:
                progress()
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)
    report.seconds = time.perf_counter() - start
    return report
