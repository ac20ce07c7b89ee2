"""``sandwich bench proxy``: fidelity of the JPEG proxy against the real codec."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from sandwich.errors import SandwichError


def register(bench: typer.Typer) -> None:
    @bench.command("proxy")
    def bench_proxy(
        inputs: list[Path] = typer.Argument(..., help="images or folders (not used to calibrate)"),
        qualities: str = typer.Option("10,20,30,40,50,60,70,80,90,95", help="JPEG qualities"),
        modes: str = typer.Option("4:2:0,4:4:4,gray", help="subsampling modes"),
        json_out: Path = typer.Option(
            None,
            "--json",
            help="write the rows as JSON here (with --gradient, each row also has "
            "change_bits_over_gradient)",
        ),
        gradient: bool = typer.Option(
            False, help="also: real bits of a small change over the rate gradient's prediction"
        ),
    ) -> None:
        """Real vs proxy bpp and PSNR per mode and quality, averaged over the images."""
        from tqdm import tqdm

        from sandwich.codecs.jpeg import SUBSAMPLINGS
        from sandwich.commands.common import expand_images, write_json
        from sandwich.evaluation.proxy_fidelity import fidelity_rows
        from sandwich.media.files import load_rgb

        try:
            qs = tuple(int(q) for q in qualities.split(","))
        except ValueError:
            raise SandwichError(f"--qualities {qualities!r}: give integers like 10,50,90") from None
        ms = tuple(m.strip() for m in modes.split(","))
        for m in ms:
            if m not in SUBSAMPLINGS:
                raise SandwichError(f"unknown mode {m!r}; use {', '.join(SUBSAMPLINGS)}")
        files = expand_images(inputs)
        images = [load_rgb(f) for f in files]
        with tqdm(total=len(images) * len(qs) * len(ms), desc="proxy vs real") as bar:
            rows, summary = fidelity_rows(images, qs, ms, progress=lambda: bar.update(1))
        from sandwich.commands.common import console as make_console

        console = make_console()
        _print_fidelity(console, rows, summary, len(images))
        grad_rows = None
        if gradient:
            from sandwich.evaluation.proxy_fidelity import gradient_rows

            with tqdm(total=len(images) * len(qs) * len(ms), desc="bits of change") as bar:
                grad_rows = gradient_rows(images, qs, ms, progress=lambda: bar.update(1))
            gt = Table(
                title="bits of a small change (sharpening, contrast): real / predicted by the "
                "rate gradient (1 = faithful; above 1 the gradient underprices change)"
            )
            for col in ("mode", "quality", "total (default)", "marginal (--rate-grad)"):
                gt.add_column(col, justify="right")
            for r in grad_rows:
                marg = f"{r['marginal']:.2f}" if "marginal" in r else "-"
                gt.add_row(r["mode"], str(r["quality"]), f"{r['total']:.2f}", marg)
            console.print(gt)
        if json_out is not None:
            for g in grad_rows or []:
                (r,) = (r for r in rows if (r["mode"], r["quality"]) == (g["mode"], g["quality"]))
                r["change_bits_over_gradient"] = {k: g[k] for k in ("total", "marginal") if k in g}
            write_json(json_out, rows)
            console.print(f"wrote {json_out}")


def _print_fidelity(console, rows: list[dict], summary: list[dict], n_images: int) -> None:
    """The per-(mode, quality) table and the per-mode summary against the targets."""
    from rich.table import Table

    from sandwich.evaluation.proxy_fidelity import BPP_TARGET, PSNR_TARGET

    table = Table(title=f"JPEG proxy vs real libjpeg on {n_images} image(s)")
    for col in (
        "mode",
        "quality",
        "real bpp",
        "proxy bpp",
        "bpp err %",
        "real PSNR",
        "proxy PSNR",
        "dPSNR dB",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["mode"],
            str(r["quality"]),
            f"{r['real_bpp']:.4f}",
            f"{r['proxy_bpp']:.4f}",
            f"{100 * (r['proxy_bpp'] / r['real_bpp'] - 1):+.2f}",
            f"{r['real_psnr']:.3f}",
            f"{r['proxy_psnr']:.3f}",
            f"{r['proxy_psnr'] - r['real_psnr']:+.3f}",
        )
    console.print(table)
    summ = Table(
        title=f"targets: mean |bpp error| <= {100 * BPP_TARGET:.0f}%, "
        f"mean |dPSNR| <= {PSNR_TARGET} dB (per image, over qualities)"
    )
    for col in ("mode", "mean |bpp err| %", "max %", "mean |dPSNR| dB", "max dB", "meets"):
        summ.add_column(col, justify="right")
    for s in summary:
        summ.add_row(
            s["mode"],
            f"{100 * s['mean_abs_bpp_error']:.2f}",
            f"{100 * s['max_abs_bpp_error']:.2f}",
            f"{s['mean_abs_psnr_diff']:.3f}",
            f"{s['max_abs_psnr_diff']:.3f}",
            "yes" if s["meets_targets"] else "NO",
        )
    console.print(summ)
