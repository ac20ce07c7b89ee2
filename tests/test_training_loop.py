"""The training loop with a tiny task: a run end to end, an exact resume, refusals, and a typer
command built from the task's config dataclass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import typer
from safetensors.torch import load_file, save_file
from torch import nn
from typer.testing import CliRunner

from sandwich.errors import SandwichError
from sandwich.training import options
from sandwich.training.checkpoint import read_meta
from sandwich.training.loop import CHECKPOINT, RunOptions, run
from sandwich.training.options import command, config_only, from_options, option
from sandwich.training.task import Task


@dataclass
class ToyConfig:
    out: str = options.out()
    steps: int = options.steps(6)
    batch: int = options.batch(4)
    lr: float = options.lr(0.05)
    lmbda: float = option(1e-3, "weight decay", flag="--lambda")
    seed: int = options.seed()
    ckpt_every: int = options.ckpt_every(4)
    log_every: int = options.log_every(2)
    threads: int = options.threads(1)
    device: str = options.device("cpu")
    kind: str = config_only("toy")
    command: str = options.command_field()


class ToyTask(Task):
    """Fit y = x . w (x: (B, 3) normal) with a small MLP whose dropout draws from torch's RNG,
    so an exact resume needs the data generator's and torch's states both."""

    desc = "toy"
    postfix = {"mse": ".3f"}
    warmup_cap = 2
    clip_norm = 1.0

    def __init__(self, cfg: ToyConfig) -> None:
        self.cfg = cfg

    def check(self) -> None:
        if self.cfg.batch < 1:
            raise SandwichError("batch: use 1 or more")

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.25), nn.Linear(8, 1))

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.lmbda)

    def check_resume(self, config: dict, path: Path) -> None:
        if config["kind"] != self.cfg.kind:
            raise SandwichError(f"{path} is not a {self.cfg.kind} run")

    def open_data(self, d, device) -> None:
        self.d, self.device = d, device
        self.w = torch.tensor([1.0, -2.0, 0.5])

    def sample(self, gen: torch.Generator, step: int):
        x = torch.randn(self.cfg.batch * self.d.world, 3, generator=gen)
        return x.to(self.device), (x @ self.w).to(self.device)

    def loss(self, net: nn.Module, batch):
        x, y = batch
        mse = ((net(x).squeeze(1) - y) ** 2).mean()
        return mse, {"mse": mse.detach()}

    def log_fields(self, step: int, avg: dict[str, float], lr: float, model) -> dict:
        return {"mse": avg["mse"], "lr": lr}

    def evaluate(self, model: nn.Module, step: int, last: bool) -> dict:
        return {"weight_norm": float(model[0].weight.detach().norm())} if last else {}

    def save_weights(self, model: nn.Module, path: Path, meta: dict) -> None:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(path), metadata={"steps": str(meta["steps"])})


def _records(run_dir: Path, drop: tuple[str, ...] = ("elapsed_s",)) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def test_loop_runs_a_task_and_resumes_exactly(tmp_path: Path) -> None:
    a = run(ToyTask(ToyConfig(out=str(tmp_path / "A"))), progress=False)
    part = run(ToyTask(ToyConfig(out=str(tmp_path / "B"))), progress=False, stop_after=4)
    assert read_meta(tmp_path / "B" / CHECKPOINT)["step"] == 4
    assert any(not torch.equal(v, part.state_dict()[k]) for k, v in a.state_dict().items())
    b = run(ToyTask(ToyConfig(out=str(tmp_path / "B"))), resume=True, progress=False)

    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    ta, tb = (
        load_file(str(tmp_path / "A" / CHECKPOINT)),
        load_file(str(tmp_path / "B" / CHECKPOINT)),
    )
    assert ta.keys() == tb.keys() and any(k.startswith("optim/") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    # the evaluation runs at the end of each invocation: B's also after step 4, where it stopped
    drop = ("elapsed_s", "weight_norm")
    assert _records(tmp_path / "A", drop) == _records(tmp_path / "B", drop)
    assert ["weight_norm" in r for r in _records(tmp_path / "B")] == [False, True, True]

    rows = [json.loads(x) for x in (tmp_path / "A" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert list(rows[0]) == ["step", "mse", "lr", "elapsed_s"]
    assert list(rows[-1]) == ["step", "mse", "lr", "elapsed_s", "weight_norm"]  # evaluate: last
    config = json.loads((tmp_path / "A" / "config.json").read_text())
    assert config["kind"] == "toy" and config["steps"] == 6
    weights = load_file(str(tmp_path / "A" / "model.safetensors"))
    for k, v in a.state_dict().items():
        assert torch.equal(weights[k], v), k


def test_loop_refusals(tmp_path: Path) -> None:
    cfg = ToyConfig(out=str(tmp_path / "A"), steps=2)
    run(ToyTask(cfg), progress=False)
    with pytest.raises(SandwichError, match="--resume"):
        run(ToyTask(cfg), progress=False)
    with pytest.raises(SandwichError, match="not a other run"):
        run(ToyTask(ToyConfig(out=cfg.out, kind="other")), resume=True, progress=False)
    with pytest.raises(SandwichError, match="batch"):  # the task's check, before any file
        run(ToyTask(ToyConfig(out=str(tmp_path / "C"), batch=0)), progress=False)
    assert not (tmp_path / "C").exists()
    run(ToyTask(cfg), force=True, progress=False)  # restarts
    assert [r["step"] for r in _records(tmp_path / "A")] == [2]


def test_command_from_config_dataclass(tmp_path: Path) -> None:
    app = typer.Typer()
    got: dict = {}

    @command(app, ToyConfig, RunOptions)
    def toy(o) -> None:
        """Train the toy."""
        got["cfg"] = from_options(ToyConfig, o, command="toy ...")
        got["run"] = from_options(RunOptions, o)

    runner = CliRunner()
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Train the toy." in r.output
    for flag in ("--out", "--steps", "--lambda", "--ckpt-every", "--resume", "--stop-after"):
        assert flag in r.output, flag
    assert "weight decay" in r.output and "checkpoint every N steps" in r.output
    assert "--kind" not in r.output and "--command" not in r.output and "--lmbda" not in r.output

    r = runner.invoke(app, ["--out", str(tmp_path / "x"), "--lambda", "0.5", "--stop-after", "3"])
    assert r.exit_code == 0, r.output
    cfg = got["cfg"]
    assert cfg.out == str(tmp_path / "x") and isinstance(cfg.out, str)  # parsed: Path -> str
    assert cfg.lmbda == 0.5 and cfg.steps == 6 and cfg.kind == "toy" and cfg.command == "toy ..."
    assert got["run"] == RunOptions(resume=False, stop_after=3, force=False)
    assert runner.invoke(app, ["--steps", "3"]).exit_code != 0  # --out is required
