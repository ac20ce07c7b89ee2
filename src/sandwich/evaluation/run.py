"""``evaluate``: the rate-distortion evaluation of models and baselines on a set, as a library
call (``sandwich eval`` and ``sandwich results`` are thin wrappers around it).

Pipelines are built from names: baselines from :data:`sandwich.evaluation.baselines.BASELINES`,
models from the zoo (or local weights) through :data:`PIPELINES`, keyed by the model's type.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandwich.errors import SandwichError
from sandwich.evaluation.baselines import BASELINES, ModelPipeline
from sandwich.evaluation.progressive_eval import ProgressivePipeline
from sandwich.evaluation.specs import DEFAULT_QUALITIES, parse_ints, split_model_spec
from sandwich.models.progressive import ProgressiveCodec
from sandwich.models.registry import for_type
from sandwich.models.sandwich import SandwichModel

# the evaluation pipeline of each model type (sandwich.models.registry.MODEL_TYPES)
PIPELINES = {
    SandwichModel: ModelPipeline,
    ProgressiveCodec: ProgressivePipeline,
}


@dataclass
class EvalRequest:
    """What to evaluate, as ``sandwich eval`` takes it.

    Attributes:
        data: image files or folders (``.npy`` arrays for N-channel pipelines).
        models: zoo names or weights, ``NAME[@CODEC][+xN]`` (see :func:`split_model_spec`).
        baselines: names in :data:`BASELINES`.
        qualities: comma list of knob values (None: :data:`DEFAULT_QUALITIES`, and baselines
            with their own scale use it).
        anchors: pipelines the BD deltas are against (default: the first baseline).
        metrics: comma list of metric names (None: all available; PSNR always).
        out: folder for results.json, plots and report.html; json_out, markdown: files.
    """

    data: list[Path]
    models: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    qualities: str | None = None
    anchors: list[str] = field(default_factory=list)
    metrics: str | None = None
    out: Path | None = None
    json_out: Path | None = None
    markdown: Path | None = None

    def command(self) -> str:
        """The ``sandwich eval`` command line of this request (recorded in reports)."""
        argv = ["sandwich", "eval", *map(str, self.data)]
        for m in self.models:
            argv += ["-m", m]
        for b in self.baselines:
            argv += ["-b", b]
        for a in self.anchors:
            argv += ["--anchor", a]
        for opt, v in (
            ("--qualities", self.qualities),
            ("--metrics", self.metrics),
            ("--out", self.out),
            ("--json", self.json_out),
            ("--markdown", self.markdown),
        ):
            if v is not None:
                argv += [opt, str(v)]
        return shlex.join(argv)


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: ``results`` (curves, BD table, rows: see
    :func:`sandwich.evaluation.harness.evaluate`), the metrics used, the images' channels."""

    results: dict
    metrics: dict
    channels: int
    written: list[Path]


def model_pipeline(spec: str, net):
    """The evaluation pipeline of a loaded model for its spec ``NAME[@CODEC][+xN]``."""
    _, other_codec, members = split_model_spec(spec)
    if other_codec and not hasattr(net, "reconstruct"):
        raise SandwichError(f"{spec}: a {net.kind} model has no codec to swap")
    if members > 1 and not hasattr(net, "ensemble"):
        raise SandwichError(f"{spec}: a {net.kind} model has no post-processor")
    if other_codec:  # e.g. gray-jpeg@avif: the JPEG-trained sandwich over AVIF
        from sandwich.evaluation.transplant import TransplantPipeline

        pipe = TransplantPipeline(net, other_codec, spec)
    else:
        pipe = for_type(PIPELINES, net)(net, spec)
    if members > 1:
        net.ensemble = members
    return pipe


def _images(data: list[Path], n_ch: int, deep: bool) -> tuple[dict, list[dict]]:
    from sandwich.media.files import expand_images, list_arrays, load_array, load_rgb, load_rgb16

    if n_ch == 3:
        files = expand_images(data)
    else:
        files = expand_images(
            data,
            list_arrays,
            "no .npy arrays in this folder (N-channel pipelines take (H, W, N) uint8 .npy "
            "files; see `sandwich data --kind material`)",
        )
    images, image_files = {}, []
    for f in files:
        key = f.name if f.name not in images else str(f)
        if n_ch != 3:
            images[key] = load_array(f, n_ch, "this evaluation")
        else:
            images[key] = load_rgb16(f) if deep else load_rgb(f)
        h, w = images[key].shape[:2]
        image_files.append({"name": key, "path": str(f), "height": h, "width": w})
    return images, image_files


