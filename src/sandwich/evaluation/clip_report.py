"""Outputs of ``sandwich eval-video``: Markdown tables, RD plots and a self-contained HTML report
(the video counterpart of :mod:`sandwich.evaluation.report`, whose table and number helpers it
uses).

Everything is written atomically (temporary file + rename). The page has no external resources:
its images are PNG files next to it (``rd_*.png``, ``frame_bits.png``, ``frames/*.png``),
referenced by relative path.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

import numpy as np

from sandwich.evaluation.quality import Metric, to_db
from sandwich.evaluation.report import (
    CSS,
    _bd_header_md,
    _safe,
    _section_bd,
    _table,
    fmt_delta,
    fmt_value,
    json_safe,
    table_label,
)
from sandwich.media.files import atomic_write_bytes

FRAME_TYPES = ("I", "P")
FRAME_WIDTH = 448  # frames wider than this are shown scaled down to it (click for full size)
MIN_SHOW = 224  # narrower frames are shown enlarged by an integer factor (pixels repeated)


def fmt(metric: str, v: float | None) -> str:
    """A metric value for tables: PSNR and VMAF with 2 decimals, the others with 4."""
    if metric == "vmaf" and v is not None and not math.isnan(v):
        return f"{v:.2f}"
    return fmt_value(metric, v)


def _bpp(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.4f}"


def _mid(results: dict) -> int:
    crfs = sorted(results["crfs"])
    return crfs[len(crfs) // 2]


# --------------------------------------------------------------------------- markdown
def markdown(results: dict, metrics: dict[str, Metric]) -> str:
    """The mean curves (with the bits per frame type), the BD table of the mean curves and the
    per-clip BD-rates against the first anchor, as Markdown."""
    curves, names = results["curves"], list(results["curves"])
    lines = [f"Clips ({len(results['clips'])}): {', '.join(results['clips'])}", ""]
    for note in results.get("notes", []):
        lines.append(f"- note: {note}")
    if results.get("notes"):
        lines.append("")
    lines += [
        "| CRF | " + " | ".join(f"{n} PSNR dB / bpp" for n in names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for i, c in enumerate(results["crfs"]):
        cells = [f"{curves[n]['psnr'][i]:.2f} / {curves[n]['bpp'][i]:.4f}" for n in names]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    labels = [table_label(m) for m in metrics.values()]
    lines += [
        "",
        "| pipeline | CRF | bpp | I-frame bpp | P-frame bpp | " + " | ".join(labels) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(metrics),
    ]
    for n, c in curves.items():
        for i, k in enumerate(c["crf"]):
            cells = [_bpp(c["bpp"][i]), _bpp(c["bpp_I"][i]), _bpp(c["bpp_P"][i])]
            cells += [fmt(m, c[m][i]) for m in metrics]
            lines.append(f"| {n} | {k} | " + " | ".join(cells) + " |")
    if results["bd_table"]:
        lines += ["", _bd_header_md(metrics), "|---|---|" + "---:|---:|" * len(metrics)]
        for d in results["bd_table"]:
            cells = []
            for m in metrics:
                cells += [fmt_delta(d[m]["bd_rate_pct"], 1), fmt_delta(d[m]["bd_metric"], 3)]
            lines.append(f"| {d['test']} | {d['anchor']} | " + " | ".join(cells) + " |")
    per = [r for r in results["per_clip"] if r["bd"] is not None]
    if per:
        anchor = results["anchors"][0]
        lines += [
            "",
            f"Per clip, against {anchor}; bpp at CRF {_mid(results)}:",
            "",
            "| clip | pipeline | "
            + " | ".join(f"BD-rate {m.label} (%)" for m in metrics.values())
            + " | BD-PSNR (dB) | bpp | I-frame bpp | P-frame bpp |",
            "|---|---|" + "---:|" * (len(metrics) + 4),
        ]
        for r in per:
            cells = [fmt_delta(r["bd"][m]["bd_rate_pct"], 1) for m in metrics]
            cells += [fmt_delta(r["bd"]["psnr"]["bd_metric"], 2)]
            cells += [_bpp(r["bpp"]), _bpp(r["bpp_I"]), _bpp(r["bpp_P"])]
            lines.append(f"| {r['clip']} | {r['pipeline']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "bpp: bits of the whole MP4 / (frames x height x width). I-/P-frame bpp: mean packet bits "
        "of one frame of that type / (height x width). BD-rate: mean rate change at equal "
        "quality (negative = fewer bits); BD-metric: mean quality gain at equal rate (positive = "
        "better), MS-SSIM on the -10 log10(1 - v) dB scale, LPIPS as its reduction. Akima fits.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots
def _figure(size=(6.4, 4.4)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig) -> dict[str, bytes]:
    fig.tight_layout()
    files = {}
    for kind in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=kind)
        files[kind] = buf.getvalue()
    return files


def rd_figures(results: dict, metrics: dict[str, Metric]) -> dict[str, dict[str, bytes]]:
    """``rd_<metric>``: one RD plot per metric (bpp of the whole MP4 on x, every pipeline's mean
    curve); ``frame_bits``: mean bits per pixel of an I frame and of a P frame against the CRF.
    Each as {"png": ..., "svg": ...}."""
    roles = {p["name"]: p["role"] for p in results["pipelines"]}
    anchor = results["anchors"][0] if results["anchors"] else None
    n = len(results["clips"])
    over = f"mean over {n} clip{'s' if n != 1 else ''}"
    out = {}
    for name, m in metrics.items():
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        for pname, c in results["curves"].items():
            order = np.argsort(c["bpp"])
            xs = np.array(c["bpp"])[order]
            ys = np.array([m.scale(v) for v in c[name]])[order]
            style = "--" if roles.get(pname) == "baseline" else "-"
            label = pname + (" (anchor)" if pname == anchor else "")
            ax.plot(xs, ys, style, marker="o", markersize=3.5, linewidth=1.5, label=label)
        ax.set_xlabel("bits per pixel (whole MP4)")
        ylabel = f"{m.label}, dB: -10 log10(1 - {m.label})" if m.scale is to_db else m.axis_label
        ax.set_ylabel(ylabel + ("" if m.higher_is_better else ", lower is better"))
        ax.set_title(f"{m.label} vs rate, {over}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        out[f"rd_{name}"] = _save(fig)
    fig = _figure((10, 4))
    axes = fig.subplots(1, len(FRAME_TYPES))
    for ax, kind in zip(axes, FRAME_TYPES, strict=True):
        for pname, c in results["curves"].items():
            style = "--" if roles.get(pname) == "baseline" else "-"
            ys = np.array(c[f"bpp_{kind}"], np.float64)
            ax.plot(c["crf"], ys, style, marker="o", markersize=3.5, label=pname)
        ax.set_yscale("log")
        ax.set_xlabel("CRF")
        ax.set_ylabel(f"bits per pixel of one {kind} frame")
        ax.set_title(f"{kind} frames, {over}")
        ax.grid(True, alpha=0.3, which="both")
    axes[0].legend(fontsize="small")
    out["frame_bits"] = _save(fig)
    return out


# --------------------------------------------------------------------------- html
FRAMES_CSS = """
.frames { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
.frames figure { margin: 0; text-align: center; font-size: 0.8em; }
.frames img { display: block; image-rendering: pixelated; border: 1px solid #ddd; }
"""


def _section_notes(results: dict) -> list[str]:
    if not results.get("notes"):
        return []
    items = "".join(f"<li>{html.escape(n)}</li>" for n in results["notes"])
    return [f"<h2>Notes</h2><ul class='note'>{items}</ul>"]


def _section_plots(stems: list[str]) -> list[str]:
    parts = ["<h2>Rate-distortion curves (mean over clips)</h2><div class='plots'>"]
    for stem in stems:
        parts.append(f'<a href="{stem}.svg"><img src="{stem}.png" alt="{stem}"></a>')
    parts.append("</div>")
    return parts


def _section_frames(frames: dict[str, list[dict]]) -> list[str]:
    e = html.escape
    parts = [
        "<h2>Middle frame at matched rates</h2><p class='note'>The anchor at the middle CRF; "
        "every other pipeline at the CRF whose bpp (whole MP4, all frames) is nearest. The "
        "bottleneck is the frame the standard codec carries, before coding (shown at the "
        "frame's size when it is smaller). Click a frame for full size.</p>"
    ]
    for clip, panels in frames.items():
        parts.append(f"<h3>{e(clip)}</h3><div class='frames'>")
        for p in panels:
            cap = e(p["label"])
            if p["bpp"] is not None:
                cap += f"<br>{p['bpp']:.4f} bpp"
            if p["kind"] == "reconstruction":
                values = p["metrics"]
                cap += f", clip {values['psnr']:.2f} dB<br>this frame {values['frame_psnr']:.2f} dB"
            parts.append(
                f'<figure><a href="{e(p["file"])}"><img src="{e(p["file"])}" '
                f'alt="{e(p["label"])}" width="{p["show_width"]}" height="{p["show_height"]}">'
                f"</a><figcaption>{cap}</figcaption></figure>"
            )
        parts.append("</div>")
    return parts


def _section_tables(results: dict, metrics: dict[str, Metric]) -> list[str]:
    labels = [table_label(m) for m in metrics.values()]
    parts = []
    anchor = results["anchors"][0] if results["anchors"] else None
    if anchor is not None and results["per_clip"]:
        parts.append(
            f"<h2>Per clip</h2><p class='note'>BD-rate of each pipeline against "
            f"{html.escape(anchor)} on that clip's own curves; bpp, bits per I and P frame and "
            f"metrics at CRF {_mid(results)}.</p>"
        )
        header = ["clip", "pipeline", *(f"BD-rate {m.label} %" for m in metrics.values())]
        header += ["bpp", "I-frame bpp", "P-frame bpp", *labels]
        rows = []
        for r in results["per_clip"]:
            bds = [
                "anchor" if r["bd"] is None else fmt_delta(r["bd"][m]["bd_rate_pct"], 1)
                for m in metrics
            ]
            rows.append(
                [r["clip"], r["pipeline"], *bds, _bpp(r["bpp"]), _bpp(r["bpp_I"])]
                + [_bpp(r["bpp_P"])]
                + [fmt(m, r[m]) for m in metrics]
            )
        parts.append(_table(header, rows, left=2))
    parts.append("<h2>Mean curves</h2>")
    rows = []
    for n, c in results["curves"].items():
        for i, k in enumerate(c["crf"]):
            rows.append(
                [n, str(k), _bpp(c["bpp"][i]), _bpp(c["bpp_I"][i]), _bpp(c["bpp_P"][i])]
                + [fmt(m, c[m][i]) for m in metrics]
            )
    header = ["pipeline", "CRF", "bpp", "I-frame bpp", "P-frame bpp", *labels]
    parts.append(_table(header, rows, left=1))
    return parts


def _section_details(results: dict, metrics: dict[str, Metric]) -> list[str]:
    clips = [
        [c["name"], str(c["frames"]), str(c["width"]), str(c["height"]), f"{c['fps']:g}"]
        for c in results["clip_files"]
    ]
    pipes = [
        [p["name"], p["role"], p["description"], "CRF " + ",".join(map(str, p["knobs"]))]
        for p in results["pipelines"]
    ]
    defs = [
        [m.label, "higher" if m.higher_is_better else "lower", m.bd_axis, m.note]
        for m in metrics.values()
    ]
    return [
        f"<h2>Clips ({len(clips)})</h2>",
        _table(["clip", "frames", "width", "height", "fps"], clips),
        "<h2>Pipelines</h2>",
        _table(["pipeline", "role", "what", "knobs"], pipes, left=4),
        "<h2>Metrics</h2>",
        _table(["metric", "better", "BD-metric axis", "definition"], defs, left=4),
    ]


def html_report(
    results: dict, metrics: dict[str, Metric], stems: list[str], frames: dict[str, list[dict]]
) -> str:
    """The report page. ``stems``: plot files (``<stem>.png`` / ``.svg``) next to the page;
    ``frames``: clip -> panels (``FramePanel.info()`` dicts with ``file`` relative to the page
    and the displayed ``show_width`` / ``show_height``)."""
    e = html.escape
    n = len(results["clips"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>sandwich eval-video report</title>",
        f"<style>{CSS}{FRAMES_CSS}</style></head><body>",
        "<h1>sandwich eval-video report</h1>",
        f"<p>{n} clip{'s' if n != 1 else ''}, {len(results['pipelines'])} pipelines, CRF "
        f"{', '.join(map(str, results['crfs']))}; bits of the whole MP4 file; sandwich "
        f"{e(results['version'])}; command:</p><pre>{e(results['command'])}</pre>",
    ]
    parts += _section_notes(results)
    parts += _section_bd(results, metrics)
    parts += _section_plots(stems)
    if frames:
        parts += _section_frames(frames)
    parts += _section_tables(results, metrics)
    parts += _section_details(results, metrics)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def write_report(out: Path, results: dict, metrics: dict[str, Metric], panels: dict) -> dict:
    """Write the plots, the middle frames (``frames/``), results.json and report.html into the
    folder ``out``. ``panels``: clip -> :class:`~sandwich.evaluation.clip_eval.FramePanel`
    list. Returns ``results`` with the frames' files (``frames`` key) as in results.json."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    figures = rd_figures(results, metrics)
    for stem, files in figures.items():
        for kind, data in files.items():
            atomic_write_bytes(out / f"{stem}.{kind}", data, force=True)
    frames: dict[str, list[dict]] = {}
    if panels:
        (out / "frames").mkdir(exist_ok=True)
    for i, (clip, ps) in enumerate(panels.items()):
        h, w = ps[0].image.shape[:2]  # the original frame's size
        scale = min(1.0, FRAME_WIDTH / w) if w > MIN_SHOW else float(max(1, MIN_SHOW // w))
        show = (max(1, round(w * scale)), max(1, round(h * scale)))
        frames[clip] = []
        for j, p in enumerate(ps):
            rel = f"frames/{i:03d}_{_safe(clip)}_{j}_{_safe(p.pipeline or p.kind)}"
            rel += "_bottleneck.png" if p.kind == "bottleneck" else ".png"
            atomic_write_bytes(out / rel, _png(p.image), force=True)
            frames[clip].append(
                {
                    **p.info(),
                    "file": rel,
                    "height": int(p.image.shape[0]),
                    "width": int(p.image.shape[1]),
                    "show_width": show[0],
                    "show_height": show[1],
                }
            )
    results = {**results, "frames": frames}
    text = json.dumps(json_safe(results), indent=1, allow_nan=False) + "\n"
    atomic_write_bytes(out / "results.json", text.encode(), force=True)
    page = html_report(results, metrics, list(figures), frames)
    atomic_write_bytes(out / "report.html", page.encode(), force=True)
    return results


__all__ = ["fmt", "html_report", "markdown", "rd_figures", "write_report"]
