"""Data-parallel training: ``torchrun --nproc_per_node=2 -m sandwich train`` on the CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file


def _data(folder: Path, sample: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    Image.fromarray(sample[:48, :64]).save(folder / "a.png")
    Image.fromarray(sample[120:180, 100:150]).save(folder / "b.png")
    return folder


def _args(data: Path, out: Path, batch: int) -> list[str]:
    return [
        "train", "--scenario", "gray", "--data", str(data), "--out", str(out), "--steps", "3",
        "--batch", str(batch), "--patch", "32", "--pre-widths", "8", "--post-widths", "8",
        "--threads", "1", "--log-every", "1",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def test_two_processes_match_one_process_with_the_global_batch(
    tmp_path: Path, sample_full: np.ndarray
) -> None:
    data = _data(tmp_path / "data", sample_full)
    two, one = tmp_path / "two", tmp_path / "one"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    r = subprocess.run(
        [*launch, "-m", "sandwich", *_args(data, two, 2)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(
        [sys.executable, "-m", "sandwich", *_args(data, one, 4)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]

    # rank 0 alone wrote the run folder, with one log record per step
    records = [json.loads(x) for x in (two / "log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in records] == [1, 2, 3]
    ckpt = load_file(str(two / "checkpoint.safetensors"))
    assert "rng/torch_rank1" in ckpt, "every rank's random state is saved for an exact resume"
    # DDP averages gradients: 2 x batch 2 takes the steps of 1 x batch 4 (same global batch)
    wa, wb = load_file(str(two / "model.safetensors")), load_file(str(one / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
    first_two = [json.loads(x) for x in (one / "log.jsonl").read_text().splitlines()]
    for a, b in zip(records, first_two, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-3 * max(1.0, abs(b["loss"]))


def test_rnn_training_runs_on_two_processes(tmp_path: Path, sample_full: np.ndarray) -> None:
    data = _data(tmp_path / "data", sample_full)
    out = tmp_path / "rnn"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [
        "train-rnn", "--data", str(data), "--out", str(out), "--steps", "2", "--batch", "1",
        "--patch", "32", "--iterations", "2", "--iterations-start", "1", "--threads", "1",
        "--log-every", "1",
    ]  # fmt: skip
    r = subprocess.run(
        [*launch, "-m", "sandwich", *args], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("weights:") == 1, "only rank 0 reports"
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in records] == [1, 2]
    assert "rng/torch_rank1" in load_file(str(out / "checkpoint.safetensors"))
