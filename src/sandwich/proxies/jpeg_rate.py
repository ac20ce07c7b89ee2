"""Bits of a baseline JPEG predicted from its quantised DCT coefficients.

libjpeg writes baseline files with the standard Huffman tables of the JPEG specification unless
asked to optimise them. The entropy-coded size is then a deterministic function of the quantised
coefficients: for every block, the DC difference costs the code length of its size category plus
that many amplitude bits; every non-zero AC coefficient costs the code of its (zero-run, size)
symbol plus its amplitude bits, runs of 16 zeros cost a ZRL code, and trailing zeros one EOB code.
:func:`huffman_bits` counts exactly that, vectorised over blocks. It is piecewise constant, so
:func:`surrogate_bits` gives a smooth stand-in that carries the gradient.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sandwich.codecs.jpeg import SUBSAMPLINGS, JpegCodec, ecs_bytes


def parse_dht(data: bytes) -> dict[tuple[int, int], list[int]]:
    """Huffman code lengths from the DHT segments of a JPEG file.

    Returns:
        {(table_class, table_id): lengths}, ``lengths[symbol]`` in bits (0 for absent symbols),
        256 entries; class 0 is DC, class 1 is AC.
    """
    tables: dict[tuple[int, int], list[int]] = {}
    i = 2
    while i + 4 <= len(data):
        marker = data[i + 1]
        length = (data[i + 2] << 8) | data[i + 3]
        if marker == 0xC4:
            j = i + 4
            end = i + 2 + length
            while j < end:
                tc, th = data[j] >> 4, data[j] & 15
                counts = list(data[j + 1 : j + 17])
                j += 17
                lengths = [0] * 256
                for bits, count in enumerate(counts, start=1):
                    for _ in range(count):
                        lengths[data[j]] = bits
                        j += 1
                tables[(tc, th)] = lengths
        if marker == 0xDA:
            break
        i += 2 + length
    return tables


_POW2 = 2 ** torch.arange(16)


def size_category(v: Tensor) -> Tensor:
    """JPEG magnitude category of integers: 0 for 0, else the bit length of |v| (int64)."""
    a = v.abs().long()
    return (a.unsqueeze(-1) >= _POW2.to(a.device)).sum(-1)


def huffman_bits(q: Tensor, dc_lengths: Tensor, ac_lengths: Tensor) -> Tensor:
    """Exact entropy-coded bits of one component.

    Args:
        q: (N, B, 64) quantised coefficients (integer valued), zig-zag order, blocks in the order
            the scan visits them (DC prediction runs along this order).
        dc_lengths: (256,) code length per DC symbol (size category).
        ac_lengths: (256,) code length per AC symbol (run << 4 | size).

    Returns:
        (N,) float bits (Huffman codes and amplitude bits; no byte stuffing, no headers).
    """
    q = q.long()
    dc = q[..., 0]
    prev = torch.cat([torch.zeros_like(dc[:, :1]), dc[:, :-1]], dim=1)
    s_dc = size_category(dc - prev)
    dc_bits = (dc_lengths[s_dc] + s_dc).sum(dim=1)

    ac = q[..., 1:]
    nz = ac != 0
    pos = torch.arange(63, device=q.device).expand_as(ac)
    last = torch.where(nz, pos, torch.full_like(pos, -1))
    last = torch.cummax(last, dim=-1).values
    prev_nz = torch.cat([torch.full_like(last[..., :1], -1), last[..., :-1]], dim=-1)
    run = pos - prev_nz - 1
    s_ac = size_category(ac)
    sym = (run % 16) * 16 + s_ac
    coef_bits = ac_lengths[sym] + s_ac + (run // 16) * ac_lengths[0xF0]
    ac_bits = (coef_bits * nz).sum(dim=(1, 2))
    eob = (~nz[..., -1]).long() * ac_lengths[0x00]
    return (dc_bits + ac_bits + eob.sum(dim=1)).float()


def surrogate_bits(u: Tensor) -> Tensor:
    """Smooth rate stand-in: sum of log2(1 + |u|) over (N, ...) -> (N,)."""
    return torch.log2(1.0 + u.abs()).flatten(1).sum(dim=1)


def lengths_tensor(lengths: list[int] | np.ndarray, device=None) -> Tensor:
    return torch.as_tensor(np.asarray(lengths, dtype=np.int64), device=device)


def codec_constants() -> dict:
    """Huffman lengths and header sizes read from the installed real codec (no corpus needed)."""
    img = np.full((16, 16, 3), 128, np.uint8)
    tables = parse_dht(JpegCodec("4:2:0").encode(img, 75))
    modes = {}
    for sub in SUBSAMPLINGS:
        d = JpegCodec(sub).encode(img[:, :, 0] if sub == "gray" else img, 75)
        modes[sub] = {"header_bytes": len(d) - ecs_bytes(d), "stuffing": 1.0, "alpha": 2.0}
    huffman = {
        "dc_luma": tables[(0, 0)],
        "ac_luma": tables[(1, 0)],
        "dc_chroma": tables[(0, 1)],
        "ac_chroma": tables[(1, 1)],
    }
    return {"huffman": huffman, "modes": modes}
