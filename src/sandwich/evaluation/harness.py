"""The evaluation harness behind ``sandwich eval``: sweeps, mean curves, BD tables, matched crops.

Every pipeline (a baseline of :mod:`sandwich.evaluation.baselines`, a sandwich model, or a
progressive model) carries its own list of knobs: JPEG qualities, a baseline's own quality scale,
or iteration counts. Rows hold one (image, pipeline, knob) point with its whole-file rate and every
metric of :mod:`sandwich.evaluation.quality`; curves are compared in (bpp, metric), so pipelines
with different knobs are compared fairly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sandwich.evaluation.quality import Metric, measure
from sandwich.evaluation.rd import bd_delta

CROP = 192  # side of the centre crops shown side by side


@dataclass
class Entry:
    """One pipeline of an evaluation and the knobs it is swept over."""

    pipe: object  # has .name and .roundtrip(image, knob) -> (bytes, reconstruction)
    role: str  # "baseline" or "model"
    knob_name: str  # "quality" or "iterations"
    knobs: list[int | float]

    @property
    def name(self) -> str:
        return self.pipe.name

    @property
    def mid_knob(self) -> int | float:
        return self.knobs[len(self.knobs) // 2]

    @property
    def bottleneck_model(self):
        """The sandwich model whose bottleneck image can be shown, or None."""
        model = getattr(self.pipe, "model", None)
        return model if hasattr(model, "bottleneck_image") else None

    def info(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "knob_name": self.knob_name,
            "knobs": list(self.knobs),
        }


def pipeline_bit_depth(pipe) -> int:
    """Bit depth of the images a pipeline takes and returns: its ``bit_depth`` (16 for the hdr
    baselines and models), that of its sandwich model's scenario, else 8."""
    depth = getattr(pipe, "bit_depth", None)
    if depth is None:
        depth = getattr(getattr(getattr(pipe, "model", None), "scenario", None), "bit_depth", 8)
    return int(depth)


def pipeline_input(pipe, image: np.ndarray) -> np.ndarray:
    """``image`` as the pipeline takes it: 16-bit images go to 8-bit pipelines rounded to 8 bits
    (round(x / 257)); everything else as it is."""
    from sandwich.media.files import to_8bit

    if image.dtype == np.uint16 and pipeline_bit_depth(pipe) <= 8:
        return to_8bit(image)
    return image


def display(image: np.ndarray) -> np.ndarray:
    """An image for the report's crops: 8 bits (16-bit images rounded, round(x / 257)); of an
    N-channel image (N > 3), channels 0..2 (a material's albedo)."""
    from sandwich.media.files import to_8bit

    if image.ndim == 3 and image.shape[2] > 3:
        image = np.ascontiguousarray(image[:, :, :3])
    return to_8bit(image) if image.dtype == np.uint16 else image


def pipeline_channels(pipe) -> int:
    """Channels of the images a pipeline takes and returns: its ``channels`` (6 for
    ``material-jpeg`` and ``material6`` models), else 3."""
    return int(getattr(pipe, "channels", 3) or 3)


def _number(q) -> int | float:
    return int(q) if float(q).is_integer() else float(q)


def uses_jpeg_quality(pipe) -> bool:
    """Whether a pipeline's knob is the IJG JPEG quality (JPEG baselines and sandwich models)."""
    from sandwich.codecs.jpeg import JpegCodec

    if hasattr(getattr(pipe, "model", None), "bottleneck_image"):
        return True
    return isinstance(getattr(pipe, "codec", None), JpegCodec)


