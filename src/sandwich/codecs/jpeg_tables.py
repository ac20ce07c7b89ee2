"""JPEG tables shared by the real codec and its proxy.

The quantisation tables are the example tables of the JPEG standard (ITU-T T.81, Annex K), which
libjpeg (and so Pillow) scales by the IJG quality factor. Tables here are in natural (row-major)
order; :data:`ZIGZAG` maps zig-zag position to natural index.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

LUMA_QTABLE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)

CHROMA_QTABLE = np.full((8, 8), 99, dtype=np.int64)
CHROMA_QTABLE[:4, :4] = [
    [17, 18, 24, 47],
    [18, 21, 26, 66],
    [24, 26, 56, 99],
    [47, 66, 99, 99],
]


def _zigzag() -> np.ndarray:
    order = []
    for s in range(15):
        diag = [(i, s - i) for i in range(8) if 0 <= s - i < 8]
        if s % 2 == 0:
            diag.reverse()  # even diagonals run bottom-left to top-right
        order.extend(r * 8 + c for r, c in diag)
    return np.array(order, dtype=np.int64)


ZIGZAG = _zigzag()
"""ZIGZAG[k] is the natural (row-major) index of the k-th coefficient in zig-zag order."""


def quality_scale(quality: int) -> int:
    """IJG quality (1..100) to the percentage scale libjpeg applies to the base tables."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def scaled_qtable(base: np.ndarray, quality: int, force_baseline: bool = True) -> np.ndarray:
    """Scale a base table exactly as libjpeg's ``jpeg_add_quant_table`` does."""
    scale = quality_scale(quality)
    table = (base.astype(np.int64) * scale + 50) // 100
    table = np.clip(table, 1, 255 if force_baseline else 32767)
    return table


def quality_qtables(quality: int, channels: int = 3) -> list[np.ndarray]:
    """The (luma[, chroma]) 8x8 tables libjpeg uses for an IJG ``quality``."""
    tables = [scaled_qtable(LUMA_QTABLE, quality)]
    if channels > 1:
        tables.append(scaled_qtable(CHROMA_QTABLE, quality))
    return tables


def qtables_for_quality(quality: Tensor) -> Tensor:
    """(N,) IJG qualities (1..100) -> (N, 2, 8, 8) luma/chroma steps, exactly libjpeg's, float."""
    q = quality.detach().round().clamp(1, 100).long().cpu()
    scale = torch.tensor([quality_scale(int(v)) for v in q], dtype=torch.int64)
    base = torch.from_numpy(np.stack([LUMA_QTABLE, CHROMA_QTABLE]))
    tables = (base[None] * scale.view(-1, 1, 1, 1) + 50) // 100
    return tables.clamp(1, 255).float()


def quality_feature(mean_luma_step: Tensor) -> Tensor:
    """The quality input of conditioned networks: log2(mean luma quantisation step) / 8.

    (N,) -> (N,), 0 for step 1 (quality 100) to about 0.9 (quality 1). Computed from the quality
    at encode time and from the file's own DQT table at decode time, so it also covers custom
    tables.
    """
    return torch.log2(mean_luma_step.float().clamp_min(1.0)) / 8.0


def quality_to_feature(quality: Tensor | float, n: int) -> Tensor:
    """:func:`quality_feature` of IJG quality(ies) ``quality`` (scalar or (N,)) -> (N,)."""
    q = torch.as_tensor(quality, dtype=torch.float32).flatten()
    q = q.expand(n) if q.numel() == 1 else q
    return quality_feature(qtables_for_quality(q)[:, 0].mean(dim=(1, 2)))
