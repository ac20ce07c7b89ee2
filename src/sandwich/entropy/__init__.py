"""Entropy coding for the progressive recurrent codec (numpy + constriction, no torch)."""

from sandwich.entropy.binary import BinaryCodeCoder, coded_bits, raw_bits

__all__ = ["BinaryCodeCoder", "coded_bits", "raw_bits"]
