"""Training checkpoints as safetensors (no pickle): everything needed to resume exactly.

Tensors: the model (``model/<name>``), the optimiser state (``optim/<param index>/<key>``) and the
random-number generator states (``rng/...``, uint8). JSON in the file's metadata: the step, the
run config, the optimiser's param groups and the scheduler state.

A checkpoint larger than :data:`SHARD_BYTES` is split: the optimiser tensors go to
``<name>.optim-<k>.safetensors`` files of at most that size (so every file stays committable
under the project's 10 MB per-file limit), written before the main file, whose metadata lists
them with their SHA-256, so a main file never pairs with shards of another save.
"""

from __future__ import annotations

import hashlib
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
    shards = _split(tensors)
    names = []
    for k, shard in enumerate(shards[1:], start=1):
        shard_path = path.with_name(f"{path.stem}.optim-{k}{path.suffix}")
        _atomic_save(shard, shard_path, {})
        names.append([shard_path.name, hashlib.sha256(shard_path.read_bytes()).hexdigest()])
    for old in path.parent.glob(f"{path.stem}.optim-*{path.suffix}"):
        if old.name not in {n for n, _ in names}:
            old.unlink()
    meta["shards"] = json.dumps(names)
    _atomic_save(shards[0], path, meta)


SHARD_BYTES = 9_000_000


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() * v.element_size() for v in tensors.values())


def _split(tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """[main, shard 1, ...]: model and RNG tensors in main, optimiser tensors filled in after
    them, a new shard whenever the current file would pass SHARD_BYTES."""
    current = {k: v for k, v in tensors.items() if not k.startswith("optim/")}
    files, used = [current], _nbytes(current)
    for k, v in tensors.items():
        if not k.startswith("optim/"):
            continue
        n = v.numel() * v.element_size()
        if current and used + n > SHARD_BYTES:
            current, used = {}, 0
            files.append(current)
        current[k] = v
        used += n
    return files


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, meta: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _load_all(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors of a checkpoint and its shards (checked against their recorded hashes), meta."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    for name, digest in json.loads(meta.get("shards", "[]")):
        shard = path.with_name(name)
        if not shard.is_file() or hashlib.sha256(shard.read_bytes()).hexdigest() != digest:
            from sandwich.errors import SandwichError

            raise SandwichError(f"{shard}: missing or not from the same save as {path.name}")
        tensors.update(load_file(str(shard)))
    return tensors, meta


def read_meta(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    return {"step": int(meta["step"]), "config": json.loads(meta["config"])}


def load_checkpoint(path: Path, model, opt, sched, gen, device, rank: int = 0) -> int:
    """Restore everything saved by :func:`save_checkpoint`; returns the step.

    Rank ``r`` > 0 of a distributed run restores its own torch RNG state when the checkpoint has
    one (a run resumed with more processes than it was saved with starts those from rank 0's).
    """
    tensors, meta = _load_all(path)
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


def save_run(ckpt_path: Path, model, opt, sched, gen, step: int, config: dict, d, write_weights):
    """The checkpoint and the weights (``write_weights(model, path, meta)``) of a run at ``step``.

    Under torchrun every rank must call this (it gathers the ranks' RNG states); rank 0 writes.
    """
    from sandwich.training import distributed

    states = distributed.gather_rng_states(d)
    if d.main:
        save_checkpoint(ckpt_path, model, opt, sched, gen, step, config, states)
        meta = {"train": config, "steps": step}
        write_weights(model, ckpt_path.parent / "model.safetensors", meta)
