"""Large images through the CLI: --tile gives the same files and decodes as whole-image runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def test_cli_tile_changes_nothing(run_cli, check_error, sample_full, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(sample_full).resize((300, 220)).save(src)
    outs = {}
    for tile in ("0", "64"):
        jpg, png = tmp_path / f"t{tile}.jpg", tmp_path / f"t{tile}.png"
        assert run_cli(["compress", src, "-o", jpg, "-m", "lowres2-jpeg", "--tile", tile])[0] == 0
        assert run_cli(["decompress", jpg, "-o", png, "--tile", tile])[0] == 0
        outs[tile] = (jpg.read_bytes(), np.asarray(Image.open(png)))
    assert outs["0"][0] == outs["64"][0] and np.array_equal(outs["0"][1], outs["64"][1])
    # the progressive codec codes large images as independent tiles (a different file)
    code, _, err = run_cli(
        ["compress", src, "-o", tmp_path / "a.sndr", "-m", "rnn", "--tile", "64", "-k", "1"]
    )
    assert code == 0, err
    code, _, err = run_cli(["compress", src, "-o", tmp_path / "b.jpg", "--tile", "-5"])
    assert "--tile -5" in check_error(code, err)
