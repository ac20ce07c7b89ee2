"""The sandwich model: pre-processor -> 8-bit bottleneck -> codec -> post-processor.

``forward`` runs the differentiable proxy (training) or the real codec (evaluation) on batches;
``compress`` / ``decompress`` turn one image into a standard JPEG file with the sandwich marker and
back, as CompressAI's models do for their bitstreams.

Multichannel scenarios (``Scenario.channels`` != 3, ``planes`` > 1, e.g. ``material6``) take and
return (H, W, N) images; their bottleneck is ``planes`` colour images stacked vertically in one
JPEG (see :mod:`sandwich.media.planes`), and the proxy codes that same stacked image in training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sandwich.codecs import get_codec
from sandwich.codecs.base import CodecOutput
from sandwich.codecs.jpeg_tables import quality_feature, quality_to_feature
from sandwich.errors import SandwichError
from sandwich.formats.tag import FileTag
from sandwich.media.limits import check_pixels
from sandwich.media.planes import stack, unstack
from sandwich.models.base import CodecModel, check_config, one_of, widths
from sandwich.nets.ensemble import self_ensemble
from sandwich.nets.prepost import PostProcessor, PreProcessor
from sandwich.proxies import get_proxy
from sandwich.scenarios import Scenario, get_scenario

__all__ = ["SandwichModel", "SandwichOutput", "quality_feature", "quality_to_feature"]


def real_forward(proxy: CodecOutput, real: CodecOutput) -> CodecOutput:
    """The real codec's values with the proxy's gradients (a straight-through estimator).

    ``x_hat`` (N, C, H, W, 0..255) and ``bits`` (N,) take the real codec's values while their
    gradients are the proxy's; ``header_bits`` stays the proxy's estimate. With a frozen
    pre-processor this is exactly training the post-processor on real decodes.
    """
    x_hat = proxy.x_hat + (real.x_hat - proxy.x_hat).detach()
    bits = proxy.bits + (real.bits - proxy.bits).detach()
    return CodecOutput(x_hat, bits, proxy.header_bits)


@functools.cache
def _tagged_codecs() -> tuple:
    from sandwich.scenarios import SCENARIOS

    return tuple(get_codec(n) for n in dict.fromkeys(s.codec for s in SCENARIOS.values()))


def describe_scenario(s: Scenario) -> str:
    """What carries a scenario's bits, for tables: ``JPEG 4:2:0, 1/2 size``."""
    from sandwich.codecs import CODECS

    return (
        f"{CODECS[s.codec].format_name} {s.subsampling}"
        + (f", 1/{s.downscale} size" if s.downscale > 1 else "")
        + (f", {s.bit_depth}-bit image" if s.bit_depth > 8 else "")
        + (f", {s.channels} channels in {s.planes} planes" if s.planes > 1 else "")
    )


@dataclass
class SandwichOutput:
    """Result of :meth:`SandwichModel.forward`.

    Attributes:
        x_hat: (N, 3, H, W) reconstruction (N, channels, H, W for multichannel scenarios),
            0..255 (clipped only in real use).
        bottleneck: (N, C, h, w) pre-processor output before 8-bit rounding, about 0..255; for
            P planes, the image the codec carries: (N, C, P*h, w), planes stacked vertically.
        decoded: (N, C, h, w) (or (N, C, P*h, w)) the codec's reconstruction of the bottleneck,
            0..255.
        bits: (N,) bits of each coded image (whole file for the real codec).
        bpp: (N,) bits per pixel of the original image (bits / (H * W)).
        payload_bpp: (N,) ``bpp`` without the codec's content-independent header bits (what
            grows with the image; on a 96-pixel training patch JPEG's header alone is about
            0.5 bpp); equal to ``bpp`` when the codec does not tell them apart.
    """

    x_hat: Tensor
    bottleneck: Tensor
    decoded: Tensor
    bits: Tensor
    bpp: Tensor
    payload_bpp: Tensor


