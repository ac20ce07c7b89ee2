"""The progressive recurrent codec: model, real files, truncation, errors, thread determinism."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sandwich.errors import SandwichError
from sandwich.formats.sndr import truncate, unpack
from sandwich.models.progressive import ProgressiveCodec, ProgressiveConfig, pad_to_block
from sandwich.nets.recurrent import ConvLSTMCell, ConvResGRUCell

TINY = ProgressiveConfig((8, 16, 16, 16), (16, 16, 16, 16), max_iterations=4)


def tiny(mode: str = "scaled", unit: str = "gru", seed: int = 0) -> ProgressiveCodec:
    torch.manual_seed(seed)
    cfg = ProgressiveConfig(TINY.enc_widths, TINY.dec_widths, unit, mode, 32, 4)
    return ProgressiveCodec(cfg, name="tiny").eval()


@pytest.mark.parametrize("cell", [ConvLSTMCell, ConvResGRUCell])
def test_cells_keep_state_and_stride(cell) -> None:
    c = cell(4, 6, stride=2)
    x = torch.randn(2, 4, 8, 10)
    h1, s1 = c(x, None)
    h2, _ = c(x, s1)
    assert h1.shape == (2, 6, 4, 5)
    assert not torch.allclose(h1, h2), "the state must change the output"


@pytest.mark.parametrize("mode", ["oneshot", "additive", "scaled"])
@pytest.mark.parametrize("unit", ["gru", "lstm"])
def test_forward_shapes_and_binary_codes(mode: str, unit: str) -> None:
    m = tiny(mode, unit).train()
    x = torch.rand(2, 3, 32, 48) * 255
    out = m(x, 3)
    assert len(out.x_hats) == 3 and out.x_hats[0].shape == x.shape
    assert out.codes.shape == (3, 2, 32, 2, 3)
    assert set(out.codes.unique().tolist()) <= {-1.0, 1.0}
    loss = sum((xh - x).abs().mean() for xh in out.x_hats)
    loss.backward()
    assert m.encoder.conv.weight.grad.abs().sum() > 0, "gradient must reach the encoder"


def test_training_binarizer_is_stochastic_use_is_not() -> None:
    m = tiny().train()
    x = torch.rand(1, 3, 32, 32) * 255
    torch.manual_seed(1)
    a = m(x, 2).codes
    torch.manual_seed(2)
    b = m(x, 2).codes
    assert not torch.equal(a, b)
    m.eval()
    assert torch.equal(m(x, 2).codes, m(x, 2).codes)


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (32, 16), (5, 70)])
def test_file_round_trip_any_size(size: tuple[int, int]) -> None:
    m = tiny()
    img = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    data = m.compress(img, 3)
    header, chunks, truncated = unpack(data)
    assert (header.height, header.width, header.iterations) == (*size, 3)
    assert len(chunks) == 3 and not truncated
    rec = m.decompress(data)
    assert rec.shape == img.shape and rec.dtype == np.uint8
    # the file decodes to exactly what the encoder's own reconstruction was
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].double()
    with torch.no_grad():
        ref = copy.deepcopy(m).double()(pad_to_block(x), 3).x_hats[-1][0, :, : size[0], : size[1]]
    expected = ref.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(rec, expected)


def test_progressive_truncation_gives_the_k_iteration_image(sample_rgb) -> None:
    m = tiny()
    data = m.compress(sample_rgb, 4)
    images, info = m.decode_file(data)
    assert info.iterations == 4 and len(images) == 4
    sizes = []
    for k in range(1, 5):
        cut = truncate(data, k)
        sizes.append(len(cut))
        np.testing.assert_array_equal(m.decompress(cut), images[k - 1])
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    # a file cut in the middle of the last chunk decodes the complete iterations
    part, info = m.decode_file(data[:-3])
    assert info.truncated and info.iterations == 3
    np.testing.assert_array_equal(part[-1], images[2])


def test_corrupt_and_foreign_files_give_clear_errors(sample_rgb) -> None:
    m = tiny()
    data = bytearray(m.compress(sample_rgb, 2))
    data[-8] ^= 0x40
    with pytest.raises(SandwichError, match="corrupt"):
        m.decompress(bytes(data))
    with pytest.raises(SandwichError):
        m.decompress(b"\xff\xd8\xff\xe0 not ours")
    with pytest.raises(SandwichError):
        m.decompress(b"")
    other = tiny(seed=5)
    with pytest.raises(SandwichError, match="weight hash"):
        other.decompress(m.compress(sample_rgb, 1))
    with pytest.raises(SandwichError, match="iterations must be"):
        m.compress(sample_rgb, 5)


_DECODE = """
import sys, hashlib
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[3])
from test_progressive import tiny
m = tiny()
images, _ = m.decode_file(open(sys.argv[2], "rb").read())
print(hashlib.sha256(b"".join(i.tobytes() for i in images)).hexdigest())
"""


def test_decoding_is_bit_identical_with_1_and_2_threads(sample_full, tmp_path: Path) -> None:
    m = tiny()
    f = tmp_path / "x.sndr"
    f.write_bytes(m.compress(sample_full[:96, :128].copy(), 4))
    digests = set()
    for threads in ("1", "2"):
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}
        r = subprocess.run(
            [sys.executable, "-c", _DECODE, threads, str(f), str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        digests.add(r.stdout.strip())
    assert len(digests) == 1, "decoded images differ between 1 and 2 threads"


# --------------------------------------------------------------------------- the zoo model + CLI
def test_zoo_rnn_compress_decompress_files(run_cli, small_png, tmp_path: Path) -> None:
    from sandwich.zoo import load_model

    net = load_model("rnn")
    assert net.name == "rnn" and net.cfg.max_iterations >= 8
    src = small_png("a.png", size=(37, 50))
    out = tmp_path / "a.sndr"
    code, stdout, _ = run_cli(["compress", src, "-o", out, "--model", "rnn", "--iterations", "3"])
    assert code == 0 and "3 iterations" in stdout
    header, chunks, truncated = unpack(out.read_bytes())
    assert (header.model, header.height, header.width, len(chunks)) == ("rnn", 37, 50, 3)
    png = tmp_path / "decoded.png"
    code, stdout, _ = run_cli(["decompress", out, "-o", png])
    assert code == 0 and "3 iterations" in stdout
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (50, 37) and im.mode == "RGB"
    # --target-bpp keeps as many iterations as fit
    out2 = tmp_path / "b.sndr"
    code, stdout, _ = run_cli(
        ["compress", src, "-o", out2, "--model", "rnn", "--target-bpp", "0.6"]
    )
    assert code == 0
    assert 8 * out2.stat().st_size / (37 * 50) <= 0.6
    # folder in, folder out; decompress picks up .sndr files
    folder = tmp_path / "in"
    small_png("in/x.png", size=(20, 30))
    small_png("in/y.png", size=(33, 17))
    code, _, _ = run_cli(["compress", folder, "-o", tmp_path / "c", "-m", "rnn", "-k", "2"])
    assert code == 0 and sorted(p.name for p in (tmp_path / "c").iterdir()) == ["x.sndr", "y.sndr"]
    code, _, _ = run_cli(["decompress", tmp_path / "c", "-o", tmp_path / "d"])
    assert code == 0 and sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.png", "y.png"]


def test_zoo_rnn_bad_inputs(run_cli, check_error, small_png, tmp_path: Path) -> None:
    src = small_png("a.png", size=(32, 32))
    out = tmp_path / "a.sndr"
    msg = check_error(*run_cli(["compress", src, "-o", out, "-m", "rnn", "-q", "50"])[::2])
    assert "--iterations" in msg
    msg = check_error(*run_cli(["compress", src, "-o", out, "-m", "rnn", "-k", "99"])[::2])
    assert "--iterations 99" in msg
    msg = check_error(
        *run_cli(["compress", src, "-o", out, "-m", "rnn", "--target-bpp", "0.01"])[::2]
    )
    assert "below the smallest" in msg
    assert not out.exists()
    assert run_cli(["compress", src, "-o", out, "-m", "rnn", "-k", "2"])[0] == 0
    msg = check_error(*run_cli(["compress", src, "-o", out, "-m", "rnn", "-k", "2"])[::2])
    assert "--force" in msg
    data = out.read_bytes()
    # cut inside the last chunk: decodes the complete iteration, says so
    cut = tmp_path / "cut.sndr"
    cut.write_bytes(data[:-2])
    code, stdout, _ = run_cli(["decompress", cut, "-o", tmp_path / "cut.png"])
    assert code == 0 and "1 iterations" in stdout and "cut short" in stdout
    # cut inside the header, or a flipped payload byte: one clear error, no output
    for name, blob in (("head.sndr", data[:9]), ("flip.sndr", data[:-6] + b"\0" + data[-5:])):
        (tmp_path / name).write_bytes(blob)
        png = tmp_path / (name + ".png")
        msg = check_error(*run_cli(["decompress", tmp_path / name, "-o", png])[::2])
        assert name in msg and not png.exists()


def test_bench_rnn_table(run_cli, small_png, tmp_path: Path) -> None:
    src = small_png("a.png", size=(64, 80))
    js, md = tmp_path / "rnn.json", tmp_path / "rnn.md"
    code, out, err = run_cli(["bench", "rnn", src, "--json", js, "--markdown", md])
    assert code == 0, err
    import json

    res = json.loads(js.read_text())
    table = res["table"]
    from sandwich.zoo import load_model

    assert len(table) == load_model("rnn").cfg.max_iterations
    bpps = [r["bpp"] for r in table]
    assert bpps == sorted(bpps) and len(set(bpps)) == len(bpps)
    for r in table:
        assert 0 < r["msssim"] <= 1 and 0 < r["jpeg_msssim"] <= 1 and r["ratio"] == 24 / r["bpp"]
        assert abs(r["raw_bpp"] - 0.125 * r["iterations"]) < 1e-9  # 64x80: no padding
    assert "| iterations |" in md.read_text()


def test_zoo_rnn_improves_with_every_iteration(sample_full: np.ndarray) -> None:
    """The shipped model: each iteration adds bits and raises MS-SSIM (bundled sample)."""
    from sandwich.evaluation.metrics import ms_ssim
    from sandwich.zoo import load_model

    net = load_model("rnn")
    img = sample_full[:192, :192].copy()
    data = net.compress(img)
    images, info = net.decode_file(data)
    scores = [ms_ssim(img, rec) for rec in images]
    sizes = [len(truncate(data, k)) for k in range(1, info.iterations + 1)]
    assert all(b > a for a, b in zip(sizes, sizes[1:], strict=False))
    assert all(b > a for a, b in zip(scores, scores[1:], strict=False)), scores
