"""``sandwich bench proxy``: fidelity of the JPEG proxy against the real codec;
``sandwich bench proxy-video``: the same for the video proxy against x264 / x265."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from sandwich.errors import SandwichError


def register(bench: typer.Typer) -> None:
    _register_video(bench)

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


def _register_video(bench: typer.Typer) -> None:
    @bench.command("proxy-video")
    def bench_proxy_video(
        inputs: list[Path] = typer.Argument(
            ...,
            help="video files, or photos / folders of photos set in motion (not used to "
            "calibrate: the calibration used synthetic clips of data/corpus/train)",
        ),
        crfs: str = typer.Option("18,22,26,30,34,38", help="CRFs"),
        codecs: str = typer.Option("x264,x265", help="codecs"),
        modes: str = typer.Option("gray,4:2:0", help="subsampling modes (gray, 4:2:0, 4:4:4)"),
        per_image: int = typer.Option(3, help="synthetic clips per photo"),
        frames: int = typer.Option(8, help="frames per clip"),
        size: str = typer.Option("192x320", help="synthetic clip size HxW"),
        seed: int = typer.Option(1, help="seed of the synthetic motion"),
        json_out: Path = typer.Option(None, "--json", help="write rows and summary here"),
    ) -> None:
        """Real vs proxy bits and PSNR per codec, mode, CRF and frame type, over clips."""
        from tqdm import tqdm

        from sandwich.codecs.video import SUBSAMPLINGS
        from sandwich.commands.common import console as make_console
        from sandwich.commands.common import write_json
        from sandwich.evaluation.video_proxy_fidelity import load_clips, video_fidelity_rows

        try:
            qs = tuple(int(q) for q in crfs.split(","))
            h, w = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise SandwichError("--crfs like 18,28,38 and --size like 192x320") from None
        cs = tuple(c.strip() for c in codecs.split(","))
        ms = tuple(m.strip() for m in modes.split(","))
        for c in cs:
            if c not in ("x264", "x265"):
                raise SandwichError(f"unknown codec {c!r}; use x264, x265")
        for m in ms:
            if m not in SUBSAMPLINGS:
                raise SandwichError(f"unknown mode {m!r}; use {', '.join(SUBSAMPLINGS)}")
        clips = load_clips(inputs, per_image, frames, (h, w), seed)
        if not clips:
            raise SandwichError("no clips: give video files or photos")
        with tqdm(total=len(clips) * len(qs) * len(cs) * len(ms), desc="proxy vs real") as bar:
            rows, summary = video_fidelity_rows(clips, qs, cs, ms, lambda: bar.update(1))
        console = make_console()
        _print_video_fidelity(console, rows, summary, len(clips))
        if json_out is not None:
            write_json(json_out, {"rows": rows, "summary": summary})
            console.print(f"wrote {json_out}")


def _print_video_fidelity(console, rows: list[dict], summary: list[dict], n_clips: int) -> None:
    """The per-(codec, mode, CRF, frame type) table and the per-(codec, mode) summary."""
    from sandwich.evaluation.video_proxy_fidelity import BITS_TARGET, PSNR_TARGET

    table = Table(
        title=f"video proxy vs real codec on {n_clips} clip(s) (clip: whole file; I, P: mean "
        "bits per frame of that type)"
    )
    cols = ("codec", "mode", "CRF", "type", "real bits", "proxy bits", "bits err %")
    for col in (*cols, "real PSNR", "proxy PSNR", "dPSNR dB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["codec"], r["mode"], str(r["crf"]), r["frame_type"],
            f"{r['real_bits']:.0f}", f"{r['proxy_bits']:.0f}",
            f"{100 * (r['proxy_bits'] / r['real_bits'] - 1):+.1f}",
            f"{r['real_psnr']:.2f}", f"{r['proxy_psnr']:.2f}",
            f"{r['proxy_psnr'] - r['real_psnr']:+.2f}",
        )  # fmt: skip
    console.print(table)
    summ = Table(
        title=f"targets: mean |bits error| per clip <= {100 * BITS_TARGET:.0f}%, "
        f"mean |dPSNR| per clip <= {PSNR_TARGET} dB (over clips and CRFs)"
    )
    for col in ("codec", "mode", "mean |bits err| %", "max %", "mean |dPSNR| dB", "max dB"):
        summ.add_column(col, justify="right")
    summ.add_column("meets", justify="right")
    for s in summary:
        summ.add_row(
            s["codec"], s["mode"],
            f"{100 * s['mean_abs_bits_error']:.1f}", f"{100 * s['max_abs_bits_error']:.1f}",
            f"{s['mean_abs_psnr_diff']:.2f}", f"{s['max_abs_psnr_diff']:.2f}",
            "yes" if s["meets_targets"] else "NO",
        )  # fmt: skip
    console.print(summ)
