"""``sandwich results-video``: re-create docs/results-video.md, every video zoo model against
its baselines on the validation clips, one ``sandwich eval-video`` per recipe below.

The page starts with the clips used and every section with its exact command, so every figure
can be rerun; recipes whose models have no weights in this install are listed as not evaluated.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import typer

from sandwich.errors import SandwichError

# (key, title, eval-video arguments): models (-m), baselines (-b), anchors (--anchor), metrics
VIDEO_RECIPES: list[tuple[str, str, list[str]]] = [
    (
        "gray",
        "Colour through a grayscale HEVC stream (`gray-hevc`)",
        ["-m", "gray-hevc", "-b", "x265-gray", "-b", "x265-420",
         "--anchor", "x265-gray", "--anchor", "x265-420", "--metrics", "psnr,ms_ssim"],
    ),
    (
        "gray-h264",
        "The same networks over H.264 (`gray-hevc@x264`)",
        ["-m", "gray-hevc@x264", "-b", "x264-gray", "-b", "x264-420",
         "--anchor", "x264-gray", "--anchor", "x264-420", "--metrics", "psnr"],
    ),
    (
        "lowres2",
        "Full resolution through a half-size HEVC stream (`lowres2-hevc`)",
        ["-m", "lowres2-hevc", "-b", "x265-lowres2", "-b", "x265-lowres2-paper",
         "--anchor", "x265-lowres2", "--anchor", "x265-lowres2-paper", "--metrics", "psnr"],
    ),
    (
        "lpips",
        "RGB through 4:2:0 HEVC for LPIPS (`lpips-hevc`)",
        ["-m", "lpips-hevc", "-b", "x265-420", "--metrics", "psnr,lpips"],
    ),
]  # fmt: skip


def _why_not(args: list[str]) -> str | None:
    from sandwich.commands.results_cmd import _has_weights, _models

    missing = [m for m in _models(args) if not _has_weights(m)]
    return f"no weights for {', '.join(missing)}" if missing else None


def _request(clips: Path, args: list[str], md: Path):
    from sandwich.evaluation.clip_eval import ClipEvalRequest

    req = ClipEvalRequest([clips], markdown=md)
    lists = {"-m": req.models, "-b": req.baselines, "--anchor": req.anchors}
    for opt, value in zip(args[::2], args[1::2], strict=True):
        if opt in lists:
            lists[opt].append(value)
        else:
            setattr(req, {"--metrics": "metrics", "--crfs": "crfs"}[opt], value)
    return req


def _run(k: int, title: str, args: list[str], clips: Path, md: Path) -> str:
    from tqdm import tqdm

    from sandwich.evaluation.clip_eval import evaluate_clips

    argv = ["eval-video", str(clips), *args]
    typer.echo(f"[{k + 1}/{len(VIDEO_RECIPES)}] sandwich {shlex.join(argv)}")
    bars: list = []
    try:
        evaluate_clips(
            _request(clips, args, md), lambda n: bars.append(tqdm(total=n)) or bars[0].update
        )
    except SandwichError as e:
        raise SandwichError(f"recipe {title!r} failed: {e}") from None
    finally:
        for bar in bars:
            bar.close()
    return f"`sandwich {shlex.join(argv)}`\n\n" + md.read_text().strip("\n")


def register(app: typer.Typer) -> None:
    @app.command("results-video")
    def results_video(
        clips: Path = typer.Argument(Path("data/video/val"), help="validation clips"),
        out: Path = typer.Option(Path("docs/results-video.md"), "-o", "--output"),
        only: list[str] = typer.Option(
            None, help=f"run only these sections: {', '.join(r[0] for r in VIDEO_RECIPES)}"
        ),
    ) -> None:
        """Run every video recipe of `sandwich eval-video` and write the Markdown page (models
        without weights are listed as not evaluated)."""
        from sandwich.evaluation.clip_eval import find_clips
        from sandwich.media.files import atomic_write_bytes

        keys = [r[0] for r in VIDEO_RECIPES]
        bad = [k for k in only or [] if k not in keys]
        if bad:
            raise SandwichError(f"--only {bad[0]!r}: no such section; use one of {', '.join(keys)}")
        found = find_clips([clips])
        names = ", ".join(f"`{c[0]}`" for c in found)
        parts = [
            "# Video results\n",
            f"Made by `sandwich results-video {shlex.quote(str(clips))}`: real x264/x265, whole "
            "MP4 files (container and headers included), on these clips, which no model was "
            f"trained, calibrated or tuned on: {names}.",
        ]
        skipped = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, (key, title, args) in enumerate(VIDEO_RECIPES):
                if only and key not in only:
                    continue
                reason = _why_not(args)
                if reason:
                    skipped.append(f"- {title}: {reason}")
                    continue
                text = _run(k, title, args, clips, Path(tmp) / f"{k}.md")
                parts.append(f"\n## {title}\n\n{text}")
        if skipped:
            parts.append("\n## Not evaluated\n\n" + "\n".join(skipped))
        atomic_write_bytes(out, ("\n".join(parts) + "\n").encode(), force=True)
        typer.echo(f"wrote {out}")
