"""``sandwich eval``: real-codec rate-distortion of zoo models against standard baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate(
        data: list[Path] = typer.Argument(..., help="validation images or folders"),
        model: list[str] = typer.Option([], "--model", "-m", help="zoo model(s) to evaluate"),
        baseline: list[str] = typer.Option(
            [], "--baseline", "-b", help="jpeg-420, jpeg-444, jpeg-gray, lowres2-bicubic, ..."
        ),
        qualities: str = typer.Option("10,20,30,40,50,60,70,80,90"),
        json_out: Path = typer.Option(None, "--json", help="write curves, BD table and rows here"),
        markdown: Path = typer.Option(None, help="write the tables as Markdown here"),
    ) -> None:
        """Sweep qualities through the real codecs; print mean RD curves and BD-PSNR/BD-rate."""
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import expand_images, write_json
        from sandwich.evaluation.baselines import BASELINES, ModelPipeline
        from sandwich.evaluation.rd import bd, mean_curve, rd_sweep
        from sandwich.io import load_rgb
        from sandwich.zoo import load_model

        try:
            qs = [int(q) for q in qualities.split(",")]
        except ValueError:
            raise SandwichError(f"--qualities {qualities!r}: give integers like 10,50,90") from None
        for b in baseline:
            if b not in BASELINES:
                raise SandwichError(f"unknown baseline {b!r}; use {', '.join(BASELINES)}")
        if not model and not baseline:
            raise SandwichError("give at least one --model or --baseline")
        files = expand_images(data)
        images = {f.name: load_rgb(f) for f in files}
        pipes = [BASELINES[b]() for b in baseline] + [
            ModelPipeline(load_model(m), m) for m in model
        ]
        rows: list[dict] = []
        with tqdm(total=len(pipes) * len(images) * len(qs), desc="rd sweep") as bar:
            for p in pipes:
                rows += rd_sweep(p, images, qs, progress=lambda: bar.update(1))
        curves = {}
        for p in pipes:
            bpp, ps, _ = mean_curve([r for r in rows if r["pipeline"] == p.name])
            curves[p.name] = {"quality": qs, "bpp": bpp.tolist(), "psnr": ps.tolist()}
        from sandwich.commands.common import console as make_console

        console = make_console()
        table = Table(title=f"mean RGB PSNR (dB) / bpp over {len(images)} image(s)")
        table.add_column("quality", justify="right")
        for p in pipes:
            table.add_column(p.name, justify="right")
        for i, q in enumerate(qs):
            table.add_row(
                str(q),
                *[
                    f"{curves[p.name]['psnr'][i]:.2f} / {curves[p.name]['bpp'][i]:.3f}"
                    for p in pipes
                ],
            )
        console.print(table)
        deltas = []
        for a in pipes:
            for t in pipes:
                if a is t or t.name in BASELINES:
                    continue
                ca, ct = curves[a.name], curves[t.name]
                import numpy as np

                d = bd(
                    (np.array(ca["bpp"]), np.array(ca["psnr"])),
                    (np.array(ct["bpp"]), np.array(ct["psnr"])),
                )
                deltas.append({"test": t.name, "anchor": a.name, **d})
        if deltas:
            bt = Table(title="Bjontegaard deltas of the models (Akima, mean curves)")
            for col in ("model", "vs", "BD-PSNR dB", "BD-rate %"):
                bt.add_column(col, justify="right")
            for d in deltas:
                bt.add_row(
                    d["test"], d["anchor"], f"{d['bd_psnr_db']:+.2f}", f"{d['bd_rate_pct']:+.1f}"
                )
            console.print(bt)
        if markdown is not None:
            from sandwich.evaluation.rd import markdown_report
            from sandwich.io import atomic_write_bytes

            text = markdown_report(list(images), qs, curves, deltas)
            atomic_write_bytes(markdown, text.encode(), force=True)
            console.print(f"wrote {markdown}")
        if json_out is not None:
            write_json(
                json_out,
                {
                    "images": list(images),
                    "qualities": qs,
                    "curves": curves,
                    "bd": deltas,
                    "rows": rows,
                },
            )
            console.print(f"wrote {json_out}")
