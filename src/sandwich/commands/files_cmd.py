"""``sandwich compress`` / ``sandwich decompress`` / ``sandwich models``: the zoo on real files."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError

DEFAULT_QUALITY = 75
PROGRESSIVE_SUFFIX = ".sndr"


def _pairs(inp: Path, out: Path, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: a file to a file, or a folder to a folder (created if needed)."""
    from sandwich.commands.common import expand_images

    if inp.is_dir():
        if out.exists() and not out.is_dir():
            raise SandwichError(f"{out}: input is a folder, so the output must be a folder too")
        files = expand_images([inp])
        out.mkdir(parents=True, exist_ok=True)
        return [(f, out / (f.stem + suffix)) for f in files]
    if not inp.exists():
        raise SandwichError(f"{inp}: no such file")
    if out.is_dir():
        return [(inp, out / (inp.stem + suffix))]
    return [(inp, out)]


def _array_pairs(inp: Path, out: Path, suffix: str) -> list[tuple[Path, Path]]:
    """:func:`_pairs` for N-channel models: a folder input yields its ``.npy`` arrays."""
    from sandwich.io import list_arrays

    if not inp.is_dir():
        return _pairs(inp, out, suffix)
    if out.exists() and not out.is_dir():
        raise SandwichError(f"{out}: input is a folder, so the output must be a folder too")
    files = list_arrays(inp)
    if not files:
        raise SandwichError(f"{inp}: no .npy arrays in this folder")
    out.mkdir(parents=True, exist_ok=True)
    return [(f, out / (f.stem + suffix)) for f in files]


def search_quality(encode, pixels: int, target_bpp: float) -> tuple[int, bytes]:
    """Highest quality whose whole file is at most ``target_bpp`` (bisection on the real codec)."""
    lo, hi = 1, 100
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = encode(mid)
        if 8 * len(data) / pixels <= target_bpp:
            best = (mid, data)
            lo = mid + 1
        else:
            hi = mid - 1
    if best is None:
        data = encode(1)
        raise SandwichError(
            f"--target-bpp {target_bpp} is below the smallest file this model makes "
            f"({8 * len(data) / pixels:.3f} bpp at quality 1)"
        )
    return best


def _run_each(pairs, fn) -> None:
    failed = 0
    for src, dst in pairs:
        try:
            fn(src, dst)
        except SandwichError as e:
            if len(pairs) == 1:
                raise
            typer.echo(f"error: {e}", err=True)
            failed += 1
    if failed:
        raise SandwichError(f"{failed} of {len(pairs)} file(s) failed")


def _compress_progressive(inp, out, name, quality, iterations, target_bpp, force) -> None:
    """``compress`` with a progressive model: encode all iterations once, keep the first k."""
    from sandwich.bitstream import truncate
    from sandwich.io import atomic_write_bytes, check_writable, load_rgb
    from sandwich.zoo import load_model

    if quality is not None:
        raise SandwichError(f"{name} is progressive: give --iterations or --target-bpp")
    if iterations is not None and target_bpp is not None:
        raise SandwichError("give --iterations or --target-bpp, not both")
    net = load_model(name)
    top = net.cfg.max_iterations
    if iterations is not None and not 1 <= iterations <= top:
        raise SandwichError(f"--iterations {iterations}: {name} takes 1..{top}")
    pairs = _pairs(inp, out, PROGRESSIVE_SUFFIX)

    def one(src: Path, dst: Path) -> None:
        check_writable(dst, force)
        img = load_rgb(src)
        pixels = img.shape[0] * img.shape[1]
        full = net.compress(img, iterations or top)
        k = iterations or top
        data = full if iterations is not None else truncate(full, k)
        if target_bpp is not None:
            fits = [
                j for j in range(1, top + 1) if 8 * len(truncate(full, j)) / pixels <= target_bpp
            ]
            if not fits:
                smallest = 8 * len(truncate(full, 1)) / pixels
                raise SandwichError(
                    f"--target-bpp {target_bpp} is below the smallest file this model makes "
                    f"({smallest:.3f} bpp at 1 iteration)"
                )
            k = fits[-1]
            data = truncate(full, k)
        atomic_write_bytes(dst, data, force)
        typer.echo(f"{src} -> {dst}: {name} {k} iterations, {8 * len(data) / pixels:.4f} bpp")

    _run_each(pairs, one)


