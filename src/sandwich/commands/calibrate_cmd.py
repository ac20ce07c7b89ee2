"""``sandwich calibrate-proxy``: fit the JPEG proxy's rate calibration on training images."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("calibrate-proxy")
    def calibrate_proxy(
        inputs: list[Path] = typer.Argument(..., help="training images or folders"),
        qualities: str = typer.Option("10,20,30,40,50,60,70,80,90,95"),
        out: Path = typer.Option(None, help="where to write (default: the package's calibration)"),
    ) -> None:
        """Measure Huffman tables and headers from the real codec; fit stuffing and surrogate
        (its scale for total bits, and per quality for the bits of change)."""
        from tqdm import tqdm

        from sandwich.codecs.jpeg import SUBSAMPLINGS
        from sandwich.commands.common import expand_images
        from sandwich.media.files import load_rgb
        from sandwich.proxies import calibrate as cal
        from sandwich.proxies import jpeg as proxy

        files = expand_images(inputs)
        images = [load_rgb(f) for f in files]
        qs = [int(q) for q in qualities.split(",")]
        with tqdm(total=2 * len(images) * len(qs) * len(SUBSAMPLINGS), desc="calibrating") as bar:
            result = cal.calibrate(images, qs, progress=lambda: bar.update(1))
        result["fitted_on"]["files"] = [f.name for f in files]
        target = out or Path(proxy.__file__).with_name(proxy.CALIBRATION_FILE)
        cal.write_calibration(result, target)
        proxy.load_calibration.cache_clear()
        for mode, m in result["modes"].items():
            typer.echo(
                f"{mode}: header {m['header_bytes']} B, stuffing x{m['stuffing']:.4f}, "
                f"surrogate x{m['alpha']:.3f}, fit error {100 * m['fit_mean_abs_rel_error']:.2f}% "
                f"(raw {100 * m['raw_mean_abs_rel_error']:.2f}%)"
            )
        typer.echo(f"wrote {target}")
