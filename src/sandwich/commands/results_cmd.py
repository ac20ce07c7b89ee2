"""``sandwich results``: re-create docs/results.md, every zoo model against its baselines.

One ``sandwich eval`` per recipe below, on the same images, each writing its Markdown section;
the page starts with the images used and the exact commands, so every figure can be rerun.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

import typer

from sandwich.errors import SandwichError
from sandwich.evaluation.specs import split_model_spec

# (key, title, eval arguments, images): the key names the section for `--only`; eval arguments:
# models (-m), baselines (-b), anchors (-a), metrics; images is None for the page's validation
# folder, or the folder this scenario's own data is in (16-bit or multichannel copies of the same
# validation photos, made by `sandwich data`), with how to build it
CORPUS16 = ("data/corpus16/val", "sandwich data --bit-depth 16")
RECIPES: list[tuple[str, str, list[str], tuple[str, str] | None]] = [
    (
        "gray",
        "Colour through grayscale JPEG (`gray`)",
        ["-m", "gray-jpeg", "-m", "gray-modem", "-b", "jpeg-gray", "-b", "jpeg-420",
         "-a", "jpeg-gray", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "rgb",
        "RGB through 4:2:0 JPEG (`rgb`)",
        ["-m", "rgb-jpeg", "-m", "rgb-jpeg+x8", "-b", "jpeg-420", "--metrics", "psnr_y,ms_ssim"],
        None,
    ),
    (
        "perceptual",
        "RGB through 4:2:0 JPEG for MS-SSIM and for LPIPS (`msssim`, `lpips`)",
        ["-m", "msssim-jpeg", "-m", "msssim-jpeg+x8", "-m", "lpips-jpeg", "-m", "rgb-jpeg",
         "-b", "jpeg-420", "--metrics", "ms_ssim,lpips"],
        None,
    ),
    (
        "lowres2",
        "Full resolution through half-size JPEG (`lowres2`)",
        ["-m", "lowres2-jpeg", "-b", "lowres2-bicubic", "-b", "jpeg-420",
         "-a", "lowres2-bicubic", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "lowres4",
        "Full resolution through quarter-size JPEG (`lowres4`)",
        ["-m", "lowres4-jpeg", "-b", "lowres4-bicubic", "-b", "jpeg-420",
         "-a", "lowres4-bicubic", "-a", "jpeg-420", "--metrics", "ms_ssim"],
        None,
    ),
    (
        "other-codecs",
        "The JPEG-trained `rgb-jpeg` over other codecs, without retraining",
        ["-m", "rgb-jpeg@avif", "-m", "rgb-jpeg@webp", "-m", "rgb-jpeg@heic",
         "-b", "avif", "-b", "webp", "-b", "heic", "-a", "avif", "-a", "webp", "-a", "heic",
         "--metrics", "ms_ssim"],
        None,
    ),
    (
        "hdr16",
        "16-bit images through 8-bit JPEG (`hdr16`)",
        ["-m", "hdr16-jpeg", "-b", "hdr-8bit", "-b", "hdr-jpeg12", "-a", "hdr-8bit",
         "--metrics", "psnr"],
        CORPUS16,
    ),
    (
        "hdr16-444",
        "16-bit images through 8-bit 4:4:4 JPEG at high qualities (`hdr16-444`)",
        ["-m", "hdr16-444-jpeg", "-b", "hdr-8bit-444", "-b", "hdr-jpeg12-444",
         "-a", "hdr-8bit-444", "--metrics", "psnr", "--qualities", "90,95,98,100"],
        CORPUS16,
    ),
    (
        "material6",
        "Albedo + normals, 6 channels through one JPEG (`material6`)",
        ["-m", "material6-jpeg", "-b", "material-jpeg", "--metrics", "psnr"],
        ("data/material/val", "sandwich data --kind material"),
    ),
    (
        "rate-adaptive",
        "One model for every quality against models trained for one (`rgb`)",
        ["-m", "rgb-jpeg", "-m", "checkpoints/rgb-jpeg-all/model.safetensors",
         "-m", "checkpoints/rgb-jpeg-q30/model.safetensors",
         "-m", "checkpoints/rgb-jpeg-q70/model.safetensors",
         "-b", "jpeg-420", "-a", "checkpoints/rgb-jpeg-all/model.safetensors", "-a", "jpeg-420",
         "--metrics", "psnr"],
        None,
    ),
    (
        "rnn",
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


NOT_EVALUATED = "Not evaluated"


def split_page(page: str) -> tuple[str, dict[str, str]]:
    """A results page -> (its header, {section title: section text}) in page order; the texts
    without the title line and without the blank lines around them."""
    chunks = re.split(r"(?m)^## ", page)
    sections = {}
    for chunk in chunks[1:]:
        title, _, body = chunk.partition("\n")
        sections[title] = body.strip("\n")
    return chunks[0].strip("\n"), sections


def join_page(head: str, sections: dict[str, str]) -> str:
    """Inverse of :func:`split_page`."""
    return head + "\n" + "".join(f"\n## {t}\n\n{body}\n" for t, body in sections.items())


def _why_not(args: list[str], own: tuple[str, str] | None, images: Path) -> str | None:
    """Why a recipe cannot run here (missing weights or images), or None."""
    missing = [m for m in _models(args) if not _has_weights(m)]
    if missing:
        return f"no weights for {', '.join(missing)}"
    if not images.is_dir():
        return f"no {images} (build it with `{own[1]}`)"
    return None


def _request(images: Path, args: list[str], md: Path):
    """The evaluation a recipe's ``sandwich eval`` arguments ask for, writing Markdown to ``md``."""
    from sandwich.evaluation.run import EvalRequest

    req = EvalRequest([images], markdown=md)
    lists = {"-m": req.models, "-b": req.baselines, "-a": req.anchors}
    for opt, value in zip(args[::2], args[1::2], strict=True):
        if opt in lists:
            lists[opt].append(value)
        else:
            setattr(req, {"--metrics": "metrics", "--qualities": "qualities"}[opt], value)
    return req