def evaluate(
    req: EvalRequest, progress: Callable[[int], Callable[[], None]] | None = None
) -> Evaluation:
    """Sweep every pipeline of ``req`` through the real codecs on its images; write the
    requested Markdown, JSON and HTML report. ``progress(total)`` returns a function called
    once per round trip. Raises :class:`SandwichError` for a bad request, before any work."""
    from sandwich.evaluation.harness import (
        Entry,
        pipeline_bit_depth,
        pipeline_channels,
        pipeline_knobs,
    )
    from sandwich.evaluation.harness import evaluate as run
    from sandwich.evaluation.quality import available_metrics, for_bit_depth, for_channels
    from sandwich.zoo import load_model

    explicit = req.qualities is not None
    qs = parse_ints(req.qualities if explicit else DEFAULT_QUALITIES, "--qualities")
    models, baselines = list(dict.fromkeys(req.models)), list(dict.fromkeys(req.baselines))
    for b in baselines:
        if b not in BASELINES:
            raise SandwichError(f"unknown baseline {b!r}; use {', '.join(BASELINES)}")
    if not models and not baselines:
        raise SandwichError("give at least one --model or --baseline")
    for a in req.anchors:
        if a not in models and a not in baselines:
            if a not in BASELINES:
                raise SandwichError(f"--anchor {a!r} is neither a baseline nor a model of this run")
            baselines.append(a)  # a known baseline given only as anchor: evaluate it too
    names = None
    if req.metrics is not None:
        names = ["psnr"] + [n.strip() for n in req.metrics.split(",") if n.strip()]
        names = list(dict.fromkeys(names))
    chosen = available_metrics(names)
    anchors = list(dict.fromkeys(req.anchors)) or [baselines[0] if baselines else models[0]]
    nets = {m: load_model(split_model_spec(m)[0]) for m in models}  # unknown names fail here
    if req.out is not None and req.out.exists() and not req.out.is_dir():
        raise SandwichError(f"{req.out}: exists and is not a folder")
    base_pipes = {b: BASELINES[b]() for b in baselines}
    depths = [8] + [net.bit_depth for net in nets.values()]
    depths += [pipeline_bit_depth(pipe) for pipe in base_pipes.values()]
    channels = {m: net.channels for m, net in nets.items()}
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
    images, image_files = _images(req.data, n_ch, deep)

    entries = []
    for b in baselines:
        pipe = base_pipes[b]
        entries.append(Entry(pipe, "baseline", *pipeline_knobs(pipe, qs, explicit)))
    for m in models:
        pipe = model_pipeline(m, nets[m])
        entries.append(Entry(pipe, "model", *pipeline_knobs(pipe, qs, explicit)))

    total = len(images) * sum(len(e.knobs) for e in entries)
    tick = progress(total) if progress is not None else None
    results, panels = run(
        entries,
        images,
        chosen,
        anchors,
        qs,
        image_files=image_files,
        command=req.command(),
        crops=req.out is not None,
        progress=tick,
    )
    return Evaluation(results, chosen, n_ch, _write(req, results, chosen, panels))


def _write(req: EvalRequest, results: dict, chosen: dict, panels) -> list[Path]:
    import json

    from sandwich.media.files import atomic_write_bytes

    written = []
    if req.markdown is not None:
        from sandwich.evaluation.report import markdown as to_markdown

        atomic_write_bytes(req.markdown, to_markdown(results, chosen).encode(), force=True)
        written.append(req.markdown)
    if req.json_out is not None:
        from sandwich.evaluation.report import json_safe

        text = json.dumps(json_safe(results), indent=1) + "\n"
        atomic_write_bytes(req.json_out, text.encode(), force=True)
        written.append(req.json_out)
    if req.out is not None:
        from sandwich.evaluation.report import write_report

        write_report(req.out, results, chosen, panels)
        written.append(req.out / "report.html")
    return written
