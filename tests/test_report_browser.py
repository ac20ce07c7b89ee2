"""``sandwich eval --out``: the report folder, and report.html rendered by headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sandwich.cli import main

CHROMIUM = Path("/usr/bin/chromium")
QUALITIES = "30,60,90"


@pytest.fixture(scope="module")
def report(tmp_path_factory, sample_full: np.ndarray) -> Path:
    """A report on two 64x80 crops: jpeg-420 (anchor) and the gray-modem zoo model."""
    root = tmp_path_factory.mktemp("report")
    (root / "imgs").mkdir()
    for name, (y, x) in {"a.png": (60, 80), "b.png": (130, 30)}.items():
        Image.fromarray(sample_full[y : y + 64, x : x + 80]).save(root / "imgs" / name)
    out = root / "rep"
    argv = ["eval", root / "imgs", "-b", "jpeg-420", "-m", "gray-modem"]
    argv += ["--qualities", QUALITIES, "--out", out, "--markdown", root / "r.md"]
    assert main([str(a) for a in argv]) == 0
    return out


def test_report_files(report: Path) -> None:
    res = json.loads((report / "results.json").read_text())
    assert res["images"] == ["a.png", "b.png"] and res["anchors"] == ["jpeg-420"]
    assert "sandwich eval" in res["command"] and "--out" in res["command"] and res["version"]
    metrics = list(res["metrics"])
    assert metrics[:4] == ["psnr", "psnr_y", "ssim", "ms_ssim"]
    assert len(res["rows"]) == 2 * 2 * 3
    for row in res["rows"]:
        assert {"pipeline", "image", "knob", "quality", "bits", "bpp", *metrics} <= set(row)
    assert [(d["test"], d["anchor"]) for d in res["bd_table"]] == [("gray-modem", "jpeg-420")]
    assert set(res["bd_table"][0]) == {"test", "anchor", *metrics}
    assert len(res["per_image"]) == 2 * 2
    assert {r["knob"] for r in res["per_image"]} == {60}
    for m in metrics:
        for ext in ("png", "svg"):
            assert (report / f"rd_{m}.{ext}").stat().st_size > 1000
    with Image.open(report / "rd_psnr.png") as im:
        assert im.format == "PNG"
    assert (report / "rd_psnr.svg").read_text().lstrip().startswith("<?xml")
    # crops: original, anchor, model and its bottleneck per image, rates matched
    for image, panels in res["crops"].items():
        kinds = [p["kind"] for p in panels]
        assert kinds == ["original", "reconstruction", "reconstruction", "bottleneck"], image
        anchor, model = panels[1], panels[2]
        assert anchor["pipeline"] == "jpeg-420" and model["pipeline"] == "gray-modem"
        by_knob = {(r["pipeline"], r["knob"]): r["bpp"] for r in res["rows"] if r["image"] == image}
        gap = abs(np.log(anchor["bpp"] / model["bpp"]))
        best = min(
            abs(np.log(by_knob[("jpeg-420", a)] / by_knob[("gray-modem", b)]))
            for a in (30, 60, 90)
            for b in (30, 60, 90)
        )
        assert gap <= best + 0.25  # close to the best pair (the anchor starts mid-range)
        for p in panels:
            with Image.open(report / p["file"]) as im:
                assert im.size == (80, 64)
    page = (report / "report.html").read_text()
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (report / src).is_file(), src
    assert "Bjontegaard" in page and "bpp" in page
    assert not list(report.rglob("*.part"))  # atomic writes leave no temporaries
    assert "| gray-modem | jpeg-420 |" in (report.parent / "r.md").read_text()


CHECK = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var d = document.createElement("div");
  d.id = "imgcheck";
  d.textContent = "IMGCHECK images=" + imgs.length + " broken=" +
    bad.map(function (i) { return i.getAttribute("src"); }).join(",") + ";";
  document.body.appendChild(d);
});
</script>
"""


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,2000",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *extra, url], capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (headless test)")
def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, (report / "report.html").as_uri(), f"--screenshot={shot}")
    assert shot.is_file(), r.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1200, 2000)
        px = np.asarray(im.convert("RGB")).astype(np.int16)
    assert px.std() > 20  # not a blank page
    coloured = (px.max(axis=2) - px.min(axis=2)) > 60
    assert coloured.mean() > 0.002  # plot lines and the colour crops are drawn
    # every <img> (plots and crops) decoded: a copy of the page marks the broken ones
    html = (report / "report.html").read_text().replace("</body>", CHECK + "</body>")
    check = report / "check.html"
    check.write_text(html)
    try:
        r = _chromium(tmp_path, check.as_uri(), "--dump-dom", "--virtual-time-budget=10000")
    finally:
        check.unlink()
    found = re.search(r"IMGCHECK images=(\d+) broken=([^;]*);", r.stdout)
    assert found, r.stdout[-2000:] + r.stderr[-2000:]
    n_plots = len(list(report.glob("rd_*.png")))
    n_crops = len(list((report / "crops").glob("*.png")))
    assert int(found.group(1)) == n_plots + n_crops and found.group(2) == ""
