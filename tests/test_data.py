"""Tests of the offline image corpus (``sandwich data``); only the fast, wheel-only part runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sandwich.cli import main
from sandwich.data import corpus
from sandwich.data.corpus import build_corpus, list_images
from sandwich.errors import SandwichError


@pytest.fixture(scope="module")
def val_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus") / "c"
    return out, build_corpus(out, debian=False, progress=False)


def test_val_images(val_corpus: tuple[Path, dict]) -> None:
    out, manifest = val_corpus
    files = list_images(out / "val")
    assert len(files) >= 5
    assert list_images(out / "train") == []
    listed = {e["file"] for e in manifest["images"]}
    assert listed == {f"val/{p.name}" for p in files}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for entry in manifest["images"]:
        with Image.open(out / entry["file"]) as img:
            assert img.mode == "RGB"
            assert np.asarray(img).dtype == np.uint8
            w, h = img.size
        assert w % 16 == 0 and h % 16 == 0 and w > 0 and h > 0
        assert [w, h] == entry["final_size"]
        assert entry["split"] == "val" and entry["downscale"] == 2
        assert entry["licence"] and entry["source"] and entry["original_path"]
    assert manifest["totals"]["val"]["count"] == len(files)
    assert manifest["command"] and manifest["created"]
    assert not list(out.parent.glob(".c.*")), "temporary folders left behind"


def test_refuses_existing_then_force(val_corpus: tuple[Path, dict]) -> None:
    out, _ = val_corpus
    with pytest.raises(SandwichError, match="--force"):
        build_corpus(out, debian=False, progress=False)
    again = build_corpus(out, debian=False, force=True, progress=False)
    assert again["totals"] == val_corpus[1]["totals"]
    assert not list(out.parent.glob(".c.*"))


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    assert main(["data", "--out", str(out), "--no-debian"]) == 0
    assert (out / "manifest.json").is_file()
    assert list_images(out / "val")
    assert main(["data", "--out", str(out), "--no-debian"]) == 2  # refuses to overwrite


def test_missing_apt_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus.shutil, "which", lambda _name: None)
    out = tmp_path / "corpus"
    with pytest.raises(SandwichError, match="--no-debian"):
        build_corpus(out, debian=True, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-built corpus, no temporary folder


def test_helpers(tmp_path: Path) -> None:
    assert corpus.train_factor(4352, 2448) == 5
    assert corpus.train_factor(1280, 1024) == 2
    assert corpus.train_factor(600, 400) == 2
    assert corpus.crop_box(451, 300) == (1, 6, 449, 294)
    img = Image.new("RGB", (101, 64), (10, 20, 30))
    small = corpus.downscale(img, 3)
    assert small.size == (33, 21)
    assert np.all(np.asarray(small) == [10, 20, 30])
    assert corpus.to_rgb8(Image.new("I;16", (4, 4), 65535)).getpixel((0, 0)) == (255, 255, 255)

    for name in ("b.PNG", "a.jpg", "c.txt", "d.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.webp"]
    with pytest.raises(SandwichError):
        list_images(tmp_path / "missing")


def test_dep5() -> None:
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: Someone\nLicense: GPL-2+\n\n"
        "Files: 16.04/Bridge.jpg\n       16.04/Other.jpg\nCopyright: 2018, A B\n"
        "License: CC-BY-SA-4.0\n\n"
        "Files: external/wesaturate/*\nCopyright: none\nLicense: CC0\n\n"
        "License: GPL-2+\n Long text.\n"
    )
    entries = corpus.parse_dep5(text)
    assert len(entries) == 3
    assert corpus.dep5_licence(entries, "Bridge.jpg") == ("CC-BY-SA-4.0", "2018, A B")
    assert corpus.dep5_licence(entries, "Other.jpg")[0] == "CC-BY-SA-4.0"
    assert corpus.dep5_licence(entries, "external/wesaturate/500px/x.png")[0] == "CC0"
    assert corpus.dep5_licence(entries, "jxl/flower/flower.png")[0] == "GPL-2+"


def test_largest_plasma_image(tmp_path: Path) -> None:
    images = tmp_path / "Path" / "contents" / "images"
    images.mkdir(parents=True)
    for name in ("1920x1080.jpg", "5120x2880.png", "720x1440.jpg", "screenshot.png"):
        (images / name).write_bytes(b"")
    (images / "9999x9999.jpg").mkdir()  # not a file
    assert corpus.largest_plasma_image(tmp_path / "Path") == images / "5120x2880.png"
    assert corpus.largest_plasma_image(tmp_path / "Missing") is None


def test_extra_items_splits_names_and_licences(tmp_path: Path) -> None:
    """The extra/dev photos map to distinct names, carry their package's licence, and a photo
    missing from a package version is recorded as skipped instead of failing the build."""
    debs = {}
    for name in corpus.DEB_EXTRA:
        root = tmp_path / name
        debs[name] = corpus._Deb(
            name,
            "1",
            tmp_path / f"{name}.deb",
            root,
            "/copyright",
            [(["*"], f"licence of {name}", "someone")],
        )
    present = [k for k in corpus.EXTRA_PHOTOS if k != ("plasma-workspace-wallpapers", "Grey")]
    for package, entry in present:
        root = debs[package].root
        if package == "plasma-workspace-wallpapers":
            path = root / corpus.PLASMA_ROOT / entry / "contents" / "images" / "2560x1600.jpg"
        else:
            path = root / "usr/share/backgrounds" / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    skipped: list[dict] = []
    items = corpus._extra_items(debs, skipped)
    assert len(items) == len(present)
    assert skipped == [
        {"source": "plasma-workspace-wallpapers", "file": "Grey", "reason": "not in this version"}
    ]
    assert len({i.name for i in items}) == len(items)
    assert {i.split for i in items} == {"extra", "dev"}
    for item in items:
        assert item.licence == f"licence of {item.source}" and item.factor is None
        assert item.original_path.startswith("/usr/share/")
