"""``sandwich results``: re-create docs/results.md, every zoo model against its baselines.

One ``sandwich eval`` per recipe below, on the same images, each writing its Markdown section;
the page starts with the images used and the exact commands, so every figure can be rerun.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import typer

from sandwich.commands.eval_cmd import split_model_spec
from sandwich.errors import SandwichError

# (title, eval arguments, images): models (-m), baselines (-b), anchors (-a), metrics; images is
# None for the page's validation folder, or the folder this scenario's own data is in (16-bit or
# multichannel copies of the same validation photos, made by `sandwich data`), with how to build it
CORPUS16 = ("data/corpus16/val", "sandwich data --bit-depth 16")
RECIPES: list[tuple[str, list[str], tuple[str, str] | None]] = [
    (
        "Colour through grayscale JPEG (`gray`)",
        ["-m", "gray-jpeg", "-m", "gray-modem", "-b", "jpeg-gray", "-b", "jpeg-420",
         "-a", "jpeg-gray", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "RGB through 4:2:0 JPEG (`rgb`)",
        ["-m", "rgb-jpeg", "-m", "rgb-jpeg+x8", "-b", "jpeg-420", "--metrics", "psnr_y,ms_ssim"],
        None,
    ),
    (
        "RGB through 4:2:0 JPEG for MS-SSIM and for LPIPS (`msssim`, `lpips`)",
        ["-m", "msssim-jpeg", "-m", "msssim-jpeg+x8", "-m", "lpips-jpeg", "-m", "rgb-jpeg",
         "-b", "jpeg-420", "--metrics", "ms_ssim,lpips"],
        None,
    ),
    (
        "Full resolution through half-size JPEG (`lowres2`)",
        ["-m", "lowres2-jpeg", "-b", "lowres2-bicubic", "-b", "jpeg-420",
         "-a", "lowres2-bicubic", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "Full resolution through quarter-size JPEG (`lowres4`)",
        ["-m", "lowres4-jpeg", "-b", "lowres4-bicubic", "-b", "jpeg-420",
         "-a", "lowres4-bicubic", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "The JPEG-trained `rgb-jpeg` over other codecs, without retraining",
        ["-m", "rgb-jpeg@avif", "-m", "rgb-jpeg@webp", "-m", "rgb-jpeg@heic",
         "-b", "avif", "-b", "webp", "-b", "heic", "-a", "avif", "-a", "webp", "-a", "heic",
         "--metrics", "ms_ssim"],
        None,
    ),
    (
        "16-bit images through 8-bit JPEG (`hdr16`)",
        ["-m", "hdr16-jpeg", "-b", "hdr-8bit", "-b", "hdr-jpeg12", "-a", "hdr-8bit",
         "--metrics", "psnr"],
        CORPUS16,
    ),
    (
        "16-bit images through 8-bit 4:4:4 JPEG at high qualities (`hdr16-444`)",
        ["-m", "hdr16-444-jpeg", "-b", "hdr-8bit-444", "-b", "hdr-jpeg12-444",
         "-a", "hdr-8bit-444", "--metrics", "psnr", "--qualities", "90,95,98,100"],
        CORPUS16,
    ),
    (
        "Albedo + normals, 6 channels through one JPEG (`material6`)",
        ["-m", "material6-jpeg", "-b", "material-jpeg", "--metrics", "psnr"],
        ("data/material/val", "sandwich data --kind material"),
    ),
    (
        "One model for every quality against models trained for one (`rgb`)",
        ["-m", "rgb-jpeg", "-m", "checkpoints/rgb-jpeg-all/model.safetensors",
         "-m", "checkpoints/rgb-jpeg-q30/model.safetensors",
         "-m", "checkpoints/rgb-jpeg-q70/model.safetensors",
         "-b", "jpeg-420", "-a", "checkpoints/rgb-jpeg-all/model.safetensors", "-a", "jpeg-420",
         "--metrics", "psnr"],
        None,
    ),
    (
        "Progressive recurrent codec (`rnn`)",
        ["-m", "rnn", "-b", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
]  # fmt: skip


def _models(args: list[str]) -> list[str]:
    return [split_model_spec(args[i + 1])[0] for i, a in enumerate(args) if a == "-m"]


def _has_weights(name: str) -> bool:
    """A zoo model with its weights installed, or a run's weights file (with its sidecar)."""
    from sandwich.zoo import available, get_entry

    try:
        return available(get_entry(name))
    except SandwichError:
        return False


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
            for k, (title, args, own) in enumerate(RECIPES):
                missing = [m for m in _models(args) if not _has_weights(m)]
                if missing:
                    skipped.append(f"{title}: no weights for {', '.join(missing)}")
                    continue
                images = data if own is None else Path(own[0])
                if not images.is_dir():
                    skipped.append(f"{title}: no {images} (build it with `{own[1]}`)")
                    continue
                md = Path(tmp) / f"{k}.md"
                argv = ["eval", str(images), *args, "--markdown", str(md)]
                typer.echo(f"[{k + 1}/{len(RECIPES)}] sandwich {shlex.join(argv[:-2])}")
                code = main(argv)
                if code != 0:
                    raise SandwichError(f"recipe {title!r} failed (exit {code})")
                parts += [f"\n## {title}\n", f"`sandwich {shlex.join(argv[:-2])}`\n"]
                if own is not None:
                    from sandwich.io import list_arrays

                    found = list_arrays(images) or expand_images([images])
                    names = ", ".join(f"`{f.name}`" for f in found)
                    parts.append(f"Images: {names}, in `{images}` (made by `{own[1]}`).\n")
                parts.append(md.read_text())
        if skipped:
            parts += ["\n## Not evaluated\n", *[f"- {s}\n" for s in skipped]]
        atomic_write_bytes(out, "\n".join(parts).encode(), force=True)
        typer.echo(f"wrote {out}")
