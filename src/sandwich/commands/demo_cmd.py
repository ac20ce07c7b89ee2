"""``sandwich demo``: a shipped model on the bundled sample, beside plain JPEG at the same bpp."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import typer


def sample_path() -> Path:
    return Path(str(resources.files("sandwich") / "assets" / "sample.png"))


def _closest_jpeg(image: np.ndarray, bpp: float, subsampling: str):
    """Plain JPEG whose whole-file bpp is closest to ``bpp``: (quality, bytes, decoded RGB)."""
    from sandwich.evaluation.baselines import JpegBaseline

    base = JpegBaseline(subsampling)
    pixels = image.shape[0] * image.shape[1]
    best = None
    for q in range(1, 101):
        data, rec = base.roundtrip(image, q)
        err = abs(8 * len(data) / pixels - bpp)
        if best is None or err < best[0]:
            best = (err, q, data, rec)
    return best[1:]


def _label(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(pil)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        model: str = typer.Option(None, "--model", "-m", help="zoo model (default: gray-jpeg)"),
        quality: int = typer.Option(
            50, "--quality", "-q", help="codec quality of the bottleneck (JPEG 1..100)"
        ),
        image: Path = typer.Option(None, help="image to use (default: the bundled sample)"),
        out: Path = typer.Option(Path("sandwich-demo.png"), "-o", "--output"),
        force: bool = typer.Option(False, help="overwrite the output"),
    ) -> None:
        """Compress the bundled sample; print bpp/PSNR vs plain JPEG; write a side-by-side PNG."""
        from rich.table import Table

        from sandwich.api import check_knob
        from sandwich.errors import SandwichError
        from sandwich.evaluation.metrics import psnr
        from sandwich.media.files import check_writable, load_rgb, save_png, to_8bit
        from sandwich.zoo import DEFAULT_MODEL, load_model

        net = load_model(model or DEFAULT_MODEL)
        if not hasattr(net, "bottleneck_image"):
            raise SandwichError(
                f"{net.name} has no bottleneck to show; the demo takes sandwich models"
            )
        check_knob(net, quality, "--quality")
        check_writable(out, force)
        img = load_rgb(image or sample_path())
        h, w = img.shape[:2]
        data = net.compress(img, quality)
        rec = to_8bit(net.decompress(data))  # a 16-bit model's output, shown in 8 bits
        bpp = 8 * len(data) / (h * w)
        rows = [(f"sandwich {net.name} (q={quality})", bpp, psnr(img, rec))]
        q420, d420, r420 = _closest_jpeg(img, bpp, "4:2:0")
        rows.append((f"plain JPEG 4:2:0 (q={q420})", 8 * len(d420) / (h * w), psnr(img, r420)))
        if net.scenario.subsampling == "gray":
            qg, dg, rg = _closest_jpeg(img, bpp, "gray")
            rows.append((f"grayscale JPEG (q={qg})", 8 * len(dg) / (h * w), psnr(img, rg)))
        table = Table(title=f"{net.name} on {image or 'the bundled sample'} ({w}x{h})")
        for col in ("pipeline", "bpp", "RGB PSNR dB"):
            table.add_column(col, justify="right")
        for name, b, p in rows:
            table.add_row(name, f"{b:.3f}", f"{p:.2f}")
        from sandwich.commands.common import console

        console().print(table)

        bott = net.bottleneck_image(img)
        if bott.ndim == 2:
            bott = np.repeat(bott[:, :, None], 3, axis=2)
        k = net.scenario.downscale
        bott = np.repeat(np.repeat(bott, k, axis=0), k, axis=1)[:h, :w]
        panels = [
            _label(img, "original"),
            _label(r420, f"JPEG {rows[1][1]:.2f}bpp"),
            _label(bott, "bottleneck"),
            _label(rec, f"sandwich {bpp:.2f}bpp"),
        ]
        save_png(out, np.concatenate(panels, axis=1), force)
        typer.echo(f"wrote {out} (original | plain JPEG | bottleneck | sandwich)")
