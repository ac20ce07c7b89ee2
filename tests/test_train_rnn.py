"""``sandwich train-rnn``: a tiny real run, its learning curve, exact resume, bad options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sandwich.training.loop import run
from sandwich.training.progressive_task import ProgressiveTask, ProgressiveTrainConfig


def _data(folder: Path, sample: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    Image.fromarray(sample[:64, :80]).save(folder / "a.png")
    Image.fromarray(sample[100:180, 90:170]).save(folder / "b.png")
    return folder


def test_train_rnn_cli_with_learning_curve(run_cli, check_error, tmp_path: Path, sample_full):
    data = _data(tmp_path / "data", sample_full)
    val = tmp_path / "val"
    val.mkdir()
    Image.fromarray(sample_full).save(val / "v.png")  # 256x256: one 256px centre crop
    run = tmp_path / "run"
    argv = [
        "train-rnn", "--data", data, "--out", run, "--steps", "4", "--batch", "2",
        "--patch", "32", "--iterations", "3", "--iterations-start", "1", "--threads", "1",
        "--log-every", "2", "--val", val, "--val-every", "2",
    ]  # fmt: skip
    code, out, err = run_cli(argv)
    assert code == 0, err
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    its = [r["iterations"] for r in records]
    assert its[0] < its[-1] == 3  # the curriculum ramps up
    for r in records:
        assert len(r["val"]["msssim"]) == 3 and all(0 < v <= 1 for v in r["val"]["msssim"])
    side = json.loads((run / "model.json").read_text())
    assert side["kind"] == "progressive" and side["config"]["max_iterations"] == 3

    from sandwich.zoo.weights import load_progressive_weights

    net = load_progressive_weights(run / "model.safetensors")
    img = sample_full[:40, :50].copy()
    assert net.decompress(net.compress(img, 2)).shape == img.shape

    code, out, err = run_cli(["plot-log", run, "-o", tmp_path / "curve.png"])
    assert code == 0, err
    with Image.open(tmp_path / "curve.png") as im:
        assert im.size[0] > 500
    assert "--force" in check_error(*run_cli(["plot-log", run, "-o", tmp_path / "curve.png"])[::2])
    assert "--resume" in check_error(*run_cli(argv)[::2])
    for opt, bad in (("--unit", "rnn"), ("--mode", "sum"), ("--preset", "huge")):
        code, _, err = run_cli([*argv[:-4], opt, bad, "--force"])
        assert bad in check_error(code, err)
    code, _, err = run_cli([*argv[:-4], "--patch", "40", "--force"])
    assert "multiple of 16" in check_error(code, err)


def train_progressive(cfg: ProgressiveTrainConfig, **kwargs):
    return run(ProgressiveTask(cfg), **kwargs)


def test_train_rnn_resume_is_exact(tmp_path: Path, sample_full: np.ndarray) -> None:
    data = _data(tmp_path / "data", sample_full)

    def cfg(out: Path) -> ProgressiveTrainConfig:
        return ProgressiveTrainConfig(
            data=str(data), out=str(out), steps=4, batch=2, patch=32, iterations=2,
            iterations_start=1, threads=1, log_every=1, ckpt_every=100,
        )  # fmt: skip

    a = train_progressive(cfg(tmp_path / "A"), progress=False)
    train_progressive(cfg(tmp_path / "B"), progress=False, stop_after=2)
    b = train_progressive(cfg(tmp_path / "B"), resume=True, progress=False)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    la = (tmp_path / "A" / "log.jsonl").read_text().splitlines()
    lb = (tmp_path / "B" / "log.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in la]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in lb]


def test_large_checkpoints_are_split_and_resume_exactly(
    tmp_path: Path, sample_full: np.ndarray, monkeypatch
) -> None:
    import sandwich.training.checkpoint as ck

    monkeypatch.setattr(ck, "SHARD_BYTES", 2_000_000)  # above the largest single tensor
    data = _data(tmp_path / "data", sample_full)

    def cfg(out: Path) -> ProgressiveTrainConfig:
        return ProgressiveTrainConfig(
            data=str(data), out=str(out), steps=3, batch=1, patch=32, iterations=1,
            iterations_start=1, threads=1, ckpt_every=100, preset="cpu-s",
        )  # fmt: skip

    a = train_progressive(cfg(tmp_path / "A"), progress=False)
    train_progressive(cfg(tmp_path / "B"), progress=False, stop_after=2)
    shards = sorted((tmp_path / "B").glob("checkpoint.optim-*.safetensors"))
    assert len(shards) >= 2
    assert all(f.stat().st_size <= 2_000_000 + 10_000 for f in shards)
    b = train_progressive(cfg(tmp_path / "B"), resume=True, progress=False)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    shards[0].write_bytes(shards[1].read_bytes())  # a shard from another place: refused
    import pytest

    from sandwich.errors import SandwichError

    with pytest.raises(SandwichError, match="not from the same save"):
        train_progressive(cfg(tmp_path / "B"), resume=True, progress=False)