def _run_recipe(
    k: int, title: str, args: list[str], own: tuple[str, str] | None, images: Path, md: Path
) -> str:
    """Run recipe number ``k`` (the library's ``sandwich eval``) and return its section's text."""
    from tqdm import tqdm

    from sandwich.commands.common import expand_images
    from sandwich.evaluation.run import evaluate

    argv = ["eval", str(images), *args, "--markdown", str(md)]
    typer.echo(f"[{k + 1}/{len(RECIPES)}] sandwich {shlex.join(argv[:-2])}")
    bars = []
    try:
        evaluate(_request(images, args, md), lambda n: bars.append(tqdm(total=n)) or bars[0].update)
    except SandwichError as e:
        raise SandwichError(f"recipe {title!r} failed: {e}") from None
    finally:
        for bar in bars:
            bar.close()
    body = [f"`sandwich {shlex.join(argv[:-2])}`\n"]
    if own is not None:
        from sandwich.media.files import list_arrays

        found = list_arrays(images) or expand_images([images])
        names = ", ".join(f"`{f.name}`" for f in found)
        body.append(f"Images: {names}, in `{images}` (made by `{own[1]}`).\n")
    body.append(md.read_text())
    return "\n".join(body).strip("\n")


def register(app: typer.Typer) -> None:
    @app.command()
    def results(
        data: Path = typer.Argument(Path("data/corpus/val"), help="validation images"),
        out: Path = typer.Option(Path("docs/results.md"), "-o", "--output"),
        only: list[str] = typer.Option(
            None,
            help="rerun only this section (repeat for several) and keep the others as OUT has "
            f"them: {', '.join(r[0] for r in RECIPES)}",
        ),
    ) -> None:
        """Run every recipe of `sandwich eval` and write the Markdown page (models with missing
        weights are skipped and listed)."""
        from sandwich.commands.common import expand_images
        from sandwich.media.files import atomic_write_bytes

        keys = [r[0] for r in RECIPES]
        unknown = [k for k in only or [] if k not in keys]
        if unknown:
            raise SandwichError(
                f"--only {unknown[0]!r}: no such section; use one of {', '.join(keys)}"
            )
        files = expand_images([data])
        head = "\n".join(
            [
                "# Results\n",
                "Made by `sandwich results "
                f"{shlex.quote(str(data))}`: real codecs, whole files (markers and headers "
                "included), on these images, which no model was trained, calibrated or tuned on:\n",
                ", ".join(f"`{f.name}`" for f in files) + ".",
            ]
        )
        old: dict[str, str] = {}
        if only:
            if not out.is_file():
                raise SandwichError(
                    f"--only updates {out}, which does not exist: make the whole page first"
                )
            old_head, old = split_page(out.read_text())
            if old_head != head:
                raise SandwichError(
                    f"{out} was made from other images than {data}: rerun the whole page"
                )
        sections: dict[str, str] = {}
        skipped = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, (key, title, args, own) in enumerate(RECIPES):
                if only and key not in only:
                    if title in old:
                        sections[title] = old[title]
                    continue
                images = data if own is None else Path(own[0])
                reason = _why_not(args, own, images)
                if reason and only:
                    raise SandwichError(f"cannot rerun {title}: {reason}")
                if reason:
                    skipped.append(f"{title}: {reason}")
                    continue
                sections[title] = _run_recipe(k, title, args, own, images, Path(tmp) / f"{k}.md")
        if only:  # the sections rerun are no longer "not evaluated"
            done = {t for key, t, _, _ in RECIPES if key in only}
            lines = old.get(NOT_EVALUATED, "").splitlines()
            skipped = [
                x[2:]
                for x in lines
                if x.startswith("- ") and not any(x.startswith(f"- {t}: ") for t in done)
            ]
        if skipped:
            sections[NOT_EVALUATED] = "\n".join(f"- {x}" for x in skipped)
        atomic_write_bytes(out, join_page(head, sections).encode(), force=True)
        typer.echo(f"wrote {out}")
