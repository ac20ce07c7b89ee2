"""``sandwich eval-video``: real-codec rate-distortion of video sandwiches against plain x264 /
x265 on clips."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from sandwich.evaluation.clip_eval import DEFAULT_CRFS, DEFAULT_METRICS

    @app.command("eval-video")
    def eval_video(
        clips: list[Path] = typer.Argument(
            ..., help="clips (video files or folders of numbered PNG frames) or folders of clips"
        ),
        model: list[str] = typer.Option(
            [],
            "--model",
            "-m",
            help="video sandwich(es): zoo name or a run's model.safetensors; NAME@x264 runs "
            "its networks over the other codec; NAME+x8 decodes with an 8-pass self-ensemble",
        ),
        baseline: list[str] = typer.Option(
            [],
            "--baseline",
            "-b",
            help="x265-420, x265-444, x265-gray, x265-lowres2, x265-lowres2-paper (and x264-...)",
        ),
        crfs: str = typer.Option(None, help=f"CRFs of every pipeline (default {DEFAULT_CRFS})"),
        anchor: list[str] = typer.Option(
            [],
            "--anchor",
            "-a",
            help="pipeline(s) the BD deltas are against (default: the first baseline)",
        ),
        metrics: str = typer.Option(
            None,
            help="comma list of psnr, msssim, lpips, vmaf (default "
            f"{','.join(DEFAULT_METRICS)}; psnr always)",
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="folder for results.json, RD plots, frames and report.html"
        ),
        json_out: Path = typer.Option(None, "--json", help="write curves, BD tables and rows here"),
        markdown: Path = typer.Option(None, help="write the tables as Markdown here"),
    ) -> None:
        """Code every clip with every pipeline at every CRF through real x264 / x265 (whole MP4
        counted); print mean RD curves, bits per I and P frame, and BD-rate / BD-metric against
        the anchor(s); optionally write an HTML report with frames at matched rates."""
        from tqdm import tqdm

        from sandwich.commands.common import console as make_console
        from sandwich.evaluation.clip_eval import ClipEvalRequest, evaluate_clips

        req = ClipEvalRequest(
            clips, model, baseline, crfs, anchor, metrics, out, json_out, markdown
        )
        bars = []

        def progress(total: int):
            bars.append(tqdm(total=total, desc="clips x pipelines x CRFs"))
            return lambda: bars[0].update(1)

        try:
            done = evaluate_clips(req, progress)
        finally:
            for bar in bars:
                bar.close()
        console = make_console()
        _print_tables(console, done.results, done.metrics)
        for path in done.written:
            extra = " (and results.json, plots, frames/)" if path.name == "report.html" else ""
            console.print(f"wrote {path}{extra}")


def _print_tables(console, results: dict, metrics: dict) -> None:
    from rich.table import Table

    from sandwich.evaluation.clip_report import fmt
    from sandwich.evaluation.report import bd_unit, fmt_delta, table_label

    n = len(results["clips"])
    table = Table(title=f"mean over {n} clip(s); bpp of the whole MP4")
    cols = ["pipeline", "CRF", "bpp", "I-frame bpp", "P-frame bpp"]
    for col in [*cols, *[table_label(m) for m in metrics.values()]]:
        table.add_column(col, justify="left" if col == "pipeline" else "right")
    for name, c in results["curves"].items():
        for i, k in enumerate(c["crf"]):
            bpps = [f"{c[key][i]:.4f}" for key in ("bpp", "bpp_I", "bpp_P")]
            table.add_row(name, str(k), *bpps, *[fmt(m, c[m][i]) for m in metrics])
    console.print(table)
    if results["bd_table"]:
        bt = Table(title="Bjontegaard deltas (Akima, mean curves): BD-rate % / BD-metric")
        bt.add_column("test")
        bt.add_column("vs")
        for m in metrics.values():
            bt.add_column(f"{m.label} (% / {bd_unit(m)})", justify="right")
        for d in results["bd_table"]:
            cells = [
                f"{fmt_delta(d[m]['bd_rate_pct'], 1)} / {fmt_delta(d[m]['bd_metric'], 3)}"
                for m in metrics
            ]
            bt.add_row(d["test"], d["anchor"], *cells)
        console.print(bt)
    for note in results["notes"]:
        console.print(f"note: {note}")
