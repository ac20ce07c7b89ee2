"""Progressive learned image codec: recurrent residual coding with binary codes (Toderici style).

Iteration t encodes the residual r_{t-1} = x - x_hat_{t-1} with a recurrent encoder, binarises it
to ``bits`` (32) signs per 16x16 block (0.125 bpp per iteration before entropy coding), and a
recurrent decoder turns the bits into an update of the reconstruction:

- ``oneshot``: x_hat_t = D_t (each iteration predicts the whole image);
- ``additive``: x_hat_t = x_hat_{t-1} + D_t;
- ``scaled`` (scaled-additive): the residual is multiplied by a learned per-iteration gain g_t
  before encoding and the decoded update divided by it, x_hat_t = x_hat_{t-1} + D_t / g_t, so
  late iterations see residuals of the same magnitude as early ones.

Pixels are handled internally as x / 255 - 0.5 (range -0.5..0.5); the public API takes and
returns (N, 3, H, W) float tensors in 0..255. Any H, W: images are padded to a multiple of 16 by
edge replication and cropped back.

Files (:meth:`ProgressiveCodec.compress`): the recurrent state makes the receptive field grow
with every iteration, so exact overlapping tiles are impossible; a large image is instead coded
as a grid of independent tiles (:attr:`ProgressiveCodec.tile`, automatic above 1 MP), each with
its own recurrent state and entropy-coder statistics, stored iteration-major
(:mod:`sandwich.formats.sndr` version 2) so that the file stays progressive. Compressing and
decompressing then run one tile at a time: memory follows the tile, not the image.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sandwich.codecs.base import Knob
from sandwich.errors import SandwichError
from sandwich.models.base import CodecModel, check_config, int_in, one_of, widths
from sandwich.nets.recurrent import make_cell
from sandwich.nets.tiling import AUTO_TILE_ABOVE

BLOCK = 16  # pixels per code position along each axis
AUTO_TILE = 512  # tile side of the files of images above AUTO_TILE_ABOVE pixels


@dataclass(frozen=True)
class ProgressiveConfig:
    """Architecture of a :class:`ProgressiveCodec` (widths in channels)."""

    enc_widths: tuple[int, int, int, int] = (32, 64, 128, 128)
    dec_widths: tuple[int, int, int, int] = (128, 128, 64, 32)
    unit: str = "gru"  # "gru" (residual GRU) or "lstm"
    mode: str = "scaled"  # "oneshot", "additive" or "scaled"
    bits: int = 32  # binary code channels per 16x16 block and iteration
    max_iterations: int = 16


PRESETS: dict[str, ProgressiveConfig] = {
    # sized for 2 CPU cores
    "cpu-s": ProgressiveConfig((32, 64, 128, 128), (128, 128, 64, 32)),
    "cpu-m": ProgressiveConfig((64, 128, 256, 256), (256, 256, 128, 64)),
    # the published layer widths with LSTM units (44 M parameters here); for a GPU
    "toderici": ProgressiveConfig((64, 256, 512, 512), (512, 512, 256, 128), unit="lstm"),
}


def stochastic_sign(x: Tensor, training: bool) -> Tensor:
    """Binarise ``x`` in -1..1 to {-1, +1}; gradient passes straight through.

    Training: +1 with probability (1 + x) / 2 (unbiased, E[b] = x). Use: sign, with 0 -> +1.
    """
    if training:
        p = (1 + x) / 2
        b = torch.where(torch.rand_like(x) < p, 1.0, -1.0)
    else:
        b = torch.where(x >= 0, 1.0, -1.0)
    return b + (x - x.detach())  # exactly b, gradient of x


class Binarizer(nn.Module):
    """1x1 conv to ``bits`` channels, tanh, then :func:`stochastic_sign`."""

    def __init__(self, c_in: int, bits: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, bits, 1, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return stochastic_sign(torch.tanh(self.conv(h)), self.training)


class Encoder(nn.Module):
    """Strided conv then three strided recurrent layers: (N, 3, H, W) -> (N, w3, H/16, W/16)."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        w0, w1, w2, w3 = cfg.enc_widths
        self.conv = nn.Conv2d(3, w0, 3, 2, 1)
        self.rnn = nn.ModuleList(
            [
                make_cell(cfg.unit, w0, w1, stride=2),
                make_cell(cfg.unit, w1, w2, stride=2),
                make_cell(cfg.unit, w2, w3, stride=2),
            ]
        )

    def forward(self, r: Tensor, states: list) -> tuple[Tensor, list]:
        h = self.conv(r)
        new = []
        for cell, s in zip(self.rnn, states, strict=True):
            h, s = cell(h, s)
            new.append(s)
        return h, new


