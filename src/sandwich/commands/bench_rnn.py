"""``sandwich bench rnn``: the progressive codec per iteration, and 4:2:0 JPEG at the same bpp."""

from __future__ import annotations

from pathlib import Path

import typer


def register(bench: typer.Typer) -> None:
    @bench.command("rnn")
    def bench_rnn(
        inputs: list[Path] = typer.Argument(..., help="images or folders (not used in training)"),
        model: str = typer.Option("rnn", "--model", "-m", help="progressive zoo model"),
        weights: Path = typer.Option(None, help="evaluate these weights (.safetensors + .json)"),
        lo: float = typer.Option(0.25, help="BD-rate range: lowest bpp"),
        hi: float = typer.Option(1.0, help="BD-rate range: highest bpp"),
        json_out: Path = typer.Option(None, "--json", help="write table, BD-rate and rows here"),
        markdown: Path = typer.Option(None, help="write the table as Markdown here"),
    ) -> None:
        """Per iteration: bpp, ratio, entropy-coding saving, MS-SSIM, PSNR; JPEG at that bpp."""
        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, expand_images, write_json
        from sandwich.errors import SandwichError
        from sandwich.evaluation.progressive_eval import (
            bd_rate_msssim,
            codec_rows,
            jpeg_rows,
            per_iteration_table,
        )
        from sandwich.media.files import load_rgb
        from sandwich.zoo import load_model
        from sandwich.zoo.weights import load_progressive_weights

        if weights is not None:
            net = load_progressive_weights(weights, name=str(weights))
        else:
            from sandwich.models.progressive import ProgressiveCodec

            net = load_model(model)
            if not isinstance(net, ProgressiveCodec):
                raise SandwichError(f"{model} is not a progressive model (try --model rnn)")
        files = expand_images(inputs)
        images = {f.name: load_rgb(f) for f in files}
        with tqdm(total=2 * len(images), desc="rnn and jpeg") as bar:
            crows = codec_rows(net, images, progress=lambda: bar.update(1))
            jrows = jpeg_rows(images, progress=lambda: bar.update(1))
        table = per_iteration_table(crows, jrows)
        bd = bd_rate_msssim(crows, jrows, lo, hi)
        t = Table(title=f"{net.name} per iteration, mean over {len(images)} image(s)")
        cols = ("iter", "bpp", "raw bpp", "ratio", "entropy saving", "MS-SSIM", "PSNR dB")
        for c in (*cols, "JPEG MS-SSIM", "JPEG PSNR dB"):
            t.add_column(c, justify="right")
        for r in table:
            t.add_row(
                str(r["iterations"]),
                f"{r['bpp']:.3f}",
                f"{r['raw_bpp']:.3f}",
                f"{r['ratio']:.1f}:1",
                f"{r['entropy_saving_pct']:.1f}%",
                f"{r['msssim']:.4f}",
                f"{r['psnr']:.2f}",
                f"{r['jpeg_msssim']:.4f}" + ("*" if r["jpeg_out_of_range"] else ""),
                f"{r['jpeg_psnr']:.2f}" + ("*" if r["jpeg_out_of_range"] else ""),
            )
        out = console()
        out.print(t)
        if any(r["jpeg_out_of_range"] for r in table):
            out.print("*: below JPEG's smallest file (quality 1) on some images; see --markdown")
        out.print(
            f"BD-rate (MS-SSIM) vs 4:2:0 JPEG over {lo}-{hi} bpp: {bd:+.1f}% "
            "(negative = fewer bits than JPEG)"
        )
        if markdown is not None:
            from sandwich.evaluation.progressive_eval import markdown_table
            from sandwich.media.files import atomic_write_bytes

            text = markdown_table(net.name, list(images), table, bd, (lo, hi))
            atomic_write_bytes(markdown, text.encode(), force=True)
            out.print(f"wrote {markdown}")
        if json_out is not None:
            write_json(
                json_out,
                {
                    "model": net.name,
                    "images": list(images),
                    "table": table,
                    "bd_rate_msssim_pct": bd,
                    "bd_range_bpp": [lo, hi],
                    "rows": crows,
                    "jpeg_rows": jrows,
                },
            )
            out.print(f"wrote {json_out}")
