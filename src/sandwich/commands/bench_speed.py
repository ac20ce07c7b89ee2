"""``sandwich bench speed``: whole-command time and peak memory per model and image size; ``sandwich
bench rnn-tiles``: what the progressive codec's independent tiles cost in rate."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def _cell(row) -> tuple[str, str]:
    """'wall (cpu)' seconds and peak MiB of a row, or dashes."""
    seconds = "-" if row.seconds is None else f"{row.seconds:.2f}"
    if row.cpu_seconds is not None:
        seconds += f" ({row.cpu_seconds:.2f})"
    return seconds, "-" if row.peak_mb is None else f"{row.peak_mb:.0f}"


def register(bench: typer.Typer) -> None:
    @bench.command("speed")
    def bench_speed(
        models: str = typer.Option("gray-jpeg,rgb-jpeg,lowres2-jpeg,rnn", help="comma list"),
        sizes: str = typer.Option(
            "0.4,2,12", help="image sizes, comma list: megapixels (4:3) or WxH, e.g. 8192x8192"
        ),
        timeout: float = typer.Option(900.0, help="seconds per command before giving up"),
        tile: int = typer.Option(None, help="pass --tile to the sandwich commands"),
        iterations: int = typer.Option(8, help="iterations of the progressive codec (rnn)"),
        source: Path = typer.Option(
            None, help="a photo mirrored out to each size (default: the sample, scaled up)"
        ),
        threads: int = typer.Option(None, help="CPU threads per command (default: all cores)"),
        work: Path = typer.Option(Path("/tmp/sandwich-speed"), help="folder for test images"),
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """Compress then decompress a photo-like image of each size with each model, as fresh
        `sandwich` commands (imports, model load, I/O included), next to plain Pillow JPEG:
        wall time and peak resident memory of each command."""
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, write_json
        from sandwich.evaluation.speed import as_json, measure, parse_size

        dims = [parse_size(v) for v in sizes.split(",") if v.strip()]
        names = [m.strip() for m in models.split(",") if m.strip()]
        if source is not None and not source.is_file():
            raise SandwichError(f"--source {source}: no such file")
        if threads is not None and threads < 1:
            raise SandwichError(f"--threads {threads}: give at least 1")
        work.mkdir(parents=True, exist_ok=True)
        extra = ["--tile", str(tile)] if tile is not None else []
        with tqdm(total=len(dims) * (len(names) + 1) * 2, desc="speed") as bar:
            rows = measure(
                names,
                dims,
                work,
                timeout,
                extra,
                progress=lambda: bar.update(1),
                source=source,
                threads=threads,
                iterations=iterations,
            )
        cores = f"{threads} thread(s)" if threads else "all cores"
        title = f"whole commands, {cores}: wall time (CPU time) and peak memory"
        if "rnn" in names:
            title += f" (rnn at {iterations} iterations)"
        table = Table(title=title)
        cols = ("model", "size", "compress s (cpu)", "MiB", "decompress s (cpu)", "MiB", "note")
        for col in cols:
            table.add_column(col, justify="left" if col in ("model", "note") else "right")
        for c, d in zip(rows[::2], rows[1::2], strict=True):
            table.add_row(
                c.model,
                f"{c.width}x{c.height} ({c.megapixels:.3g} MP)",
                *_cell(c),
                *_cell(d),
                c.error or d.error,
            )
        console().print(table)
        if json_out is not None:
            write_json(json_out, as_json(rows))

    @bench.command("rnn-tiles")
    def bench_rnn_tiles(
        inputs: list[Path] = typer.Argument(..., help="images or folders (not used in training)"),
        tiles: str = typer.Option("0,512,256", help="tile sides, comma list (0: whole image)"),
        iterations: str = typer.Option("2,4,8,12", help="iteration counts, comma list"),
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """What coding an image as independent tiles costs the progressive codec (rnn): mean
        bpp (whole file) and PSNR per tile side and iteration count, and the rate change
        against the whole image at the same iteration count."""
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, expand_images, write_json
        from sandwich.evaluation.speed import tiling_cost
        from sandwich.media.files import load_rgb
        from sandwich.zoo import load_model

        try:
            sides = [int(v) for v in tiles.split(",") if v.strip()]
            counts = [int(v) for v in iterations.split(",") if v.strip()]
        except ValueError:
            raise SandwichError("--tiles and --iterations take whole numbers, like 0,512") from None
        net = load_model("rnn")
        if not counts or not all(1 <= k <= net.cfg.max_iterations for k in counts):
            raise SandwichError(f"--iterations: give counts in 1..{net.cfg.max_iterations}")
        if not sides or min(sides) < 0:
            raise SandwichError("--tiles: give sides in pixels, 0 for the whole image")
        images = {f.name: load_rgb(f) for f in expand_images(inputs)}
        with tqdm(total=len(images) * len(sides), desc="rnn tiles") as bar:
            rows = tiling_cost(net, images, sides, counts, progress=lambda: bar.update(1))
        base = {r["iterations"]: r for r in rows if r["tile"] == sides[0]}
        table = Table(title=f"rnn: whole image against tiles, mean of {len(images)} image(s)")
        for col in ("tile", "iterations", "bpp", "PSNR dB", f"bpp vs tile {sides[0]}", "dB vs"):
            table.add_column(col, justify="right")
        for r in rows:
            b = base[r["iterations"]]
            table.add_row(
                str(r["tile"] or "whole"),
                str(r["iterations"]),
                f"{r['bpp']:.4f}",
                f"{r['psnr']:.2f}",
                f"{100 * (r['bpp'] / b['bpp'] - 1):+.1f}%",
                f"{r['psnr'] - b['psnr']:+.2f}",
            )
        console().print(table)
        if json_out is not None:
            write_json(json_out, {"images": list(images), "rows": rows})
