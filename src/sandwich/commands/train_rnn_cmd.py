"""``sandwich train-rnn``: train the progressive recurrent codec on random patches.

Its options are the fields of :class:`~sandwich.training.progressive_task.ProgressiveTrainConfig`
and :class:`~sandwich.training.loop.RunOptions` (see :mod:`sandwich.training.options`).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import typer

from sandwich.errors import SandwichError
from sandwich.training.loop import RunOptions
from sandwich.training.options import command
from sandwich.training.progressive_task import ProgressiveTrainConfig


def register(app: typer.Typer) -> None:
    @command(app, ProgressiveTrainConfig, RunOptions, name="train-rnn")
    def train_rnn(o: SimpleNamespace) -> None:
        """Train the progressive RNN codec; resumable, logged to OUT/log.jsonl."""
        from sandwich.training.loop import run
        from sandwich.training.options import command_line, from_options
        from sandwich.training.progressive_task import ProgressiveTask

        cfg = from_options(ProgressiveTrainConfig, o, command=command_line())
        if cfg.steps < 1:
            raise SandwichError(f"--steps {cfg.steps}: give a whole number of at least 1")
        cfg.model_config()  # validates preset, unit and mode before any work
        how = from_options(RunOptions, o)
        run(ProgressiveTask(cfg), resume=how.resume, force=how.force, stop_after=how.stop_after)
        if os.environ.get("RANK", "0") == "0":  # one line from a torchrun job, not one per rank
            typer.echo(f"weights: {o.out / 'model.safetensors'}")
