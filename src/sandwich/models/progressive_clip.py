"""The progressive recurrent codec on clips: causal residual prediction, motion, GOP files.

Frame 0 of every group of pictures (GOP) is coded intra, as the image codec codes an image. Every
later frame codes only its residual against a prediction built from frames the decoder already
has (:data:`PREDICTIONS`):

- ``none``: no prediction (every frame intra);
- ``previous``: the previous decoded frame;
- ``motion``: the previous decoded frame moved by block vectors that the encoder estimates
  between the current original and the previous *decoded* frame, sent in the file (entropy-coded,
  :mod:`sandwich.motion.vectors`);
- ``extrapolate``: decoder-side motion: the vectors of the previous decoded frame against the
  one before it, carried forward (no side information; ``previous`` for the first P frame).

The residual is coded by the same recurrence as an image (:class:`ProgressiveCodec` with its
reconstruction started at the prediction instead of mid-gray), so image weights load unchanged and
are the baseline that a model trained on residuals (``sandwich train-rnn-video``) improves on.

Predictions are made with integer arithmetic on the decoded 8-bit frames (:mod:`sandwich.motion
.blocks`) and the networks run in float64 (as the image codec's files), so decoding is bit-exact
across thread counts. Rate control per frame: a fixed iteration count, or the fewest iterations
whose decoded frame reaches a target PSNR or MS-SSIM (:attr:`ProgressiveClipCodec.target`); a
file's frames can also be cut to fewer iterations afterwards
(:func:`sandwich.formats.sndv.truncate`), at the price of drift in the frames predicted from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from sandwich.errors import SandwichError
from sandwich.media.clips import Clip
from sandwich.models.base import ClipMedia
from sandwich.models.progressive import BLOCK, ProgressiveCodec, pad_to_block, to_uint8

PREDICTIONS = ("none", "previous", "motion", "extrapolate")
DEFAULT_GOP = 32  # frames per GOP (intra period) when the caller gives none
MAX_FRAME_PIXELS = 1 << 20  # frames above 1 MP: the codec does not tile frames (yet)
SEARCH = 16  # motion search range in pixels
# weight of the vectors' bits against the luma SAD in the motion search; chosen on dev clips
# (data/video/dev and data/corpus/dev photos in motion) among 4, 16, 64 and 256 by MS-SSIM BD-rate
MOTION_LAMBDA = 64


@dataclass(frozen=True)
class Target:
    """Per-frame rate control: the fewest iterations whose decoded frame reaches ``value`` of
    ``metric`` (``"psnr"`` in dB or ``"msssim"`` on 0..1)."""

    metric: str
    value: float

    def reached(self, original: np.ndarray, decoded: np.ndarray) -> bool:
        from sandwich.evaluation.metrics import ms_ssim, psnr

        if self.metric == "psnr":
            return psnr(original, decoded) >= self.value
        return ms_ssim(original, decoded) >= self.value


@dataclass
class ProgressiveClipOutput:
    """Result of :meth:`ProgressiveClipCodec.forward`: ``x_hats[t][k]`` is frame t's
    reconstruction (N, 3, H, W), 0..255 (unclipped), after iteration k + 1."""

    x_hats: list[list[Tensor]]


@dataclass
class CodedFrame:
    """One frame as :meth:`ProgressiveClipCodec.code_frame` coded it: the codes (k, bits, h, w)
    in {0, 1}, the motion side information, and the decoded frame (H, W, 3) uint8 (what the
    decoder will see, the reference of the next frame)."""

    bits: np.ndarray
    motion: bytes
    decoded: np.ndarray


class ProgressiveClipCodec(ClipMedia, ProgressiveCodec):
    """The recurrent residual codec on clips (``.sndv`` files); the image codec's networks.

    Attributes set by callers before :meth:`compress` (the CLI's options): ``prediction`` (one of
    :data:`PREDICTIONS`), ``gop`` (frames per GOP; None: :data:`DEFAULT_GOP`), ``target`` (a
    :class:`Target` or None for a fixed iteration count).
    """

    kind = "progressive-clip"
    file_suffix = ".sndv"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prediction = "motion"
        self.gop: int | None = None
        self.target: Target | None = None

    def configure(  # type: ignore[override]
        self,
        prediction: str | None = None,
        gop: int | None = None,
        target_psnr: float | None = None,
        target_msssim: float | None = None,
    ) -> None:
        """The coding settings of :meth:`compress` (``--prediction``, ``--gop``,
        ``--target-psnr`` in dB, ``--target-msssim`` on 0..1); None keeps the current one.
        Every value is checked before any is applied."""
        if prediction is not None and prediction not in PREDICTIONS:
            raise SandwichError(f"--prediction {prediction}: use one of {', '.join(PREDICTIONS)}")
        if gop is not None and not 1 <= gop <= 0xFFFF:
            raise SandwichError(f"--gop {gop}: give a number of frames, 1..65535")
        if target_psnr is not None and target_msssim is not None:
            raise SandwichError("give --target-psnr or --target-msssim, not both")
        if target_psnr is not None and not 0 < target_psnr < 100:
            raise SandwichError(f"--target-psnr {target_psnr}: give dB, 0..100")
        if target_msssim is not None and not 0 < target_msssim < 1:
            raise SandwichError(f"--target-msssim {target_msssim}: give a value in 0..1")
        if prediction is not None:
            self.prediction = prediction
        if gop is not None:
            self.gop = gop
        if target_psnr is not None:
            self.target = Target("psnr", float(target_psnr))
        if target_msssim is not None:
            self.target = Target("msssim", float(target_msssim))

    def describe(self) -> str:
        return f"learned (recurrent, {self.prediction} prediction)"

    @classmethod
    def formats(cls) -> list[str]:
        return ["progressive video (.sndv)"]

    @classmethod
    def sniff_head(cls, head: bytes) -> bool:
        from sandwich.formats.sndv import is_sndv_file

        return is_sndv_file(head)

    @classmethod
    def identify(cls, data: bytes) -> tuple[str, str | None, int | None] | None:
        from sandwich.formats.sndv import is_sndv_file, parse

        if not is_sndv_file(data):
            return None
        return "progressive video (.sndv)", parse(data).header.model, None

    def compress_to_bpp(self, clip, target_bpp: float) -> tuple[float, bytes]:
        """The most iterations per frame whose whole file fits ``target_bpp``: a bisection over
        the iteration count (every frame's prediction depends on the others, so the clip is
        coded again for each count)."""
        return super(ProgressiveCodec, self).compress_to_bpp(clip, target_bpp)

    # ------------------------------------------------------------------ prediction
    def predict(
        self, current: np.ndarray | None, decoded: list[np.ndarray]
    ) -> tuple[np.ndarray | None, bytes]:
        """(prediction (H, W, 3) uint8 or None for intra, motion side information) of a frame
        from the decoded frames of its GOP so far (``decoded``, oldest first). ``current`` (the
        original frame) is needed only by ``motion`` prediction, on the encoder's side."""
        from sandwich.motion.blocks import compensate, estimate_motion, extrapolate_motion
        from sandwich.motion.vectors import encode_vectors

        if not decoded or self.prediction == "none":
            return None, b""
        ref = decoded[-1]
        if self.prediction == "previous":
            return ref, b""
        if self.prediction == "motion":
            if current is None:
                raise ValueError("motion prediction needs the current frame")
            vectors = estimate_motion(current, ref, BLOCK, SEARCH, MOTION_LAMBDA)
            return compensate(ref, vectors, BLOCK), encode_vectors(vectors)
        if len(decoded) < 2:
            return ref, b""
        return compensate(ref, extrapolate_motion(ref, decoded[-2], BLOCK, SEARCH), BLOCK), b""

    def _decoded_prediction(self, motion: bytes, decoded: list[np.ndarray]) -> np.ndarray | None:
        """The decoder's side of :meth:`predict`: the same prediction from the file's motion
        side information."""
        from sandwich.motion.blocks import compensate, grid
        from sandwich.motion.vectors import decode_vectors

        if self.prediction != "motion" or not decoded:
            return self.predict(None, decoded)[0]
        h, w = decoded[-1].shape[:2]
        vectors = decode_vectors(motion, *grid(h, w, BLOCK))
        return compensate(decoded[-1], vectors, BLOCK)

    # ------------------------------------------------------------------ training
    def forward(  # type: ignore[override]
        self, x: Tensor, iterations: int, reference: list[int] | None = None
    ) -> ProgressiveClipOutput:
        """Code clips ``x`` (N, T, 3, H, W), 0..255, H and W multiples of 16, as a GOP: frame
        0 intra, every later frame against its prediction (:attr:`prediction`) from the earlier
        frames' reconstructions after ``reference[t]`` iterations (default: all), rounded to 8
        bits and without gradient: what the decoder has. Motion is estimated as the encoder
        does, between each original frame and the previous reconstruction."""
        n, t = x.shape[:2]
        reference = reference or [iterations] * t
        decoded: list[list[np.ndarray]] = [[] for _ in range(n)]
        x_hats = []
        for i in range(t):
            xi = x[:, i]
            start = None
            if i > 0 and self.prediction != "none":
                with torch.no_grad():
                    preds = [self.predict(to_uint8(xi[j]), decoded[j])[0] for j in range(n)]
                    start = torch.from_numpy(np.stack(preds)).permute(0, 3, 1, 2)
                    start = start.to(xi.device, xi.dtype).contiguous(
                        memory_format=torch.channels_last
                    )
            out = ProgressiveCodec.forward(self, xi, iterations, start)
            x_hats.append(out.x_hats)
            ref = out.x_hats[reference[i] - 1].detach()
            for j in range(n):
                decoded[j] = [*decoded[j][-1:], to_uint8(ref[j])]
        return ProgressiveClipOutput(x_hats)

    # ------------------------------------------------------------------ coding
    def _tensor(self, image: np.ndarray) -> Tensor:
        t = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None]
        return pad_to_block(t.to(self.log_gain.device, torch.float64))

    def code_frame(
        self,
        net: ProgressiveCodec,
        frame: np.ndarray,
        decoded: list[np.ndarray],
        iterations: int,
    ) -> CodedFrame:
        """Code one frame (H, W, 3) uint8 against its prediction from ``decoded`` with the
        float64 twin ``net``: ``iterations``, or with :attr:`target` the fewest that reach it."""
        pred, motion = self.predict(frame, decoded)
        h, w = frame.shape[:2]
        start = None if pred is None else self._tensor(pred)
        codes = []
        for b, x_hat in net.iterate_codes(self._tensor(frame), iterations, start):
            codes.append(b)
            if self.target is not None or len(codes) == iterations:
                out = to_uint8(x_hat[0, :, :h, :w])
                if len(codes) == iterations or self.target.reached(frame, out):
                    break
        bits = (torch.stack(codes)[:, 0] > 0).to(torch.uint8).cpu().numpy()
        return CodedFrame(bits, motion, out)

    def _check_frames(self, frames: np.ndarray) -> None:
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[3] != 3:
            shape = getattr(frames, "shape", type(frames).__name__)
            raise SandwichError(f"video models take clips of RGB frames (T, H, W, 3), got {shape}")
        if frames.dtype != np.uint8:
            raise SandwichError(f"video models take 8-bit frames, got {frames.dtype}")
        if frames.shape[0] < 1:
            raise SandwichError("the clip has no frames")
        h, w = frames.shape[1:3]
        if h * w > MAX_FRAME_PIXELS:
            raise SandwichError(
                f"frames of {w}x{h} are larger than the progressive video codec codes "
                f"({MAX_FRAME_PIXELS // (1 << 20)} MP); downscale the clip"
            )
        if self.prediction not in PREDICTIONS:
            raise SandwichError(
                f"--prediction {self.prediction}: use one of {', '.join(PREDICTIONS)}"
            )

    def gop_length(self, frames: int) -> int:
        gop = DEFAULT_GOP if self.gop is None else self.gop
        if not isinstance(gop, int) or not 1 <= gop <= 0xFFFF:
            raise SandwichError(f"--gop {gop}: give a number of frames, 1..65535")
        return gop

    @torch.inference_mode()
    def compress(  # type: ignore[override]
        self,
        clip: Clip | np.ndarray,
        iterations: float | None = None,
        fps: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> bytes:
        """A :class:`~sandwich.media.clips.Clip` (or (T, H, W, 3) uint8 RGB frames) -> a
        ``.sndv`` file with at most ``iterations`` per frame (default: all)."""
        return self.encode_clip(clip, iterations, fps, progress)[0]

    @torch.inference_mode()
    def encode_clip(
        self,
        clip: Clip | np.ndarray,
        iterations: float | None = None,
        fps: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[bytes, np.ndarray, list[int]]:
        """:meth:`compress`, also returning the decoded frames (T, H, W, 3) uint8 (exactly what
        :meth:`decompress` will give) and the iterations of each frame."""
        from sandwich.entropy import BinaryCodeCoder
        from sandwich.formats.sndv import SndvFrame, SndvHeader, pack

        if isinstance(clip, Clip):
            frames, fps = clip.frames, fps or clip.fps
        else:
            frames = clip
        self._check_frames(frames)
        top = self.cfg.max_iterations if iterations is None else int(iterations)
        self._check_iterations(top)
        t, h, w = frames.shape[:3]
        gop = self.gop_length(t)
        key = self.weight_hash()
        net = self._exact(key)
        coder = BinaryCodeCoder(self.cfg.bits)
        out = np.empty_like(frames)
        chunks: list[SndvFrame] = []
        decoded: list[np.ndarray] = []
        counts = []
        for i in range(t):
            if i % gop == 0:
                decoded = []
            coded = self.code_frame(net, frames[i], decoded, top)
            chunks.append(SndvFrame(i % gop == 0, coded.motion, coder.encode(coded.bits)))
            decoded = [*decoded[-1:], coded.decoded]
            out[i] = coded.decoded
            counts.append(len(coded.bits))
            if progress is not None:
                progress(1)
        rate = frame_rate(fps)
        header = SndvHeader(
            self.name, key, h, w, t, rate.numerator, rate.denominator, gop,
            self.prediction, self.cfg.bits, BLOCK,
        )  # fmt: skip
        return pack(header, chunks), out, counts

    def decompress(self, data: bytes) -> np.ndarray:  # type: ignore[override]
        """A ``.sndv`` file (possibly cut short) -> (T, H, W, 3) uint8 frames."""
        return self.decompress_clip(data).frames

    def decompress_with_note(self, data: bytes) -> tuple[Clip, str]:  # type: ignore[override]
        clip, info = self.decode_file(data, progress=True)
        cut = ", file was cut short: decoded what is complete" if info.truncated else ""
        return clip, f"{info.frames} frames, {info.prediction} prediction{cut}"

    def decompress_clip(self, data: bytes, progress: bool = False) -> Clip:
        return self.decode_file(data, progress)[0]

    @torch.inference_mode()
    def decode_file(self, data: bytes, progress: bool = False) -> tuple[Clip, ClipFileInfo]:
        """A ``.sndv`` file -> (the decoded :class:`~sandwich.media.clips.Clip`, info). A file
        cut short decodes the frames (and iterations) it holds."""
        from tqdm import tqdm

        from sandwich.entropy import BinaryCodeCoder
        from sandwich.formats.sndv import parse

        f = parse(data)
        header = f.header
        key = self.check_file_header(header)
        if header.block != BLOCK:
            raise SandwichError(f"file has {header.block}-pixel motion blocks; this codec {BLOCK}")
        if not f.frames:
            raise SandwichError("the file holds no complete frame")
        h, w = header.height, header.width
        if h * w > MAX_FRAME_PIXELS:
            raise SandwichError(f"frames of {w}x{h} are larger than this codec decodes")
        over = [len(fr.chunks) for fr in f.frames if len(fr.chunks) > self.cfg.max_iterations]
        if over:
            raise SandwichError(
                f"file has {over[0]} iterations in a frame, model {self.cfg.max_iterations} at most"
            )
        was = self.prediction
        self.prediction = header.prediction
        try:
            net = self._exact(key)
            coder = BinaryCodeCoder(self.cfg.bits)
            out = np.empty((len(f.frames), h, w, 3), np.uint8)
            decoded: list[np.ndarray] = []
            rows, cols = -(-h // BLOCK), -(-w // BLOCK)
            bar = tqdm(
                f.frames, "frames", unit="f", leave=False, disable=None if progress else True
            )
            for i, fr in enumerate(bar):
                if fr.intra:
                    decoded = []
                try:
                    pred = self._decoded_prediction(fr.motion, decoded)
                    bits = coder.decode(fr.chunks, rows, cols)
                except SandwichError as e:
                    raise SandwichError(f"frame {i}: {e}") from None
                codes = torch.from_numpy(bits.astype(np.float64) * 2 - 1).unsqueeze(1)
                start = None if pred is None else self._tensor(pred)
                xh = net.decode_codes(codes.to(self.log_gain.device), False, start)[-1]
                out[i] = to_uint8(xh[0, :, :h, :w])
                decoded = [*decoded[-1:], out[i]]
        finally:
            self.prediction = was
        info = ClipFileInfo(header.model, h, w, len(f.frames), header.prediction, f.truncated)
        return Clip(out, header.fps), info


def frame_rate(fps: float | None) -> Fraction:
    """``fps`` (frames per second; None: 25) as the fraction a ``.sndv`` header stores."""
    value = 25.0 if fps is None else float(fps)
    if not (math.isfinite(value) and 0 < value <= 1000):
        raise SandwichError(f"frame rate {fps}: give a number of frames per second, 0..1000")
    rate = Fraction(value).limit_denominator(1001000)
    if rate.numerator == 0:
        raise SandwichError(f"frame rate {fps}: give a number of frames per second, 0..1000")
    return rate


@dataclass
class ClipFileInfo:
    """What :meth:`ProgressiveClipCodec.decode_file` found."""

    model: str
    height: int
    width: int
    frames: int
    prediction: str
    truncated: bool
