"""Training a sandwich through the differentiable proxy: the task that ``sandwich train`` runs.

Loss (``--loss psnr``) = mean over the batch of 10*log10(MSE_i) + lambda * bpp_i, i.e.
distortion in dB plus lambda dB per bit per pixel: one lambda makes the same rate-distortion
trade-off at every quality (JPEG itself gains about 4-7 dB per bpp over its quality range), where
a plain MSE + lambda * bpp would let the low qualities dominate. ``--loss mse`` gives the
reference's MSE + lambda * bpp. A penalty keeps the bottleneck inside 0..255, where the codec
clips it. Adam (post-processor, pre-processor and analytic bases at their own learning rates),
cosine learning rate, random patches, a JPEG quality drawn per sample from the scenario's range
(or ``quality_min``..``quality_max``) so one model serves all qualities. The loop, checkpoints and
resume are :func:`sandwich.training.loop.run`'s.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sandwich.codecs import CODECS
from sandwich.errors import SandwichError
from sandwich.models.sandwich import SandwichModel
from sandwich.scenarios import get_scenario
from sandwich.training import distributed, options
from sandwich.training.dataset import PatchSampler
from sandwich.training.distributed import Dist
from sandwich.training.losses import distortion, slope_lambda
from sandwich.training.options import config_only, option
from sandwich.training.task import Task
from sandwich.zoo.weights import save_weights


def parse_widths(text: str) -> list[int]:
    """U-Net widths from ``"32,64"``; a one-line error unless positive integers."""
    try:
        widths = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SandwichError(f"widths {text!r}: give comma-separated integers, e.g. 32,64") from None
    if not widths or any(w <= 0 for w in widths):
        raise SandwichError(f"widths {text!r}: give positive integers, e.g. 32,64")
    return widths


def widths_option(help: str, default: tuple[int, ...] = (32, 64)):  # noqa: A002 (typer's name)
    """A U-Net widths field: a list of ints, given on the command line as ``32,64``."""
    return option(
        default_factory=lambda: list(default),
        help=help,
        cli_type=str,
        cli_default=",".join(map(str, default)),
        parse=parse_widths,
    )


@dataclass
class TrainConfig:
    """A sandwich run's config (config.json); each option field is a ``sandwich train`` option."""

    scenario: str = option(help="rgb, gray, lowres2, lowres4, hdr16, ...")
    data: str = options.data()
    out: str = options.out()
    steps: int = options.steps(4000)
    batch: int = options.batch()
    patch: int = option(128, "square patch side in pixels")
    min_scale: float = option(
        1.0,
        "scale augmentation: cut each patch at a random scale down to this (e.g. 0.5: squares of "
        "up to 2x the patch side, shrunk); 1 = plain crops",
    )  # see PatchSampler
    detail_draws: int = option(
        1,
        "bias patches towards detail: cut K candidate crops, keep one with probability "
        "proportional to its detail (4 matches photos on wallpaper corpora); 1 = plain crops",
    )  # see PatchSampler
    lr: float = options.lr(1e-3)
    base_lr_scale: float = config_only(0.1)  # analytic bases' lr = lr * this
    pre_lr_scale: float = option(0.3, "pre-processor lr = lr * this (0 freezes)")
    quality_input: bool = option(False, "networks also see the JPEG quality")
    activation: str = option("leaky", "U-Net activation: leaky or relu")
    lmbda: float = option(
        20.0, "rate weight in loss units per bpp (MSE per bpp for mse)", flag="--lambda"
    )
    rate_slope: float = option(
        0.0,
        "extra rate weight as an RD slope in dB per doubling of bpp (e.g. 3): each sample's "
        "lambda is slope*ln10/(10 ln2)*D/bpp, so all qualities trade alike; linear losses only; "
        "see training.losses.slope_lambda",
    )
    rate_grad: str = option(
        "total",
        "rate gradient of the proxy: total (surrogate fitted to whole-file bits) or marginal "
        "(fitted per quality to the real bits of a change: 1.2-3x larger, so a learning "
        "pre-processor pays what the real file pays)",
    )  # see proxies.jpeg
    loss: str = option(
        "mse",
        "mse, psnr, dssim, dssim5, msssim, lpips, lpips-db or a weighted sum such as "
        "'dssim+0.0002*mse' (default: the scenario's); see training.losses",
        cli_default=None,
    )
    range_penalty: float = config_only(1.0)  # weight of the bottleneck's squared excess
    quality_min: int | None = option(None, "lowest JPEG quality drawn (default: scenario)")
    quality_max: int | None = option(None, "highest JPEG quality drawn")
    rounding: str = option("ste", "DCT rounding in the proxy: ste, noise or cubic")
    real_codec: bool = option(
        False,
        "decode each training patch with the real JPEG codec: the post-processor sees real "
        "decodes and bit counts, gradients still come from the proxy (exact with "
        "--pre-lr-scale 0; matters at high qualities, where their errors differ)",
    )  # forward through the real codec, backward through the proxy
    pre_widths: list[int] = widths_option("pre-processor U-Net widths")
    post_widths: list[int] = widths_option("post-processor U-Net widths")
    fresh_post: bool = option(
        False,
        "with --init: the post-processor's U-Net starts fresh instead (to change its widths or "
        "levels)",
    )
    seed: int = options.seed()
    ckpt_every: int = options.ckpt_every()
    log_every: int = options.log_every()
    threads: int = options.threads()
    device: str = options.device()
    init: str | None = option(
        None,
        "start from these weights (a run's model.safetensors), fresh optimiser; wider U-Nets "
        "than the source's (as many levels) start as the same function",
        cli_type=Path,
        parse=options.path_or_none,
    )
    command: str = options.command_field()


