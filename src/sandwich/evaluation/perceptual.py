"""Perceptual metrics: LPIPS and VMAF, for evaluation and as differentiable training losses.

LPIPS (lower is better, 0 for identical images) runs :class:`sandwich.nets.lpips_net.LPIPSNet`.
Its weights come, in this order, from

1. the ``weights`` argument,
2. the ``SANDWICH_LPIPS_WEIGHTS`` environment variable,
3. the ``stlpips-pytorch`` package (a dependency): its shift-tolerant AlexNet / VGG16 weights,
   read as files; the package itself is never imported (it needs torchvision).

A weights source is one state-dict file (``.pth`` / ``.pt`` / ``.safetensors``) or several
joined by ``os.pathsep`` (``:``) and merged, e.g. the original LPIPS v0.1 head file of the
``lpips`` package plus torchvision's ImageNet AlexNet backbone (``features.*`` keys); ``{net}``
in it is replaced by ``alex`` / ``vgg``. Whether the weights are original or shift-tolerant LPIPS
is read from their layout (see :func:`lpips_info`).

VMAF (0..100, higher is better) is the v0.6.1 model as implemented by ``vmaf-torch``, on the
luma plane: RGB frames become BT.601 studio-range Y (what FFmpeg's default RGB to YUV
conversion gives), grey frames are taken as Y. :func:`vmaf_ffmpeg` computes the same with
FFmpeg's libvmaf (the binary that ``imageio-ffmpeg`` ships) for cross-checking.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sandwich.errors import SandwichError

LPIPS_ENV = "SANDWICH_LPIPS_WEIGHTS"
STLPIPS_DIST = "stlpips-pytorch"
_STLPIPS_FILE = "stlpips_pytorch/weights/vST0.0/{net}_shift_tolerant.pth"
# smallest image side each backbone accepts
LPIPS_MIN_SIDE = {"alex": 32, "vgg": 32}


# ----------------------------------------------------------------------------------- LPIPS


def _stlpips_weights(net: str) -> Path | None:
    """The ST-LPIPS weight file of the installed stlpips-pytorch, found without importing it."""
    from importlib import metadata

    try:
        dist = metadata.distribution(STLPIPS_DIST)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(_STLPIPS_FILE.format(net=net))))
    return path if path.is_file() else None


def lpips_weight_paths(net: str = "alex", weights: str | os.PathLike | None = None) -> list[Path]:
    """The weight file(s) LPIPS with backbone ``net`` would load (see the module doc)."""
    if net not in ("alex", "vgg"):
        raise ValueError(f"unknown LPIPS backbone {net!r}; expected 'alex' or 'vgg'")
    spec = os.fspath(weights) if weights is not None else os.environ.get(LPIPS_ENV, "")
    if spec:
        paths = [Path(p.replace("{net}", net)).expanduser() for p in spec.split(os.pathsep) if p]
        for p in paths:
            if not p.is_file():
                origin = "weights argument" if weights is not None else LPIPS_ENV
                raise SandwichError(f"LPIPS weight file {p} (from {origin}) does not exist")
        return paths
    found = _stlpips_weights(net)
    if found is None:
        raise SandwichError(
            f"no LPIPS weights for {net!r}: install them with "
            f"`pip install --no-deps {STLPIPS_DIST}` (shift-tolerant LPIPS, from PyPI), or set "
            f"{LPIPS_ENV} to a state-dict file (.pth/.safetensors; several joined by "
            f"'{os.pathsep}', '{{net}}' stands for alex/vgg)"
        )
    return [found]


def _read_state(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable, truncated, pickled objects, ...
        raise SandwichError(f"cannot read LPIPS weights {path}: {e}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SandwichError(f"LPIPS weights {path} hold no state dict")
    return state


@functools.lru_cache(maxsize=8)
def _cached_net(net: str, paths: tuple[str, ...], device: str):
    from sandwich.nets.lpips_net import LPIPSNet

    state: dict = {}
    for p in paths:
        state.update(_read_state(Path(p)))
    try:
        model = LPIPSNet.from_state_dict(state, net)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        raise SandwichError(f"LPIPS weights {', '.join(paths)} do not fit: {msg}") from e
    model.source = paths
    return model.to(device)


def load_lpips(net: str = "alex", weights: str | os.PathLike | None = None, device="cpu"):
    """The frozen LPIPS network for ``net`` on ``device``, built once per weights and device."""
    import torch

    paths = tuple(str(p.resolve()) for p in lpips_weight_paths(net, weights))
    return _cached_net(net, paths, str(torch.device(device)))


def lpips_info(net: str = "alex", weights: str | os.PathLike | None = None) -> dict:
    """Which LPIPS is in use: ``{"net", "variant", "paths"}``, variant original/shift_tolerant."""
    model = load_lpips(net, weights)
    return {"net": net, "variant": model.variant, "paths": list(model.source)}


def lpips_torch(
    x,
    y,
    net: str = "alex",
    weights: str | os.PathLike | None = None,
    reduction: str = "mean",
):
    """Differentiable LPIPS between (N, 3, H, W) (or (N, 1, H, W) grey) tensors in 0..255.

    Returns the mean over the batch (``reduction="mean"``) or the (N,) distances (``"none"``).
    The network is frozen and cached per device; gradients flow to ``x`` and ``y``.
    """
    if x.shape != y.shape or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"expected two (N, 3, H, W) tensors, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if net not in LPIPS_MIN_SIDE:
        raise ValueError(f"unknown LPIPS backbone {net!r}; expected 'alex' or 'vgg'")
    if min(x.shape[-2:]) < LPIPS_MIN_SIDE[net]:
        raise ValueError(
            f"LPIPS-{net} needs images of at least {LPIPS_MIN_SIDE[net]} pixels a side"
        )
    model = load_lpips(net, weights, x.device)
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    d = model(x.float() / 127.5 - 1.0, y.float() / 127.5 - 1.0).to(x.dtype)
    if reduction == "mean":
        return d.mean()
    if reduction == "none":
        return d
    raise ValueError(f"unknown reduction {reduction!r}")


def _image_tensor(a: np.ndarray):
    import torch

    a = np.asarray(a)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]


def lpips(a: np.ndarray, b: np.ndarray, net: str = "alex", weights=None) -> float:
    """LPIPS between two (H, W, 3) uint8 images (grey (H, W) allowed); 0 when identical."""
    import torch

    x, y = _image_tensor(a), _image_tensor(b)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    with torch.no_grad():
        return float(lpips_torch(x, y, net, weights))


# ------------------------------------------------------------------------------------ VMAF

# BT.601 studio-range luma: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in 0..255
_Y_COEF = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def rgb_to_luma(x):
    """BT.601 studio-range Y (16..235) of (N, 3, H, W) 0..255 RGB tensors, as (N, 1, H, W)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 16.0 + _Y_COEF[0] * r + _Y_COEF[1] * g + _Y_COEF[2] * b


