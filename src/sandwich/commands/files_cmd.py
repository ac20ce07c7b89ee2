"""``sandwich compress`` / ``sandwich decompress`` / ``sandwich models``: the zoo on real files.

Thin wrappers around :mod:`sandwich.api`."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError

MAX_PIXELS_HELP = "largest image (pixels per image) to accept from any file; default 100000000"
TILE_HELP = (
    "run the networks on tiles of this many pixels a side (memory bounded by the tile; same "
    "output for sandwiches, independent tiles in the file for rnn); 0 = whole image; default: "
    "automatic (tiles above 1 MP)"
)


def _limit(max_pixels: int | None) -> None:
    if max_pixels is not None:
        from sandwich.media.limits import set_max_pixels

        set_max_pixels(max_pixels)


def _echo(done) -> None:
    if done.warning:
        typer.echo(f"warning: {done.warning}", err=True)
    typer.echo(done.message())


def _error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        inp: Path = typer.Argument(
            ..., metavar="IN", help="image file or folder; video models: a video or frames folder"
        ),
        out: str = typer.Option(..., "-o", "--output", help="output file, or folder (or DIR/)"),
        model: str = typer.Option(None, "--model", "-m", help="zoo model (default: gray-jpeg)"),
        quality: int = typer.Option(
            None, "--quality", "-q", help="codec quality of sandwich models (JPEG: 1..100)"
        ),
        iterations: int = typer.Option(
            None, "--iterations", "-k", help="progressive models: iterations to keep"
        ),
        crf: float = typer.Option(
            None, "--crf", help="video models: the x264 / x265 CRF (0..51, lower is better)"
        ),
        target_bpp: float = typer.Option(None, help="pick the knob for this many bits/pixel"),
        prediction: str = typer.Option(
            None,
            help="progressive video models: what P frames are predicted from: none, previous, "
            "motion (sent block vectors; default) or extrapolate (decoder-side motion)",
        ),
        gop: int = typer.Option(
            None, help="progressive video models: frames per GOP (intra period; default 32)"
        ),
        target_psnr: float = typer.Option(
            None,
            help="progressive video models: per frame, the fewest iterations reaching "
            "this PSNR (dB), at most --iterations",
        ),
        target_msssim: float = typer.Option(
            None, help="progressive video models: as --target-psnr, for this MS-SSIM (0..1)"
        ),
        force: bool = typer.Option(False, help="overwrite existing outputs"),
        max_pixels: int = typer.Option(None, help=MAX_PIXELS_HELP),
        tile: int = typer.Option(None, help=TILE_HELP),
    ) -> None:
        """Compress to a standard file (the bottleneck: JPEG) with a marker naming the model.

        Progressive models (``rnn``) write a .sndr file instead, cut after --iterations. Video
        models (``gray-hevc``) take a video file or a folder of numbered PNG frames and write an
        MP4 (H.264 or HEVC) at --crf; progressive video models (``rnn-video``) write a .sndv
        GOP file (--prediction, --gop, --iterations or a per-frame --target-psnr/-msssim).
        16-bit models (``hdr16-jpeg``) also take 16-bit PNGs. Multichannel models (``material6``
        weights) take (H, W, N) uint8 .npy arrays and write their planes stacked in one JPEG.
        """
        from sandwich import api
        from sandwich.zoo import DEFAULT_MODEL, load_model

        _limit(max_pixels)
        name = model or DEFAULT_MODEL
        given = {"quality": quality, "iterations": iterations, "crf": crf}
        net = load_model(name)  # unknown models fail here, before any work
        knob = net.knob.name
        for flag, v in given.items():
            if v is not None and flag != knob:
                raise SandwichError(
                    f"--{flag} is not a setting of {name}: give --{knob} or --target-bpp"
                )
        value = given.get(knob)
        if value is not None and target_bpp is not None:
            raise SandwichError(f"give --{knob} or --target-bpp, not both")
        settings = {
            "prediction": prediction,
            "gop": gop,
            "target_psnr": target_psnr,
            "target_msssim": target_msssim,
        }
        api.compress(
            inp,
            out,
            net,
            value,
            target_bpp,
            force,
            report=_echo,
            on_error=_error,
            tile=tile,
            settings=settings,
        )

    @app.command()
    def decompress(
        inp: Path = typer.Argument(
            ..., metavar="IN", help="sandwich .jpg, .sndr, .mp4, .sndv or a folder of them"
        ),
        out: str = typer.Option(
            ...,
            "-o",
            "--output",
            help="output .png, or folder (or DIR/); a clip: a frames folder, .mp4 or .mkv",
        ),
        model: str = typer.Option(None, "--model", "-m", help="model for JPEGs without marker"),
        ensemble: int = typer.Option(
            1,
            help="average this many post-processor passes over flips and transposes (2, 4 or "
            "8): better quality for as many times the decoding arithmetic; 1 = a single pass",
        ),
        any_version: bool = typer.Option(
            False,
            "--any-version",
            help="decode files made by another version of the model with this install's "
            "version (a warning; the post-processor was trained for its own pre-processor, so "
            "quality may drop)",
        ),
        force: bool = typer.Option(False, help="overwrite existing outputs"),
        max_pixels: int = typer.Option(None, help=MAX_PIXELS_HELP),
        tile: int = typer.Option(None, help=TILE_HELP),
    ) -> None:
        """Decode a sandwich file (model from its marker) to PNG; plain JPEGs decode as JPEG.

        16-bit models (``hdr16-jpeg``) write 16-bit PNGs; multichannel models write (H, W, N)
        uint8 .npy arrays (an output ending in .npy; in a folder, NAME.npy). Video models' MP4s
        decode to a folder of PNG frames (000.png, ...), a lossless .mkv, or an .mp4 viewing
        copy (H.264 at CRF 12: close, not exact)."""
        from sandwich import api

        _limit(max_pixels)
        api.decompress(
            inp,
            out,
            model,
            ensemble,
            any_version,
            force,
            report=_echo,
            on_error=_error,
            tile=tile,
        )

    @app.command()
    def models() -> None:
        """List the zoo: scenario, codec, weight size, params and MACs per pixel."""
        from rich.table import Table

        from sandwich.evaluation.complexity import complexity
        from sandwich.zoo import ZOO, available, load_model, weights_dir

        table = Table(title="sandwich model zoo")
        for col in ("name", "scenario", "codec", "weights", "params", "MACs/pixel", "about"):
            table.add_column(col)
        for e in ZOO.values():
            if not available(e):
                table.add_row(e.name, e.scenario, "", "missing", "", "", e.description)
                continue
            net = load_model(e.name)
            cx = complexity(net)
            size = (
                "none"
                if e.weights is None
                else f"{(weights_dir() / e.weights).stat().st_size / 1e3:.0f} kB"
            )
            table.add_row(
                e.name,
                e.scenario,
                net.describe(),
                size,
                f"{cx['params']:,}",
                f"{cx['macs_per_pixel'] / 1e3:.1f}K",
                e.description,
            )
        from sandwich.commands.common import console

        console().print(table)
