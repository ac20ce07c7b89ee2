"""Training checkpoints as safetensors (no pickle): everything needed to resume exactly.

Tensors: the model (``model/<name>``), the optimiser state (``optim/<param index>/<key>``) and the
random-number generator states (``rng/...``, uint8). JSON in the file's metadata: the step, the
run config, the optimiser's param groups and the scheduler state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def save_checkpoint(
    path: Path, model, opt, sched, gen, step: int, config: dict, rank_rng: list | None = None
) -> None:
    """Write a checkpoint; ``rank_rng`` holds the torch RNG state of every rank (distributed)."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    opt_state = opt.state_dict()
    scalars: dict[str, dict] = {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0:
                tensors[f"optim/{idx}/{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = float(v)
    tensors["rng/gen"] = gen.get_state()
    tensors["rng/torch"] = torch.get_rng_state()
    for r, state in enumerate(rank_rng or []):
        if r > 0:
            tensors[f"rng/torch_rank{r}"] = state
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    meta = {
        "step": str(step),
        "config": json.dumps(config),
        "param_groups": json.dumps(opt_state["param_groups"]),
        "optim_scalars": json.dumps(scalars),
        "sched": json.dumps(sched.state_dict()),
    }
    tmp = path.with_suffix(path.suffix + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_meta(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    return {"step": int(meta["step"]), "config": json.loads(meta["config"])}


def load_checkpoint(path: Path, model, opt, sched, gen, device, rank: int = 0) -> int:
    """Restore everything saved by :func:`save_checkpoint`; returns the step.

    Rank ``r`` > 0 of a distributed run restores its own torch RNG state when the checkpoint has
    one (a run resumed with more processes than it was saved with starts those from rank 0's).
    """
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v.to(device)
    for idx, st in json.loads(meta["optim_scalars"]).items():
        for name, v in st.items():
            state.setdefault(int(idx), {})[name] = torch.tensor(v)
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    sched.load_state_dict(json.loads(meta["sched"]))
    gen.set_state(tensors["rng/gen"])
    torch.set_rng_state(tensors.get(f"rng/torch_rank{rank}", tensors["rng/torch"]))
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return int(meta["step"])


def trim_log(path: Path, step: int) -> None:
    """Drop log records written after ``step`` (a resumed run redoes those steps)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    os.replace(tmp, path)
