"""``sandwich eval``: real-codec rate-distortion of zoo models against standard baselines."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from sandwich.errors import SandwichError

DEFAULT_QUALITIES = "10,20,30,40,50,60,70,80,90"


def _parse_ints(text: str, option: str) -> list[int]:
    try:
        values = [int(q) for q in text.split(",") if q.strip()]
    except ValueError:
        raise SandwichError(f"{option} {text!r}: give integers like 10,50,90") from None
    if not values:
        raise SandwichError(f"{option} {text!r}: give integers like 10,50,90")
    return values


def split_model_spec(spec: str) -> tuple[str, str, int]:
    """``NAME[@CODEC][+xN]`` -> (zoo name or weights path, other codec or "", ensemble size).

    ``+xN`` decodes with an N-pass self-ensemble (1, 2, 4 or 8; :mod:`sandwich.nets.ensemble`).
    """
    from sandwich.nets.ensemble import ENSEMBLE_SIZES, check_ensemble

    n = 1
    if "+x" in spec:
        spec, _, members = spec.rpartition("+x")
        try:
            n = check_ensemble(int(members))
        except ValueError:
            sizes = ", ".join(f"+x{k}" for k in ENSEMBLE_SIZES)
            raise SandwichError(f"{spec}+x{members}: unknown ensemble; use {sizes}") from None
    name, _, codec = spec.partition("@")
    return name, codec, n


def _command_line(data, model, baseline, qualities, anchor, metrics, out, json_out, markdown):
    argv = ["sandwich", "eval", *map(str, data)]
    for m in model:
        argv += ["-m", m]
    for b in baseline:
        argv += ["-b", b]
    for a in anchor:
        argv += ["--anchor", a]
    for opt, v in (
        ("--qualities", qualities),
        ("--metrics", metrics),
        ("--out", out),
        ("--json", json_out),
        ("--markdown", markdown),
    ):
        if v is not None:
            argv += [opt, str(v)]
    return shlex.join(argv)


def expand_arrays(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their ``.npy`` arrays (N-channel images, sorted)."""
    from sandwich.commands.common import expand_images
    from sandwich.io import list_arrays

    return expand_images(
        paths,
        list_arrays,
        "no .npy arrays in this folder (N-channel pipelines take (H, W, N) uint8 .npy files; "
        "see `sandwich data --kind material`)",
    )


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate(
        data: list[Path] = typer.Argument(..., help="validation images or folders"),
        model: list[str] = typer.Option(
            [],
            "--model",
            "-m",
            help="zoo model(s) or a run's model.safetensors; NAME@CODEC runs a JPEG-trained "
            "sandwich over webp, avif, jxl or heic without retraining; NAME+x8 decodes with an "
            "8-pass self-ensemble (flips and transposes; also +x2, +x4)",
        ),
        baseline: list[str] = typer.Option(
            [], "--baseline", "-b", help="jpeg-420, jpeg-444, jpeg-gray, lowres2-bicubic, ..."
        ),
        qualities: str = typer.Option(
            None,
            help=f"qualities of the models and JPEG baselines (default {DEFAULT_QUALITIES})"
            "; other baselines with their own quality scale use it unless this is given; "
            "progressive models always sweep their iterations",
        ),
        anchor: list[str] = typer.Option(
            [],
            "--anchor",
            "-a",
            help="pipeline(s) the BD deltas are against (default: the first baseline)",
        ),
        metrics: str = typer.Option(
            None,
            help="comma list of psnr, psnr_y, ssim, ms_ssim, lpips (default: all available; "
            "psnr always)",
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="folder for results.json, RD plots and report.html"
        ),
        json_out: Path = typer.Option(None, "--json", help="write curves, BD table and rows here"),
        markdown: Path = typer.Option(None, help="write the tables as Markdown here"),
    ) -> None:
        """Sweep every pipeline through the real codecs; print mean RD curves of every metric and
        BD-rate/BD-metric against the anchor(s); optionally write an HTML report."""
        from tqdm import tqdm

        from sandwich.commands.common import console as make_console
        from sandwich.commands.common import expand_images, write_json
        from sandwich.evaluation.baselines import BASELINES, ModelPipeline
        from sandwich.evaluation.harness import (
            Entry,
            pipeline_bit_depth,
            pipeline_channels,
            pipeline_knobs,
        )
        from sandwich.evaluation.harness import evaluate as run
        from sandwich.evaluation.progressive_eval import ProgressivePipeline
        from sandwich.evaluation.quality import available_metrics, for_bit_depth, for_channels
        from sandwich.io import atomic_write_bytes, load_array, load_rgb, load_rgb16
        from sandwich.scenarios import get_scenario
        from sandwich.zoo import get_entry, load_model

        command = _command_line(
            data, model, baseline, qualities, anchor, metrics, out, json_out, markdown
        )
        explicit = qualities is not None
        qs = _parse_ints(qualities if explicit else DEFAULT_QUALITIES, "--qualities")
        model, baseline = list(dict.fromkeys(model)), list(dict.fromkeys(baseline))
        for b in baseline:
            if b not in BASELINES:
                raise SandwichError(f"unknown baseline {b!r}; use {', '.join(BASELINES)}")
        if not model and not baseline:
            raise SandwichError("give at least one --model or --baseline")
        for a in anchor:
            if a not in model and a not in baseline:
                if a not in BASELINES:
                    raise SandwichError(
                        f"--anchor {a!r} is neither a baseline nor a model of this run"
                    )
                baseline.append(a)  # a known baseline given only as anchor: evaluate it too
        names = None
        if metrics is not None:
            names = ["psnr"] + [n.strip() for n in metrics.split(",") if n.strip()]
            names = list(dict.fromkeys(names))
        chosen = available_metrics(names)
        anchors = list(dict.fromkeys(anchor)) or [baseline[0] if baseline else model[0]]
        depths = [8]
        channels: dict[str, int] = {}  # channels of each pipeline's images
        for m in model:
            e = get_entry(split_model_spec(m)[0])  # unknown names fail before any work
            channels[m] = 3
            if e.kind == "sandwich":
                depths.append(get_scenario(e.scenario).bit_depth)
                channels[m] = get_scenario(e.scenario).channels
        if out is not None and out.exists() and not out.is_dir():
            raise SandwichError(f"{out}: exists and is not a folder")
        base_pipes = {b: BASELINES[b]() for b in baseline}
        depths += [pipeline_bit_depth(pipe) for pipe in base_pipes.values()]
        channels.update({b: pipeline_channels(pipe) for b, pipe in base_pipes.items()})
        # N-channel pipelines (material-jpeg, material6 models) read (H, W, N) .npy arrays;
        # PSNR is over all N channels, the RGB metrics on channels 0..2 (quality.for_channels)
        n_ch = sorted(set(channels.values()))
        if len(n_ch) > 1:
            kinds = ", ".join(f"{p} ({c})" for p, c in channels.items())
            raise SandwichError(
                f"pipelines of different channel counts cannot share one evaluation: {kinds}"
            )
        n_ch = n_ch[0]
        # with a 16-bit pipeline, images are read as 16 bits (8-bit files scaled by 257), the
        # 8-bit pipelines get them rounded to 8 bits, and PSNR is on the 16-bit scale
        deep = max(depths) > 8
        if deep:
            chosen = for_bit_depth(chosen, 16)
        if n_ch != 3:
            if deep:
                raise SandwichError("N-channel and 16-bit pipelines cannot share one evaluation")
            chosen = for_channels(chosen, n_ch)

        files = expand_images(data) if n_ch == 3 else expand_arrays(data)
        images, image_files = {}, []
        for f in files:
            key = f.name if f.name not in images else str(f)
            if n_ch != 3:
                images[key] = load_array(f, n_ch, "this evaluation")
            else:
                images[key] = load_rgb16(f) if deep else load_rgb(f)
            h, w = images[key].shape[:2]
            image_files.append({"name": key, "path": str(f), "height": h, "width": w})

        entries = []
        for b in baseline:
            pipe = base_pipes[b]
            entries.append(Entry(pipe, "baseline", *pipeline_knobs(pipe, qs, explicit)))
        for m in model:
            zoo_name, other_codec, members = split_model_spec(m)
            net = load_model(zoo_name)
            if get_entry(zoo_name).kind == "progressive":
                if other_codec:
                    raise SandwichError(f"{m}: a progressive model has no codec to swap")
                if members > 1:
                    raise SandwichError(f"{m}: a progressive model has no post-processor")
                pipe = ProgressivePipeline(net, m)
            elif other_codec:  # e.g. gray-jpeg@avif: the JPEG-trained sandwich over AVIF
                from sandwich.evaluation.transplant import TransplantPipeline

                pipe = TransplantPipeline(net, other_codec, m)
            else:
                pipe = ModelPipeline(net, m)
            if members > 1:
                net.ensemble = members
            entries.append(Entry(pipe, "model", *pipeline_knobs(pipe, qs, explicit)))

        total = len(images) * sum(len(e.knobs) for e in entries)
        with tqdm(total=total, desc="rd sweep") as bar:
            results, panels = run(
                entries,
                images,
                chosen,
                anchors,
                qs,
                image_files=image_files,
                command=command,
                crops=out is not None,
                progress=lambda: bar.update(1),
            )
        console = make_console()
        _print_tables(console, results, chosen)
        if n_ch != 3:
            rgb = [m.label for k, m in chosen.items() if k != "psnr"]
            console.print(
                f"{n_ch}-channel images: PSNR over all {n_ch} channels"
                + (f"; {', '.join(rgb)} on channels 0-2 (the albedo)" if rgb else "")
                + "; bpp per pixel of the whole file"
            )
        if markdown is not None:
            from sandwich.evaluation.report import markdown as to_markdown

            atomic_write_bytes(markdown, to_markdown(results, chosen).encode(), force=True)
            console.print(f"wrote {markdown}")
        if json_out is not None:
            from sandwich.evaluation.report import json_safe

            write_json(json_out, json_safe(results))
            console.print(f"wrote {json_out}")
        if out is not None:
            from sandwich.evaluation.report import write_report

            write_report(out, results, chosen, panels)
            console.print(f"wrote {out / 'report.html'} (and results.json, rd_*.png/svg)")


