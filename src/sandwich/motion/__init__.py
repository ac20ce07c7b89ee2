"""Deterministic block motion for the causal prediction of a progressive video codec.

Everything is exact integer numpy arithmetic (no floats, OpenCV or torch) so that encoder and
decoder build identical predictions on any machine. See :mod:`sandwich.motion.blocks` for
estimation and compensation, :mod:`sandwich.motion.vectors` for coding the vector fields.
"""

from sandwich.motion.blocks import (
    BLOCK,
    compensate,
    estimate_motion,
    extrapolate_motion,
    grid,
    luma,
)
from sandwich.motion.vectors import (
    decode_vectors,
    encode_vectors,
    median_predictor,
    vector_bits,
)

__all__ = [
    "BLOCK",
    "compensate",
    "decode_vectors",
    "encode_vectors",
    "estimate_motion",
    "extrapolate_motion",
    "grid",
    "luma",
    "median_predictor",
    "vector_bits",
]