def build_model(cfg: TrainConfig) -> SandwichModel:
    """The freshly initialised sandwich of ``cfg`` (its scenario, widths and choices)."""
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


def param_groups(model: SandwichModel, cfg) -> list[dict]:
    """Post-processor at ``lr``; pre-processor at ``lr * pre_lr_scale``; analytic bases at
    ``lr * base_lr_scale`` (a group whose scale is 0 is left out: frozen)."""
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


class SandwichTask(Task):
    """A sandwich (pre-processor, proxy codec, post-processor) trained on random patches.

    A batch is (x, q): patches (B, C, P, P), 0..255 float, and one JPEG quality per patch (B,),
    float, uniform over the integers ``qmin..qmax``, drawn in that order from the data generator.
    Logged: loss, mse (per pixel, 0..255 scale), psnr (dB, of the averaged mse), bpp (bits per
    pixel, header included), lr, and the pre/post processors' learned output scales.
    """

    warmup_cap = 100
    lr_floor = 0.01
    postfix = {"psnr": ".2f", "bpp": ".3f"}

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.desc = f"train {cfg.scenario}"

    def check(self) -> None:
        cfg = self.cfg
        self.scenario = get_scenario(cfg.scenario)
        self.qmin = cfg.quality_min or self.scenario.quality_range[0]
        self.qmax = cfg.quality_max or self.scenario.quality_range[1]
        knob = CODECS[self.scenario.codec].knob  # the codec's rate control (JPEG: quality 1..100)
        if not (self.qmin in knob and self.qmax in knob and self.qmin <= self.qmax):
            lo, hi = int(knob.lo), int(knob.hi)
            raise SandwichError(f"quality range {self.qmin}..{self.qmax} is not within {lo}..{hi}")

    def build_model(self) -> SandwichModel:
        return build_model(self.cfg)

    def optimizer(self, model: SandwichModel) -> torch.optim.Optimizer:
        return torch.optim.Adam(param_groups(model, self.cfg))

    def init_weights(self, model: SandwichModel) -> None:
        if self.cfg.init:
            init_from(model, self.cfg.init, self.cfg.fresh_post)

    def check_resume(self, config: dict, path: Path) -> None:
        if config["scenario"] != self.cfg.scenario:
            raise SandwichError(
                f"{path} is a {config['scenario']!r} run, not {self.cfg.scenario!r}"
            )

    def open_data(self, d: Dist, device: torch.device) -> None:
        cfg, scenario = self.cfg, self.scenario
        self.d, self.device = d, device
        self.sampler = PatchSampler(cfg.data, cfg.patch, cfg.min_scale, cfg.detail_draws)
        if self.sampler.channels != scenario.channels:
            hint = (
                " (build them with `sandwich data --kind material`)"
                if scenario.multichannel
                else ""
            )
            raise SandwichError(
                f"{cfg.data} holds {self.sampler.channels}-channel images but scenario "
                f"{cfg.scenario!r} takes {scenario.channels}-channel ones{hint}"
            )
        if scenario.bit_depth > self.sampler.bit_depth and d.main:
            tqdm.write(
                f"warning: {cfg.data} holds only {self.sampler.bit_depth}-bit images, so this "
                f"{scenario.bit_depth}-bit scenario sees no extra precision; build 16-bit "
                "training images with `sandwich data --bit-depth 16`",
                file=sys.stderr,
            )

    def sample(self, gen: torch.Generator, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, n = self.d, self.cfg.batch * self.d.world
        x = distributed.shard(self.sampler.sample(n, gen), d).to(self.device)
        q = torch.randint(self.qmin, self.qmax + 1, (n,), generator=gen).float()
        return x, distributed.shard(q, d)

    def loss(self, net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
        cfg = self.cfg
        x, q = batch
        res = net(x, q, real_values=cfg.real_codec)
        mse_i = ((res.x_hat - x) ** 2).mean(dim=(1, 2, 3))
        mse = mse_i.mean()
        bpp = res.bpp.mean()
        dist_i = distortion(res.x_hat, x, cfg.loss)  # (B,)
        dist = dist_i.mean()
        b = res.bottleneck
        outside = ((b - 255.0).relu() ** 2 + (-b).relu() ** 2).mean()
        loss = dist + cfg.lmbda * bpp + cfg.range_penalty * outside
        if cfg.rate_slope:
            # the slope is about the rate that grows with the content: without the header
            rate = res.payload_bpp
            loss = loss + (slope_lambda(dist_i, rate, cfg.rate_slope) * rate).mean()
        return loss, {"loss": loss.detach(), "mse": mse.detach(), "bpp": bpp.detach()}

    def log_fields(self, step: int, avg: dict[str, float], lr: float, model) -> dict:
        m = avg["mse"]
        return {
            "loss": avg["loss"],
            "mse": m,
            "psnr": 10 * math.log10(255**2 / max(m, 1e-9)),
            "bpp": avg["bpp"],
            "lr": lr,
            "pre_scale": float(model.pre.scale.detach()),
            "post_scale": float(model.post.scale.detach()),
        }

    def save_weights(self, model: SandwichModel, path: Path, meta: dict) -> None:
        save_weights(model, path, meta)
