"""``sandwich bench speed``: whole-command time and peak memory per model and image size."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def register(bench: typer.Typer) -> None:
    @bench.command("speed")
    def bench_speed(
        models: str = typer.Option("gray-jpeg,rgb-jpeg,lowres2-jpeg,rnn", help="comma list"),
        sizes: str = typer.Option("0.4,2,12", help="image sizes in megapixels, comma list"),
        timeout: float = typer.Option(900.0, help="seconds per command before giving up"),
        tile: int = typer.Option(None, help="pass --tile to the sandwich commands"),
        work: Path = typer.Option(Path("/tmp/sandwich-speed"), help="folder for test images"),
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """Compress then decompress a photo-like image of each size with each model, as fresh
        `sandwich` commands (imports, model load, I/O included), next to plain Pillow JPEG:
        wall time and peak resident memory of each command."""
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, write_json
        from sandwich.evaluation.speed import as_json, measure

        try:
            mps = [float(v) for v in sizes.split(",") if v.strip()]
        except ValueError:
            raise SandwichError(f"--sizes {sizes!r}: give megapixels like 0.4,2,12") from None
        names = [m.strip() for m in models.split(",") if m.strip()]
        work.mkdir(parents=True, exist_ok=True)
        extra = ["--tile", str(tile)] if tile is not None else []
        with tqdm(total=len(mps) * (len(names) + 1) * 2, desc="speed") as bar:
            rows = measure(names, mps, work, timeout, extra, progress=lambda: bar.update(1))
        table = Table(title="whole commands on 2 cores: wall time and peak memory")
        for col in ("model", "size", "compress s", "MiB", "decompress s", "MiB", "note"):
            table.add_column(col, justify="left" if col in ("model", "note") else "right")
        for i in range(0, len(rows), 2):
            c, d = rows[i], rows[i + 1]
            table.add_row(
                c.model,
                f"{c.width}x{c.height} ({c.megapixels:g} MP)",
                *[f"{r.seconds:.2f}" if r.seconds is not None else "-" for r in (c,)],
                f"{c.peak_mb:.0f}" if c.peak_mb is not None else "-",
                f"{d.seconds:.2f}" if d.seconds is not None else "-",
                f"{d.peak_mb:.0f}" if d.peak_mb is not None else "-",
                c.error or d.error,
            )
        console().print(table)
        if json_out is not None:
            write_json(json_out, as_json(rows))