def frames_to_luma(frames) -> np.ndarray:
    """(T, H, W) uint8 Y planes of a video given as frames.

    Accepts a (T, H, W, 3) RGB array, one (H, W, 3) RGB frame, a (T, H, W) grey array, one
    (H, W) grey frame, or a sequence of (H, W, 3) / (H, W) frames. RGB becomes BT.601
    studio-range Y rounded to integers; grey frames are taken as Y as they are.
    """
    arr = frames if isinstance(frames, np.ndarray) else np.stack([np.asarray(f) for f in frames])
    if arr.ndim == 3 and arr.shape[-1] == 3 and not isinstance(frames, (list, tuple)):
        arr = arr[None]  # one RGB frame
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 3:
        rgb = arr.astype(np.float64)
        y = 16.0 + rgb @ np.array(_Y_COEF)
        return np.clip(np.round(y), 0, 255).astype(np.uint8)
    if arr.ndim == 3:
        return np.clip(np.round(arr), 0, 255).astype(np.uint8)
    raise ValueError(f"cannot read frames of shape {arr.shape} as a video")


@functools.lru_cache(maxsize=8)
def _vmaf_model(motion: bool, clip: bool, device: str):
    try:
        from vmaf_torch import VMAF
    except ImportError as e:
        raise SandwichError(f"VMAF needs vmaf-torch: `pip install vmaf-torch` ({e})") from e
    model = VMAF(temporal_pooling=False, enable_motion=motion, clip_score=clip)
    model.requires_grad_(False)
    return model.eval().to(device)


def _check_pair(ref: np.ndarray, dist: np.ndarray) -> None:
    if ref.shape != dist.shape:
        raise ValueError(
            f"reference and distorted videos differ in shape: {ref.shape} vs {dist.shape}"
        )
    if min(ref.shape[1:]) < 32:
        raise ValueError(f"VMAF needs frames of at least 32 pixels a side, got {ref.shape[1:]}")


def vmaf_frames(ref_frames, dist_frames, motion: bool = True) -> np.ndarray:
    """Per-frame VMAF v0.6.1 scores (clipped to 0..100 like libvmaf), shape (T,)."""
    import torch

    ref, dist = frames_to_luma(ref_frames), frames_to_luma(dist_frames)
    _check_pair(ref, dist)
    model = _vmaf_model(motion, True, "cpu")
    with torch.no_grad():
        r = torch.from_numpy(ref).float()[:, None]
        d = torch.from_numpy(dist).float()[:, None]
        return model(r, d).reshape(-1).double().numpy()


