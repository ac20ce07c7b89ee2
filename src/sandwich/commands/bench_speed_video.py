"""``sandwich bench speed-video``: frames per second of the video sandwich against the plain
codec, at 448x256 and 1280x720 by default (see :mod:`sandwich.evaluation.clip_speed`)."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            w, h = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise SandwichError(
                f"--sizes {text!r}: give WxH pairs, e.g. 448x256,1280x720"
            ) from None
        if w < 16 or h < 16:
            raise SandwichError(f"--sizes {part}: frames must be at least 16x16")
        out.append((h, w))
    return out


def register(bench: typer.Typer) -> None:
    @bench.command("speed-video")
    def bench_speed_video(
        models: str = typer.Option(..., "--models", "-m", help="video models, comma list"),
        sizes: str = typer.Option("448x256,1280x720", help="frame sizes WxH, comma list"),
        frames: int = typer.Option(16, help="frames per clip"),
        crf: float = typer.Option(28, help="CRF of every encode"),
        repeats: int = typer.Option(3, help="runs per measurement (the median is kept)"),
        threads: int = typer.Option(2, help="torch threads"),
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """Encode/decode frames per second, sandwich vs plain codec, in process."""
        import torch
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, write_json
        from sandwich.evaluation.clip_speed import speed_rows
        from sandwich.zoo import load_model

        torch.set_num_threads(max(1, threads))
        if frames < 1 or repeats < 1:
            raise SandwichError("--frames and --repeats must be at least 1")
        nets = [load_model(n.strip()) for n in models.split(",") if n.strip()]
        for net in nets:
            if net.media != "clip":
                raise SandwichError(f"{net.name} is an image model; see `sandwich bench speed`")
        grid = _sizes(sizes)
        codecs = {net.scenario.codec for net in nets}
        with tqdm(total=len(grid) * (len(nets) + len(codecs)), desc="speed") as bar:
            rows = speed_rows(nets, grid, frames, crf, repeats, progress=lambda: bar.update(1))
        table = Table(title=f"video speed, {frames} frames at CRF {crf:g}, {threads} threads")
        for col in ("size", "pipeline", "encode fps", "decode fps", "bpp", "networks enc/dec"):
            table.add_column(col)
        for r in rows:
            share = (
                f"{r['encode_network_share']:.0%} / {r['decode_network_share']:.0%}"
                if "encode_network_share" in r
                else ""
            )
            table.add_row(
                r["size"],
                r["pipeline"],
                f"{r['encode_fps']:.1f}",
                f"{r['decode_fps']:.1f}",
                f"{r['bpp']:.3f}",
                share,
            )
        console().print(table)
        if json_out is not None:
            write_json(json_out, {"threads": threads, "crf": crf, "rows": rows})
