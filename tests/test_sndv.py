"""The ``.sndv`` video container: byte layout, round trip, cuts at every byte, corruption of
every region, iteration truncation, seeking through the intra index, hostile headers and a
seeded fuzz loop."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import replace

import pytest

from sandwich.errors import SandwichError
from sandwich.formats import sndv
from sandwich.formats.sndv import (
    MAGIC,
    SndvFile,
    SndvFrame,
    SndvHeader,
    intra_offsets,
    is_sndv_file,
    pack,
    parse,
    parse_from,
    truncate,
)

HEADER = SndvHeader(
    model="rnn-video",
    weight_hash=bytes(range(1, 9)),
    height=36,
    width=52,
    frames=8,
    fps_num=30000,
    fps_den=1001,
    gop=3,
    prediction="motion",
    channels=8,
    block=8,
)


def make_frames(header: SndvHeader, seed: int = 0) -> list[SndvFrame]:
    rng = random.Random(seed)
    frames = []
    for i in range(header.frames):
        intra = i % header.gop == 0
        motion = b"" if intra or i == 4 else rng.randbytes(rng.randint(1, 12))
        chunks = [rng.randbytes(rng.randint(1, 16)) for _ in range(rng.randint(1, 4))]
        frames.append(SndvFrame(intra, motion, chunks))
    return frames


FRAMES = make_frames(HEADER)
DATA = pack(HEADER, FRAMES)


def crc(b: bytes) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


def walk(data: bytes, header: SndvHeader = HEADER) -> dict:
    """Independent reading of the documented layout: where every region of a file is."""
    name_len = data[5]
    header_end = 6 + name_len + 8 + 21
    count = -(-header.frames // header.gop)
    start = header_end + 4 + count * 8 + 4
    regions = {"header": (0, header_end + 4), "index": (header_end + 4, start)}
    pos = start
    for i in range(header.frames):
        number, kind, n = struct.unpack_from(">IBB", data, pos)
        assert number == i and kind == (i % header.gop == 0)
        regions[f"frame {i} header"] = (pos, pos + 10)
        pos += 10
        entries = [struct.unpack_from(">II", data, pos + 8 * j) for j in range(n + 1)]
        regions[f"frame {i} table"] = (pos, pos + 8 * (n + 1) + 4)
        pos += 8 * (n + 1) + 4
        for j, (length, _) in enumerate(entries):
            regions[f"frame {i} payload {j}"] = (pos, pos + length)
            pos += length
    assert pos == len(data)
    regions["start"] = start
    return regions


def raw_header(
    *,
    version: int = 1,
    name: bytes = b"m",
    name_len: int | None = None,
    height: int = 36,
    width: int = 52,
    frames: int = 1,
    fps_num: int = 25,
    fps_den: int = 1,
    gop: int = 1,
    prediction: int = 2,
    channels: int = 8,
    block: int = 16,
) -> bytes:
    """A header with a valid CRC and any field values."""
    head = MAGIC + bytes([version, len(name) if name_len is None else name_len]) + name
    head += bytes(8) + struct.pack(
        ">HHIIIHBBB", height, width, frames, fps_num, fps_den, gop, prediction, channels, block
    )
    return head + struct.pack(">I", crc(head))


def with_index(head: bytes, offsets: list[int]) -> bytes:
    index = b"".join(struct.pack(">Q", o) for o in offsets)
    return head + index + struct.pack(">I", crc(index))


def raw_frame(number: int, kind: int, entries: list[tuple[int, int]], n: int | None = None):
    """A frame header and chunk table with valid CRCs (payloads not included)."""
    fixed = struct.pack(">IBB", number, kind, len(entries) - 1 if n is None else n)
    table = b"".join(struct.pack(">II", length, c) for length, c in entries)
    return fixed + struct.pack(">I", crc(fixed)) + table + struct.pack(">I", crc(table))


def one_line_error(fn, *args) -> str:
    with pytest.raises(SandwichError) as info:
        fn(*args)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def test_round_trip():
    f = parse(DATA)
    assert f == SndvFile(HEADER, FRAMES, False, 0)
    assert f.header.fps == pytest.approx(29.97, abs=0.01)
    assert any(fr.motion for fr in FRAMES)
    assert any(not fr.intra and not fr.motion for fr in FRAMES)
    assert is_sndv_file(DATA) and is_sndv_file(bytearray(DATA[:4]))
    assert not is_sndv_file(b"SNDR") and not is_sndv_file(b"") and not is_sndv_file("SNDV")
    assert parse(bytearray(DATA)) == f and parse(memoryview(DATA)) == f
    for pred in sndv.PREDICTIONS:
        h = SndvHeader("", bytes(8), 1, 1, 1, 1, 1, 1, pred, 1, 4)
        assert parse(pack(h, [SndvFrame(True, b"", [b""])])).header == h


def test_byte_layout():
    name = HEADER.model.encode()
    assert DATA[:6] == MAGIC + bytes([1, len(name)])
    assert DATA[6 : 6 + len(name)] == name
    pos = 6 + len(name)
    assert DATA[pos : pos + 8] == HEADER.weight_hash
    fields = struct.unpack_from(">HHIIIHBBB", DATA, pos + 8)
    assert fields == (36, 52, 8, 30000, 1001, 3, 2, 8, 8)
    end = pos + 8 + 21
    assert struct.unpack_from(">I", DATA, end)[0] == crc(DATA[:end])
    regions = walk(DATA)
    offsets = intra_offsets(DATA)
    assert [k for k, _ in offsets] == [0, 3, 6]
    assert [o for _, o in offsets] == [regions[f"frame {k} header"][0] for k in (0, 3, 6)]
    assert offsets[0][1] == regions["start"]
    for i, frame in enumerate(FRAMES):
        a, b = regions[f"frame {i} payload 0"]
        assert DATA[a:b] == frame.motion
        for j, chunk in enumerate(frame.chunks, 1):
            a, b = regions[f"frame {i} payload {j}"]
            assert DATA[a:b] == chunk


def test_cut_at_every_byte():
    start = walk(DATA)["start"]
    previous = -1
    for cut in range(len(DATA)):
        try:
            f = parse(DATA[:cut])
        except SandwichError as e:
            assert cut < start, (cut, e)
            assert "\n" not in str(e)
            continue
        assert cut >= start and f.truncated and f.header == HEADER
        n = len(f.frames)
        assert n >= previous
        previous = n
        if n:
            assert f.frames[: n - 1] == FRAMES[: n - 1]
            last, orig = f.frames[-1], FRAMES[n - 1]
            assert last.intra == orig.intra and last.motion == orig.motion
            assert 1 <= len(last.chunks) <= len(orig.chunks)
            assert last.chunks == orig.chunks[: len(last.chunks)]
    assert parse(DATA[:start]).frames == []


def test_cut_keeps_complete_iterations():
    regions = walk(DATA)
    i = next(i for i, fr in enumerate(FRAMES) if len(fr.chunks) >= 3)
    end2 = regions[f"frame {i} payload 2"][1]
    f = parse(DATA[: end2 + 1])
    assert f.truncated and len(f.frames) == i + 1
    assert f.frames[i].chunks == FRAMES[i].chunks[:2]
    # cut inside the motion payload: the frame is dropped
    k = next(k for k, fr in enumerate(FRAMES) if len(fr.motion) >= 2)
    a, _ = regions[f"frame {k} payload 0"]
    f = parse(DATA[: a + 1])
    assert f.truncated and f.frames == FRAMES[:k]


def test_every_byte_flip_is_detected():
    for pos in range(len(DATA)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(DATA)
            bad[pos] ^= mask
            one_line_error(parse, bytes(bad))


def flip(data: bytes, pos: int) -> bytes:
    bad = bytearray(data)
    bad[pos] ^= 0x10
    return bytes(bad)


def test_corruption_names_the_region():
    regions = walk(DATA)
    i = next(i for i, fr in enumerate(FRAMES) if len(fr.chunks) >= 2 and fr.motion)
    cases = {
        "header": "header: checksum mismatch (corrupt file)",
        "index": "intra-frame index: checksum mismatch (corrupt file)",
        f"frame {i} header": f"frame {i}: frame header checksum mismatch (corrupt file)",
        f"frame {i} table": f"frame {i}: chunk table checksum mismatch (corrupt file)",
        f"frame {i} payload 0": f"frame {i}, motion: checksum mismatch (corrupt file)",
        f"frame {i} payload 2": f"frame {i}, iteration 2: checksum mismatch (corrupt file)",
    }
    for region, message in cases.items():
        a, b = regions[region]
        pos = (a + b) // 2 if region != "header" else b - 6
        assert one_line_error(parse, flip(DATA, pos)) == message
    # a damaged checksum field is a mismatch too
    a, b = regions[f"frame {i} table"]
    assert "chunk table checksum mismatch" in one_line_error(parse, flip(DATA, b - 1))
    assert "unexpected bytes" in one_line_error(parse, DATA + b"\0")


def test_truncate_iterations():
    most = max(len(fr.chunks) for fr in FRAMES)
    for k in range(1, most + 2):
        cut = truncate(DATA, k)
        f = parse(cut)
        assert not f.truncated and f.header == HEADER
        assert f.frames == [SndvFrame(x.intra, x.motion, x.chunks[:k]) for x in FRAMES]
        assert truncate(cut, k) == cut
    assert truncate(DATA, most) == DATA
    assert truncate(truncate(DATA, 3), 1) == truncate(DATA, 1)
    for bad in (0, -1, True, 1.5, "2"):
        one_line_error(truncate, DATA, bad)


def test_truncate_a_cut_file():
    regions = walk(DATA)
    cut = DATA[: regions["frame 5 payload 1"][1] + 1]
    present = parse(cut).frames
    out = parse(truncate(cut, 2))
    assert not out.truncated and out.header.frames == len(present) == 6
    assert out.frames == [SndvFrame(x.intra, x.motion, x.chunks[:2]) for x in present]
    one_line_error(truncate, DATA[: regions["start"]], 1)


def test_intra_offsets_and_parse_from():
    offsets = intra_offsets(DATA)
    for k, offset in offsets:
        assert struct.unpack_from(">IB", DATA, offset) == (k, 1)
        f = parse_from(DATA, k)
        assert f == SndvFile(HEADER, FRAMES[k:], False, k)
    assert parse_from(DATA, 0) == parse(DATA)
    assert "seek to frame 3" in one_line_error(parse_from, DATA, 4)
    for bad in (-1, 8, True, "3"):
        one_line_error(parse_from, DATA, bad)
    # seeking skips damage before the seek point
    regions = walk(DATA)
    a, b = regions["frame 1 payload 1"]
    damaged = flip(DATA, a)
    one_line_error(parse, damaged)
    assert parse_from(damaged, 3).frames == FRAMES[3:]
    # a cut file: the index still lists every intra frame; seeking past the cut finds nothing
    cut = DATA[: offsets[2][1]]
    assert intra_offsets(cut) == offsets
    assert parse_from(cut, 6) == SndvFile(HEADER, [], True, 6)
    assert parse_from(cut, 3).truncated and parse_from(cut, 3).frames == FRAMES[3:6]
    # an index that disagrees with where the frames are
    head_end = regions["index"][0]
    moved = [o for _, o in offsets]
    moved[1] += 1
    bad = with_index(DATA[:head_end], moved) + DATA[regions["start"] :]
    assert "intra-frame index" in one_line_error(parse, bad)
    one_line_error(parse_from, bad, 3)


def test_not_sndv_and_versions():
    for data in (b"", b"hello, this is text\n", b"SNDR" + DATA[4:], b"\x00" * 64, "SNDV"):
        assert one_line_error(parse, data) == "not a sandwich video file (.sndv)"
    one_line_error(parse, b"SND")
    newer = one_line_error(parse, raw_header(version=2))
    assert newer == "made by a newer sandwich (format 2); upgrade"
    assert "upgrade" in one_line_error(intra_offsets, raw_header(version=255))
    assert "version 0" in one_line_error(parse, raw_header(version=0))


@pytest.mark.parametrize(
    ("fields", "expect"),
    [
        ({"height": 0}, "height 0"),
        ({"width": 0}, "width 0"),
        ({"height": 0xFFFF, "width": 0xFFFF}, "max-pixels"),
        ({"frames": 0}, "frames 0"),
        ({"frames": 2**32 - 1}, "frames 4294967295"),
        ({"frames": 100_001}, "frames"),
        ({"fps_num": 0}, "fps_num"),
        ({"fps_den": 0}, "fps_den"),
        ({"gop": 0}, "gop 0"),
        ({"prediction": 4}, "unknown prediction mode 4"),
        ({"prediction": 255}, "unknown prediction mode 255"),
        ({"channels": 0}, "channels 0"),
        ({"block": 0}, "block 0"),
        ({"block": 3}, "block 3"),
        ({"block": 255}, "block 255"),
        ({"name": b"\xff\xfe"}, "utf-8"),
        ({"name": b"x" * 65}, "model name length 65"),
        ({"name_len": 200}, "model name length 200"),
        ({"name": b"", "name_len": 60}, "ends inside its header"),
    ],
)
def test_hostile_header(fields: dict, expect: str):
    head = raw_header(**fields)
    data = with_index(head, [len(head) + 12])
    msg = one_line_error(parse, data)
    assert expect in msg
    one_line_error(intra_offsets, data)
    one_line_error(parse_from, data, 0)


def test_hostile_index():
    # 100000 declared intra frames: the index is checked against the bytes present
    head = raw_header(frames=100_000, gop=1)
    assert "intra-frame index" in one_line_error(parse, head + bytes(64))
    head = raw_header(frames=4, gop=2)
    start = len(head) + 2 * 8 + 4
    assert "frame 0 at byte" in one_line_error(parse, with_index(head, [start + 1, start + 40]))
    assert "out of order" in one_line_error(parse, with_index(head, [start, start]))
    # a plausible index whose frames are missing: a truncated file, even seeking past its end
    data = with_index(head, [start, 2**64 - 1])
    f = parse(data)
    assert f.truncated and f.frames == []
    assert intra_offsets(data) == [(0, start), (2, 2**64 - 1)]
    assert parse_from(data, 2) == SndvFile(f.header, [], True, 2)


def hostile_file(frame: bytes, payload: bytes = b"", **fields) -> bytes:
    head = raw_header(**fields)
    return with_index(head, [len(head) + 12]) + frame + payload


def test_hostile_frames():
    p = b"abc"
    good = hostile_file(raw_frame(0, 1, [(0, crc(b"")), (3, crc(p))]), p)
    assert parse(good).frames == [SndvFrame(True, b"", [p])]
    cases = [
        (raw_frame(0, 1, [(0, crc(b""))], n=0), "frame 0: it has no iterations"),
        (raw_frame(0, 7, [(0, crc(b"")), (3, crc(p))]), "unknown frame type 7"),
        (raw_frame(0, 0, [(0, crc(b"")), (3, crc(p))]), "must be an intra frame"),
        (raw_frame(5, 1, [(0, crc(b"")), (3, crc(p))]), "says frame 5"),
        (raw_frame(0, 1, [(2**32 - 1, 0), (3, crc(p))]), "frame 0, motion: impossible length"),
        (raw_frame(0, 1, [(0, crc(b"")), (2**32 - 1, 0)]), "iteration 1: impossible length"),
        (raw_frame(0, 1, [(0, crc(b"")), (3, crc(p) ^ 1)]), "iteration 1: checksum mismatch"),
        (raw_frame(0, 1, [(0, crc(b"")), (3, crc(p))], n=200), "chunk table checksum"),
    ]
    for frame, expect in cases:
        data = hostile_file(frame, p + bytes(2000))
        assert expect in one_line_error(parse, data), expect
    # an iteration count larger than the bytes present: cut, not a crash
    f = parse(hostile_file(raw_frame(0, 1, [(0, crc(b""))] + [(3, crc(p))] * 255), p))
    assert f.truncated and f.frames == [SndvFrame(True, b"", [p])]


def test_pack_rejects_bad_input():
    frames = make_frames(HEADER)
    bad_headers = [
        {"model": "x" * 65},
        {"model": "\udcff"},
        {"model": 5},
        {"weight_hash": b"short"},
        {"height": 0},
        {"width": 65536},
        {"height": True},
        {"frames": 7},
        {"fps_num": 0},
        {"fps_den": 2**32},
        {"gop": 0},
        {"prediction": "bogus"},
        {"channels": 256},
        {"block": 2},
        {"block": 65},
        {"height": 40000, "width": 40000},
    ]
    for change in bad_headers:
        one_line_error(pack, replace(HEADER, **change), frames)
    bad_frames = [
        (1, SndvFrame(True, b"", [b"x"])),  # intra where the gop says predicted
        (3, SndvFrame(False, b"", [b"x"])),  # predicted where the gop says intra
        (0, SndvFrame(1, b"", [b"x"])),
        (1, SndvFrame(False, b"", [])),
        (1, SndvFrame(False, b"", [b"x"] * 256)),
        (1, SndvFrame(False, b"", b"xyz")),
        (1, SndvFrame(False, b"", ["text"])),
        (1, SndvFrame(False, None, [b"x"])),
        (1, SndvFrame(False, bytes(10**6), [b"x"])),
        (1, SndvFrame(False, b"", [bytes(10**6)])),
        (1, (False, b"", [b"x"])),
    ]
    for i, frame in bad_frames:
        changed = list(frames)
        changed[i] = frame
        one_line_error(pack, HEADER, changed)
    one_line_error(lambda: SndvHeader("", bytes(8), 1, 1, 1, 1, 0, 1, "none", 1).fps)


def test_fuzz_random_flips_and_cuts():
    rng = random.Random(1234)
    header = replace(HEADER, frames=5, gop=2)
    data = pack(header, make_frames(header, seed=7))
    outcomes = {"ok": 0, "error": 0}
    for case in range(2000):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        if case % 3 == 0:
            bad = bad[: rng.randrange(len(bad) + 1)]
        elif case % 7 == 0:
            bad += rng.randbytes(rng.randint(1, 8))
        blob = bytes(bad)
        try:
            f = parse(blob)
            offsets = intra_offsets(blob)
            parse_from(blob, offsets[-1][0])
            if f.frames:
                parse(truncate(blob, 1))
            outcomes["ok"] += 1
        except SandwichError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]