def _print_tables(console, results: dict, metrics: dict) -> None:
    from rich.table import Table

    from sandwich.evaluation.report import bd_unit, fmt_delta, fmt_value, table_label

    n = len(results["images"])
    deep = results.get("bit_depth", 8) > 8
    title = f"mean over {n} image(s)" + (", 16-bit (PSNR peak 65535)" if deep else "")
    table = Table(title=title)
    for col in ["pipeline", "knob", "bpp", *[table_label(m) for m in metrics.values()]]:
        table.add_column(col, justify="left" if col == "pipeline" else "right")
    for name, c in results["curves"].items():
        for i, k in enumerate(c["knob"]):
            table.add_row(
                name,
                f"{c['knob_name']} {k}",
                f"{c['bpp'][i]:.3f}",
                *[fmt_value(m, c[m][i]) for m in metrics],
            )
    console.print(table)
    if results["bd_table"]:
        bt = Table(title="Bjontegaard deltas (Akima, mean curves): BD-rate % / BD-metric")
        bt.add_column("test")
        bt.add_column("vs")
        for m in metrics.values():
            bt.add_column(f"{m.label} (% / {bd_unit(m)})", justify="right")
        for d in results["bd_table"]:
            bt.add_row(
                d["test"],
                d["anchor"],
                *[
                    f"{fmt_delta(d[m]['bd_rate_pct'], 1)} / {fmt_delta(d[m]['bd_metric'], 3)}"
                    for m in metrics
                ],
            )
        console.print(bt)