class Decoder(nn.Module):
    """1x1 conv, four recurrent layers each followed by depth-to-space x2, 1x1 conv to RGB."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        d = cfg.dec_widths
        self.conv_in = nn.Conv2d(cfg.bits, d[0], 1)
        ins = [d[0], d[0] // 4, d[1] // 4, d[2] // 4]
        self.rnn = nn.ModuleList(
            [
                make_cell(cfg.unit, i, o, k_hidden=3 if k else 1)
                for k, (i, o) in enumerate(zip(ins, d, strict=True))
            ]
        )
        self.conv_out = nn.Conv2d(d[3] // 4, 3, 1)

    def forward(self, b: Tensor, states: list) -> tuple[Tensor, list]:
        h = self.conv_in(b)
        new = []
        for cell, s in zip(self.rnn, states, strict=True):
            h, s = cell(h, s)
            new.append(s)
            h = F.pixel_shuffle(h, 2)
        return self.conv_out(h), new


@dataclass
class ProgressiveOutput:
    """Result of :meth:`ProgressiveCodec.forward`.

    ``x_hats``: one (N, 3, H, W) reconstruction per iteration, 0..255 (unclipped in training);
    ``codes``: (T, N, bits, H/16, W/16) in {-1, +1}.
    """

    x_hats: list[Tensor]
    codes: Tensor


class ProgressiveCodec(CodecModel):
    """Recurrent residual codec. ``forward`` for training; ``compress``/``decompress`` for files."""

    def __init__(self, cfg: ProgressiveConfig | None = None, name: str = "local", version: int = 0):
        super().__init__()
        self.cfg = cfg or ProgressiveConfig()
        if self.cfg.mode not in ("oneshot", "additive", "scaled"):
            raise ValueError(f"unknown reconstruction mode {self.cfg.mode!r}")
        self.encoder = Encoder(self.cfg)
        self.binarizer = Binarizer(self.cfg.enc_widths[3], self.cfg.bits)
        self.decoder = Decoder(self.cfg)
        # log of the per-iteration residual gain (scaled-additive mode); starts at 1.4**t
        t = torch.arange(self.cfg.max_iterations, dtype=torch.float32)
        self.log_gain = nn.Parameter(
            t * float(np.log(1.4)), requires_grad=self.cfg.mode == "scaled"
        )
        self.name = name
        self.version = version
        # side of the independent tiles of a file (``--tile``): None automatic, 0 whole image
        self.tile: int | None = None

    kind = "progressive"
    file_suffix = ".sndr"

    def config(self) -> dict:
        return asdict(self.cfg)

    @classmethod
    def from_config(cls, config: dict, name: str = "local", version: int = 0) -> ProgressiveCodec:
        """A codec from its sidecar's ``config``, checked field by field first."""
        fields = {
            "enc_widths": widths(4),
            "dec_widths": widths(4),
            "unit": one_of("gru", "lstm"),
            "mode": one_of("oneshot", "additive", "scaled"),
            "bits": int_in(1, 256),
            "max_iterations": int_in(1, 64),
        }
        check_config(config, fields, f"model {name!r}")
        conf = ProgressiveConfig(
            enc_widths=tuple(config["enc_widths"]),
            dec_widths=tuple(config["dec_widths"]),
            unit=config["unit"],
            mode=config["mode"],
            bits=config["bits"],
            max_iterations=config["max_iterations"],
        )
        return cls(conf, name=name, version=version)

    @property
    def knob(self) -> Knob:
        return Knob("iterations", 1, self.cfg.max_iterations, label="iterations")

    @property
    def default_knob(self) -> float:
        return self.cfg.max_iterations

    def describe(self) -> str:
        return f"learned (recurrent, {self.cfg.bits / 256:g} bpp/iteration raw)"

    @classmethod
    def formats(cls) -> list[str]:
        return ["progressive (.sndr)"]

    @classmethod
    def identify(cls, data: bytes) -> tuple[str, str | None, int | None] | None:
        """A progressive file: its header names the model (the version is checked by the
        weight hash instead)."""
        from sandwich.formats.sndr import is_rnn_file, unpack

        if not is_rnn_file(data):
            return None
        return "progressive", unpack(data)[0].model, None

    def compress_to_bpp(self, image: np.ndarray, target_bpp: float) -> tuple[float, bytes]:
        """Encode every iteration once and keep the most that fit (the file cuts anywhere)."""
        from sandwich.formats.sndr import truncate

        pixels = image.shape[0] * image.shape[1]
        top = self.cfg.max_iterations
        full = self.compress(image, top)
        fits = [j for j in range(1, top + 1) if 8 * len(truncate(full, j)) / pixels <= target_bpp]
        if not fits:
            smallest = 8 * len(truncate(full, 1)) / pixels
            raise SandwichError(
                f"--target-bpp {target_bpp} is below the smallest file this model makes "
                f"({smallest:.3f} bpp at 1 iteration)"
            )
        return fits[-1], truncate(full, fits[-1])

    def decompress_with_note(self, data: bytes) -> tuple[np.ndarray, str]:
        images, info = self.decode_file(data, every_iteration=False)
        cut = ", file was cut short: decoded the complete iterations" if info.truncated else ""
        return images[-1], f"{info.iterations} iterations{cut}"

    # --- the recurrence ---------------------------------------------------------------------
    def _gain(self, t: int) -> Tensor:
        if self.cfg.mode != "scaled":
            return torch.ones((), device=self.log_gain.device)
        return self.log_gain[t].exp()

    def _update(self, x_hat: Tensor, d: Tensor, t: int) -> Tensor:
        if self.cfg.mode == "oneshot":
            return d
        return x_hat + d / self._gain(t)

    def _start(self, xc: Tensor, start: Tensor | None) -> Tensor:
        """The reconstruction before iteration 0 (centred): zeros (mid-gray), or a prediction
        ``start`` (N, 3, H, W) on 0..255, so that iteration 0 codes the residual x - start."""
        if start is None:
            return torch.zeros_like(xc)
        if self.cfg.mode == "oneshot":
            raise SandwichError("a oneshot model cannot code residuals against a prediction")
        return start.to(xc.dtype) / 255.0 - 0.5

    def forward(self, x: Tensor, iterations: int, start: Tensor | None = None) -> ProgressiveOutput:
        """Encode and decode ``x`` (N, 3, H, W), 0..255, H and W multiples of 16; ``start``: a
        prediction of ``x`` (same shape, 0..255) whose residual is coded (None: intra)."""
        self._check_iterations(iterations)
        xc = x / 255.0 - 0.5
        x_hat = self._start(xc, start)
        enc_s: list = [None] * 3
        dec_s: list = [None] * 4
        x_hats, codes = [], []
        for t in range(iterations):
            h, enc_s = self.encoder((xc - x_hat) * self._gain(t), enc_s)
            b = self.binarizer(h)
            d, dec_s = self.decoder(b, dec_s)
            x_hat = self._update(x_hat, d, t)
            x_hats.append((x_hat + 0.5) * 255.0)
            codes.append(b)
        return ProgressiveOutput(x_hats, torch.stack(codes))

    @torch.inference_mode()
    def encode_codes(self, x: Tensor, iterations: int, start: Tensor | None = None) -> Tensor:
        """The codes (T, N, bits, H/16, W/16) in {-1, +1} of ``x`` (N, 3, H, W), 0..255, H and W
        multiples of 16 (``start``: as in :meth:`forward`): :meth:`forward`'s arithmetic without
        keeping the reconstructions."""
        return torch.stack([b for b, _ in self.iterate_codes(x, iterations, start)])

    def iterate_codes(
        self, x: Tensor, iterations: int, start: Tensor | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """(codes (N, bits, H/16, W/16) in {-1, +1}, reconstruction (N, 3, H, W) on 0..255 as
        the decoder will make it) after each of ``iterations`` iterations, lazily: an encoder
        can stop as soon as a reconstruction is good enough. Arguments as :meth:`encode_codes`;
        call it under ``torch.inference_mode``."""
        self._check_iterations(iterations)
        xc = x / 255.0 - 0.5
        x_hat = self._start(xc, start)
        enc_s: list = [None] * 3
        dec_s: list = [None] * 4
        for t in range(iterations):
            h, enc_s = self.encoder((xc - x_hat) * self._gain(t), enc_s)
            b = self.binarizer(h)
            d, dec_s = self.decoder(b, dec_s)
            x_hat = self._update(x_hat, d, t)
            yield b, (x_hat + 0.5) * 255.0

    @torch.inference_mode()
    def decode_codes(
        self, codes: Tensor, every_iteration: bool = True, start: Tensor | None = None
    ) -> list[Tensor]:
        """Reconstructions after each iteration (or only the last one) from codes
        (T, N, bits, h, w) in {-1, +1}; ``start``: the prediction the codes are a residual of
        (N, 3, 16h, 16w) on 0..255, as given to :meth:`encode_codes`."""
        dec_s: list = [None] * 4
        x_hat = None
        out = []
        for t in range(codes.shape[0]):
            d, dec_s = self.decoder(codes[t], dec_s)
            if x_hat is None:
                x_hat = torch.zeros_like(d) if start is None else self._start(d, start)
            x_hat = self._update(x_hat, d, t)
            if every_iteration or t == codes.shape[0] - 1:
                out.append((x_hat + 0.5) * 255.0)
        return out

    def _check_iterations(self, iterations: int) -> None:
        if not 1 <= iterations <= self.cfg.max_iterations:
            raise SandwichError(
                f"iterations must be 1..{self.cfg.max_iterations} for this model, not {iterations}"
            )

    # --- real use -----------------------------------------------------------------------------
    def weight_hash(self) -> bytes:
        """8 bytes identifying the weights (recorded in files, checked when decoding)."""
        h = hashlib.sha256()
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.digest()[:8]

    def check_file_header(self, header) -> bytes:
        """This model's weight hash, after checking that a file's ``header`` (``.sndr`` or
        ``.sndv``: its ``model``, ``weight_hash`` and ``channels``) was written with these
        weights and code width; one-line errors otherwise."""
        key = self.weight_hash()
        if header.weight_hash != key:
            raise SandwichError(
                f"written by model {header.model!r} with other weights (weight hash mismatch); "
                "decode it with the model and version that wrote it"
            )
        if header.channels != self.cfg.bits:
            raise SandwichError(f"file has {header.channels} code channels, model {self.cfg.bits}")
        return key

    def _exact(self, key: bytes) -> ProgressiveCodec:
        """A float64 copy in eval mode, used by compress and decode_file.

        Entropy decoding is exact integer arithmetic; the reconstruction runs in float64 and
        is rounded to 8 bits, so thread count or machine cannot change a decoded pixel (float32
        convolutions summed in another order flip a few roundings).
        """
        cached = getattr(self, "_exact_cache", None)
        if cached is None or cached[0] != key:
            object.__setattr__(self, "_exact_cache", None)
            twin = copy.deepcopy(self).double().eval()
            object.__setattr__(self, "_exact_cache", (key, twin))
        return self._exact_cache[1]

    def tile_side(self, height: int, width: int) -> int:
        """Side of the file's tiles for an image of ``height`` x ``width`` (0: one tile).

        :attr:`tile` None is automatic (:data:`AUTO_TILE` above
        :data:`sandwich.nets.tiling.AUTO_TILE_ABOVE` pixels, else the whole image); a side is
        rounded up to a multiple of 16, and an image that fits in one tile is not tiled.
        """
        from sandwich.formats.sndr import MAX_TILE

        tile = self.tile
        if tile is None:
            tile = AUTO_TILE if height * width > AUTO_TILE_ABOVE else 0
        if not isinstance(tile, int) or tile < 0:
            raise SandwichError(f"--tile {tile}: give a side in pixels, or 0 for the whole image")
        side = -(-tile // BLOCK) * BLOCK
        if side == 0 or (height <= side and width <= side):
            return 0
        if side > MAX_TILE:
            raise SandwichError(
                f"--tile {tile}: the progressive codec's tiles are {MAX_TILE} at most"
            )
        return side

    @torch.inference_mode()
    def compress(self, image: np.ndarray, iterations: int | None = None) -> bytes:
        """(H, W, 3) uint8 RGB -> a progressive file with ``iterations`` (default: all).

        The file (:mod:`sandwich.formats.sndr`) holds one entropy-coded chunk per iteration (and
        tile), so :func:`sandwich.formats.sndr.truncate` cuts it to fewer iterations without
        re-encoding. Tiles (:meth:`tile_side`) are coded one after the other, each from its own
        fresh state: the working memory is that of one tile.
        """
        from sandwich.entropy import BinaryCodeCoder
        from sandwich.formats.sndr import RnnHeader, pack, tile_grid

        iterations = self.cfg.max_iterations if iterations is None else iterations
        self._check_iterations(iterations)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SandwichError("compress takes an (H, W, 3) uint8 RGB image")
        H, W = image.shape[:2]
        tile = self.tile_side(H, W)
        dev = self.log_gain.device
        key = self.weight_hash()  # hashes all weights: once per call
        net = self._exact(key)
        coder = BinaryCodeCoder(self.cfg.bits)
        per_tile = []
        for y, x, h, w in tile_grid(H, W, tile):
            crop = torch.from_numpy(np.array(image[y : y + h, x : x + w], copy=True))
            crop = crop.permute(2, 0, 1)[None].to(dev)
            codes = net.encode_codes(pad_to_block(crop.double()), iterations)
            per_tile.append(coder.encode((codes[:, 0] > 0).to(torch.uint8).cpu().numpy()))
        # version 2 stores iteration-major: iteration t of every tile, then t + 1
        chunks = [list(c) for c in zip(*per_tile, strict=True)] if tile else per_tile[0]
        header = RnnHeader(self.name, key, H, W, iterations, self.cfg.bits, tile)
        return pack(header, chunks)

    @torch.inference_mode()
    def decode_file(
        self, data: bytes, every_iteration: bool = True
    ) -> tuple[list[np.ndarray], RnnFileInfo]:
        """A progressive file -> the (H, W, 3) uint8 image after each iteration it holds (only
        the last with ``every_iteration=False``), info.

        Tiles are decoded one after the other into the preallocated output images.
        """
        from sandwich.entropy import BinaryCodeCoder
        from sandwich.formats.sndr import parse

        f = parse(data)
        header = f.header
        key = self.check_file_header(header)
        if f.iterations > self.cfg.max_iterations:
            raise SandwichError(
                f"file has {f.iterations} iterations, model {self.cfg.max_iterations} at most"
            )
        H, W = header.height, header.width
        images = [
            np.empty((H, W, 3), np.uint8) for _ in range(f.iterations if every_iteration else 1)
        ]
        net = self._exact(key)
        coder = BinaryCodeCoder(self.cfg.bits)
        dev = self.log_gain.device
        tiles = header.tiles()
        for i, (y, x, h, w) in enumerate(tiles):
            try:
                bits = coder.decode(f.tile_chunks(i), -(-h // BLOCK), -(-w // BLOCK))
            except SandwichError as e:
                if len(tiles) == 1:
                    raise
                raise SandwichError(f"{e} (tile {i + 1} of {len(tiles)})") from None
            codes = torch.from_numpy(bits.astype(np.float64) * 2 - 1).unsqueeze(1).to(dev)
            for image, xh in zip(images, net.decode_codes(codes, every_iteration), strict=True):
                image[y : y + h, x : x + w] = to_uint8(xh[0, :, :h, :w])
        info = RnnFileInfo(header.model, H, W, f.iterations, f.truncated, header.tile)
        return images, info

    def decompress(self, data: bytes) -> np.ndarray:
        """A progressive file (possibly cut after any iteration) -> (H, W, 3) uint8 RGB."""
        return self.decode_file(data, every_iteration=False)[0][-1]


@dataclass
class RnnFileInfo:
    """What :meth:`ProgressiveCodec.decode_file` found: model, size, iterations decoded,
    tile side."""

    model: str
    height: int
    width: int
    iterations: int
    truncated: bool
    tile: int = 0  # side of the file's tiles, 0 for one tile


def to_uint8(x: Tensor) -> np.ndarray:
    """(3, H, W) 0..255 float -> (H, W, 3) uint8 (rounded, clipped)."""
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def pad_to_block(x: Tensor, block: int = BLOCK) -> Tensor:
    """Pad (N, C, H, W) on the bottom/right by edge replication to multiples of ``block``."""
    _, _, H, W = x.shape
    ph, pw = (-H) % block, (-W) % block
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")
