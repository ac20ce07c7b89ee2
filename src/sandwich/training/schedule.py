"""The learning-rate schedule shared by the trainers: linear warm-up, then cosine decay."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    opt: torch.optim.Optimizer, steps: int, warmup: int, floor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Factor (k+1)/warmup for the first ``warmup`` steps, then a cosine from 1 down to ``floor``
    at ``steps`` (and ``floor`` after it)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
