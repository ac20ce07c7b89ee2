"""``sandwich results``: re-create docs/results.md, every zoo model against its baselines.

One ``sandwich eval`` per recipe below, on the same images, each writing its Markdown section;
the page starts with the images used and the exact commands, so every figure can be rerun.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import typer

from sandwich.errors import SandwichError

# (title, eval arguments): models (-m), baselines (-b), anchors (-a), metrics
RECIPES: list[tuple[str, list[str]]] = [
    (
        "Colour through grayscale JPEG (`gray`)",
        ["-m", "gray-jpeg", "-m", "gray-modem", "-b", "jpeg-gray", "-b", "jpeg-420",
         "-a", "jpeg-gray", "-a", "jpeg-420", "--metrics", "ms_ssim"],
    ),
    (
        "Full resolution through half-size JPEG (`lowres2`)",
        ["-m", "lowres2-jpeg", "-b", "lowres2-bicubic", "-b", "jpeg-420",
         "-a", "lowres2-bicubic", "-a", "jpeg-420", "--metrics", "ms_ssim"],
    ),
    (
        "RGB through 4:2:0 JPEG (`rgb`)",
        ["-m", "rgb-jpeg", "-b", "jpeg-420", "--metrics", "psnr_y,ms_ssim,lpips"],
    ),
    (
        "The JPEG-trained `rgb-jpeg` over other codecs, without retraining",
        ["-m", "rgb-jpeg@avif", "-m", "rgb-jpeg@webp", "-b", "avif", "-b", "webp",
         "-a", "avif", "-a", "webp", "--metrics", "ms_ssim"],
    ),
    (
        "Progressive recurrent codec (`rnn`)",
        ["-m", "rnn", "-b", "jpeg-420", "--metrics", "ms_ssim"],
    ),
]  # fmt: skip


def _models(args: list[str]) -> list[str]:
    return [args[i + 1].split("@")[0] for i, a in enumerate(args) if a == "-m"]


def register(app: typer.Typer) -> None:
    @app.command()
    def results(
        data: Path = typer.Argument(Path("data/corpus/val"), help="validation images"),
        out: Path = typer.Option(Path("docs/results.md"), "-o", "--output"),
    ) -> None:
        """Run every recipe of `sandwich eval` and write the Markdown page (models with missing
        weights are skipped and listed)."""
        from sandwich.cli import main
        from sandwich.commands.common import expand_images
        from sandwich.io import atomic_write_bytes
        from sandwich.zoo import ZOO, available

        files = expand_images([data])
        parts = [
            "# Results\n",
            "Made by `sandwich results "
            f"{shlex.quote(str(data))}`: real codecs, whole files (markers and headers "
            "included), on these images, which no model was trained, calibrated or tuned on:\n",
            ", ".join(f"`{f.name}`" for f in files) + ".\n",
        ]
        skipped = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, (title, args) in enumerate(RECIPES):
                missing = [m for m in _models(args) if m in ZOO and not available(ZOO[m])]
                if missing:
                    skipped.append(f"{title}: no weights for {', '.join(missing)}")
                    continue
                md = Path(tmp) / f"{k}.md"
                argv = ["eval", str(data), *args, "--markdown", str(md)]
                typer.echo(f"[{k + 1}/{len(RECIPES)}] sandwich {shlex.join(argv[:-2])}")
                code = main(argv)
                if code != 0:
                    raise SandwichError(f"recipe {title!r} failed (exit {code})")
                parts += [
                    f"\n## {title}\n",
                    f"`sandwich {shlex.join(argv[:-2])}`\n",
                    md.read_text(),
                ]
        if skipped:
            parts += ["\n## Not evaluated\n", *[f"- {s}\n" for s in skipped]]
        atomic_write_bytes(out, "\n".join(parts).encode(), force=True)
        typer.echo(f"wrote {out}")
