"""``sandwich train-video``: train a video sandwich through the video proxy (x264 / x265).

Its options are the fields of :class:`~sandwich.training.clip_task.ClipTrainConfig` and
:class:`~sandwich.training.loop.RunOptions` (see :mod:`sandwich.training.options`).
"""

from __future__ import annotations

from types import SimpleNamespace

import typer

from sandwich.commands.train_cmd import check_network_options
from sandwich.errors import SandwichError
from sandwich.training.clip_task import ClipTrainConfig
from sandwich.training.loop import RunOptions
from sandwich.training.options import command


def register(app: typer.Typer) -> None:
    @command(app, ClipTrainConfig, RunOptions, name="train-video")
    def train_video(o: SimpleNamespace) -> None:
        """Train per-frame pre/post-processors around the video proxy on clips; resumable,
        logged to OUT/log.jsonl."""
        from sandwich.training.clip_task import ClipSandwichTask
        from sandwich.training.loop import run
        from sandwich.training.losses import min_patch
        from sandwich.training.options import command_line, from_options

        check_network_options(o)
        if o.rate_slope < 0:
            raise SandwichError(f"--rate-slope {o.rate_slope}: use a slope of 0 or more dB")
        if o.patch < min_patch(o.loss):
            raise SandwichError(
                f"loss {o.loss!r} needs patches of at least {min_patch(o.loss)} pixels"
            )
        cfg = from_options(ClipTrainConfig, o, command=command_line())
        if cfg.steps < 1:
            raise SandwichError(f"--steps {cfg.steps}: give a whole number of at least 1")
        how = from_options(RunOptions, o)
        run(ClipSandwichTask(cfg), resume=how.resume, force=how.force, stop_after=how.stop_after)
        typer.echo(f"weights: {o.out / 'model.safetensors'}")
