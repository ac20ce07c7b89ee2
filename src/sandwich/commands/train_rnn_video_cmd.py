"""``sandwich train-rnn-video``: train the progressive codec on clips through its own causal
prediction.

Its options are the fields of
:class:`~sandwich.training.progressive_clip_task.ProgressiveClipTrainConfig` and
:class:`~sandwich.training.loop.RunOptions` (see :mod:`sandwich.training.options`).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import typer

from sandwich.errors import SandwichError
from sandwich.training.loop import RunOptions
from sandwich.training.options import command
from sandwich.training.progressive_clip_task import ProgressiveClipTrainConfig


def register(app: typer.Typer) -> None:
    @command(app, ProgressiveClipTrainConfig, RunOptions, name="train-rnn-video")
    def train_rnn_video(o: SimpleNamespace) -> None:
        """Train the progressive codec on clips (intra + predicted residuals); resumable,
        logged to OUT/log.jsonl."""
        from sandwich.training.loop import run
        from sandwich.training.options import command_line, from_options
        from sandwich.training.progressive_clip_task import ProgressiveClipTask

        cfg = from_options(ProgressiveClipTrainConfig, o, command=command_line())
        if cfg.steps < 1:
            raise SandwichError(f"--steps {cfg.steps}: give a whole number of at least 1")
        how = from_options(RunOptions, o)
        run(ProgressiveClipTask(cfg), resume=how.resume, force=how.force, stop_after=how.stop_after)
        if os.environ.get("RANK", "0") == "0":
            typer.echo(f"weights: {o.out / 'model.safetensors'}")
