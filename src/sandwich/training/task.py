"""What a training task plugs into the training loop (:func:`sandwich.training.loop.run`).

The loop owns everything a run has whatever it trains: devices and processes, seeding, the
optimiser and its schedule, resuming with exact random states, progress, ``log.jsonl`` records
and checkpoints. A :class:`Task` says what is trained: the model, its optimiser (parameter
groups and settings), how a batch is drawn, the loss of a batch and the fields logged, and how
the weights are written.

Order of the calls in a run: :meth:`~Task.check`, :meth:`~Task.build_model` (with the torch
seed set to ``cfg.seed``), :meth:`~Task.optimizer`, :meth:`~Task.init_weights`, (on resume)
:meth:`~Task.check_resume`, :meth:`~Task.prepare`, :meth:`~Task.open_data`, then per step
:meth:`~Task.sample` and :meth:`~Task.loss`, and at each log record :meth:`~Task.log_fields`
and :meth:`~Task.evaluate`; :meth:`~Task.save_weights` at each checkpoint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from sandwich.training.distributed import Dist


class RunConfig(Protocol):
    """The config fields the loop reads (see :mod:`sandwich.training.options`)."""

    out: str  # run folder
    steps: int  # total optimiser steps (the schedule's length)
    lr: float  # peak learning rate (of the default optimiser)
    seed: int
    ckpt_every: int  # steps between checkpoints
    log_every: int  # steps between log.jsonl records
    threads: int  # torch.set_num_threads
    device: str  # "auto", "cpu", "cuda", ...


class Task(ABC):
    """One kind of training run; ``cfg`` is its config dataclass (written to config.json and
    into every checkpoint)."""

    cfg: RunConfig
    desc: str = "train"  # progress bar label
    postfix: dict[str, str] = {}  # log field -> format spec shown on the progress bar
    warmup_cap: int = 100  # learning-rate warm-up: min(warmup_cap, steps // 10) steps
    lr_floor: float = 0.01  # cosine decay ends at this fraction of the peak
    clip_norm: float | None = None  # clip the gradients' global L2 norm to this (None: never)

    def check(self) -> None:
        """Refuse a bad config with a one-line SandwichError before anything is touched."""
        return None

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (on the CPU; the loop moves it to the device)."""

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The optimiser (default: Adam over all parameters at ``cfg.lr``); the loop's schedule
        scales every group's learning rate by the same factor."""
        return torch.optim.Adam(model.parameters(), lr=self.cfg.lr)

    def init_weights(self, model: nn.Module) -> None:
        """Start from other weights (before the run folder is made, so a mismatch leaves
        none behind)."""
        return None

    def check_resume(self, config: dict, path: Path) -> None:
        """Refuse to resume from checkpoint ``path``, whose run config is ``config``, when it
        belongs to another kind of run."""
        return None

    def prepare(self, model: nn.Module) -> nn.Module:
        """The model as trained (e.g. another memory layout), after any resume."""
        return model

    def open_data(self, d: Dist, device: torch.device) -> None:
        """Open the training data (and any validation data) for this process."""
        return None

    @abstractmethod
    def sample(self, gen: torch.Generator, step: int) -> Any:
        """This process's batch for step ``step`` (0-based), on its device.

        Every process draws the whole global batch from ``gen`` (the shared, seeded data
        generator) and keeps its slice (:func:`sandwich.training.distributed.shard`).
        """

    @abstractmethod
    def loss(self, net: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor | float]]:
        """(loss to minimise, a 0-dim tensor; scalars to average into the log, e.g. ``mse``).

        ``net`` is the model as called for training (wrapped by DDP when distributed).
        """

    @abstractmethod
    def log_fields(self, step: int, avg: dict[str, float], lr: float, model: nn.Module) -> dict:
        """The fields of a log.jsonl record after ``step`` steps, between ``step`` and
        ``elapsed_s``: ``avg`` holds :meth:`loss`'s scalars averaged over the steps since the
        last record (and over the processes); ``lr`` is the first group's learning rate."""

    def evaluate(self, model: nn.Module, step: int, last: bool) -> dict:
        """Fields appended to the log record after ``step`` steps (e.g. a validation); ``last``:
        the run stops after this step. Called on the main process only."""
        return {}

    @abstractmethod
    def save_weights(self, model: nn.Module, path: Path, meta: dict) -> None:
        """Write the model's weights to ``path`` (model.safetensors) with ``meta``."""
