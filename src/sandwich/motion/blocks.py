"""Block motion estimation and half-pel motion compensation in exact integer arithmetic.

Frames are ``uint8`` arrays of shape ``(H, W, 3)`` (RGB), any ``H, W >= 1``. A frame is cut into
``block x block`` blocks on a ``grid(H, W)`` of ``(rows, cols)`` blocks; blocks of the last row
and column may be partial. A motion field is an ``int16`` array ``(rows, cols, 2)`` of
``(dy, dx)`` in half-pixel units: the prediction of pixel ``(y, x)`` of a block with vector
``(dy, dx)`` is the reference sampled at ``(y + dy / 2, x + dx / 2)``.

Only numpy integer operations are used (no floats, no threads-dependent reductions), so encoder
and decoder build bit-identical predictions on any machine.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sandwich.motion.vectors import median_predictor, vector_bits

__all__ = ["BLOCK", "compensate", "estimate_motion", "extrapolate_motion", "grid", "luma"]

BLOCK = 16
_MAX_LEVELS = 2  # pyramid levels below full resolution (factor 4 at the coarsest)
_KEEP = 2  # candidates per block kept from the exhaustive coarse search
_REFINE = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _check_frame(frame: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be at least 1x1, got {arr.shape}")
    return arr


def _check_block(block: int) -> int:
    block = int(block)
    if block < 1:
        raise ValueError(f"block size must be >= 1, got {block}")
    return block


def luma(frame: np.ndarray) -> np.ndarray:
    """Integer luma ``(77 R + 150 G + 29 B + 128) >> 8`` of a uint8 (H, W, 3) frame.

    Returns an int32 (H, W) array with values in [0, 255].
    """
    f = _check_frame(frame, "frame").astype(np.int32)
    return (77 * f[..., 0] + 150 * f[..., 1] + 29 * f[..., 2] + 128) >> 8


def grid(height: int, width: int, block: int = BLOCK) -> tuple[int, int]:
    """Number of ``(rows, cols)`` blocks covering a ``height x width`` frame (ceil division)."""
    block = _check_block(block)
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be at least 1x1, got {height}x{width}")
    return -(-int(height) // block), -(-int(width) // block)


def _check_field(vectors: np.ndarray, rows: int, cols: int) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.shape != (rows, cols, 2) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"motion vectors must be an integer ({rows}, {cols}, 2) array, "
            f"got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int32)


def compensate(reference: np.ndarray, vectors: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Motion-compensated prediction, uint8 (H, W, 3), from a uint8 (H, W, 3) reference.

    ``vectors`` is an integer ``(rows, cols, 2)`` field of half-pel ``(dy, dx)`` for
    ``grid(H, W, block)``. A sample at half-pel position ``p`` (in half pixels) along one axis
    reads pixels ``p >> 1`` and ``(p >> 1) + (p & 1)``, each clamped to the frame (edge
    replication); the four pixels are averaged as ``(a + b + c + d + 2) >> 2``, which equals
    ``(a + b + 1) >> 1`` for a half-pel offset along one axis and the pixel itself at integer
    positions.
    """
    ref = _check_frame(reference, "reference")
    block = _check_block(block)
    H, W = ref.shape[:2]
    rows, cols = grid(H, W, block)
    v = _check_field(vectors, rows, cols)
    vy = np.repeat(np.repeat(v[..., 0], block, axis=0), block, axis=1)[:H, :W]
    vx = np.repeat(np.repeat(v[..., 1], block, axis=0), block, axis=1)[:H, :W]
    py = 2 * np.arange(H, dtype=np.int32)[:, None] + vy
    px = 2 * np.arange(W, dtype=np.int32)[None, :] + vx
    y0 = np.clip(py >> 1, 0, H - 1)
    y1 = np.clip((py >> 1) + (py & 1), 0, H - 1)
    x0 = np.clip(px >> 1, 0, W - 1)
    x1 = np.clip((px >> 1) + (px & 1), 0, W - 1)
    flat = ref.reshape(-1, 3).astype(np.int16)
    total = flat[y0 * W + x0] + flat[y0 * W + x1] + flat[y1 * W + x0] + flat[y1 * W + x1]
    return ((total + 2) >> 2).astype(np.uint8)


def _half_pel_plane(plane: np.ndarray, pad: int) -> np.ndarray:
    """Edge-padded plane upsampled to half-pel positions with the rounding of ``compensate``.

    Input (h, w) int32; output (2 (h + 2 pad) - 1, 2 (w + 2 pad) - 1) int32 where entry
    ``(2 (y + pad) + dy, 2 (x + pad) + dx)`` is the sample at ``(y + dy / 2, x + dx / 2)``.
    """
    p = np.pad(plane, pad, mode="edge")
    h, w = p.shape
    up = np.empty((2 * h - 1, 2 * w - 1), dtype=np.int32)
    up[0::2, 0::2] = p
    up[1::2, 0::2] = (p[:-1] + p[1:] + 1) >> 1
    up[0::2, 1::2] = (p[:, :-1] + p[:, 1:] + 1) >> 1
    up[1::2, 1::2] = (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:] + 2) >> 2
    return up