def _decompress_progressive(src: Path, dst: Path, data: bytes, cache: dict, force: bool) -> None:
    from sandwich.bitstream import unpack
    from sandwich.io import save_png
    from sandwich.zoo import load_model

    try:
        header = unpack(data)[0]
        if header.model not in cache:
            cache[header.model] = load_model(header.model)
        images, info = cache[header.model].decode_file(data)
    except SandwichError as e:
        raise SandwichError(f"{src}: {e}") from None
    save_png(dst, images[-1], force)
    note = ", file was cut short: decoded the complete iterations" if info.truncated else ""
    typer.echo(f"{src} -> {dst}: {info.model}, {info.iterations} iterations{note}")


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        inp: Path = typer.Argument(..., metavar="IN", help="image file or folder"),
        out: Path = typer.Option(..., "-o", "--output", help="output .jpg or folder"),
        model: str = typer.Option(None, "--model", "-m", help="zoo model (default: gray-jpeg)"),
        quality: int = typer.Option(None, "--quality", "-q", help="JPEG quality 1..100"),
        iterations: int = typer.Option(
            None, "--iterations", "-k", help="progressive models: iterations to keep"
        ),
        target_bpp: float = typer.Option(None, help="pick the quality for this many bits/pixel"),
        force: bool = typer.Option(False, help="overwrite existing outputs"),
    ) -> None:
        """Compress to a standard JPEG (bottleneck) with a marker naming the model.

        Progressive models (``rnn``) write a .sndr file instead, cut after --iterations.
        16-bit models (``hdr16-jpeg``) also take 16-bit PNGs. Multichannel models (``material6``
        weights) take (H, W, N) uint8 .npy arrays and write their planes stacked in one JPEG.
        """
        from sandwich.io import (
            ARRAY_SUFFIX,
            atomic_write_bytes,
            check_writable,
            load_array,
            load_rgb,
            load_rgb16,
        )
        from sandwich.zoo import DEFAULT_MODEL, get_entry, load_model

        if target_bpp is not None and target_bpp <= 0:
            raise SandwichError(f"--target-bpp {target_bpp}: must be positive")
        name = model or DEFAULT_MODEL
        if get_entry(name).kind == "progressive":
            _compress_progressive(inp, out, name, quality, iterations, target_bpp, force)
            return
        if iterations is not None:
            raise SandwichError(f"--iterations is for progressive models; {name} takes --quality")
        if quality is not None and target_bpp is not None:
            raise SandwichError("give --quality or --target-bpp, not both")
        if quality is not None and not 1 <= quality <= 100:
            raise SandwichError(f"--quality {quality}: use 1..100")
        net = load_model(name)
        multi = net.scenario.multichannel
        pairs = _array_pairs(inp, out, ".jpg") if multi else _pairs(inp, out, ".jpg")

        def one(src: Path, dst: Path) -> None:
            check_writable(dst, force)
            if multi:
                img = load_array(src, net.scenario.channels, f"model {net.name!r}")
            elif src.suffix.lower() == ARRAY_SUFFIX:
                raise SandwichError(
                    f"{src}: is a .npy array; model {net.name!r} takes RGB image files "
                    "(PNG, JPEG, ...)"
                )
            else:
                # 16-bit models take 16-bit images (8-bit ones scaled by 257); others 8-bit only
                img = load_rgb16(src) if net.scenario.bit_depth > 8 else load_rgb(src)
            pixels = img.shape[0] * img.shape[1]
            if target_bpp is not None:
                q, data = search_quality(lambda qq: net.compress(img, qq), pixels, target_bpp)
            else:
                q = quality or DEFAULT_QUALITY
                data = net.compress(img, q)
            atomic_write_bytes(dst, data, force)
            typer.echo(f"{src} -> {dst}: {net.name} q={q}, {8 * len(data) / pixels:.4f} bpp")

        _run_each(pairs, one)

    @app.command()
    def decompress(
        inp: Path = typer.Argument(..., metavar="IN", help="sandwich .jpg or folder"),
        out: Path = typer.Option(..., "-o", "--output", help="output .png or folder"),
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
    ) -> None:
        """Decode a sandwich JPEG (model from its marker) to PNG; plain JPEGs decode as JPEG.

        16-bit models (``hdr16-jpeg``) write 16-bit PNGs; multichannel models write (H, W, N)
        uint8 .npy arrays (an output ending in .npy; in a folder, NAME.npy)."""
        from sandwich.bitstream import is_rnn_file
        from sandwich.container import read_marker
        from sandwich.io import ARRAY_SUFFIX, check_writable, save_npy, save_png
        from sandwich.nets.ensemble import check_ensemble
        from sandwich.zoo import load_model

        try:
            check_ensemble(ensemble)
        except ValueError as e:
            raise SandwichError(f"--ensemble: {e}") from None
        if inp.is_dir():
            suffixes = (".jpg", ".jpeg", PROGRESSIVE_SUFFIX)
            files = sorted(f for f in inp.iterdir() if f.suffix.lower() in suffixes)
            if not files:
                raise SandwichError(f"{inp}: no .jpg or {PROGRESSIVE_SUFFIX} files in this folder")
            out.mkdir(parents=True, exist_ok=True)
            pairs = [(f, out / (f.stem + ".png")) for f in files]
        else:
            pairs = _pairs(inp, out, ".png")
        cache: dict[str, object] = {}

        def one(src: Path, dst: Path) -> None:
            check_writable(dst, force)
            if not src.is_file():
                raise SandwichError(f"{src}: no such file")
            data = src.read_bytes()
            if is_rnn_file(data):
                _decompress_progressive(src, dst, data, cache, force)
                return
            try:
                info = read_marker(data)
            except SandwichError as e:
                raise SandwichError(f"{src}: {e}") from None
            name = info.model if info is not None else model
            if name is None:
                from sandwich.codecs.jpeg import JpegCodec

                try:
                    img = JpegCodec("4:2:0").decode(data)
                except (OSError, SyntaxError, ValueError) as e:
                    raise SandwichError(f"{src}: cannot decode the JPEG ({e})") from None
                save_png(dst, img, force)
                typer.echo(f"{src} -> {dst}: plain JPEG (no sandwich marker)")
                return
            if name not in cache:
                cache[name] = load_model(name)
                cache[name].ensemble = ensemble
            net = cache[name]
            if info is not None and info.model_version != net.version:
                made = f"{src}: made by {name} version {info.model_version}, this install has "
                if not any_version:
                    raise SandwichError(
                        made + f"version {net.version}; decode with it anyway by --any-version"
                    )
                typer.echo(f"warning: {made}version {net.version}; decoding with it", err=True)
            if net.scenario.multichannel and dst.suffix.lower() != ARRAY_SUFFIX:
                if not inp.is_dir():
                    raise SandwichError(
                        f"{dst}: model {name} returns {net.scenario.channels}-channel images; "
                        "give an output ending in .npy"
                    )
                dst = dst.with_suffix(ARRAY_SUFFIX)
                check_writable(dst, force)
            try:
                img = net.decompress(data)
            except SandwichError as e:
                raise SandwichError(f"{src}: {e}") from None
            (save_npy if dst.suffix.lower() == ARRAY_SUFFIX else save_png)(dst, img, force)
            typer.echo(f"{src} -> {dst}: {name}")

        _run_each(pairs, one)

    @app.command()
    def models() -> None:
        """List the zoo: scenario, codec, weight size, params and MACs per pixel."""
        from rich.table import Table

        from sandwich.evaluation.complexity import progressive_complexity, sandwich_complexity
        from sandwich.zoo import ZOO, available, load_model, weights_dir

        table = Table(title="sandwich model zoo")
        for col in ("name", "scenario", "codec", "weights", "params", "MACs/pixel", "about"):
            table.add_column(col)
        for e in ZOO.values():
            if not available(e):
                table.add_row(e.name, e.scenario, e.codec, "missing", "", "", e.description)
                continue
            net = load_model(e.name)
            cx = (
                progressive_complexity(net)
                if e.kind == "progressive"
                else sandwich_complexity(net, size=64)
            )
            size = (
                "none"
                if e.weights is None
                else f"{(weights_dir() / e.weights).stat().st_size / 1e3:.0f} kB"
            )
            table.add_row(
                e.name,
                e.scenario,
                e.codec,
                size,
                f"{cx['params']:,}",
                f"{cx['macs_per_pixel'] / 1e3:.1f}K",
                e.description,
            )
        from sandwich.commands.common import console

        console().print(table)
