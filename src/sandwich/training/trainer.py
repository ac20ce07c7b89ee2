"""The names other code imports from the sandwich trainer: the task lives in
:mod:`sandwich.training.sandwich_task`, the loop in :mod:`sandwich.training.loop`."""

from __future__ import annotations

from sandwich.models.sandwich import SandwichModel
from sandwich.training.loop import CHECKPOINT, run
from sandwich.training.sandwich_task import SandwichTask, TrainConfig, build_model, init_from

__all__ = ["CHECKPOINT", "TrainConfig", "build_model", "init_from", "train"]


def train(
    cfg: TrainConfig,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> SandwichModel:
    """Train (or resume) the sandwich of ``cfg``: :func:`sandwich.training.loop.run` of a
    :class:`~sandwich.training.sandwich_task.SandwichTask`."""
    return run(
        SandwichTask(cfg), resume=resume, force=force, progress=progress, stop_after=stop_after
    )
