"""``sandwich plot-log``: learning curves of a training run from its ``log.jsonl``."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def register(app: typer.Typer) -> None:
    @app.command("plot-log")
    def plot_log(
        run: Path = typer.Argument(..., help="run folder (with log.jsonl) or the log file"),
        out: Path = typer.Option(..., "-o", "--output", help="figure to write (.png or .svg)"),
        force: bool = typer.Option(False, help="overwrite an existing figure"),
    ) -> None:
        """Plot loss and PSNR against steps; for rnn runs also validation MS-SSIM per iteration."""
        from sandwich.evaluation.curves import plot_training_log, read_log
        from sandwich.media.files import check_writable

        path = run / "log.jsonl" if run.is_dir() else run
        if not path.is_file():
            raise SandwichError(f"{path}: no such log; give a run folder made by sandwich train")
        if out.suffix.lower() not in (".png", ".svg"):
            raise SandwichError(f"{out}: give a .png or .svg file name")
        check_writable(out, force)
        records = read_log(path)
        plot_training_log(records, out, title=str(run))
        typer.echo(f"wrote {out} ({len(records)} records, last step {records[-1]['step']})")
