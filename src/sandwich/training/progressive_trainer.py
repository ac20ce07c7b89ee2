"""Training the progressive recurrent codec on random patches.

Loss = mean over iterations t of the distortion of x_hat_t (so every iteration is trained to be
a good image at its own rate). Distortions: ``l1``, ``mse``, ``msssim`` (1 - MS-SSIM over three
scales, which fits small patches) and ``mixed`` (1 - MS-SSIM + ``l1_weight`` * L1). Iteration
curriculum: the number of unrolled iterations grows linearly from ``iterations_start`` to
``iterations`` over the first ``curriculum`` fraction of the steps. Adam with warm-up and cosine
decay. Checkpoints, resume, log and progress follow :mod:`sandwich.training.trainer`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sandwich.errors import SandwichError
from sandwich.evaluation.metrics import ms_ssim_torch
from sandwich.models.progressive import PRESETS, ProgressiveCodec
from sandwich.training import distributed
from sandwich.training.checkpoint import load_checkpoint, read_meta, save_run, trim_log
from sandwich.training.dataset import PatchSampler
from sandwich.training.schedule import warmup_cosine
from sandwich.training.trainer import CHECKPOINT

LOSSES = ("l1", "mse", "msssim", "mixed")


@dataclass
class ProgressiveTrainConfig:
    data: str
    out: str
    preset: str = "cpu-s"
    unit: str = "gru"
    mode: str = "scaled"
    iterations: int = 12
    iterations_start: int = 4
    curriculum: float = 0.3
    steps: int = 10000
    batch: int = 8
    patch: int = 64
    lr: float = 5e-4
    loss: str = "mixed"
    l1_weight: float = 1.0
    seed: int = 0
    val: str = ""
    val_every: int = 500
    ckpt_every: int = 200
    log_every: int = 10
    threads: int = 2
    device: str = "auto"
    command: str = ""
    extra: dict = field(default_factory=dict)

    def model_config(self):
        if self.preset not in PRESETS:
            raise SandwichError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if self.unit not in ("gru", "lstm"):
            raise SandwichError(f"unit {self.unit!r}: use gru or lstm")
        if self.mode not in ("oneshot", "additive", "scaled"):
            raise SandwichError(f"mode {self.mode!r}: use oneshot, additive or scaled")
        return replace(
            PRESETS[self.preset], unit=self.unit, mode=self.mode, max_iterations=self.iterations
        )


def distortion(x_hat: torch.Tensor, x: torch.Tensor, loss: str, l1_weight: float) -> torch.Tensor:
    """Per-batch distortion of reconstructions (N, 3, H, W), 0..255; lower is better."""
    a, b = x_hat / 255.0, x / 255.0
    if loss == "l1":
        return (a - b).abs().mean()
    if loss == "mse":
        return F.mse_loss(a, b)
    d = 1.0 - ms_ssim_torch(a.clamp(0, 1), b, scales=3, win_size=7)
    return d + l1_weight * (a - b).abs().mean() if loss == "mixed" else d


def unrolled(cfg: ProgressiveTrainConfig, step: int) -> int:
    """Iterations unrolled at ``step`` under the curriculum."""
    ramp = cfg.curriculum * cfg.steps
    if ramp <= 0 or step >= ramp:
        return cfg.iterations
    return min(
        cfg.iterations,
        cfg.iterations_start + int((cfg.iterations - cfg.iterations_start) * step / ramp),
    )


VAL_CROP = 256


def load_val_crops(folder: str, device: torch.device) -> torch.Tensor | None:
    """Centre crops (N, 3, 256, 256), 0..255, of the images in ``folder`` (learning curve)."""
    if not folder:
        return None
    from sandwich.media.files import load_rgb
    from sandwich.training.dataset import list_image_files

    crops = []
    for f in list_image_files(folder):
        img = load_rgb(f)
        h, w = img.shape[:2]
        if min(h, w) < VAL_CROP:
            continue
        y, x = (h - VAL_CROP) // 2, (w - VAL_CROP) // 2
        crops.append(torch.from_numpy(img[y : y + VAL_CROP, x : x + VAL_CROP].copy()))
    if not crops:
        raise SandwichError(f"{folder}: no image is at least {VAL_CROP}x{VAL_CROP} pixels")
    return torch.stack(crops).permute(0, 3, 1, 2).float().to(device)


@torch.no_grad()
def validate(model: ProgressiveCodec, crops: torch.Tensor, iterations: int) -> dict:
    """Mean MS-SSIM and PSNR of the (rounded, clipped) reconstruction after each iteration."""
    was = model.training
    model.eval()
    out: dict[str, list[float]] = {"msssim": [], "psnr": []}
    sums = torch.zeros(iterations, 2)
    for x in crops.split(4):
        res = model(x, iterations)
        for t, xh in enumerate(res.x_hats):
            xh = xh.round().clamp(0, 255)
            for i in range(x.shape[0]):
                a, b = xh[i : i + 1] / 255.0, x[i : i + 1] / 255.0
                sums[t, 0] += float(ms_ssim_torch(a, b))
                sums[t, 1] += 10 * math.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-10))
    model.train(was)
    sums /= crops.shape[0]
    out["msssim"] = [round(float(v), 5) for v in sums[:, 0]]
    out["psnr"] = [round(float(v), 3) for v in sums[:, 1]]
    return out


def setup(cfg: ProgressiveTrainConfig, device: torch.device):
    torch.manual_seed(cfg.seed)
    model = ProgressiveCodec(cfg.model_config()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = warmup_cosine(opt, cfg.steps, min(200, cfg.steps // 10), floor=0.02)
    gen = torch.Generator().manual_seed(cfg.seed)
    return model, opt, sched, gen


def train_progressive(
    cfg: ProgressiveTrainConfig,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> ProgressiveCodec:
    """Train (or resume) the codec; writes checkpoint, log.jsonl and model.safetensors to out."""
    from sandwich.zoo.weights import save_progressive_weights

    if cfg.loss not in LOSSES:
        raise SandwichError(f"loss {cfg.loss!r}: use one of {', '.join(LOSSES)}")
    if cfg.patch % 16 or cfg.patch < 32:
        raise SandwichError(f"patch {cfg.patch}: use a multiple of 16, at least 32")
    if not 1 <= cfg.iterations_start <= cfg.iterations <= 16:
        raise SandwichError("iterations: need 1 <= iterations-start <= iterations <= 16")
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not (resume or force):
        raise SandwichError(f"{ckpt_path} exists; pass --resume to continue or --force to restart")
    torch.set_num_threads(cfg.threads)
    d, device = distributed.init(cfg.device)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out / "log.jsonl").unlink(missing_ok=True)
    model, opt, sched, gen = setup(cfg, device)
    if d.rank:  # other binarizer noise per process; same weights and data stream
        torch.manual_seed(cfg.seed + 7919 * d.rank)
    step = 0
    if resume and ckpt_path.exists():
        meta = read_meta(ckpt_path)
        if "preset" not in meta["config"]:
            raise SandwichError(f"{ckpt_path} is not a progressive-codec run")
        step = load_checkpoint(ckpt_path, model, opt, sched, gen, device, d.rank)
        if d.main:
            trim_log(out / "log.jsonl", step)
    if d.main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")
    model = model.to(memory_format=torch.channels_last)
    net = distributed.wrap(model, d, device)

    sampler = PatchSampler(cfg.data, cfg.patch)
    val_crops = load_val_crops(cfg.val, device) if d.main else None
    log = (out / "log.jsonl").open("a") if d.main else None  # noqa: SIM115 (closed below)
    acc: dict[str, float] = {}
    t0 = time.time()
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and d.main), desc="train rnn")
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    while step < end:
        # the whole global batch from the shared generator; this process keeps its slice
        x = distributed.shard(sampler.sample(cfg.batch * d.world, gen), d).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        T = unrolled(cfg, step)
        res = net(x, T)
        per_it = torch.stack([distortion(xh, x, cfg.loss, cfg.l1_weight) for xh in res.x_hats])
        loss = per_it.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        with torch.no_grad():
            mse_first = float(((res.x_hats[0] - x) ** 2).mean())
            mse_last = float(((res.x_hats[-1].clamp(0, 255) - x) ** 2).mean())
        for k, v in (
            ("loss", float(loss.detach())),
            ("mse_first", mse_first),
            ("mse_last", mse_last),
        ):
            acc[k] = acc.get(k, 0.0) + v
        acc["n"] = acc.get("n", 0) + 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == end:
            n = acc.pop("n")
            avg = distributed.mean_over_ranks({k: v / n for k, v in acc.items()}, d)
            rec = {"step": step, "iterations": T, **avg}
            rec["psnr_first"] = 10 * math.log10(255**2 / max(rec["mse_first"], 1e-9))
            rec["psnr_last"] = 10 * math.log10(255**2 / max(rec["mse_last"], 1e-9))
            rec["lr"] = sched.get_last_lr()[0]
            rec["elapsed_s"] = time.time() - t0
            if val_crops is not None and (step % cfg.val_every == 0 or step == end):
                rec["val"] = validate(model, val_crops, cfg.iterations)
            if log is not None:
                log.write(json.dumps(rec) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.4f}", psnr_last=f"{rec['psnr_last']:.2f}")
            acc = {}
        if step % cfg.ckpt_every == 0 or step == end:
            save_run(
                ckpt_path, model, opt, sched, gen, step, asdict(cfg), d, save_progressive_weights
            )
    bar.close()
    if log is not None:
        log.close()
    distributed.finish(d)
    return model
