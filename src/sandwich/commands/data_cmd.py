"""``sandwich data``: build the offline train/val image corpus (see :mod:`sandwich.data.corpus`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def _summary(manifest: dict, out: Path, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from sandwich.data.corpus import SPLITS

    bits = manifest.get("bit_depth", 8)
    table = Table(title=f"{bits}-bit corpus in {out} ({seconds:.1f} s)")
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("pixels", justify="right")
    table.add_column("smallest", justify="right")
    table.add_column("largest", justify="right")
    for split in SPLITS:
        if split not in manifest["totals"]:
            continue
        sizes = [tuple(e["final_size"]) for e in manifest["images"] if e["split"] == split]
        by_area = sorted(sizes, key=lambda s: (s[0] * s[1], s))
        total = manifest["totals"][split]
        table.add_row(
            split,
            str(total["count"]),
            f"{total['pixels'] / 1e6:.2f} M",
            "x".join(map(str, by_area[0])) if by_area else "-",
            "x".join(map(str, by_area[-1])) if by_area else "-",
        )
    Console().print(table)
    if not manifest["debian"]:
        Console().print("no training images: built with --no-debian (validation set only)")


DEFAULT_OUT = {8: Path("data/corpus"), 16: Path("data/corpus16")}
MATERIAL_OUT = Path("data/material")
VIDEO_OUT = Path("data/video")


def _video(out: Path | None, force: bool) -> None:
    """``sandwich data --kind video``: the clip corpus (see :mod:`sandwich.data.video`)."""
    from rich.console import Console
    from rich.table import Table

    from sandwich.data.video import SPLITS, build_video_corpus

    out = out if out is not None else VIDEO_OUT
    start = time.perf_counter()
    manifest = build_video_corpus(out, force=force)
    seconds = time.perf_counter() - start
    n = manifest["clip_frames"]
    table = Table(title=f"clips of {n} PNG frames in {out} ({seconds:.1f} s)")
    for name, right in (("split", False), ("sources", False), ("clips", True)):
        table.add_column(name, justify="right" if right else "left")
    for name in ("frames", "pixels", "frame sizes"):
        table.add_column(name, justify="right")
    for split in SPLITS:
        total = manifest["totals"][split]
        sources = [s for s in manifest["sources"] if s["split"] == split]
        sizes = sorted({tuple(s["final_size"]) for s in sources}, key=lambda s: (s[0] * s[1], s))
        table.add_row(
            split,
            ", ".join(f"{s['name']} ({s['clips']})" for s in sources) or "-",
            str(total["clips"]),
            str(total["frames"]),
            f"{total['pixels'] / 1e6:.1f} M",
            ", ".join("x".join(map(str, s)) for s in sizes) or "-",
        )
    Console().print(table)


def _material(out: Path | None, source: Path | None, force: bool, strength: float) -> None:
    """``sandwich data --kind material``: albedo + normal map arrays from the 8-bit corpus."""
    from rich.console import Console

    from sandwich.data.material import build_material

    out = out if out is not None else MATERIAL_OUT
    source = source if source is not None else DEFAULT_OUT[8]
    start = time.perf_counter()
    manifest = build_material(source, out, force=force, strength=strength)
    t = manifest["totals"]
    Console().print(
        f"material (albedo + normals, (H, W, 6) uint8 .npy) in {out} from {source} "
        f"({time.perf_counter() - start:.1f} s): train {t['train']['count']} images "
        f"({t['train']['pixels'] / 1e6:.2f} M pixels), val {t['val']['count']} "
        f"({t['val']['pixels'] / 1e6:.2f} M); normal maps alone as PNG in {out / 'normals'}"
    )


def data(
    out: Path = typer.Option(
        None,
        "--out",
        help="Output folder of the corpus (default: data/corpus, or data/corpus16 with "
        "--bit-depth 16).",
    ),
    no_debian: bool = typer.Option(
        False,
        "--no-debian",
        help="Skip the Debian packages: build only the validation images from Python wheels.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing corpus in OUT."),
    bit_depth: int = typer.Option(
        8,
        "--bit-depth",
        help="8, or 16: the same images as 16-bit PNGs downscaled in float (for hdr16).",
    ),
    kind: str = typer.Option(
        "photo",
        "--kind",
        help="photo (the RGB corpus); material: 6-channel albedo + normal map .npy arrays "
        "derived from the 8-bit corpus (default OUT: data/material), same train/val split; or "
        "video: clips of numbered PNG frames from the videos in Debian packages and a PyPI "
        "wheel (default OUT: data/video), train/dev/val split by source.",
    ),
    source: Path = typer.Option(
        None, "--from", help="--kind material: the corpus to derive from (default data/corpus)."
    ),
    strength: float = typer.Option(
        4.0, "--strength", help="--kind material: normal map strength (height gradient factor)."
    ),
) -> None:
    """Build the offline image corpus (OUT/train, OUT/val, OUT/manifest.json) from photos that
    ship inside Debian packages and Python wheels; nothing is installed. ``--kind material``
    derives 6-channel materials (albedo + normals) from it instead; ``--kind video`` builds the
    clip corpus (OUT/train, OUT/dev, OUT/val of clip folders)."""
    from sandwich.data.corpus import build_corpus
    from sandwich.errors import SandwichError

    if kind not in ("photo", "material", "video"):
        raise SandwichError(f"--kind {kind!r}: use photo, material or video")
    if kind == "video":
        if bit_depth != 8 or no_debian or source is not None:
            raise SandwichError(
                "--kind video takes only --out and --force (its clips are 8-bit and need the "
                "Debian packages)"
            )
        _video(out, force)
        return
    if kind == "material":
        if bit_depth != 8 or no_debian:
            raise SandwichError(
                "--kind material derives from the 8-bit corpus: drop --bit-depth and --no-debian"
            )
        _material(out, source, force, strength)
        return
    if source is not None:
        raise SandwichError("--from is for --kind material")

    if bit_depth not in DEFAULT_OUT:
        raise SandwichError(f"--bit-depth {bit_depth}: use 8 or 16")
    out = out if out is not None else DEFAULT_OUT[bit_depth]
    # the 16-bit corpus reuses the .deb files the 8-bit one downloaded (no second download)
    deb_cache = DEFAULT_OUT[8] if bit_depth > 8 else None
    start = time.perf_counter()
    manifest = build_corpus(
        out, debian=not no_debian, force=force, bit_depth=bit_depth, deb_cache=deb_cache
    )
    _summary(manifest, out, time.perf_counter() - start)


def register(app: typer.Typer) -> None:
    app.command("data")(data)
