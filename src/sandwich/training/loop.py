"""The training loop that every task (:class:`sandwich.training.task.Task`) runs in.

One run: set up this process (threads, device, the torchrun process group), seed torch with
``cfg.seed`` and build the model, the task's optimiser (Adam) with a linear warm-up
and cosine decay (:func:`sandwich.training.schedule.warmup_cosine`), and a data generator seeded
with ``cfg.seed``. Each step draws a batch, takes the task's loss, back-propagates, optionally
clips the gradients' norm and steps optimiser and schedule. Every ``cfg.log_every`` steps (and at
the last) a record goes to ``OUT/log.jsonl`` (the task's fields averaged over the steps since the
last record and over the processes, plus ``step`` and ``elapsed_s``, seconds since this process
started training) and to the tqdm bar; every ``cfg.ckpt_every`` steps (and at the last) the
checkpoint and the weights are written (:func:`sandwich.training.checkpoint.save_run`).

Checkpoints hold model, optimiser, schedule and every random state, so a resumed run continues
exactly as if it had not stopped; ``stop_after`` ends a run early (with a checkpoint) while the
schedule still runs to ``cfg.steps``, so a long training can be done in slices.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from sandwich.errors import SandwichError
from sandwich.training import distributed
from sandwich.training.checkpoint import load_checkpoint, read_meta, save_run, trim_log
from sandwich.training.options import option
from sandwich.training.schedule import warmup_cosine
from sandwich.training.task import Task

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class RunOptions:
    """How this invocation runs (not part of the run's config): the options of :func:`run`."""

    resume: bool = option(False, "continue from OUT/checkpoint.safetensors")
    stop_after: int | None = option(None, "stop this run at this step (resume later)")
    force: bool = option(False, "restart even if OUT has a checkpoint")


def run(
    task: Task,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> nn.Module:
    """Train (or resume) ``task`` and return its model; writes ``config.json``, ``log.jsonl``,
    the checkpoint and the weights to ``task.cfg.out``.

    ``resume`` continues from the run folder's checkpoint (if any); without it or ``force`` an
    existing checkpoint is refused. ``stop_after`` ends this run at that step. ``progress``
    shows a tqdm bar (main process only).
    """
    cfg = task.cfg
    _check_counts(cfg)
    task.check()
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not (resume or force):
        raise SandwichError(f"{ckpt_path} exists; pass --resume to continue or --force to restart")
    torch.set_num_threads(cfg.threads)
    d, device = distributed.init(cfg.device)

    torch.manual_seed(cfg.seed)
    model = task.build_model().to(device)
    opt = task.optimizer(model)
    sched = warmup_cosine(opt, cfg.steps, min(task.warmup_cap, cfg.steps // 10), task.lr_floor)
    gen = torch.Generator().manual_seed(cfg.seed)
    task.init_weights(model)  # before OUT is made: weights that do not fit leave no folder
    made = _new_paths(out)
    try:
        ready = _set_up(task, model, opt, sched, gen, d, device, resume, ckpt_path)
    except BaseException:
        if d.main:  # a run that fails before its first step leaves nothing behind
            _remove_new(out, made)
        raise
    return _train(task, ready, opt, sched, gen, d, stop_after, progress)


@dataclass
class _Ready:
    """A run set up to take its first step: the (prepared) model, what trains it (the model
    wrapped for several processes, or itself), the step to start from and the run's config."""

    model: nn.Module
    net: nn.Module
    step: int
    config: dict


def _check_counts(cfg) -> None:
    """Whole-number settings every run has, refused when they make no sense (one line)."""
    least = {"steps": 0, "batch": 1, "patch": 1, "ckpt_every": 1, "log_every": 1, "threads": 1}
    for name, lo in least.items():  # 0 steps: just the initial model (a library use)
        value = getattr(cfg, name, None)
        if value is not None and (not isinstance(value, int) or value < lo):
            flag = "--" + name.replace("_", "-")
            raise SandwichError(f"{flag} {value}: give a whole number of at least {lo}")


def _new_paths(out: Path) -> list[Path]:
    """What this run will create if it is not there yet: the folder, its config and log."""
    return [p for p in (out, out / "config.json", out / "log.jsonl") if not p.exists()]


def _remove_new(out: Path, made: list[Path]) -> None:
    for p in made[::-1]:
        if p == out:
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        else:
            p.unlink(missing_ok=True)


def _set_up(task, model, opt, sched, gen, d, device, resume, ckpt_path) -> _Ready:
    """The run folder, the resumed state, config.json, the wrapped model and the data."""
    cfg = task.cfg
    out = Path(cfg.out)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out / "log.jsonl").unlink(missing_ok=True)
    if d.rank:  # other noise (rounding, dithering) per process; same weights and data stream
        torch.manual_seed(cfg.seed + 7919 * d.rank)
    step = 0
    if resume and ckpt_path.exists():
        task.check_resume(read_meta(ckpt_path)["config"], ckpt_path)
        step = load_checkpoint(ckpt_path, model, opt, sched, gen, device, d.rank)
        if d.main:
            trim_log(out / "log.jsonl", step)
    config = asdict(cfg)
    if d.main:
        (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    model = task.prepare(model)
    net = distributed.wrap(model, d, device)
    task.open_data(d, device)
    return _Ready(model, net, step, config)


def _train(task, ready: _Ready, opt, sched, gen, d, stop_after, progress) -> nn.Module:
    """Steps from ``ready.step`` to the end (or ``stop_after``): batches, losses, logs,
    checkpoints."""
    cfg = task.cfg
    model, net, step, config = ready.model, ready.net, ready.step, ready.config
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    log = (out / "log.jsonl").open("a") if d.main else None  # noqa: SIM115 (closed below)
    acc: dict[str, float] = {}
    n = 0
    t0 = time.time()
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and d.main), desc=task.desc)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    while step < end:
        batch = task.sample(gen, step)
        loss, fields = task.loss(net, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if task.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.clip_norm)
        opt.step()
        sched.step()
        step += 1
        for k, v in fields.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        n += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == end:
            avg = distributed.mean_over_ranks({k: v / n for k, v in acc.items()}, d)
            lr = sched.get_last_lr()[0]
            rec = {"step": step, **task.log_fields(step, avg, lr, model)}
            rec["elapsed_s"] = time.time() - t0
            if d.main:
                rec.update(task.evaluate(model, step, step == end))
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            bar.set_postfix({k: format(rec[k], spec) for k, spec in task.postfix.items()})
            acc, n = {}, 0
        if step % cfg.ckpt_every == 0 or step == end:
            save_run(ckpt_path, model, opt, sched, gen, step, config, d, task.save_weights)
    bar.close()
    if log is not None:
        log.close()
    distributed.finish(d)
    return model