def _down(plane: np.ndarray) -> np.ndarray:
    """2x2 sums of an even-sized plane (exact; scale is irrelevant for SAD comparisons)."""
    h, w = plane.shape
    return plane.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3), dtype=np.int32)


def _pyramid_search(cur: np.ndarray, ref: np.ndarray, block: int, search: int) -> np.ndarray:
    """Integer-pel vectors (rows, cols, 2), in pixels within ``+-search``, minimising SAD.

    Exhaustive search over all displacements at the coarsest pyramid level (all blocks at once
    per displacement), keeping the ``_KEEP`` best per block and the zero vector, then a +-1
    refinement of each per finer level (all blocks at once per candidate offset). At full
    resolution the SAD only counts pixels inside the frame.
    """
    H, W = cur.shape
    rows, cols = grid(H, W, block)
    levels = 0
    while levels < _MAX_LEVELS and block % (2 << levels) == 0 and block >> (levels + 1) >= 2:
        levels += 1
    scale = 1 << levels
    pad = (-(-search // scale) + 1) * scale  # full-resolution padding, divisible by scale
    hb, wb = rows * block, cols * block
    curs = [np.pad(cur, ((0, hb - H), (0, wb - W)), mode="edge")]
    refs = [np.pad(ref, ((pad, pad + hb - H), (pad, pad + wb - W)), mode="edge")]
    for _ in range(levels):
        curs.append(_down(curs[-1]))
        refs.append(_down(refs[-1]))
    mask = np.zeros((hb, wb), dtype=np.int32)
    mask[:H, :W] = 1

    # Exhaustive search at the coarsest level; offsets ordered by size so ties favour small ones.
    reach = -(-search // scale)
    offsets = sorted(
        ((dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)),
        key=lambda d: (abs(d[0]) + abs(d[1]), d),
    )
    c_cur, c_ref, c_blk, c_pad = curs[levels], refs[levels], block >> levels, pad >> levels
    hc, wc = c_cur.shape
    costs = np.empty((len(offsets), rows, cols), dtype=np.int64)
    for i, (dy, dx) in enumerate(offsets):
        diff = np.abs(c_cur - c_ref[c_pad + dy : c_pad + dy + hc, c_pad + dx : c_pad + dx + wc])
        if levels == 0:
            diff *= mask
        costs[i] = diff.reshape(rows, c_blk, cols, c_blk).sum(axis=(1, 3))
    # The _KEEP best coarse vectors per block, plus the zero vector (offsets[0]) as a last chain
    # so that small motions are found even where the coarse level is unreliable (tiny frames).
    order = np.argsort(costs, axis=0, kind="stable")[: min(_KEEP, len(offsets))]
    order = np.concatenate([order, np.zeros_like(order[:1])])
    keep = order.shape[0]
    cands = np.asarray(offsets, dtype=np.int32)[order]  # (keep, rows, cols, 2)
    best_cost = np.take_along_axis(costs, order, axis=0)

    for level in range(levels - 1, -1, -1):
        blk, lpad = block >> level, pad >> level
        limit = -(-search // (1 << level))
        windows = sliding_window_view(refs[level], (blk, blk))
        cur_blocks = curs[level].reshape(rows, blk, cols, blk).transpose(0, 2, 1, 3)
        if level == 0:
            mask_blocks = mask.reshape(rows, blk, cols, blk).transpose(0, 2, 1, 3)
        base_y = (np.arange(rows, dtype=np.int32) * blk + lpad)[:, None]
        base_x = (np.arange(cols, dtype=np.int32) * blk + lpad)[None, :]
        new_cands = np.empty_like(cands)
        for k in range(keep):
            best_v = None
            for dy, dx in _REFINE:
                v = np.clip(2 * cands[k] + np.array([dy, dx], dtype=np.int32), -limit, limit)
                diff = np.abs(cur_blocks - windows[base_y + v[..., 0], base_x + v[..., 1]])
                if level == 0:
                    diff *= mask_blocks
                cost = diff.sum(axis=(2, 3), dtype=np.int64)
                if best_v is None:
                    best_v, best_c = v, cost
                else:
                    better = cost < best_c
                    best_v = np.where(better[..., None], v, best_v)
                    best_c = np.where(better, cost, best_c)
            new_cands[k] = best_v
            best_cost[k] = best_c
        cands = new_cands
    pick = np.argmin(best_cost, axis=0)  # first (better-ranked coarse) candidate wins ties
    return np.take_along_axis(cands, pick[None, ..., None], axis=0)[0]


def _block_cost(
    up: np.ndarray,
    target: np.ndarray,
    origin: tuple[int, int],
    vector: tuple[int, int],
    predictor: tuple[int, int],
    lmbda: int,
) -> int:
    """``SAD + lmbda * bits`` of one block (luma ``target``, (h, w) int32) for a half-pel vector.

    ``up`` is the half-pel reference plane of :func:`_half_pel_plane` and ``origin`` the index
    in it of the block's top-left pixel at zero motion.
    """
    oy, ox = origin[0] + vector[0], origin[1] + vector[1]
    h, w = target.shape
    sample = up[oy : oy + 2 * h : 2, ox : ox + 2 * w : 2]
    sad = int(np.abs(target - sample).sum())
    return sad + lmbda * vector_bits(vector[0] - predictor[0], vector[1] - predictor[1])


def estimate_motion(
    current: np.ndarray,
    reference: np.ndarray,
    block: int = BLOCK,
    search: int = 16,
    lmbda: int = 4,
) -> np.ndarray:
    """Encoder-side motion field, int16 (rows, cols, 2) half-pel ``(dy, dx)``.

    ``current`` and ``reference`` are uint8 (H, W, 3) frames of the same size; the result is
    meant for ``compensate(reference, vectors, block)`` to predict ``current``. Each block
    minimises ``SAD(luma) + lmbda * vector_bits(v - median_predictor)`` where the SAD compares the
    block's luma with the half-pel luma of the reference (same rounding as ``compensate``) over
    the block's pixels inside the frame.

    Search: an integer-pel pyramid search covering ``+-search`` pixels (exhaustive at 1/4
    resolution, refined by +-1 per level, vectorised over all blocks), then, block by block in
    raster order (so the median predictor is known), the candidates {predictor, zero, pyramid
    result, left/top/top-right vectors} are compared with the rate term and the best is refined
    by +-1 half-pel. Vectors stay within ``+-(2 search + 1)`` half pixels.
    """
    block = _check_block(block)
    search, lmbda = int(search), int(lmbda)
    if search < 0 or lmbda < 0:
        raise ValueError(f"search and lmbda must be >= 0, got {search}, {lmbda}")
    cur = luma(current)
    ref = luma(reference)
    if cur.shape != ref.shape:
        raise ValueError(f"frame sizes differ: {current.shape} vs {reference.shape}")
    H, W = cur.shape
    rows, cols = grid(H, W, block)
    coarse = 2 * _pyramid_search(cur, ref, block, search)
    pad = search + 2
    up = _half_pel_plane(ref, pad)
    limit = 2 * search + 1
    out = np.zeros((rows, cols, 2), dtype=np.int16)

    for r in range(rows):
        y0, y1 = r * block, min((r + 1) * block, H)
        for c in range(cols):
            x0, x1 = c * block, min((c + 1) * block, W)
            target = cur[y0:y1, x0:x1]
            origin = (2 * (y0 + pad), 2 * (x0 + pad))
            pred = median_predictor(out, r, c)
            cands = [pred, (0, 0), (int(coarse[r, c, 0]), int(coarse[r, c, 1]))]
            if c > 0:
                cands.append((int(out[r, c - 1, 0]), int(out[r, c - 1, 1])))
            if r > 0:
                cands.append((int(out[r - 1, c, 0]), int(out[r - 1, c, 1])))
                if c + 1 < cols:
                    cands.append((int(out[r - 1, c + 1, 0]), int(out[r - 1, c + 1, 1])))
            seen: set[tuple[int, int]] = set()
            best, best_cost = (0, 0), -1
            for vy, vx in cands:
                v = (min(max(vy, -limit), limit), min(max(vx, -limit), limit))
                if v in seen:
                    continue
                seen.add(v)
                value = _block_cost(up, target, origin, v, pred, lmbda)
                if best_cost < 0 or value < best_cost:
                    best, best_cost = v, value
            centre = best
            for dy, dx in _REFINE[1:]:  # half-pel refinement
                v = (centre[0] + dy, centre[1] + dx)
                if abs(v[0]) > limit or abs(v[1]) > limit or v in seen:
                    continue
                value = _block_cost(up, target, origin, v, pred, lmbda)
                if value < best_cost:
                    best, best_cost = v, value
            out[r, c, 0], out[r, c, 1] = best
    return out


def extrapolate_motion(
    previous: np.ndarray,
    before: np.ndarray,
    block: int = BLOCK,
    search: int = 16,
) -> np.ndarray:
    """Decoder-side motion field for frame t, int16 (rows, cols, 2) half-pel, no side info.

    ``previous`` is frame t-1 and ``before`` frame t-2 (uint8 (H, W, 3), same size). The motion
    of t-1 is estimated from t-2 with :func:`estimate_motion` (default ``lmbda``); assuming
    constant motion, frame t is predicted from t-1 with the same vectors at the same block
    positions (each block of t reuses the vector of the co-located block of t-1, no projection
    along the motion). Use as ``compensate(previous, extrapolate_motion(previous, before))``.
    """
    return estimate_motion(previous, before, block=block, search=search)