def vmaf(ref_frames, dist_frames, motion: bool = True) -> float:
    """VMAF v0.6.1 of a distorted video against its reference: the mean per-frame score.

    Frames as in :func:`frames_to_luma`; frames are consecutive video frames (the motion
    feature compares neighbours). ``motion=False`` scores them as unrelated images.
    """
    return float(vmaf_frames(ref_frames, dist_frames, motion).mean())


def vmaf_torch(x, y, motion: bool = False, clip: bool = False, reduction: str = "mean"):
    """Differentiable VMAF v0.6.1 of distorted ``y`` against reference ``x``; higher is better.

    ``x``, ``y``: (N, 3, H, W) RGB or (N, 1, H, W) luma tensors in 0..255. The N items are
    scored as separate images (motion feature 0) unless ``motion=True`` (then they are
    consecutive frames of one video). Scores are not clipped to 0..100 by default so the
    gradient does not vanish; use ``1 - vmaf_torch(...) / 100`` as a loss. Gradients flow to
    ``y`` (and ``x``). Returns the batch mean or (N,) scores (``reduction="none"``).
    """
    if x.shape != y.shape or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"expected two (N, 3, H, W) tensors, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if min(x.shape[-2:]) < 32:
        raise ValueError("VMAF needs images of at least 32 pixels a side")
    if x.shape[1] == 3:
        x, y = rgb_to_luma(x), rgb_to_luma(y)
    model = _vmaf_model(motion, clip, str(x.device))
    s = model(x.float(), y.float()).reshape(-1).to(x.dtype)
    if reduction == "mean":
        return s.mean()
    if reduction == "none":
        return s
    raise ValueError(f"unknown reduction {reduction!r}")


def ffmpeg_exe() -> str | None:
    """An FFmpeg binary with the libvmaf filter (imageio-ffmpeg's, else one on PATH), or None."""
    candidates = []
    try:
        import imageio_ffmpeg

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # not installed, or its binary is missing for this platform
        pass
    if on_path := shutil.which("ffmpeg"):
        candidates.append(on_path)
    for exe in candidates:
        if _has_libvmaf(exe):
            return exe
    return None


@functools.lru_cache(maxsize=4)
def _has_libvmaf(exe: str) -> bool:
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in out.stdout.splitlines())


def vmaf_ffmpeg(ref_frames, dist_frames, ffmpeg: str | None = None) -> float:
    """VMAF v0.6.1 by FFmpeg's libvmaf (pooled mean), on the same Y planes as :func:`vmaf`.

    Raises :class:`SandwichError` when no FFmpeg with libvmaf is found (see :func:`ffmpeg_exe`).
    """
    ref, dist = frames_to_luma(ref_frames), frames_to_luma(dist_frames)
    _check_pair(ref, dist)
    exe = ffmpeg or ffmpeg_exe()
    if exe is None:
        raise SandwichError(
            "no FFmpeg with libvmaf found: `pip install imageio-ffmpeg` or put one on PATH"
        )
    t, h, w = ref.shape
    chroma = np.full((t, 2, h, w), 128, np.uint8)
    with tempfile.TemporaryDirectory(prefix="sandwich-vmaf-") as tmp:
        for name, y in (("ref.yuv", ref), ("dist.yuv", dist)):
            # planar 4:4:4 with neutral chroma: libvmaf reads the Y plane unchanged
            np.concatenate([y[:, None], chroma], axis=1).tofile(Path(tmp) / name)
        raw = ["-f", "rawvideo", "-pix_fmt", "yuv444p", "-s:v", f"{w}x{h}", "-r", "25"]
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin"]
        cmd += [*raw, "-i", "dist.yuv", *raw, "-i", "ref.yuv"]
        cmd += ["-lavfi", "[0:v][1:v]libvmaf=log_path=vmaf.json:log_fmt=json:n_threads=1"]
        cmd += ["-f", "null", "-"]
        run = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
        log = Path(tmp) / "vmaf.json"
        if run.returncode != 0 or not log.is_file():
            detail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise SandwichError(f"FFmpeg libvmaf failed: {detail}")
        result = json.loads(log.read_text())
    return float(result["pooled_metrics"]["vmaf"]["mean"])


__all__ = [
    "LPIPS_ENV",
    "ffmpeg_exe",
    "frames_to_luma",
    "load_lpips",
    "lpips",
    "lpips_info",
    "lpips_torch",
    "lpips_weight_paths",
    "rgb_to_luma",
    "vmaf",
    "vmaf_ffmpeg",
    "vmaf_frames",
    "vmaf_torch",
]
