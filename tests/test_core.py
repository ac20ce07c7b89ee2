"""The codec-generic core: knobs, codec and proxy registries, the model registry, the library
API, colour transforms, and a package without import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sandwich import api
from sandwich.codecs import CODECS, get_codec
from sandwich.codecs.base import Knob
from sandwich.errors import SandwichError
from sandwich.media.color import rgb_to_ycbcr, rgb_to_yuv, yuv_to_rgb
from sandwich.models.progressive import ProgressiveCodec
from sandwich.models.registry import MODEL_TYPES, build_model, identify_file
from sandwich.models.sandwich import SandwichModel
from sandwich.proxies import PROXIES, get_proxy
from sandwich.scenarios import SCENARIOS

SRC = Path(__file__).resolve().parents[1] / "src" / "sandwich"


def test_knob_ranges_and_directions() -> None:
    crf = Knob("crf", 0, 51, higher_is_better=False, label="x264 CRF")
    assert 23 in crf and 52 not in crf and 2.5 not in crf
    assert crf.values()[0] == 51.0 and crf.values()[-1] == 0.0  # smallest file first
    assert get_codec("jpeg").knob.describe() == "JPEG quality 1..100 (higher is better)"
    for name in CODECS:
        knob = CODECS[name].knob
        assert knob.lo < knob.hi and knob.name == "quality"


def test_every_scenario_names_a_registered_codec_and_proxy() -> None:
    for s in SCENARIOS.values():
        real = get_codec(s.codec, subsampling=s.subsampling)
        proxy = get_proxy(s.proxy, subsampling=s.subsampling)
        assert real.knob == proxy.knob and real.channels == proxy.channels == s.bottleneck_channels
        q = torch.tensor([10.0, 50.0, 90.0])
        assert torch.equal(real.condition(q, 3), proxy.condition(q, 3))
    with pytest.raises(SandwichError, match="unknown proxy"):
        get_proxy("nope")
    assert set(PROXIES) <= set(CODECS)


def test_model_registry_builds_and_identifies(sample_rgb: np.ndarray) -> None:
    assert MODEL_TYPES["sandwich"] is SandwichModel
    assert MODEL_TYPES["progressive"] is ProgressiveCodec
    net = build_model("sandwich", {"scenario": "gray", "pre_widths": [8], "post_widths": [8]})
    data = net.compress(sample_rgb, 40)
    kind, fmt, name, version = identify_file(data)
    assert (kind, fmt, name, version) == (SandwichModel, "JPEG", "local", 0)
    assert identify_file(b"\x89PNG\r\n\x1a\n") is None
    with pytest.raises(SandwichError, match="unknown model type"):
        build_model("nope", {})


def test_library_compress_and_decompress(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "a.png"
    Image.fromarray(sample_rgb).save(src)
    done = api.compress(src, tmp_path / "a.jpg", model="gray-modem", value=60)
    assert len(done) == 1 and done[0].knob == "quality" and done[0].value == 60
    back = api.decompress(tmp_path / "a.jpg", tmp_path / "b.png")
    assert back[0].model == "gray-modem"
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == sample_rgb.shape
    with pytest.raises(SandwichError, match="--force"):
        api.compress(src, tmp_path / "a.jpg", model="gray-modem")
    v, data = build_model(
        "sandwich", {"scenario": "rgb", "pre_widths": [8], "post_widths": [8]}
    ).compress_to_bpp(sample_rgb, 2.0)
    assert 1 <= v <= 100 and 8 * len(data) / sample_rgb[..., 0].size <= 2.0


@pytest.mark.parametrize("standard", ["bt601", "bt709"])
@pytest.mark.parametrize("full", [True, False])
def test_yuv_round_trip(standard: str, full: bool) -> None:
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64) * 255
    y = rgb_to_yuv(x, standard, full)
    assert torch.allclose(yuv_to_rgb(y, standard, full), x, atol=1e-9)
    if not full:  # studio range: white at 235, chroma of gray at 128
        white = rgb_to_yuv(torch.full((1, 3, 1, 1), 255.0, dtype=torch.float64), standard, full)
        assert torch.allclose(white.flatten(), torch.tensor([235.0, 128, 128], dtype=torch.float64))
    if full and standard == "bt601":  # JFIF's transform, as the JPEG proxy uses it
        assert torch.allclose(y, rgb_to_ycbcr(x), atol=1e-6)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sandwich"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sandwich"))
    return found


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles() -> None:
    """Between modules (function-level imports count too); a package's __init__ re-exporting
    its own submodules is not a cycle."""
    files = sorted(SRC.rglob("*.py"))
    mods = {_module(f) for f in files}
    graph = {}
    for f in files:
        me, deps = _module(f), set()
        for m in _imports(f):
            while m and m not in mods:
                m = m.rpartition(".")[0]
            if m and m != me and not (me.startswith(m + ".") and m in mods):
                deps.add(m)
        graph[me] = deps
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                cycle = path[path.index(d) :] + [d] if d in path else [m, d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    mods = sorted(_module(f) for f in SRC.rglob("*.py") if f.name != "__main__.py")
    code = f"import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
