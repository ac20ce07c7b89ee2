"""Training a sandwich through the differentiable proxy.

Loss (``--loss psnr``, default) = mean over the batch of 10*log10(MSE_i) + lambda * bpp_i, i.e.
distortion in dB plus lambda dB per bit per pixel: one lambda makes the same rate-distortion
trade-off at every quality (JPEG itself gains about 4-7 dB per bpp over its quality range), where
a plain MSE + lambda * bpp would let the low qualities dominate. ``--loss mse`` gives the
reference's MSE + lambda * bpp. A penalty keeps the bottleneck inside 0..255, where the codec
clips it. Adam, cosine learning rate,
random patches, a JPEG quality drawn per sample from the scenario's range so one model serves all
qualities. Checkpoints hold model, optimiser, scheduler and every random state, so a resumed run
continues exactly as if it had not stopped. Progress goes to a tqdm bar and to ``log.jsonl``.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from sandwich.errors import SandwichError
from sandwich.models.sandwich import SandwichModel
from sandwich.scenarios import get_scenario
from sandwich.training import distributed
from sandwich.training.checkpoint import load_checkpoint, read_meta, save_run, trim_log
from sandwich.training.dataset import PatchSampler
from sandwich.training.losses import distortion, slope_lambda
from sandwich.training.schedule import warmup_cosine
from sandwich.zoo.weights import save_weights


@dataclass
class TrainConfig:
    scenario: str
    data: str
    out: str
    steps: int = 4000
    batch: int = 8
    patch: int = 128
    min_scale: float = 1.0  # scale augmentation (see PatchSampler); 1 = plain crops
    detail_draws: int = 1  # candidate crops per patch, one kept by detail (see PatchSampler)
    lr: float = 1e-3
    base_lr_scale: float = 0.1
    pre_lr_scale: float = 0.3
    quality_input: bool = False
    activation: str = "leaky"
    lmbda: float = 20.0  # rate weight: loss units per bpp (MSE per bpp for the default loss)
    rate_slope: float = 0.0  # extra rate weight as an RD slope, dB per doubling of bpp
    rate_grad: str = "total"  # proxy rate gradient: "total" or "marginal" (see proxies.jpeg)
    loss: str = "mse"
    range_penalty: float = 1.0
    quality_min: int | None = None
    quality_max: int | None = None
    rounding: str = "ste"
    real_codec: bool = False  # forward through the real codec, backward through the proxy
    pre_widths: list[int] = field(default_factory=lambda: [32, 64])
    post_widths: list[int] = field(default_factory=lambda: [32, 64])
    fresh_post: bool = False  # with init: the post-processor's U-Net starts fresh
    seed: int = 0
    ckpt_every: int = 200
    log_every: int = 10
    threads: int = 2
    device: str = "auto"
    init: str | None = None  # start from these weights (a model.safetensors), fresh optimiser
    command: str = ""


def build_model(cfg: TrainConfig) -> SandwichModel:
    model = SandwichModel(
        cfg.scenario,
        tuple(cfg.pre_widths),
        tuple(cfg.post_widths),
        rounding=cfg.rounding,
        quality_input=cfg.quality_input,
        activation=cfg.activation,
    )
    model.proxy.rate_grad = cfg.rate_grad  # a training choice: not part of the model's config
    return model


def init_from(model: SandwichModel, path: str, fresh_post: bool = False) -> None:
    """Copy the weights of ``path`` (a trained model.safetensors) into ``model``.

    The U-Nets of ``model`` may be wider than the source's (same levels): they are widened so
    that the model starts as exactly the source's function (:func:`sandwich.nets.unet.load_widened`)
    and training grows into the extra channels. ``fresh_post``: the post-processor's U-Net keeps
    its fresh initialisation (zero head: the model starts as the source without that U-Net),
    so it may differ from the source's in any way (narrower, other levels).
    """
    from sandwich.nets.unet import UNet, load_widened
    from sandwich.zoo.weights import load_weights

    src = load_weights(Path(path)).state_dict()
    if fresh_post:
        src = {k: v for k, v in src.items() if not k.startswith("post.unet.")}
        src.update({f"post.unet.{k}": v for k, v in model.post.unet.state_dict().items()})
    mismatch = SandwichError(
        f"{path}: its networks do not match this run's (scenario base, --quality-input, or "
        "U-Net levels differ, or a width is narrower); use the configuration of the run that made "
        "it, or wider U-Nets with as many levels"
    )
    state = model.state_dict()
    for name, unet in model.named_modules():
        if not isinstance(unet, UNet):
            continue
        sub = {k[len(name) + 1 :]: v for k, v in src.items() if k.startswith(f"{name}.")}
        if all(
            sub.get(k) is not None and sub[k].shape == v.shape for k, v in unet.state_dict().items()
        ):
            continue
        try:
            load_widened(unet, sub)
        except (KeyError, ValueError):
            raise mismatch from None
        for k, v in unet.state_dict().items():
            src[f"{name}.{k}"] = v
    if src.keys() != state.keys() or any(src[k].shape != state[k].shape for k in state):
        raise mismatch
    model.load_state_dict(src)


def _param_groups(model: SandwichModel, cfg: TrainConfig) -> list[dict]:
    """Post-processor at ``lr``; pre-processor at ``lr * pre_lr_scale``; analytic bases lower."""
    groups: dict[str, list] = {"post": [], "pre": [], "base": []}
    for name, p in model.named_parameters():
        if ".base." in f".{name}":
            groups["base"].append(p)
        elif name.startswith("pre."):
            groups["pre"].append(p)
        else:
            groups["post"].append(p)
    scale = {"post": 1.0, "pre": cfg.pre_lr_scale, "base": cfg.base_lr_scale}
    return [
        {"params": ps, "lr": cfg.lr * scale[k], "name": k}
        for k, ps in groups.items()
        if ps and scale[k] > 0
    ]


CHECKPOINT = "checkpoint.safetensors"


def setup(cfg: TrainConfig, device: torch.device):
    """Model, optimiser, scheduler and data generator of a run, freshly seeded."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(_param_groups(model, cfg))
    sched = warmup_cosine(opt, cfg.steps, min(100, cfg.steps // 10), floor=0.01)
    gen = torch.Generator().manual_seed(cfg.seed)
    return model, opt, sched, gen


def train(
    cfg: TrainConfig,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
):
    """Train (or resume) and return the model; writes checkpoint, log and weights to ``cfg.out``.

    ``stop_after`` ends this run at that step (with a checkpoint) while the schedule still runs to
    ``cfg.steps``, so a long training can be done in slices that resume exactly.
    """
    scenario = get_scenario(cfg.scenario)
    qmin = cfg.quality_min or scenario.quality_range[0]
    qmax = cfg.quality_max or scenario.quality_range[1]
    if not 1 <= qmin <= qmax <= 100:
        raise SandwichError(f"quality range {qmin}..{qmax} is not within 1..100")
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not (resume or force):
        raise SandwichError(f"{ckpt_path} exists; pass --resume to continue or --force to restart")
    torch.set_num_threads(cfg.threads)
    d, device = distributed.init(cfg.device)
    model, opt, sched, gen = setup(cfg, device)
    if cfg.init:  # before OUT is made: weights that do not fit leave no run folder behind
        init_from(model, cfg.init, cfg.fresh_post)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out / "log.jsonl").unlink(missing_ok=True)
    if d.rank:  # other noise (rounding, dithering) per process; same weights and data stream
        torch.manual_seed(cfg.seed + 7919 * d.rank)
    step = 0
    if resume and ckpt_path.exists():
        meta = read_meta(ckpt_path)
        if meta["config"]["scenario"] != cfg.scenario:
            raise SandwichError(
                f"{ckpt_path} is a {meta['config']['scenario']!r} run, not {cfg.scenario!r}"
            )
        step = load_checkpoint(ckpt_path, model, opt, sched, gen, device, d.rank)
        if d.main:
            trim_log(out / "log.jsonl", step)
    if d.main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")
    net = distributed.wrap(model, d, device)

    sampler = PatchSampler(cfg.data, cfg.patch, cfg.min_scale, cfg.detail_draws)
    if sampler.channels != scenario.channels:
        hint = " (build them with `sandwich data --kind material`)" if scenario.multichannel else ""
        raise SandwichError(
            f"{cfg.data} holds {sampler.channels}-channel images but scenario {cfg.scenario!r} "
            f"takes {scenario.channels}-channel ones{hint}"
        )
    if scenario.bit_depth > sampler.bit_depth and d.main:
        tqdm.write(
            f"warning: {cfg.data} holds only {sampler.bit_depth}-bit images, so this "
            f"{scenario.bit_depth}-bit scenario sees no extra precision; build 16-bit training "
            "images with `sandwich data --bit-depth 16`",
            file=sys.stderr,
        )
    log = (out / "log.jsonl").open("a") if d.main else None  # noqa: SIM115 (closed below)
    acc = {"loss": 0.0, "mse": 0.0, "bpp": 0.0, "n": 0}
    t0 = time.time()
    model.train()
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (progress and d.main),
        desc=f"train {cfg.scenario}",
    )
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    while step < end:
        # the whole global batch from the shared generator; this process keeps its slice
        x = distributed.shard(sampler.sample(cfg.batch * d.world, gen), d).to(device)
        q = torch.randint(qmin, qmax + 1, (cfg.batch * d.world,), generator=gen).float()
        q = distributed.shard(q, d)
        res = net(x, q, real_values=cfg.real_codec)
        mse_i = ((res.x_hat - x) ** 2).mean(dim=(1, 2, 3))
        mse = mse_i.mean()
        bpp = res.bpp.mean()
        dist_i = distortion(res.x_hat, x, cfg.loss)
        dist = dist_i.mean()
        b = res.bottleneck
        outside = ((b - 255.0).relu() ** 2 + (-b).relu() ** 2).mean()
        loss = dist + cfg.lmbda * bpp + cfg.range_penalty * outside
        if cfg.rate_slope:
            # the slope is about the rate that grows with the content: without the header
            rate = res.payload_bpp
            loss = loss + (slope_lambda(dist_i, rate, cfg.rate_slope) * rate).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        acc["loss"] += float(loss.detach())
        acc["mse"] += float(mse.detach())
        acc["bpp"] += float(bpp.detach())
        acc["n"] += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == end:
            n = acc.pop("n")
            avg = distributed.mean_over_ranks({k: v / n for k, v in acc.items()}, d)
            m = avg["mse"]
            rec = {
                "step": step,
                "loss": avg["loss"],
                "mse": m,
                "psnr": 10 * math.log10(255**2 / max(m, 1e-9)),
                "bpp": avg["bpp"],
                "lr": sched.get_last_lr()[0],
                "pre_scale": float(model.pre.scale.detach()),
                "post_scale": float(model.post.scale.detach()),
                "elapsed_s": time.time() - t0,
            }
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            bar.set_postfix(psnr=f"{rec['psnr']:.2f}", bpp=f"{rec['bpp']:.3f}")
            acc = {"loss": 0.0, "mse": 0.0, "bpp": 0.0, "n": 0}
        if step % cfg.ckpt_every == 0 or step == end:
            save_run(ckpt_path, model, opt, sched, gen, step, asdict(cfg), d, save_weights)
    bar.close()
    if log is not None:
        log.close()
    distributed.finish(d)
    return model


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["sandwich", *sys.argv[1:]])
