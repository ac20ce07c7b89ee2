"""``sandwich train``: train a sandwich scenario through the JPEG proxy."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from sandwich.errors import SandwichError


def _widths(text: str) -> list[int]:
    try:
        widths = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SandwichError(f"widths {text!r}: give comma-separated integers, e.g. 32,64") from None
    if not widths or any(w <= 0 for w in widths):
        raise SandwichError(f"widths {text!r}: give positive integers, e.g. 32,64")
    return widths


def data_option():
    """The ``--data`` option of the training commands: one or more folders of images."""
    return typer.Option(
        ...,
        help="folder of training images (see `sandwich data`); repeat to train on several, "
        "e.g. --data data/corpus/train --data data/corpus/extra",
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        scenario: str = typer.Option(..., help="rgb, gray, lowres2, lowres4, hdr16, ..."),
        data: list[Path] = data_option(),
        out: Path = typer.Option(..., help="run folder: checkpoint, log.jsonl, model.safetensors"),
        steps: int = typer.Option(4000, help="total optimiser steps"),
        batch: int = typer.Option(8),
        patch: int = typer.Option(128, help="square patch side in pixels"),
        min_scale: float = typer.Option(
            1.0,
            "--min-scale",
            help="scale augmentation: cut each patch at a random scale down to this (e.g. 0.5: "
            "squares of up to 2x the patch side, shrunk); 1 = plain crops",
        ),
        detail_draws: int = typer.Option(
            1,
            "--detail-draws",
            help="bias patches towards detail: cut K candidate crops, keep one with probability "
            "proportional to its detail (4 matches photos on wallpaper corpora); 1 = plain crops",
        ),
        lr: float = typer.Option(1e-3, help="peak learning rate (cosine decay)"),
        loss: str = typer.Option(
            None,
            help="mse, psnr, dssim, dssim5, msssim, lpips, lpips-db or a weighted sum such as "
            "'dssim+0.0002*mse' (default: the scenario's); see training.losses",
        ),
        lmbda: float = typer.Option(
            20.0, "--lambda", help="rate weight in loss units per bpp (MSE per bpp for mse)"
        ),
        rate_slope: float = typer.Option(
            0.0,
            help="extra rate weight as an RD slope in dB per doubling of bpp (e.g. 3): each "
            "sample's lambda is slope*ln10/(10 ln2)*D/bpp, so all qualities trade alike; "
            "linear losses only; see training.losses.slope_lambda",
        ),
        rate_grad: str = typer.Option(
            "total",
            help="rate gradient of the proxy: total (surrogate fitted to whole-file bits) or "
            "marginal (fitted per quality to the real bits of a change: 1.2-3x larger, so a "
            "learning pre-processor pays what the real file pays)",
        ),
        pre_lr_scale: float = typer.Option(0.3, help="pre-processor lr = lr * this (0 freezes)"),
        quality_min: int = typer.Option(None, help="lowest JPEG quality drawn (default: scenario)"),
        quality_max: int = typer.Option(None, help="highest JPEG quality drawn"),
        rounding: str = typer.Option("ste", help="DCT rounding in the proxy: ste, noise or cubic"),
        real_codec: bool = typer.Option(
            False,
            help="decode each training patch with the real JPEG codec: the post-processor sees "
            "real decodes and bit counts, gradients still come from the proxy (exact with "
            "--pre-lr-scale 0; matters at high qualities, where their errors differ)",
        ),
        pre_widths: str = typer.Option("32,64", help="pre-processor U-Net widths"),
        post_widths: str = typer.Option("32,64", help="post-processor U-Net widths"),
        quality_input: bool = typer.Option(False, help="networks also see the JPEG quality"),
        activation: str = typer.Option("leaky", help="U-Net activation: leaky or relu"),
        seed: int = typer.Option(0),
        ckpt_every: int = typer.Option(200, help="checkpoint every N steps"),
        log_every: int = typer.Option(10, help="write a log.jsonl record every N steps"),
        threads: int = typer.Option(2, help="CPU threads (torch.set_num_threads)"),
        device: str = typer.Option("auto", help="auto, cpu or cuda"),
        init: Path = typer.Option(
            None,
            help="start from these weights (a run's model.safetensors), fresh optimiser; "
            "wider U-Nets than the source's (as many levels) start as the same function",
        ),
        fresh_post: bool = typer.Option(
            False,
            help="with --init: the post-processor's U-Net starts fresh instead (to change its "
            "widths or levels)",
        ),
        resume: bool = typer.Option(False, help="continue from OUT/checkpoint.safetensors"),
        stop_after: int = typer.Option(None, help="stop this run at this step (resume later)"),
        force: bool = typer.Option(False, help="restart even if OUT has a checkpoint"),
    ) -> None:
        """Train pre/post-processors around the JPEG proxy; resumable, logged to OUT/log.jsonl."""
        from sandwich.training.dataset import check_detail_draws, check_min_scale, join_folders
        from sandwich.training.trainer import TrainConfig, command_line
        from sandwich.training.trainer import train as run

        if rounding not in ("ste", "noise", "cubic"):
            raise SandwichError(f"rounding {rounding!r}: use ste, noise or cubic")
        if activation not in ("leaky", "relu"):
            raise SandwichError(f"activation {activation!r}: use leaky or relu")
        from sandwich.training.losses import LOG_TERMS, min_patch, parse_loss

        if loss is None:
            from sandwich.scenarios import get_scenario

            loss = get_scenario(scenario).distortion
        try:
            terms = parse_loss(loss)
        except ValueError as e:
            raise SandwichError(str(e)) from None
        from sandwich.proxies.jpeg import RATE_GRADS

        if rate_grad not in RATE_GRADS:
            raise SandwichError(f"--rate-grad {rate_grad!r}: use {' or '.join(RATE_GRADS)}")
        if fresh_post and init is None:
            raise SandwichError(
                "--fresh-post starts the post-processor's U-Net fresh from --init: give --init"
            )
        check_min_scale(min_scale)  # before the run folder is touched
        check_detail_draws(detail_draws)
        if rate_slope < 0:
            raise SandwichError(f"--rate-slope {rate_slope}: use a slope of 0 or more dB")
        logs = [name for _, name in terms if name in LOG_TERMS]
        if rate_slope and logs:
            raise SandwichError(
                f"--rate-slope needs a linear loss but {loss!r} has the dB term {logs[0]!r}; "
                "use mse, dssim, dssim5 or lpips (or --lambda in dB per bpp)"
            )
        smallest = min_patch(loss)
        if patch < smallest:
            raise SandwichError(
                f"loss {loss!r} needs patches of at least {smallest} pixels; "
                f"raise --patch (now {patch})"
            )
        cfg = TrainConfig(
            scenario=scenario,
            data=join_folders(data),
            out=str(out),
            steps=steps,
            batch=batch,
            patch=patch,
            min_scale=min_scale,
            detail_draws=detail_draws,
            lr=lr,
            lmbda=lmbda,
            rate_slope=rate_slope,
            rate_grad=rate_grad,
            loss=loss,
            pre_lr_scale=pre_lr_scale,
            quality_min=quality_min,
            quality_max=quality_max,
            rounding=rounding,
            real_codec=real_codec,
            pre_widths=_widths(pre_widths),
            post_widths=_widths(post_widths),
            fresh_post=fresh_post,
            quality_input=quality_input,
            activation=activation,
            seed=seed,
            ckpt_every=ckpt_every,
            log_every=log_every,
            threads=threads,
            device=device,
            init=str(init) if init else None,
            command=command_line(),
        )
        run(cfg, resume=resume, force=force, stop_after=stop_after)
        if os.environ.get("RANK", "0") == "0":  # one line from a torchrun job, not one per rank
            typer.echo(f"weights: {out / 'model.safetensors'}")
