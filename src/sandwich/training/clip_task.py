"""Training a video sandwich through the video proxy: the task that ``sandwich train-video`` runs.

A batch is B clips of T frames of P x P pixels (N, T, 3, P, P), 0..255, with one CRF per clip
drawn uniformly from ``crf_min..crf_max``, and the fixed backward optical flow of each clip's
original frames (DIS, no gradient), which the proxy uses for its motion-compensated prediction.
Clips come from a clip corpus (``sandwich data --kind video``, drawn by
:class:`~sandwich.training.clip_dataset.ClipSampler`) and, with ``--stills``, from still
photos set in motion (:func:`sandwich.proxies.video.clips.moving_clip`: pans, zooms, a sliding
object), a share ``still_share`` of each batch.

Loss = mean over clips of D_i + lambda * bpp_i (+ the RD-slope rate term as in ``sandwich
train``, on the frames' bits without the container) + a penalty keeping the bottleneck in
0..255. ``D`` is any loss of :mod:`sandwich.training.losses`, averaged over the frames. The
networks are per frame (frames folded into the batch), so ``--init`` takes an image model's
weights (a ``sandwich train`` run or a zoo model's file) as well as a video run's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from sandwich.errors import SandwichError
from sandwich.models.clip_sandwich import CRF_RANGE, ClipSandwichModel, clip_scenario
from sandwich.training import distributed, options
from sandwich.training.distributed import Dist
from sandwich.training.losses import distortion, slope_lambda
from sandwich.training.options import config_only, option
from sandwich.training.sandwich_task import param_groups, widths_option
from sandwich.training.task import Task
from sandwich.zoo.weights import save_weights


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise SandwichError(f"{text!r}: give comma-separated whole numbers, e.g. 1,2") from None
    if not values or any(v < 1 for v in values):
        raise SandwichError(f"{text!r}: give whole numbers of at least 1, e.g. 1,2")
    return values


def strides_option():
    """The ``--strides`` option of clip training runs."""
    return option(
        default_factory=lambda: [1, 2],
        help="temporal strides drawn per clip (frame steps), e.g. 1,2",
        cli_type=str,
        cli_default="1,2",
        parse=_ints,
    )


def stills_option():
    """The ``--stills`` option of clip training runs."""
    return option(
        "",
        "folder of still photos set in motion as extra training clips (e.g. data/corpus/train)",
        cli_type=Path,
        cli_default=None,
        parse=options.path_or_empty,
    )


def still_share_option():
    """The ``--still-share`` option of clip training runs."""
    return option(0.5, "share of each batch made from --stills (0..1)")


@dataclass
class ClipTrainConfig:
    """A video sandwich run's config (config.json); each option is a ``sandwich train-video``
    option."""

    scenario: str = option(help="gray, lowres2, lpips, rgb, msssim, rgb444")
    data: str = options.data()
    out: str = options.out()
    codec: str = option("x265", "the real codec the proxy mirrors: x265 or x264")
    steps: int = options.steps(1000)
    batch: int = options.batch(4)
    frames: int = option(6, "frames per training clip (one GOP: I P P ...)")
    patch: int = option(96, "square crop side in pixels (the same crop in every frame)")
    strides: list[int] = strides_option()
    stills: str = stills_option()
    still_share: float = still_share_option()
    lr: float = options.lr(1e-4)
    base_lr_scale: float = config_only(0.1)
    pre_lr_scale: float = option(0.5, "pre-processor lr = lr * this (0 freezes)")
    quality_input: bool = option(False, "networks also see the CRF")
    activation: str = option("leaky", "U-Net activation: leaky or relu")
    lmbda: float = option(0.0, "rate weight in loss units per bpp", flag="--lambda")
    rate_slope: float = option(
        3.0, "rate weight as an RD slope in dB per doubling of bpp (see sandwich train)"
    )
    loss: str = option(
        "mse", "mse, dssim, lpips or a weighted sum such as 'lpips+0.0005*mse'", cli_default=None
    )
    range_penalty: float = config_only(1.0)
    crf_min: int | None = option(None, f"lowest CRF drawn (default {CRF_RANGE[0]})")
    crf_max: int | None = option(None, f"highest CRF drawn (default {CRF_RANGE[1]})")
    rounding: str = option("ste", "rounding in the proxy: ste, noise or cubic")
    context: int = option(
        0, "temporal context: the post-processor also sees this many decoded frames each side"
    )
    pre_widths: list[int] = widths_option("pre-processor U-Net widths", (16, 32))
    post_widths: list[int] = widths_option("post-processor U-Net widths")
    seed: int = options.seed()
    ckpt_every: int = options.ckpt_every(100)
    log_every: int = options.log_every(5)
    threads: int = options.threads()
    device: str = options.device()
    init: str | None = option(
        None,
        "start from these weights: an image model of the same scenario (its model.safetensors "
        "or zoo file) or a video run's",
        cli_type=Path,
        parse=options.path_or_none,
    )
    command: str = options.command_field()


def open_clips(cfg, d: Dist):
    """The :class:`~sandwich.training.clip_dataset.ClipSource` of a clip run's config (fields
    data, stills, still_share, batch, frames, patch, strides) for all ``d.world`` processes."""
    from sandwich.training.clip_dataset import ClipSource

    return ClipSource(
        cfg.data, cfg.stills, cfg.still_share, cfg.batch * d.world, cfg.frames, cfg.patch,
        tuple(cfg.strides),
    )  # fmt: skip


def build_model(cfg: ClipTrainConfig) -> ClipSandwichModel:
    return ClipSandwichModel(
        cfg.scenario,
        cfg.codec,
        tuple(cfg.pre_widths),
        tuple(cfg.post_widths),
        rounding=cfg.rounding,
        quality_input=cfg.quality_input,
        activation=cfg.activation,
        context=cfg.context,
    )


def init_from(model: ClipSandwichModel, path: str) -> None:
    """Copy the per-frame networks of ``path`` (an image sandwich's or a video sandwich's
    weights of the same scenario and widths) into ``model``. A model with temporal context
    started from one without gets zero weights on the context channels: it starts as exactly
    the source."""
    from sandwich.zoo.weights import load_weights

    src = load_weights(Path(path))
    scenario = getattr(src, "scenario", None)
    if scenario is None or scenario.name != model.scenario.name:
        got = getattr(scenario, "name", type(src).__name__)
        raise SandwichError(
            f"{path} is a {got!r} model; this run trains scenario {model.scenario.name!r}"
        )
    state = {k: v for k, v in src.state_dict().items() if k.startswith(("pre.", "post."))}
    own = {k: v for k, v in model.state_dict().items() if k.startswith(("pre.", "post."))}
    for k, v in own.items():  # temporal context: first layers take extra input channels
        w = state.get(k)
        wider = w is not None and w.dim() >= 2 and w.shape[1] < v.shape[1]
        if wider and w.shape[:1] + w.shape[2:] == v.shape[:1] + v.shape[2:]:
            state[k] = torch.cat(
                [w, w.new_zeros(w.shape[0], v.shape[1] - w.shape[1], *w.shape[2:])], 1
            )
    if state.keys() != own.keys() or any(state[k].shape != own[k].shape for k in own):
        raise SandwichError(
            f"{path}: its networks do not match this run's (widths, --quality-input or "
            "activation differ); use the configuration of the model it came from"
        )
    model.load_state_dict(state, strict=False)


class ClipSandwichTask(Task):
    """A video sandwich trained on random clips through the video proxy.

    Logged: loss, mse (per pixel, 0..255 scale), psnr (dB of the averaged mse), bpp (bits per
    pixel of the whole clip, container included), iframe_share (I frame's share of the bits),
    lr and the processors' learned output scales.
    """

    warmup_cap = 50
    lr_floor = 0.01
    postfix = {"psnr": ".2f", "bpp": ".3f"}

    def __init__(self, cfg: ClipTrainConfig) -> None:
        self.cfg = cfg
        self.desc = f"train {cfg.scenario}@{cfg.codec}"

    def check(self) -> None:
        cfg = self.cfg
        clip_scenario(cfg.scenario, cfg.codec)
        self.qmin = CRF_RANGE[0] if cfg.crf_min is None else cfg.crf_min
        self.qmax = CRF_RANGE[1] if cfg.crf_max is None else cfg.crf_max
        if not 0 <= self.qmin <= self.qmax <= 51:
            raise SandwichError(f"CRF range {self.qmin}..{self.qmax} is not within 0..51")
        if cfg.frames < 2:
            raise SandwichError(f"--frames {cfg.frames}: use 2 or more (an I and P frames)")
        if cfg.patch < 16 or cfg.patch % 16:
            raise SandwichError(f"--patch {cfg.patch}: use a multiple of 16 of at least 16")
        if not 0 <= cfg.context <= 4:
            raise SandwichError(f"--context {cfg.context}: use 0..4 frames each side")
        if cfg.batch < 1:
            raise SandwichError(f"--batch {cfg.batch}: use 1 or more")
        if not 0.0 <= cfg.still_share <= 1.0:
            raise SandwichError(f"--still-share {cfg.still_share}: use a share in 0..1")
        if cfg.still_share >= 1.0 and not cfg.stills:
            raise SandwichError("--still-share 1 needs --stills DIR (a folder of photos)")

    def build_model(self) -> ClipSandwichModel:
        return build_model(self.cfg)

    def optimizer(self, model: ClipSandwichModel) -> torch.optim.Optimizer:
        return torch.optim.Adam(param_groups(model, self.cfg))

    def init_weights(self, model: ClipSandwichModel) -> None:
        if self.cfg.init:
            init_from(model, self.cfg.init)

    def check_resume(self, config: dict, path: Path) -> None:
        mine = (self.cfg.scenario, self.cfg.codec)
        theirs = (config.get("scenario"), config.get("codec"))
        if theirs != mine:
            raise SandwichError(f"{path} is a {theirs[0]}@{theirs[1]} run, not {mine[0]}@{mine[1]}")

    def open_data(self, d: Dist, device: torch.device) -> None:
        cfg = self.cfg
        self.d, self.device = d, device
        self.clips = open_clips(cfg, d)

    def sample(self, gen: torch.Generator, step: int):
        from sandwich.proxies.video.flow import clip_flow

        d, cfg = self.d, self.cfg
        n = cfg.batch * d.world
        x = self.clips.sample(n, gen)
        q = torch.randint(self.qmin, self.qmax + 1, (n,), generator=gen).float()
        x, q = distributed.shard(x, d), distributed.shard(q, d)
        flow = clip_flow(x)  # of the original frames; fixed (no gradient)
        return x.to(self.device), q.to(self.device), flow.to(self.device)

    def loss(self, net: torch.nn.Module, batch):
        cfg = self.cfg
        x, q, flow = batch
        res = net(x, q, flow=flow)
        n, t = x.shape[:2]
        xf, yf = x.flatten(0, 1), res.x_hat.flatten(0, 1)
        mse_i = ((yf - xf) ** 2).mean(dim=(1, 2, 3)).view(n, t).mean(1)
        dist_i = distortion(yf, xf, cfg.loss).view(n, t).mean(1)
        bpp = res.bpp
        b = res.bottleneck
        outside = ((b - 255.0).relu() ** 2 + (-b).relu() ** 2).mean()
        loss = dist_i.mean() + cfg.lmbda * bpp.mean() + cfg.range_penalty * outside
        if cfg.rate_slope:
            h, w = x.shape[-2:]
            rate = res.frame_bits.sum(1) / (t * h * w)  # without the container's fixed bytes
            loss = loss + (slope_lambda(dist_i, rate, cfg.rate_slope) * rate).mean()
        i_share = (res.frame_bits[:, 0] / res.frame_bits.sum(1).clamp_min(1)).mean()
        return loss, {
            "loss": loss.detach(),
            "mse": mse_i.mean().detach(),
            "bpp": bpp.mean().detach(),
            "iframe_share": i_share.detach(),
        }

    def log_fields(self, step: int, avg: dict[str, float], lr: float, model) -> dict:
        m = avg["mse"]
        return {
            "loss": avg["loss"],
            "mse": m,
            "psnr": 10 * math.log10(255**2 / max(m, 1e-9)),
            "bpp": avg["bpp"],
            "iframe_share": avg["iframe_share"],
            "lr": lr,
            "pre_scale": float(model.pre.scale.detach()),
            "post_scale": float(model.post.scale.detach()),
        }

    def save_weights(self, model: ClipSandwichModel, path: Path, meta: dict) -> None:
        save_weights(model, path, meta)