def pipeline_knobs(pipe, qualities: list[int], explicit: bool) -> tuple[str, list[int | float]]:
    """(knob name, knobs) of a pipeline.

    Progressive pipelines (with ``knobs``) sweep their iterations. Sandwich models and JPEG
    baselines sweep ``qualities`` (``--qualities``), so their points share JPEG qualities. Other
    baselines with their own ``qualities`` scale (WebP, AVIF, ...) sweep it unless the user gave
    ``--qualities`` (``explicit``); anything else sweeps ``qualities``.
    """
    if getattr(pipe, "knobs", None) is not None:
        return "iterations", [_number(k) for k in pipe.knobs]
    own = getattr(pipe, "qualities", None)
    if own is not None and not explicit and not uses_jpeg_quality(pipe):
        return "quality", [_number(q) for q in own]
    return "quality", list(qualities)


@dataclass
class Panel:
    """One crop of the side-by-side comparison."""

    label: str
    kind: str  # "original", "reconstruction" or "bottleneck"
    pipeline: str | None
    knob: int | None
    bpp: float | None
    crop: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)

    def info(self) -> dict:
        return {
            "label": self.label,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "knob": self.knob,
            "bpp": self.bpp,
            "metrics": self.metrics,
        }


def crop_box(h: int, w: int, size: int = CROP) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of the centre crop of at most size x size pixels."""
    ch, cw = min(h, size), min(w, size)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return y0, x0, y0 + ch, x0 + cw


def bottleneck_crop(b: np.ndarray, box: tuple[int, int, int, int], k: int) -> np.ndarray:
    """The part of a 1/k-size bottleneck under ``box``, enlarged k times (nearest neighbour)."""
    y0, x0, y1, x1 = box
    part = b[y0 // k : -(-y1 // k), x0 // k : -(-x1 // k)]
    if k > 1:
        part = np.repeat(np.repeat(part, k, axis=0), k, axis=1)
        oy, ox = y0 - (y0 // k) * k, x0 - (x0 // k) * k
        part = part[oy : oy + y1 - y0, ox : ox + x1 - x0]
    return np.ascontiguousarray(part)


def match_knobs(bpps: dict[str, dict[int, float]], anchor: str) -> dict[str, int]:
    """One knob per pipeline so that the rates are as close as possible (in log bpp).

    Starts from the anchor's middle knob, gives every other pipeline its closest knob, then moves
    the anchor to the knob closest to all of them and the others once more to the anchor.
    """

    def dist(a: float, b: float) -> float:
        return abs(math.log(max(a, 1e-9) / max(b, 1e-9)))

    def closest(name: str, target: float) -> int:
        return min(bpps[name], key=lambda k: (dist(bpps[name][k], target), k))

    knobs_a = list(bpps[anchor])
    choice = {anchor: knobs_a[len(knobs_a) // 2]}
    others = [n for n in bpps if n != anchor]
    for _ in range(2):
        target = bpps[anchor][choice[anchor]]
        for n in others:
            choice[n] = closest(n, target)
        if others:
            choice[anchor] = min(
                knobs_a,
                key=lambda k: (sum(dist(bpps[anchor][k], bpps[n][choice[n]]) for n in others), k),
            )
    target = bpps[anchor][choice[anchor]]
    for n in others:
        choice[n] = closest(n, target)
    return choice


def sweep(
    entries: list[Entry],
    images: dict[str, np.ndarray],
    metrics: dict[str, Metric],
    crops_for: list[str] | None = None,
    anchor: str | None = None,
    progress: Callable[[], None] | None = None,
) -> tuple[list[dict], dict[str, list[Panel]]]:
    """Run every pipeline over every image and knob.

    Returns the rows (one per image, pipeline and knob: bits, bpp of the whole file, every
    metric) and, if ``crops_for`` names pipelines, the side-by-side panels of each image: the
    original, ``anchor`` and the ``crops_for`` pipelines at rate-matched knobs
    (:func:`match_knobs`), and the bottleneck of each sandwich model among them.

    16-bit images (uint16, for runs with high-bit-depth pipelines) reach 8-bit pipelines rounded
    to 8 bits, and their 8-bit reconstructions are scaled back by 257 before the metrics (which
    must then be :func:`~sandwich.evaluation.quality.for_bit_depth`'s); crops are shown in 8 bits.
    """
    from sandwich.media.files import to_16bit

    rows: list[dict] = []
    panels: dict[str, list[Panel]] = {}
    for name, img in images.items():
        h, w = img.shape[:2]
        box = crop_box(h, w)
        y0, x0, y1, x1 = box
        recs: dict[tuple[str, int], tuple[np.ndarray, dict]] = {}
        bpps: dict[str, dict[int, float]] = {}
        for e in entries:
            for k in e.knobs:
                data, rec = e.pipe.roundtrip(pipeline_input(e.pipe, img), k)
                if img.dtype == np.uint16:
                    rec = to_16bit(rec)
                values = measure(metrics, img, rec)
                bpp = 8 * len(data) / (h * w)
                rows.append(
                    {
                        "pipeline": e.name,
                        "image": name,
                        "knob_name": e.knob_name,
                        "knob": k,
                        "quality": k,
                        "bits": 8 * len(data),
                        "bpp": bpp,
                        **values,
                    }
                )
                if crops_for and (e.name in crops_for or e.name == anchor):
                    recs[(e.name, k)] = (display(np.ascontiguousarray(rec[y0:y1, x0:x1])), values)
                    bpps.setdefault(e.name, {})[k] = bpp
                if progress is not None:
                    progress()
        if crops_for and anchor in bpps:
            panels[name] = _panels(entries, img, box, recs, bpps, anchor, crops_for)
    return rows, panels


def _panels(entries, img, box, recs, bpps, anchor, crops_for) -> list[Panel]:
    y0, x0, y1, x1 = box
    choice = match_knobs(bpps, anchor)
    out = [Panel("original", "original", None, None, None, display(img[y0:y1, x0:x1].copy()))]
    by_name = {e.name: e for e in entries}
    order = [anchor] + [n for n in crops_for if n != anchor and n in bpps]
    for n in order:
        e, k = by_name[n], choice[n]
        crop, values = recs[(n, k)]
        label = f"{n} ({e.knob_name} {k})"
        out.append(Panel(label, "reconstruction", n, k, bpps[n][k], crop, values))
        model = e.bottleneck_model
        if model is not None:
            b = model.bottleneck_image(pipeline_input(e.pipe, img), k)
            bc = bottleneck_crop(b, box, int(getattr(model.scenario, "downscale", 1)))
            out.append(Panel(f"{n} bottleneck", "bottleneck", n, k, bpps[n][k], bc))
    return out


def mean_curves(
    rows: list[dict], entries: list[Entry], metrics: dict[str, Metric]
) -> dict[str, dict]:
    """Per pipeline, the mean over images of bpp and every metric at each knob."""
    curves = {}
    for e in entries:
        rs = [r for r in rows if r["pipeline"] == e.name]
        c: dict[str, list] = {
            "knob_name": e.knob_name,
            "knob": list(e.knobs),
            "quality": list(e.knobs),
            "bpp": [],
        }
        for m in metrics:
            c[m] = []
        for k in e.knobs:
            at = [r for r in rs if r["knob"] == k]
            c["bpp"].append(float(np.mean([r["bpp"] for r in at])))
            for m in metrics:
                c[m].append(float(np.mean([r[m] for r in at])))
        curves[e.name] = c
    return curves


def curve_bd(anchor: dict, test: dict, metric: Metric) -> dict:
    """BD-rate (%) and BD-metric (on the metric's fitting axis, positive = test better) of two
    curves given as dicts of lists with ``bpp`` and ``metric.name``."""

    def pts(c):
        return np.array(c["bpp"]), np.array([metric.fit(v) for v in c[metric.name]])

    return bd_delta(pts(anchor), pts(test))


def bd_table(curves: dict, anchors: list[str], metrics: dict[str, Metric]) -> list[dict]:
    """For every anchor and every other pipeline: BD-rate and BD-metric of each metric."""
    table = []
    for a in anchors:
        for t in curves:
            if t == a:
                continue
            table.append(
                {
                    "test": t,
                    "anchor": a,
                    **{m: curve_bd(curves[a], curves[t], metric) for m, metric in metrics.items()},
                }
            )
    return table


def per_image(
    rows: list[dict], entries: list[Entry], metrics: dict[str, Metric], anchor: str
) -> list[dict]:
    """For every image and pipeline: BD deltas of its own curve against the anchor's on that
    image (None for the anchor itself), and its bpp and metrics at its middle knob."""
    out = []
    images = list(dict.fromkeys(r["image"] for r in rows))
    for im in images:
        rs = [r for r in rows if r["image"] == im]

        def curve(name: str, rs=rs) -> dict:
            pts = sorted((r for r in rs if r["pipeline"] == name), key=lambda r: r["knob"])
            return {"bpp": [r["bpp"] for r in pts], **{m: [r[m] for r in pts] for m in metrics}}

        ca = curve(anchor)
        for e in entries:
            mid = next(r for r in rs if r["pipeline"] == e.name and r["knob"] == e.mid_knob)
            bd = None
            if e.name != anchor:
                ct = curve(e.name)
                bd = {m: curve_bd(ca, ct, metric) for m, metric in metrics.items()}
            out.append(
                {
                    "image": im,
                    "pipeline": e.name,
                    "bd": bd,
                    "knob_name": e.knob_name,
                    "knob": e.mid_knob,
                    "bpp": mid["bpp"],
                    **{m: mid[m] for m in metrics},
                }
            )
    return out


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sandwich")
    except PackageNotFoundError:
        return "unknown"


def evaluate(
    entries: list[Entry],
    images: dict[str, np.ndarray],
    metrics: dict[str, Metric],
    anchors: list[str],
    qualities: list[int],
    image_files: list[dict] | None = None,
    command: str = "",
    crops: bool = False,
    progress: Callable[[], None] | None = None,
) -> tuple[dict, dict[str, list[Panel]]]:
    """Sweep, average and compare: the results dict of ``sandwich eval`` and its crop panels.

    The results hold the images, the pipelines and their knobs, the metrics, every row, the mean
    curves, the BD table of every pipeline against every anchor (``bd_table``; ``bd`` keeps the
    older PSNR-only list of the models), the per-image table against the first anchor, the
    command line and the package version. Panels are computed only with ``crops``.
    """
    anchor = anchors[0] if anchors else None
    models = [e.name for e in entries if e.role == "model"]
    rows, panels = sweep(
        entries,
        images,
        metrics,
        crops_for=(models or [e.name for e in entries]) if crops else None,
        anchor=anchor,
        progress=progress,
    )
    curves = mean_curves(rows, entries, metrics)
    table = bd_table(curves, anchors, metrics)
    legacy = [
        {
            "test": d["test"],
            "anchor": d["anchor"],
            "bd_psnr_db": d["psnr"]["bd_metric"],
            "bd_rate_pct": d["psnr"]["bd_rate_pct"],
        }
        for d in table
        if d["test"] in models and "psnr" in d
    ]
    results = {
        "command": command,
        "version": package_version(),
        "images": list(images),
        "image_files": image_files
        or [{"name": n, "height": a.shape[0], "width": a.shape[1]} for n, a in images.items()],
        "qualities": list(qualities),
        "metrics": {
            k: {
                "label": m.label,
                "higher_is_better": m.higher_is_better,
                "bd_unit": m.unit,
                "bd_axis": m.bd_axis,
                "note": m.note,
            }
            for k, m in metrics.items()
        },
        "pipelines": [e.info() for e in entries],
        "anchors": list(anchors),
        "curves": curves,
        "bd": legacy,
        "bd_table": table,
        "per_image": per_image(rows, entries, metrics, anchor) if anchor else [],
        "rows": rows,
    }
    if any(a.dtype == np.uint16 for a in images.values()):
        results["bit_depth"] = 16  # 16-bit images: PSNR on the 16-bit scale (peak 65535)
    return results, panels
