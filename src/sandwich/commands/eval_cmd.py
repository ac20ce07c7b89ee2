"""``sandwich eval``: real-codec rate-distortion of zoo models against standard baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.evaluation.specs import DEFAULT_QUALITIES, split_model_spec

__all__ = ["register", "split_model_spec"]


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate(
        data: list[Path] = typer.Argument(..., help="validation images or folders"),
        model: list[str] = typer.Option(
            [],
            "--model",
            "-m",
            help="zoo model(s) or a run's model.safetensors; NAME@CODEC runs a JPEG-trained "
            "sandwich over webp, avif, jxl or heic without retraining; NAME+x8 decodes with an "
            "8-pass self-ensemble (flips and transposes; also +x2, +x4)",
        ),
        baseline: list[str] = typer.Option(
            [], "--baseline", "-b", help="jpeg-420, jpeg-444, jpeg-gray, lowres2-bicubic, ..."
        ),
        qualities: str = typer.Option(
            None,
            help=f"qualities of the models and JPEG baselines (default {DEFAULT_QUALITIES})"
            "; other baselines with their own quality scale use it unless this is given; "
            "progressive models always sweep their iterations",
        ),
        anchor: list[str] = typer.Option(
            [],
            "--anchor",
            "-a",
            help="pipeline(s) the BD deltas are against (default: the first baseline)",
        ),
        metrics: str = typer.Option(
            None,
            help="comma list of psnr, psnr_y, ssim, ms_ssim, lpips (default: all available; "
            "psnr always)",
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="folder for results.json, RD plots and report.html"
        ),
        json_out: Path = typer.Option(None, "--json", help="write curves, BD table and rows here"),
        markdown: Path = typer.Option(None, help="write the tables as Markdown here"),
    ) -> None:
        """Sweep every pipeline through the real codecs; print mean RD curves of every metric and
        BD-rate/BD-metric against the anchor(s); optionally write an HTML report."""
        from tqdm import tqdm

        from sandwich.commands.common import console as make_console
        from sandwich.evaluation.run import EvalRequest
        from sandwich.evaluation.run import evaluate as run

        req = EvalRequest(
            data, model, baseline, qualities, anchor, metrics, out, json_out, markdown
        )
        bars = []

        def progress(total: int):
            bars.append(tqdm(total=total, desc="rd sweep"))
            return lambda: bars[0].update(1)

        try:
            done = run(req, progress)
        finally:
            for bar in bars:
                bar.close()
        console = make_console()
        _print_tables(console, done.results, done.metrics)
        n_ch = done.channels
        if n_ch != 3:
            rgb = [m.label for k, m in done.metrics.items() if k != "psnr"]
            console.print(
                f"{n_ch}-channel images: PSNR over all {n_ch} channels"
                + (f"; {', '.join(rgb)} on channels 0-2 (the albedo)" if rgb else "")
                + "; bpp per pixel of the whole file"
            )
        for path in done.written:
            extra = " (and results.json, rd_*.png/svg)" if path.name == "report.html" else ""
            console.print(f"wrote {path}{extra}")


def _print_tables(console, results: dict, metrics: dict) -> None:
    from rich.table import Table

    from sandwich.evaluation.report import bd_unit, fmt_delta, fmt_value, table_label

    n = len(results["images"])
    deep = results.get("bit_depth", 8) > 8
    title = f"mean over {n} image(s)" + (", 16-bit (PSNR peak 65535)" if deep else "")
    table = Table(title=title)
    for col in ["pipeline", "knob", "bpp", *[table_label(m) for m in metrics.values()]]:
        table.add_column(col, justify="left" if col == "pipeline" else "right")
    for name, c in results["curves"].items():
        for i, k in enumerate(c["knob"]):
            table.add_row(
                name,
                f"{c['knob_name']} {k}",
                f"{c['bpp'][i]:.3f}",
                *[fmt_value(m, c[m][i]) for m in metrics],
            )
    console.print(table)
    if results["bd_table"]:
        bt = Table(title="Bjontegaard deltas (Akima, mean curves): BD-rate % / BD-metric")
        bt.add_column("test")
        bt.add_column("vs")
        for m in metrics.values():
            bt.add_column(f"{m.label} (% / {bd_unit(m)})", justify="right")
        for d in results["bd_table"]:
            bt.add_row(
                d["test"],
                d["anchor"],
                *[
                    f"{fmt_delta(d[m]['bd_rate_pct'], 1)} / {fmt_delta(d[m]['bd_metric'], 3)}"
                    for m in metrics
                ],
            )
        console.print(bt)
