"""Data-parallel training under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node=N -m sandwich train ...`` starts N processes with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` set; several machines join through torchrun's rendezvous
(``--nnodes``, ``--rdzv-endpoint``). Without those variables everything here is a no-op and
training runs in one process.

Every process draws the *whole* global batch from the same seeded generator and keeps its own
slice, so the data of a step does not depend on the number of processes, and the generator
state saved by rank 0 resumes every rank exactly. Gradients are averaged by DDP, so N processes
with ``--batch B`` take the same steps as one process with batch N * B (up to float summation
order). Only rank 0 writes checkpoints, logs and weights and shows progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def pick_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; any other name as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group if launched by torchrun; returns (Dist, this process's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device_name)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    return Dist(dist.get_rank(), dist.get_world_size(), local), device


def wrap(model: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """The module to call for training steps: DDP around ``model`` when distributed."""
    if not d.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(x: Tensor, d: Dist) -> Tensor:
    """This rank's slice of a global batch (first dimension divisible by the world size)."""
    if not d.active:
        return x
    n = x.shape[0] // d.world
    return x[d.rank * n : (d.rank + 1) * n]


def mean_over_ranks(values: dict[str, float], d: Dist) -> dict[str, float]:
    """Average logged scalars over all processes (for the log written by rank 0)."""
    if not d.active:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / d.world for k, v in zip(keys, t, strict=True)}


def gather_rng_states(d: Dist) -> list[Tensor]:
    """Every rank's torch RNG state (collective call; the list is complete on every rank)."""
    state = torch.get_rng_state()
    if not d.active:
        return [state]
    out: list = [None] * d.world
    dist.all_gather_object(out, state)
    return out


def finish(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
