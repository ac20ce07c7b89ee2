"""``sandwich train-rnn``: train the progressive recurrent codec on random patches."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from sandwich.commands.train_cmd import data_option


def register(app: typer.Typer) -> None:
    @app.command("train-rnn")
    def train_rnn(
        data: list[Path] = data_option(),
        out: Path = typer.Option(..., help="run folder: checkpoint, log.jsonl, model.safetensors"),
        preset: str = typer.Option("cpu-s", help="architecture: cpu-s, cpu-m or toderici"),
        unit: str = typer.Option("gru", help="recurrent unit: gru (residual GRU) or lstm"),
        mode: str = typer.Option("scaled", help="reconstruction: oneshot, additive or scaled"),
        iterations: int = typer.Option(12, help="iterations unrolled (0.125 bpp raw each)"),
        iterations_start: int = typer.Option(4, help="curriculum: iterations at step 0"),
        curriculum: float = typer.Option(0.3, help="fraction of steps to reach --iterations"),
        steps: int = typer.Option(10000, help="total optimiser steps"),
        batch: int = typer.Option(8),
        patch: int = typer.Option(64, help="square patch side (multiple of 16)"),
        lr: float = typer.Option(5e-4, help="peak learning rate (cosine decay)"),
        loss: str = typer.Option("mixed", help="l1, mse, msssim or mixed (1-MS-SSIM + L1)"),
        l1_weight: float = typer.Option(1.0, help="weight of L1 in the mixed loss"),
        seed: int = typer.Option(0),
        val: Path = typer.Option(
            None, help="folder for the learning curve: MS-SSIM per iteration on 256px centre crops"
        ),
        val_every: int = typer.Option(500, help="evaluate --val every N steps"),
        ckpt_every: int = typer.Option(200, help="checkpoint every N steps"),
        log_every: int = typer.Option(10, help="write a log.jsonl record every N steps"),
        threads: int = typer.Option(2, help="CPU threads (torch.set_num_threads)"),
        device: str = typer.Option("auto", help="auto, cpu or cuda"),
        resume: bool = typer.Option(False, help="continue from OUT/checkpoint.safetensors"),
        stop_after: int = typer.Option(None, help="stop this run at this step (resume later)"),
        force: bool = typer.Option(False, help="restart even if OUT has a checkpoint"),
    ) -> None:
        """Train the progressive RNN codec; resumable, logged to OUT/log.jsonl."""
        from sandwich.training.dataset import join_folders
        from sandwich.training.progressive_trainer import (
            ProgressiveTrainConfig,
            train_progressive,
        )
        from sandwich.training.trainer import command_line

        cfg = ProgressiveTrainConfig(
            data=join_folders(data),
            out=str(out),
            preset=preset,
            unit=unit,
            mode=mode,
            iterations=iterations,
            iterations_start=iterations_start,
            curriculum=curriculum,
            steps=steps,
            batch=batch,
            patch=patch,
            lr=lr,
            loss=loss,
            l1_weight=l1_weight,
            seed=seed,
            val=str(val) if val else "",
            val_every=val_every,
            ckpt_every=ckpt_every,
            log_every=log_every,
            threads=threads,
            device=device,
            command=command_line(),
        )
        cfg.model_config()  # validates preset, unit and mode before any work
        train_progressive(cfg, resume=resume, force=force, stop_after=stop_after)
        if os.environ.get("RANK", "0") == "0":  # one line from a torchrun job, not one per rank
            typer.echo(f"weights: {out / 'model.safetensors'}")
