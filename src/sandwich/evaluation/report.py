"""Outputs of ``sandwich eval``: Markdown tables, RD plots and a self-contained HTML report.

Everything is written atomically (temporary file + rename). The HTML page has no external
resources: its images are PNG files next to it, referenced by relative path.
"""

from __future__ import annotations

import html
import io
import math
import re
from pathlib import Path

import numpy as np

from sandwich.evaluation.quality import Metric, to_db
from sandwich.media.files import atomic_write_bytes


def fmt_value(metric: str, v: float | None) -> str:
    """A metric value for tables: dB metrics with 2 decimals, the others with 4."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.2f}" if metric.startswith("psnr") else f"{v:.4f}"


def fmt_delta(v: float, digits: int) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:+.{digits}f}"


def bd_unit(metric: Metric) -> str:
    return metric.unit or ("reduction" if not metric.higher_is_better else "value")


# --------------------------------------------------------------------------- markdown
def markdown(results: dict, metrics: dict[str, Metric]) -> str:
    """The mean curves and BD tables as Markdown."""
    curves = results["curves"]
    names = list(curves)
    lines = [f"Images ({len(results['images'])}): {', '.join(results['images'])}", ""]
    knob_lists = {(c["knob_name"], tuple(c["knob"])) for c in curves.values()}
    if len(knob_lists) == 1:  # the compact table: one row per knob, one column per pipeline
        knob_name, knobs = next(iter(knob_lists))
        lines += [
            f"| {knob_name} | " + " | ".join(f"{n} PSNR dB / bpp" for n in names) + " |",
            "|---:|" + "---:|" * len(names),
        ]
        for i, k in enumerate(knobs):
            cells = [f"{curves[n]['psnr'][i]:.2f} / {curves[n]['bpp'][i]:.3f}" for n in names]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "| pipeline | knob | bpp | " + " | ".join(table_label(m) for m in metrics.values()) + " |",
        "|---|---:|---:|" + "---:|" * len(metrics),
    ]
    for n, c in curves.items():
        for i, k in enumerate(c["knob"]):
            cells = [fmt_value(m, c[m][i]) for m in metrics]
            lines.append(
                f"| {n} | {c['knob_name']} {k} | {c['bpp'][i]:.3f} | " + " | ".join(cells) + " |"
            )
    if results["bd_table"]:
        lines += ["", _bd_header_md(metrics), "|---|---|" + "---:|---:|" * len(metrics)]
        for d in results["bd_table"]:
            cells = []
            for m in metrics:
                cells += [fmt_delta(d[m]["bd_rate_pct"], 1), fmt_delta(d[m]["bd_metric"], 3)]
            lines.append(f"| {d['test']} | {d['anchor']} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "BD-rate: mean rate change at equal quality (negative = fewer bits); BD-metric: mean "
            "quality gain at equal rate (positive = better), SSIM and MS-SSIM on the "
            "-10 log10(1 - v) dB scale, LPIPS as its reduction. Akima fits of the mean curves.",
        ]
    return "\n".join(lines) + "\n"


def table_label(m: Metric) -> str:
    """Column title of a metric's raw values (SSIM family and LPIPS are unitless there)."""
    return f"{m.label} (dB)" if m.name.startswith("psnr") else m.label


