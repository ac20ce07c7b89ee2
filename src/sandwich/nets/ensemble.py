"""Geometric self-ensemble of a post-processor: average its outputs over flips and transposes.

A post-processor that removes coding artefacts sees the same decoded image differently when it is
mirrored or transposed; averaging the outputs of the transformed inputs (each transformed back)
cancels part of each pass's error, at the cost of one pass per member. The transforms must not
move the codec's block grid, which is anchored at the top-left corner: a transpose never moves it,
and a flip keeps it only when the flipped side is a whole number of macroblocks (16 pixels) and is
upsampled by an exact factor. Members that would move it are skipped, so the ensemble is never
worse-aligned than a single pass.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

ENSEMBLE_SIZES = (1, 2, 4, 8)
MACROBLOCK = 16  # flips keep the JPEG block grid only on sides that are multiples of this

# (transpose, flip rows, flip columns) of each member, in the order the sizes take them
_MEMBERS = [(False, False, False), (False, False, True), (False, True, False), (False, True, True)]
_MEMBERS += [(True, fy, fx) for _, fy, fx in _MEMBERS]


def check_ensemble(members: int) -> int:
    """``members`` if it is a supported ensemble size (1, 2, 4 or 8), else a ValueError."""
    if members not in ENSEMBLE_SIZES:
        sizes = ", ".join(map(str, ENSEMBLE_SIZES))
        raise ValueError(f"ensemble of {members}: use {sizes} (1 = a single pass)")
    return members


def ensemble_members(
    size_in: tuple[int, int], size_out: tuple[int, int], members: int, transpose: bool = True
) -> list[tuple[bool, bool, bool]]:
    """The (transpose, flip rows, flip columns) transforms used for ``members`` passes on an input
    of ``size_in`` = (h, w) upsampled to ``size_out`` = (H, W): the first ``members`` of identity,
    column flip, row flip, both, then the same four transposed, without the flips that would move
    the block grid, and without the transposed ones unless ``transpose``."""
    check_ensemble(members)

    def flippable(axis: int) -> bool:
        n, m = size_in[axis], size_out[axis]
        return n % MACROBLOCK == 0 and m % n == 0

    return [
        t
        for t in _MEMBERS[:members]
        if (transpose or not t[0]) and (not t[1] or flippable(0)) and (not t[2] or flippable(1))
    ]


def _apply(x: Tensor, transpose: bool, flip_rows: bool, flip_cols: bool) -> Tensor:
    dims = [d for d, on in ((-2, flip_rows), (-1, flip_cols)) if on]
    x = x.flip(dims) if dims else x
    return x.transpose(-2, -1) if transpose else x


def _undo(x: Tensor, transpose: bool, flip_rows: bool, flip_cols: bool) -> Tensor:
    x = x.transpose(-2, -1) if transpose else x
    dims = [d for d, on in ((-2, flip_rows), (-1, flip_cols)) if on]
    return x.flip(dims) if dims else x


def self_ensemble(
    fn: Callable[[Tensor, tuple[int, int]], Tensor],
    y: Tensor,
    size: tuple[int, int],
    members: int = 8,
    transpose: bool = True,
) -> Tensor:
    """Mean of ``fn`` over geometric transforms of its input.

    fn: maps a decoded image (N, C, h, w) and an output size (H, W) to (N, C', H, W).
    y: (N, C, h, w) decoded image, any range; size: (H, W) of the output.
    members: 1, 2, 4 or 8 passes (fewer when flips would move the block grid; see
    :func:`ensemble_members`); ``transpose`` False keeps to flips (for bottlenecks a transpose
    changes the meaning of, see ``Scenario.transposable``). Returns (N, C', H, W), the mean of
    the passes, on fn's scale.
    """
    transforms = ensemble_members(tuple(y.shape[-2:]), size, members, transpose)
    total = None
    for t in transforms:
        out_size = (size[1], size[0]) if t[0] else size
        out = _undo(fn(_apply(y, *t), out_size), *t)
        total = out if total is None else total + out
    return total / len(transforms)
