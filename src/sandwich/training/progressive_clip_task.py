"""Training the progressive codec on clips: the task of ``sandwich train-rnn-video``.

A batch is B clips of T frames of P x P pixels (N, T, 3, P, P), 0..255 (from a clip corpus, and
with ``--stills`` a share of still photos set in motion). The clips are coded as the real codec
codes them (:meth:`~sandwich.models.progressive_clip.ProgressiveClipCodec.forward`): frame 0
intra, each later frame as a residual against its prediction from the previous frame's
reconstruction after a random number of iterations (drawn per frame from 1..K, so the model
learns to correct references of any quality), rounded to 8 bits as the decoder has it.

Loss = mean over frames and iterations of the distortion (as ``sandwich train-rnn``: ``mixed``
is 1 - MS-SSIM + L1) + ``flow_weight`` * the optical-flow consistency loss
(:func:`sandwich.nets.flow.flow_consistency_loss`: end-point error between the flow of
consecutive reconstructions and that of the originals, in pixels), on the reconstructions after
a random iteration. ``--init`` starts from a progressive codec's weights (default: the zoo's
``rnn``), whose architecture the run keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from sandwich.errors import SandwichError
from sandwich.models.progressive import ProgressiveCodec
from sandwich.models.progressive_clip import PREDICTIONS, ProgressiveClipCodec
from sandwich.training import distributed, options
from sandwich.training.clip_task import (
    open_clips,
    still_share_option,
    stills_option,
    strides_option,
)
from sandwich.training.distributed import Dist
from sandwich.training.options import option
from sandwich.training.progressive_task import LOSSES, distortion
from sandwich.training.task import Task
from sandwich.zoo.weights import save_weights


@dataclass
class ProgressiveClipTrainConfig:
    """A progressive video codec run's config (config.json); each field is a ``sandwich
    train-rnn-video`` option."""

    data: str = options.data()
    out: str = options.out()
    prediction: str = option("motion", "prediction of P frames: previous, motion or extrapolate")
    iterations: int = option(8, "iterations unrolled per frame (0.125 bpp raw each)")
    steps: int = options.steps(2000)
    batch: int = options.batch(4)
    frames: int = option(4, "frames per training clip (I P P ...)")
    patch: int = option(64, "square crop side in pixels (a multiple of 16)")
    strides: list[int] = strides_option()
    stills: str = stills_option()
    still_share: float = still_share_option()
    lr: float = options.lr(1e-4)
    loss: str = option("mixed", "l1, mse, msssim or mixed (1-MS-SSIM + L1)")
    l1_weight: float = option(1.0, "weight of L1 in the mixed loss")
    flow_weight: float = option(
        0.0, "weight of the optical-flow consistency loss (per pixel of end-point error)"
    )
    init: str = option(
        "",
        "start from these progressive-codec weights (default: the zoo's rnn)",
        cli_type=Path,
        cli_default=None,
        parse=options.path_or_empty,
    )
    seed: int = options.seed()
    ckpt_every: int = options.ckpt_every(100)
    log_every: int = options.log_every(10)
    threads: int = options.threads()
    device: str = options.device()
    command: str = options.command_field()


def _init_path(cfg: ProgressiveClipTrainConfig) -> Path:
    if cfg.init:
        return Path(cfg.init)
    from sandwich.zoo import get_entry, weights_dir

    return weights_dir() / str(get_entry("rnn").weights)


class ProgressiveClipTask(Task):
    """The progressive codec trained on clips through its own causal prediction.

    Logged: loss, distortion, flow (end-point error in pixels, when weighted), psnr_i and psnr_p
    (dB, after the last iteration, of the intra and the predicted frames), lr.
    """

    desc = "train rnn-video"
    warmup_cap = 50
    lr_floor = 0.05
    postfix = {"loss": ".4f", "psnr_p": ".2f"}

    def __init__(self, cfg: ProgressiveClipTrainConfig) -> None:
        self.cfg = cfg

    def check(self) -> None:
        cfg = self.cfg
        if cfg.loss not in LOSSES:
            raise SandwichError(f"loss {cfg.loss!r}: use one of {', '.join(LOSSES)}")
        if cfg.prediction not in PREDICTIONS[1:]:
            raise SandwichError(
                f"--prediction {cfg.prediction}: train with previous, motion or extrapolate"
            )
        if cfg.patch % 16 or cfg.patch < 32:
            raise SandwichError(f"--patch {cfg.patch}: use a multiple of 16, at least 32")
        if cfg.frames < 2:
            raise SandwichError(f"--frames {cfg.frames}: use 2 or more (an I and a P frame)")
        if not 0 <= cfg.still_share <= 1:
            raise SandwichError(f"--still-share {cfg.still_share}: use 0..1")
        if not cfg.flow_weight >= 0:
            raise SandwichError(f"--flow-weight {cfg.flow_weight}: use 0 or more")
        if not _init_path(cfg).is_file():
            raise SandwichError(f"--init {cfg.init}: no such weights file")

    def build_model(self) -> ProgressiveClipCodec:
        from sandwich.zoo.weights import read_sidecar

        side = read_sidecar(_init_path(self.cfg))
        config = {**side.get("config", {}), "max_iterations": self.cfg.iterations}
        model = ProgressiveClipCodec.from_config(config)
        model.prediction = self.cfg.prediction
        return model

    def init_weights(self, model: ProgressiveClipCodec) -> None:
        from sandwich.zoo.weights import load_weights

        src = load_weights(_init_path(self.cfg))
        if not isinstance(src, ProgressiveCodec):
            raise SandwichError(f"--init {self.cfg.init}: not a progressive codec's weights")
        state = src.state_dict()
        top = model.cfg.max_iterations
        gains = state["log_gain"]
        if len(gains) < top:  # more iterations than the source: extend its gain schedule
            step = gains[-1] - gains[-2] if len(gains) > 1 else torch.tensor(math.log(1.4))
            extra = gains[-1] + step * torch.arange(1, top - len(gains) + 1)
            gains = torch.cat([gains, extra])
        state["log_gain"] = gains[:top]
        model.load_state_dict(state)

    def check_resume(self, config: dict, path: Path) -> None:
        if "prediction" not in config or "flow_weight" not in config:
            raise SandwichError(f"{path} is not a progressive video codec run")

    def prepare(self, model: ProgressiveClipCodec) -> ProgressiveClipCodec:
        model.prediction = self.cfg.prediction
        return model.to(memory_format=torch.channels_last)

    def open_data(self, d: Dist, device: torch.device) -> None:
        self.d, self.device = d, device
        self.clips = open_clips(self.cfg, d)

    def sample(self, gen: torch.Generator, step: int):
        cfg, d = self.cfg, self.d
        x = distributed.shard(self.clips.sample(cfg.batch * d.world, gen), d).to(self.device)
        reference = torch.randint(1, cfg.iterations + 1, (cfg.frames,), generator=gen).tolist()
        flow_at = int(torch.randint(1, cfg.iterations + 1, (1,), generator=gen))
        return x, reference, flow_at

    def loss(self, net: torch.nn.Module, batch):
        cfg = self.cfg
        x, reference, flow_at = batch
        out = net(x, cfg.iterations, reference)
        per_frame = []
        for i, hats in enumerate(out.x_hats):
            xi = x[:, i]
            per_frame.append(
                torch.stack([distortion(h, xi, cfg.loss, cfg.l1_weight) for h in hats]).mean()
            )
        dist = torch.stack(per_frame).mean()
        loss = dist
        fields: dict = {"distortion": dist.detach()}
        if cfg.flow_weight > 0:
            from sandwich.nets.flow import flow_consistency_loss

            dec = torch.stack([hats[flow_at - 1] for hats in out.x_hats], 1)
            flow = flow_consistency_loss(x, dec.clamp(0, 255))
            loss = loss + cfg.flow_weight * flow
            fields["flow"] = flow.detach()
        with torch.no_grad():
            last = [((hats[-1].clamp(0, 255) - x[:, i]) ** 2).mean() for i, hats in
                    enumerate(out.x_hats)]  # fmt: skip
            fields["mse_i"] = last[0]
            fields["mse_p"] = torch.stack(last[1:]).mean()
        fields["loss"] = loss.detach()
        return loss, fields

    def log_fields(self, step: int, avg: dict[str, float], lr: float, model) -> dict:
        rec = dict(avg)
        rec["psnr_i"] = 10 * math.log10(255**2 / max(rec.pop("mse_i"), 1e-9))
        rec["psnr_p"] = 10 * math.log10(255**2 / max(rec.pop("mse_p"), 1e-9))
        rec["lr"] = lr
        return rec

    def save_weights(self, model: ProgressiveClipCodec, path: Path, meta: dict) -> None:
        save_weights(model, path, meta)