def json_safe(obj):
    """``obj`` with NaN and infinities replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _bd_header_md(metrics: dict[str, Metric]) -> str:
    cols = []
    for m in metrics.values():
        cols += [f"BD-rate {m.label} (%)", f"BD-{m.label} ({bd_unit(m)})"]
    return "| test | anchor | " + " | ".join(cols) + " |"


# --------------------------------------------------------------------------- plots
def plot_file_stem(metric: str) -> str:
    return f"rd_{metric}"


def rd_figures(results: dict, metrics: dict[str, Metric]) -> dict[str, dict[str, bytes]]:
    """One RD plot per metric (bpp on x, every pipeline): metric -> {"png": ..., "svg": ...}."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    roles = {p["name"]: p["role"] for p in results["pipelines"]}
    out = {}
    for name, m in metrics.items():
        fig = Figure(figsize=(6.4, 4.4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for pname, c in results["curves"].items():
            order = np.argsort(c["bpp"])
            xs = np.array(c["bpp"])[order]
            ys = np.array([m.scale(v) for v in c[name]])[order]
            style = "--" if roles.get(pname) == "baseline" else "-"
            label = pname + (" (anchor)" if pname in results["anchors"][:1] else "")
            ax.plot(xs, ys, style, marker="o", markersize=3.5, linewidth=1.5, label=label)
        ax.set_xlabel("bits per pixel (whole file)")
        ylabel = m.axis_label
        if m.scale is to_db:
            ylabel = f"{m.label}, dB: -10 log10(1 - {m.label})"
        ax.set_ylabel(ylabel + ("" if m.higher_is_better else ", lower is better"))
        n = len(results["images"])
        ax.set_title(f"{m.label} vs rate, mean over {n} image{'s' if n != 1 else ''}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        files = {}
        for fmt in ("png", "svg"):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt)
            files[fmt] = buf.getvalue()
        out[name] = files
    return out


# --------------------------------------------------------------------------- html
CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; } h3 { font-size: 1em; }
code, pre { background: #f4f4f4; padding: 0.1em 0.3em; }
pre { white-space: pre-wrap; word-break: break-all; padding: 0.5em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #eee; } td.l, th.l { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots img { width: 540px; max-width: 100%; border: 1px solid #ddd; }
.crops { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
.crops figure { margin: 0; text-align: center; font-size: 0.8em; }
.crops img { display: block; image-rendering: pixelated; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.85em; }
"""


CROP_DISPLAY = 160  # crops smaller than this are shown enlarged by an integer factor


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    def cell(tag: str, i: int, v: str) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{html.escape(v)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table>{head}{body}</table>"


def _section_details(results: dict, metrics: dict[str, Metric]) -> list[str]:
    parts = [f"<h2>Images ({len(results['image_files'])})</h2>"]
    parts.append(
        _table(
            ["image", "width", "height"],
            [[i["name"], str(i["width"]), str(i["height"])] for i in results["image_files"]],
        )
    )
    parts.append("<h2>Pipelines</h2>")
    parts.append(
        _table(
            ["pipeline", "role", "knobs"],
            [
                [p["name"], p["role"], f"{p['knob_name']} " + ",".join(map(str, p["knobs"]))]
                for p in results["pipelines"]
            ],
            left=3,
        )
    )
    parts.append("<h2>Metrics</h2>")
    parts.append(
        _table(
            ["metric", "better", "BD-metric axis", "definition"],
            [
                [m.label, "higher" if m.higher_is_better else "lower", m.bd_axis, m.note]
                for m in metrics.values()
            ],
            left=4,
        )
    )
    return parts


def _section_bd(results: dict, metrics: dict[str, Metric]) -> list[str]:
    parts = ["<h2>Bjontegaard deltas (mean curves)</h2>"]
    if not results["bd_table"]:
        return [*parts, "<p>Only one pipeline: no deltas.</p>"]
    header = ["test", "anchor"]
    for m in metrics.values():
        header += [f"BD-rate {m.label} %", f"BD-{m.label} ({bd_unit(m)})"]
    rows = []
    for d in results["bd_table"]:
        r = [d["test"], d["anchor"]]
        for m in metrics:
            r += [fmt_delta(d[m]["bd_rate_pct"], 1), fmt_delta(d[m]["bd_metric"], 3)]
        rows.append(r)
    parts.append(_table(header, rows, left=2))
    parts.append(
        "<p class='note'>BD-rate: mean rate change at equal quality (negative = fewer bits). "
        "BD-metric: mean quality gain at equal rate (positive = better); SSIM and MS-SSIM on "
        "the -10 log10(1 - v) dB scale, LPIPS as its reduction. Akima interpolation "
        "(bjontegaard package) of the monotone points of each mean curve; n/a where the curves "
        "do not overlap.</p>"
    )
    return parts


def _section_plots(plots: list[str], metrics: dict[str, Metric]) -> list[str]:
    parts = ["<h2>Rate-distortion curves (mean over images)</h2><div class='plots'>"]
    for m in plots:
        stem = plot_file_stem(m)
        parts.append(
            f'<a href="{stem}.svg"><img src="{stem}.png" alt="RD plot, '
            f'{html.escape(metrics[m].label)}"></a>'
        )
    parts.append("</div>")
    return parts


def _section_crops(crops: dict[str, list[dict]]) -> list[str]:
    e = html.escape
    parts = [
        "<h2>Centre crops at matched rates</h2><p class='note'>Knobs chosen so the rates are "
        "as close as possible to the anchor's; bpp of the whole file. The bottleneck is the "
        "image the standard codec carries (enlarged to the crop when it is smaller). Small "
        "crops are shown enlarged (pixels doubled).</p>"
    ]
    for im, panels in crops.items():
        parts.append(f"<h3>{e(im)}</h3><div class='crops'>")
        for p in panels:
            zoom = max(1, CROP_DISPLAY // max(p["width"], p["height"]))
            cap = e(p["label"])
            if p["bpp"] is not None:
                cap += f"<br>{p['bpp']:.3f} bpp"
            if p["kind"] == "reconstruction" and "psnr" in p["metrics"]:
                cap += f", {p['metrics']['psnr']:.2f} dB"
            parts.append(
                f'<figure><img src="{e(p["file"])}" alt="{e(p["label"])}" '
                f'width="{p["width"] * zoom}" height="{p["height"] * zoom}">'
                f"<figcaption>{cap}</figcaption></figure>"
            )
        parts.append("</div>")
    return parts


def _section_tables(results: dict, metrics: dict[str, Metric]) -> list[str]:
    parts = []
    anchor = results["anchors"][0] if results["anchors"] else None
    labels = [table_label(m) for m in metrics.values()]
    if anchor is not None and results["per_image"]:
        parts.append(
            f"<h2>Per image</h2><p class='note'>BD-rate of each pipeline against "
            f"{html.escape(anchor)} on that image's own curves; bpp and metrics at the "
            "pipeline's middle knob.</p>"
        )
        header = ["image", "pipeline"]
        header += [f"BD-rate {m.label} %" for m in metrics.values()]
        header += ["knob", "bpp", *labels]
        rows = []
        for r in results["per_image"]:
            bds = [
                "anchor" if r["bd"] is None else fmt_delta(r["bd"][m]["bd_rate_pct"], 1)
                for m in metrics
            ]
            rows.append(
                [r["image"], r["pipeline"], *bds, f"{r['knob_name']} {r['knob']}"]
                + [f"{r['bpp']:.3f}"]
                + [fmt_value(m, r[m]) for m in metrics]
            )
        parts.append(_table(header, rows, left=2))
    parts.append("<h2>Mean curves</h2>")
    rows = []
    for n, c in results["curves"].items():
        for i, k in enumerate(c["knob"]):
            rows.append(
                [n, f"{c['knob_name']} {k}", f"{c['bpp'][i]:.3f}"]
                + [fmt_value(m, c[m][i]) for m in metrics]
            )
    parts.append(_table(["pipeline", "knob", "bpp", *labels], rows, left=2))
    return parts


def html_report(
    results: dict, metrics: dict[str, Metric], plots: list[str], crops: dict[str, list[dict]]
) -> str:
    """The report page. ``plots``: metric names with rd_<metric>.png/.svg next to the page;
    ``crops``: image -> panels (``info()`` dicts with ``file`` relative to the page, ``width``
    and ``height``)."""
    e = html.escape
    n = len(results["images"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>sandwich eval report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>sandwich eval report</h1>",
        f"<p>{n} image{'s' if n != 1 else ''}, {len(results['pipelines'])} pipelines; sandwich "
        f"{e(results['version'])}; command:</p><pre>{e(results['command'])}</pre>",
    ]
    parts += _section_bd(results, metrics)
    parts += _section_plots(plots, metrics)
    if crops:
        parts += _section_crops(crops)
    parts += _section_tables(results, metrics)
    parts += _section_details(results, metrics)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, results: dict, metrics: dict[str, Metric], panels: dict) -> dict:
    """Write plots, crops, results.json and report.html into the folder ``out``.

    Returns ``results`` with the crops' file names (``crops`` key) as written to results.json.
    """
    import json

    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for name, files in rd_figures(results, metrics).items():
        for fmt, data in files.items():
            atomic_write_bytes(out / f"{plot_file_stem(name)}.{fmt}", data, force=True)
    crops: dict[str, list[dict]] = {}
    if panels:
        (out / "crops").mkdir(exist_ok=True)
    for i, (im, ps) in enumerate(panels.items()):
        crops[im] = []
        for j, p in enumerate(ps):
            rel = f"crops/{i:03d}_{_safe(Path(im).stem)}_{j}_{_safe(p.pipeline or p.kind)}"
            rel += "_bottleneck.png" if p.kind == "bottleneck" else ".png"
            buf = io.BytesIO()
            Image.fromarray(p.crop).save(buf, format="PNG")
            atomic_write_bytes(out / rel, buf.getvalue(), force=True)
            crops[im].append(
                {**p.info(), "file": rel, "height": p.crop.shape[0], "width": p.crop.shape[1]}
            )
    results = {**results, "crops": crops}
    text = json.dumps(json_safe(results), indent=1, allow_nan=False) + "\n"
    atomic_write_bytes(out / "results.json", text.encode(), force=True)
    page = html_report(results, metrics, list(metrics), crops)
    atomic_write_bytes(out / "report.html", page.encode(), force=True)
    return results
