"""``sandwich train``: train a sandwich scenario through the JPEG proxy.

Its options are the fields of :class:`~sandwich.training.sandwich_task.TrainConfig` and
:class:`~sandwich.training.loop.RunOptions` (see :mod:`sandwich.training.options`).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import typer

from sandwich.errors import SandwichError
from sandwich.training.loop import RunOptions
from sandwich.training.options import command
from sandwich.training.sandwich_task import TrainConfig


def check_network_options(o: SimpleNamespace) -> list:
    """Check the options every sandwich training command has (rounding, activation, loss; the
    loss defaults to the scenario's) before anything is touched; returns the parsed loss terms."""
    from sandwich.training.losses import parse_loss

    if o.rounding not in ("ste", "noise", "cubic"):
        raise SandwichError(f"rounding {o.rounding!r}: use ste, noise or cubic")
    if o.activation not in ("leaky", "relu"):
        raise SandwichError(f"activation {o.activation!r}: use leaky or relu")
    if o.loss is None:
        from sandwich.scenarios import get_scenario

        o.loss = get_scenario(o.scenario).distortion
    try:
        return parse_loss(o.loss)
    except ValueError as e:
        raise SandwichError(str(e)) from None


def register(app: typer.Typer) -> None:
    @command(app, TrainConfig, RunOptions)
    def train(o: SimpleNamespace) -> None:
        """Train pre/post-processors around the JPEG proxy; resumable, logged to OUT/log.jsonl."""
        from sandwich.training.dataset import check_detail_draws, check_min_scale
        from sandwich.training.loop import run
        from sandwich.training.options import command_line, from_options
        from sandwich.training.sandwich_task import SandwichTask

        terms = check_network_options(o)
        from sandwich.proxies.jpeg import RATE_GRADS
        from sandwich.training.losses import LOG_TERMS, min_patch

        if o.rate_grad not in RATE_GRADS:
            raise SandwichError(f"--rate-grad {o.rate_grad!r}: use {' or '.join(RATE_GRADS)}")
        if o.fresh_post and o.init is None:
            raise SandwichError(
                "--fresh-post starts the post-processor's U-Net fresh from --init: give --init"
            )
        check_min_scale(o.min_scale)  # before the run folder is touched
        check_detail_draws(o.detail_draws)
        if o.rate_slope < 0:
            raise SandwichError(f"--rate-slope {o.rate_slope}: use a slope of 0 or more dB")
        logs = [name for _, name in terms if name in LOG_TERMS]
        if o.rate_slope and logs:
            raise SandwichError(
                f"--rate-slope needs a linear loss but {o.loss!r} has the dB term {logs[0]!r}; "
                "use mse, dssim, dssim5 or lpips (or --lambda in dB per bpp)"
            )
        smallest = min_patch(o.loss)
        if o.patch < smallest:
            raise SandwichError(
                f"loss {o.loss!r} needs patches of at least {smallest} pixels; "
                f"raise --patch (now {o.patch})"
            )
        cfg = from_options(TrainConfig, o, command=command_line())
        if cfg.steps < 1:
            raise SandwichError(f"--steps {cfg.steps}: give a whole number of at least 1")
        how = from_options(RunOptions, o)
        run(SandwichTask(cfg), resume=how.resume, force=how.force, stop_after=how.stop_after)
        if os.environ.get("RANK", "0") == "0":  # one line from a torchrun job, not one per rank
            typer.echo(f"weights: {o.out / 'model.safetensors'}")
