"""Training the progressive recurrent codec on random patches: the task of ``sandwich train-rnn``.

Loss = mean over iterations t of the distortion of x_hat_t (so every iteration is trained to be
a good image at its own rate). Distortions: ``l1``, ``mse``, ``msssim`` (1 - MS-SSIM over three
scales, which fits small patches) and ``mixed`` (1 - MS-SSIM + ``l1_weight`` * L1). Iteration
curriculum: the number of unrolled iterations grows linearly from ``iterations_start`` to
``iterations`` over the first ``curriculum`` fraction of the steps. Adam with warm-up and cosine
decay; the loop, checkpoints and resume are :func:`sandwich.training.loop.run`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from sandwich.errors import SandwichError
from sandwich.evaluation.metrics import ms_ssim_torch
from sandwich.models.progressive import PRESETS, ProgressiveCodec, ProgressiveConfig
from sandwich.training import distributed, options
from sandwich.training.dataset import PatchSampler
from sandwich.training.distributed import Dist
from sandwich.training.options import config_only, option
from sandwich.training.task import Task
from sandwich.zoo.weights import save_progressive_weights

LOSSES = ("l1", "mse", "msssim", "mixed")


@dataclass
class ProgressiveTrainConfig:
    """A progressive-codec run's config (config.json); each option field is a ``sandwich
    train-rnn`` option."""

    data: str = options.data()
    out: str = options.out()
    preset: str = option("cpu-s", "architecture: cpu-s, cpu-m or toderici")
    unit: str = option("gru", "recurrent unit: gru (residual GRU) or lstm")
    mode: str = option("scaled", "reconstruction: oneshot, additive or scaled")
    iterations: int = option(12, "iterations unrolled (0.125 bpp raw each)")
    iterations_start: int = option(4, "curriculum: iterations at step 0")
    curriculum: float = option(0.3, "fraction of steps to reach --iterations")
    steps: int = options.steps(10000)
    batch: int = options.batch()
    patch: int = option(64, "square patch side (multiple of 16)")
    lr: float = options.lr(5e-4)
    loss: str = option("mixed", "l1, mse, msssim or mixed (1-MS-SSIM + L1)")
    l1_weight: float = option(1.0, "weight of L1 in the mixed loss")
    seed: int = options.seed()
    val: str = option(
        "",
        "folder for the learning curve: MS-SSIM per iteration on 256px centre crops",
        cli_type=Path,
        cli_default=None,
        parse=options.path_or_empty,
    )
    val_every: int = option(500, "evaluate --val every N steps")
    ckpt_every: int = options.ckpt_every()
    log_every: int = options.log_every()
    threads: int = options.threads()
    device: str = options.device()
    command: str = options.command_field()
    extra: dict = config_only(default_factory=dict)

    def model_config(self) -> ProgressiveConfig:
        """The codec's architecture; a one-line error for an unknown preset, unit or mode."""
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
    """Distortion (0-dim) of reconstructions x_hat against x, both (N, 3, H, W) on 0..255,
    measured on 0..1; lower is better."""
    a, b = x_hat / 255.0, x / 255.0
    if loss == "l1":
        return (a - b).abs().mean()
    if loss == "mse":
        return F.mse_loss(a, b)
    d = 1.0 - ms_ssim_torch(a.clamp(0, 1), b, scales=3, win_size=7)
    return d + l1_weight * (a - b).abs().mean() if loss == "mixed" else d


def unrolled(cfg: ProgressiveTrainConfig, step: int) -> int:
    """Iterations unrolled at ``step`` (0-based) under the curriculum."""
    ramp = cfg.curriculum * cfg.steps
    if ramp <= 0 or step >= ramp:
        return cfg.iterations
    return min(
        cfg.iterations,
        cfg.iterations_start + int((cfg.iterations - cfg.iterations_start) * step / ramp),
    )


VAL_CROP = 256


