"""``sandwich bench modem``: how the gray scenario's analytic base was chosen."""

from __future__ import annotations

from pathlib import Path

import typer


def register(bench: typer.Typer) -> None:
    @bench.command("modem")
    def bench_modem(
        inputs: list[Path] = typer.Argument(..., help="TRAINING images or folders"),
        crop: int = typer.Option(256, help="centre crop side (0: whole images)"),
        json_out: Path = typer.Option(None, "--json"),
    ) -> None:
        """BD-PSNR over grayscale JPEG of the chroma modem per filter length and gain."""
        from tqdm import tqdm

        from sandwich.commands.common import console, expand_images, write_json
        from sandwich.evaluation.modem_sweep import modem_sweep
        from sandwich.media.files import load_rgb

        images = []
        for f in expand_images(inputs):
            img = load_rgb(f)
            if crop:
                h, w = img.shape[:2]
                c = min(crop, h, w) // 16 * 16
                y, x = (h - c) // 2 // 4 * 4, (w - c) // 2 // 4 * 4
                img = img[y : y + c, x : x + c]
            images.append(img)
        with tqdm(total=11, desc="modem sweep") as bar:
            rows = modem_sweep(images, progress=lambda: bar.update(1))
        from rich.table import Table

        t = Table(title=f"chroma modem vs grayscale JPEG on {len(images)} image(s), q 20/50/80")
        for col in ("stage", "luma taps", "chroma taps", "luma gain", "chroma gain", "BD-PSNR dB"):
            t.add_column(col, justify="right")
        for r in rows:
            t.add_row(
                r["stage"],
                str(4 * r["luma_order"] + 1),
                str(4 * r["chroma_order"] + 1),
                f"{r['luma_gain']:.2f}",
                f"{r['chroma_gain']:.2f}",
                f"{r['bd_psnr_db']:+.2f}",
            )
        console().print(t)
        if json_out is not None:
            write_json(json_out, rows)