class SandwichModel(CodecModel):
    """A standard codec wrapped by a pre- and a post-processor.

    Args:
        scenario: a :class:`~sandwich.scenarios.Scenario` or its name.
        pre_widths, post_widths: U-Net widths of the two processors.
        rounding: proxy rounding for training (``"ste"``, ``"noise"`` or ``"cubic"``).
        name, version: zoo name and version written into the file marker.
        quality_input: the networks also see the codec quality (as :func:`quality_feature`), so
            one model adapts its processing to every quality.
        activation: U-Net activation, ``"relu"`` or ``"leaky"``.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        pre_widths: tuple[int, ...] = (32, 64),
        post_widths: tuple[int, ...] = (32, 64),
        rounding: str = "ste",
        name: str = "untrained",
        version: int = 0,
        quality_input: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        self.quality_input = quality_input
        self.activation = activation
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        s = self.scenario
        self.pre_widths, self.post_widths = tuple(pre_widths), tuple(post_widths)
        # a multi-plane bottleneck is its planes side by side as channels to the networks
        b_ch = s.bottleneck_channels * s.planes
        self.pre = PreProcessor(
            b_ch,
            s.base,
            s.downscale,
            self.pre_widths,
            quality_input,
            activation,
            in_channels=s.channels,
        )
        self.post = PostProcessor(
            b_ch, s.base, self.post_widths, quality_input, activation, out_channels=s.channels
        )
        self.proxy, self.real = self.make_codecs(rounding)
        self.name, self.version = name, version
        # decoding passes averaged over flips/transposes (nets.ensemble); 1 = a single pass
        self.ensemble = 1
        # tiled pre/post-processing in real use (nets.tiling; same output as untiled): tile side
        # in full-resolution pixels, 0 = off, None = automatic (off up to 1024x1024 pixels,
        # 256 above)
        self.tile: int | None = None

    kind = "sandwich"
    DEFAULT_QUALITY = 75

    def make_codecs(self, rounding: str) -> tuple:
        """(proxy, real codec) of the scenario, by their registry names."""
        s = self.scenario
        return (
            get_proxy(s.proxy, subsampling=s.subsampling, rounding=rounding),
            get_codec(s.codec, subsampling=s.subsampling),
        )

    @property
    def file_suffix(self) -> str:  # type: ignore[override]
        """The real codec's file suffix (``.jpg``)."""
        return self.real.extension

    @classmethod
    def from_config(cls, config: dict, name: str = "local", version: int = 0) -> SandwichModel:
        """A model from its sidecar's ``config`` (older sidecars lack the later fields), checked
        field by field first (:func:`~sandwich.models.base.check_config`)."""
        from sandwich.scenarios import SCENARIOS

        what = f"model {name!r}"
        check_config(
            config,
            {"scenario": one_of(*SCENARIOS), "pre_widths": widths(), "post_widths": widths()},
            what,
        )
        optional = {
            "rounding": one_of("ste", "noise", "cubic"),
            "quality_input": one_of(True, False),
            "activation": one_of("relu", "leaky"),
        }
        check_config(config, {k: t for k, t in optional.items() if k in config}, what)
        return cls(
            config["scenario"],
            tuple(config["pre_widths"]),
            tuple(config["post_widths"]),
            rounding=config.get("rounding", "ste"),
            quality_input=config.get("quality_input", False),
            activation=config.get("activation", "relu"),
            name=name,
            version=version,
        )

    @property
    def channels(self) -> int:
        return self.scenario.channels

    @property
    def post_channels(self) -> int:
        """Channels of the decoded bottleneck :meth:`reconstruct` takes (the scenario's; a
        video model with temporal context also takes its neighbours')."""
        return self.scenario.bottleneck_channels

    @property
    def bit_depth(self) -> int:
        return self.scenario.bit_depth

    @property
    def knob(self):
        return self.real.knob

    @property
    def default_knob(self) -> float:
        return self.DEFAULT_QUALITY

    def describe(self) -> str:
        return describe_scenario(self.scenario)

    @staticmethod
    def tagged_codecs() -> tuple:
        """The real codecs whose files can name a sandwich model (those of the scenarios);
        made once, as every file identification asks."""
        return _tagged_codecs()

    @classmethod
    def formats(cls) -> list[str]:
        return [c.format_name for c in cls.tagged_codecs()]

    @classmethod
    def suffixes(cls) -> tuple[str, ...]:
        return tuple(x for c in cls.tagged_codecs() for x in (c.suffixes or (c.extension,)))

    @classmethod
    def identify(cls, data: bytes) -> tuple[str, str | None, int | None] | None:
        """A file of a codec that sandwiches write (JPEG): its format and the model its tag
        names (None, None for a plain file)."""
        for codec in cls.tagged_codecs():
            if codec.sniff(data):
                tag = codec.read_tag(data)
                if tag is None:
                    return codec.format_name, None, None
                return codec.format_name, tag.model, tag.model_version
        return None

    @classmethod
    def decode_plain(cls, data: bytes) -> np.ndarray:
        """A plain file of a tagged codec, decoded as that codec does (RGB or gray)."""
        for codec in cls.tagged_codecs():
            if codec.sniff(data):
                try:
                    return codec.decode(data)
                except (OSError, SyntaxError, ValueError) as e:
                    raise SandwichError(f"cannot decode the {codec.format_name} ({e})") from None
        raise SandwichError("not a file that sandwich models write")

    def config(self) -> dict:
        return {
            "scenario": self.scenario.name,
            "pre_widths": list(self.pre_widths),
            "post_widths": list(self.post_widths),
            "rounding": self.proxy.rounding,
            "quality_input": self.quality_input,
            "activation": self.activation,
        }

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self, x: Tensor, quality: Tensor | float, real: bool = False, real_values: bool = False
    ) -> SandwichOutput:
        """Run the sandwich on a batch.

        Args:
            x: (N, 3, H, W) RGB (N, channels, H, W for multichannel scenarios), 0..255.
            quality: JPEG quality 1..100, scalar or (N,).
            real: use the real codec (no gradients) instead of the proxy.
            real_values: (training) the real codec's decoded values and bits, with the proxy's
                gradients (see :func:`real_forward`): the post-processor learns the real
                codec's errors, which at high qualities differ from the proxy's.

        With ``planes`` P > 1 the codec (proxy or real) codes the P planes stacked vertically,
        one (N, C, P*h, w) image per sample, exactly as :meth:`compress` writes them.
        """
        h, w = x.shape[-2:]
        cond = self.real.condition(quality, x.shape[0]).to(x.device) if self.quality_input else None
        p = self.scenario.planes
        b = stack(self.pre(x, cond), p)
        codec = self.real if real else self.proxy
        out = codec(b, quality)
        if real_values and not real:
            out = real_forward(out, self.real(b, quality))
        x_hat = self.post(unstack(out.x_hat, p), (h, w), cond)
        if real:
            x_hat = x_hat.clamp(0, 255)
        payload = out.bits if out.header_bits is None else out.bits - out.header_bits
        return SandwichOutput(x_hat, b, out.x_hat, out.bits, out.bits / (h * w), payload / (h * w))

    # ------------------------------------------------------------------ real use
    @property
    def sample_dtype(self) -> type:
        """dtype of the images ``compress`` takes and ``decompress`` returns (uint8 or uint16)."""
        return np.uint8 if self.scenario.bit_depth <= 8 else np.uint16

    def _to_tensor(self, image: np.ndarray) -> Tensor:
        """(H, W, 3) image -> (1, 3, H, W) float on the networks' 0..255 scale.

        8-bit scenarios take uint8. High-bit-depth scenarios take uint16 with values up to
        ``scenario.peak`` (divided by peak / 255, e.g. 257: the fractions keep the precision), and
        uint8 as 8-bit content (the same as that image scaled by 257).
        """
        deep = self.scenario.bit_depth > 8
        ok = (np.uint8, np.uint16) if deep else (np.uint8,)
        n = self.scenario.channels
        if n != 3 and (image.ndim != 3 or image.shape[2] != n or image.dtype != np.uint8):
            got = f"({', '.join(map(str, image.shape))}) {image.dtype}"
            raise SandwichError(
                f"model {self.name!r} takes {n}-channel 8-bit images (H, W, {n}) uint8, got {got}"
            )
        if n == 3 and (image.ndim != 3 or image.shape[2] != 3 or image.dtype not in ok):
            if deep:
                raise SandwichError(
                    f"model {self.name!r} takes {self.scenario.bit_depth}-bit (uint16) or 8-bit "
                    "RGB images (H, W, 3)"
                )
            raise SandwichError("sandwich models take 8-bit RGB images (H, W, 3)")
        t = torch.from_numpy(np.array(image, copy=True).astype(np.float32)).permute(2, 0, 1)[None]
        if image.dtype == np.uint16:
            t = t / (self.scenario.peak / 255.0)
        return t.to(self.device)

    def _from_output(self, y: Tensor) -> np.ndarray:
        """(1, C, H, W) post-processor output, 0..255 floats -> (H, W, C) ``sample_dtype``."""
        if self.scenario.bit_depth <= 8:
            out = y.round().clamp(0, 255).to(torch.uint8)
            return out[0].permute(1, 2, 0).cpu().numpy()
        peak = self.scenario.peak
        out = (y.double() * (peak / 255.0)).round().clamp(0, peak)
        return out[0].permute(1, 2, 0).cpu().numpy().astype(np.uint16)

    @torch.inference_mode()
    def bottleneck_image(self, image: np.ndarray, quality: int = 75) -> np.ndarray:
        """The 8-bit bottleneck the codec carries at ``quality``: (h, w) or (h, w, 3) uint8;
        (P*h, w, 3) for P planes, stacked vertically as in the JPEG file.

        With ``self.tile`` (or automatically on large images) the pre-processor runs tile by
        tile (:mod:`sandwich.nets.tiling`): each tile is converted to float on its own and
        written away rounded, so memory is bounded by the tile, not the image."""
        from sandwich.nets import tiling

        cond = self.real.condition(quality, 1).to(self.device) if self.quality_input else None
        s = self.scenario
        tile = tiling.resolve_tile(self.tile, image.shape[:2]) if image.ndim == 3 else 0
        if tile:
            k, p, c = s.downscale, s.planes, s.bottleneck_channels
            h = -(-image.shape[0] // k)
            out = np.empty((p * h, -(-image.shape[1] // k), c), np.uint8)

            def window(t: Tensor) -> Tensor:  # (1, C, h, w) view -> _to_tensor's float input
                return self._to_tensor(t[0].permute(1, 2, 0).numpy())

            def sink(core: Tensor, r: int, col: int) -> None:  # (1, P*C, h, w): plane i's rows
                q = core.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()
                for i in range(p):
                    rows = slice(i * h + r, i * h + r + q.shape[0])
                    out[rows, col : col + q.shape[1]] = q[:, :, i * c : (i + 1) * c]

            x = tiling.array_view(image)
            tiling.preprocess_tiled(
                self.pre, x, tile, cond, window, tiling.block_grid(s.subsampling), sink
            )
            return out[:, :, 0] if c == 1 else out
        b = stack(self.pre(self._to_tensor(image), cond), self.scenario.planes)
        b = b.round().clamp(0, 255).to(torch.uint8)
        arr = b[0].permute(1, 2, 0).cpu().numpy()
        return arr[:, :, 0] if arr.shape[2] == 1 else arr

    def compress(self, image: np.ndarray, quality: int) -> bytes:
        """(H, W, 3) RGB -> a standard JPEG file carrying the sandwich marker.

        uint8 for 8-bit scenarios; uint16 (or uint8) for high-bit-depth ones (``hdr16``);
        (H, W, channels) uint8 for multichannel ones, whose ``planes`` planes are stacked
        vertically in the one JPEG (planes * ceil(H / downscale) rows).
        """
        h, w = image.shape[:2]
        rows = self.scenario.planes * -(-h // self.scenario.downscale)
        if rows > self.real.max_side:
            raise SandwichError(
                f"image is {h} pixels tall: its {self.scenario.planes} stacked planes would be "
                f"{rows} rows, more than a {self.real.format_name} holds ({self.real.max_side})"
            )
        data = self.real.encode(self.bottleneck_image(image, quality), quality)
        return self.real.tag(data, FileTag(self.name, self.version, h, w))

    @torch.inference_mode()
    def decompress(self, data: bytes) -> np.ndarray:
        """A sandwich JPEG (with or without marker) -> (H, W, 3) RGB of ``sample_dtype``
        (uint8, or uint16 for high-bit-depth scenarios); (H, W, channels) uint8 for multichannel
        scenarios."""
        info = self.real.read_tag(data)
        fmt = self.real.format_name
        try:
            dec = self.real.decode(data)
        except (OSError, SyntaxError, ValueError) as e:
            raise SandwichError(
                f"cannot decode the {fmt} data ({e}); is the file truncated?"
            ) from e
        if dec.ndim == 2:
            dec = dec[:, :, None]
        if dec.shape[2] != self.scenario.bottleneck_channels:
            raise SandwichError(
                f"this {fmt} has {dec.shape[2]} channel(s) but model {self.name!r} expects "
                f"{self.scenario.bottleneck_channels}"
            )
        k, p = self.scenario.downscale, self.scenario.planes
        if dec.shape[0] % p:
            raise SandwichError(
                f"this {fmt} is {dec.shape[0]} rows tall, not {p} stacked planes of equal height "
                f"as model {self.name!r} expects"
            )
        if info is not None:
            size = (info.height, info.width)
            self._check_tag_size(size, dec.shape[0] // p, dec.shape[1])
        else:
            size = (dec.shape[0] // p * k, dec.shape[1] * k)
        step = self.real.condition_from_file(data) if self.quality_input else None
        return self.reconstruct(dec, size, step)

    def _check_tag_size(self, size: tuple[int, int], rows: int, cols: int) -> None:
        """The original size a file's tag records must be what this model's pre-processor
        turns into the decoded bottleneck (rows x cols per plane): a file cannot make the
        post-processor produce (and allocate) anything larger."""
        h, w = size
        check_pixels(h, w, f"this {self.real.format_name}'s sandwich tag")
        k = self.scenario.downscale
        if (-(-h // k), -(-w // k)) != (rows, cols):
            raise SandwichError(
                f"this {self.real.format_name}'s sandwich tag says {w}x{h} pixels, which model "
                f"{self.name!r} does not make from a {cols}x{rows} bottleneck; the file is corrupt"
            )

    @torch.inference_mode()
    def reconstruct(
        self, decoded: np.ndarray, size: tuple[int, int], luma_step: float | None = None
    ) -> np.ndarray:
        """Post-process a decoded bottleneck, (h, w) or (h, w, C) uint8, to (H, W, 3) RGB of
        ``sample_dtype`` (uint8, or uint16 for high-bit-depth scenarios). For P planes the
        decoded image is (P*h, w, C), the planes stacked vertically, and the result is
        (H, W, channels) uint8.

        The decoded image may come from any real codec (the file's JPEG, or WebP/AVIF/HEIC/JPEG
        XL carrying the same bottleneck). ``luma_step``: the mean luma quantisation step the
        quality input is computed from (JPEG's; ignored unless the model takes the quality;
        without it, a model that takes the quality is told JPEG quality 75). ``self.ensemble``
        > 1 averages that many post-processor passes over flips and transposes
        (:func:`sandwich.nets.ensemble.self_ensemble`): better quality for as many times the
        decoder's arithmetic. With ``self.tile`` (or automatically on large images) the
        post-processor, ensemble included, runs tile by tile (:mod:`sandwich.nets.tiling`), each
        tile rounded into the result: memory is bounded by the tile, not the image.
        """
        from sandwich.nets import tiling
        from sandwich.nets.ensemble import ensemble_members

        dec = decoded[:, :, None] if decoded.ndim == 2 else decoded
        if dec.shape[2] != self.post_channels:
            raise SandwichError(
                f"the decoded bottleneck has {dec.shape[2]} channel(s) but model {self.name!r} "
                f"expects {self.post_channels}"
            )
        if dec.shape[0] % self.scenario.planes:
            raise SandwichError(
                f"the decoded bottleneck is {dec.shape[0]} rows tall, not "
                f"{self.scenario.planes} stacked planes of equal height"
            )
        cond = self.real.condition_value(luma_step).to(self.device) if self.quality_input else None
        tile = tiling.resolve_tile(self.tile, size)
        if tile:
            s = self.scenario
            y = unstack(tiling.array_view(dec), s.planes)  # uint8, made float tile by tile
            members = None
            if self.ensemble > 1:
                shape = (y.shape[-2], y.shape[-1])
                members = ensemble_members(shape, size, self.ensemble, s.transposable)
            out = np.empty((*size, s.channels), self.sample_dtype)

            def sink(core: Tensor, r: int, c: int) -> None:
                out[r : r + core.shape[-2], c : c + core.shape[-1]] = self._from_output(core)

            tiling.postprocess_tiled(
                self.post,
                y,
                tuple(size),
                tile,
                cond,
                lambda t: t.float().to(self.device),
                tiling.block_grid(s.subsampling),
                members,
                sink,
            )
            return out
        y = torch.from_numpy(np.array(dec, copy=True)).permute(2, 0, 1)[None].float()
        y = unstack(y, self.scenario.planes)
        y = y.to(self.device)
        if self.ensemble == 1:
            return self._from_output(self.post(y, size, cond))
        y_hat = self_ensemble(
            lambda t, s: self.post(t, s, cond), y, size, self.ensemble, self.scenario.transposable
        )
        return self._from_output(y_hat)