def load_val_crops(folder: str, device: torch.device) -> torch.Tensor | None:
    """Centre crops (N, 3, 256, 256), 0..255 float, of the images in ``folder`` at least that
    large (learning curve); ``None`` without a folder."""
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
    """Mean MS-SSIM and PSNR (dB) of the (rounded, clipped) reconstruction after each of
    ``iterations`` iterations, over ``crops`` (N, 3, H, W) on 0..255: lists of that length."""
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


class ProgressiveTask(Task):
    """The progressive recurrent codec trained on random patches, channels-last.

    A batch is (x, T): patches (B, 3, P, P), 0..255 float, and the iterations unrolled at that
    step. Logged: iterations, loss, mse_first and mse_last (MSE per pixel, 0..255 scale, after
    the first and the last iteration), psnr_first and psnr_last (dB), lr, and with ``val`` a
    learning curve every ``val_every`` steps.
    """

    desc = "train rnn"
    warmup_cap = 200
    lr_floor = 0.02
    postfix = {"loss": ".4f", "psnr_last": ".2f"}

    def __init__(self, cfg: ProgressiveTrainConfig) -> None:
        self.cfg = cfg

    def check(self) -> None:
        cfg = self.cfg
        if cfg.loss not in LOSSES:
            raise SandwichError(f"loss {cfg.loss!r}: use one of {', '.join(LOSSES)}")
        if cfg.patch % 16 or cfg.patch < 32:
            raise SandwichError(f"patch {cfg.patch}: use a multiple of 16, at least 32")
        if not 1 <= cfg.iterations_start <= cfg.iterations <= 16:
            raise SandwichError("iterations: need 1 <= iterations-start <= iterations <= 16")

    def build_model(self) -> ProgressiveCodec:
        return ProgressiveCodec(self.cfg.model_config())

    def check_resume(self, config: dict, path: Path) -> None:
        if "preset" not in config:
            raise SandwichError(f"{path} is not a progressive-codec run")

    def prepare(self, model: ProgressiveCodec) -> ProgressiveCodec:
        return model.to(memory_format=torch.channels_last)

    def open_data(self, d: Dist, device: torch.device) -> None:
        self.d, self.device = d, device
        self.sampler = PatchSampler(self.cfg.data, self.cfg.patch)
        self.val_crops = load_val_crops(self.cfg.val, device) if d.main else None

    def sample(self, gen: torch.Generator, step: int) -> tuple[torch.Tensor, int]:
        d = self.d
        x = distributed.shard(self.sampler.sample(self.cfg.batch * d.world, gen), d)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        return x, unrolled(self.cfg, step)

    def loss(self, net: torch.nn.Module, batch: tuple[torch.Tensor, int]):
        cfg = self.cfg
        x, iterations = batch
        res = net(x, iterations)
        per_it = torch.stack([distortion(xh, x, cfg.loss, cfg.l1_weight) for xh in res.x_hats])
        loss = per_it.mean()
        with torch.no_grad():
            mse_first = ((res.x_hats[0] - x) ** 2).mean()
            mse_last = ((res.x_hats[-1].clamp(0, 255) - x) ** 2).mean()
        return loss, {"loss": loss.detach(), "mse_first": mse_first, "mse_last": mse_last}

    def log_fields(self, step: int, avg: dict[str, float], lr: float, model) -> dict:
        rec = {"iterations": unrolled(self.cfg, step - 1), **avg}  # those of the last step
        rec["psnr_first"] = 10 * math.log10(255**2 / max(rec["mse_first"], 1e-9))
        rec["psnr_last"] = 10 * math.log10(255**2 / max(rec["mse_last"], 1e-9))
        rec["lr"] = lr
        return rec

    def evaluate(self, model: ProgressiveCodec, step: int, last: bool) -> dict:
        if self.val_crops is None or not (step % self.cfg.val_every == 0 or last):
            return {}
        return {"val": validate(model, self.val_crops, self.cfg.iterations)}

    def save_weights(self, model: ProgressiveCodec, path: Path, meta: dict) -> None:
        save_progressive_weights(model, path, meta)
