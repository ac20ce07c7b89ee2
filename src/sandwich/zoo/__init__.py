"""The model zoo: named, versioned sandwiches shipped inside the package.

``load_model(name)`` returns a ready :class:`~sandwich.models.sandwich.SandwichModel` in eval mode,
like CompressAI's ``zoo``. Trained entries load safetensors from ``zoo/weights`` (each with a JSON
sidecar holding its config and the exact command that trained it); analytic entries need no
weights: they are the untrained sandwich, i.e. the analytic base of their scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sandwich.errors import SandwichError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    scenario: str
    version: int
    description: str
    weights: str | None = None  # file name in zoo/weights, None for analytic entries
    pre_widths: tuple[int, ...] = (16, 32)
    post_widths: tuple[int, ...] = (32, 64)
    kind: str = "sandwich"  # the model type, a key of sandwich.models.registry.MODEL_TYPES
    # config fields that differ from the weights' sidecar: the same networks over another codec
    # (e.g. a video sandwich trained over x265 run over x264: ``(("codec", "x264"),)``)
    overrides: tuple[tuple[str, object], ...] = ()


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "gray-jpeg",
            "gray",
            2,
            "colour through grayscale JPEG (trained)",
            "gray-jpeg.safetensors",
        ),
        ZooEntry(
            "lowres2-jpeg",
            "lowres2",
            5,
            "full resolution through half-size JPEG (trained)",
            "lowres2-jpeg.safetensors",
        ),
        ZooEntry(
            "rgb-jpeg",
            "rgb",
            1,
            "RGB through 4:2:0 JPEG, MSE (trained)",
            "rgb-jpeg.safetensors",
        ),
        ZooEntry(
            "lowres4-jpeg",
            "lowres4",
            1,
            "full resolution through quarter-size JPEG (trained)",
            "lowres4-jpeg.safetensors",
        ),
        ZooEntry(
            "msssim-jpeg",
            "msssim",
            3,
            "RGB through 4:2:0 JPEG, for MS-SSIM (trained)",
            "msssim-jpeg.safetensors",
        ),
        ZooEntry(
            "lpips-jpeg",
            "lpips",
            2,
            "RGB through 4:2:0 JPEG, for LPIPS (trained)",
            "lpips-jpeg.safetensors",
        ),
        ZooEntry(
            "rnn",
            "progressive",
            1,
            "progressive recurrent codec, binary codes, entropy-coded (trained)",
            "rnn.safetensors",
            kind="progressive",
        ),
        ZooEntry(
            "hdr16-jpeg",
            "hdr16",
            1,
            "16-bit RGB through 8-bit 4:2:0 JPEG (trained)",
            "hdr16-jpeg.safetensors",
        ),
        ZooEntry(
            "hdr16-444-jpeg",
            "hdr16-444",
            1,
            "16-bit RGB through 8-bit 4:4:4 JPEG at qualities 90-100, past the 8-bit ceiling "
            "(trained)",
            "hdr16-444-jpeg.safetensors",
        ),
        ZooEntry(
            "material6-jpeg",
            "material6",
            1,
            "albedo + normal map (6 channels) through one 4:2:0 JPEG (trained)",
            "material6-jpeg.safetensors",
        ),
        ZooEntry(
            "gray-hevc",
            "gray",
            1,
            "colour through a grayscale (4:0:0) HEVC video stream, x265 (trained)",
            "gray-hevc.safetensors",
            kind="clip-sandwich",
        ),
        ZooEntry(
            "lowres2-hevc",
            "lowres2",
            1,
            "full resolution through a half-size x265 4:2:0 video stream (trained)",
            "lowres2-hevc.safetensors",
            kind="clip-sandwich",
        ),
        ZooEntry(
            "lpips-hevc",
            "lpips",
            1,
            "RGB through x265 4:2:0 video, for LPIPS (trained)",
            "lpips-hevc.safetensors",
            kind="clip-sandwich",
        ),
        ZooEntry(
            "rnn-video",
            "progressive",
            1,
            "progressive recurrent codec on clips: intra frames, then motion-compensated "
            "residuals (trained on them)",
            "rnn-video.safetensors",
            kind="progressive-clip",
        ),
        ZooEntry(
            "rnn-clip",
            "progressive",
            1,
            "rnn's image networks coding clips: intra frame, then residuals against a causal "
            "prediction (baseline of rnn-video)",
            "rnn.safetensors",
            kind="progressive-clip",
        ),
        ZooEntry(
            "gray-modem",
            "gray",
            1,
            "colour through grayscale JPEG, analytic carriers only (no learning)",
        ),
    ]
}

DEFAULT_MODEL = "gray-jpeg"


def high_bit_depth_models() -> list[str]:
    """Names of the zoo models that take images of more than 8 bits per sample."""
    from sandwich.scenarios import SCENARIOS

    return [
        e.name
        for e in ZOO.values()
        if e.scenario in SCENARIOS and SCENARIOS[e.scenario].bit_depth > 8
    ]


def weights_dir() -> Path:
    return Path(str(resources.files("sandwich.zoo") / "weights"))


def is_local(name: str) -> bool:
    """True when ``name`` is a path to trained weights (a run's ``model.safetensors``)."""
    return name.endswith(".safetensors")


def _local_entry(name: str) -> ZooEntry:
    """An entry for weights the user named on the command line (never for a name read from a
    file: see :func:`is_zoo_name`)."""
    from sandwich.zoo.weights import read_sidecar

    meta = read_sidecar(Path(name))
    kind = meta.get("kind", "sandwich")
    config = meta.get("config")
    scenario = config.get("scenario", kind) if isinstance(config, dict) else kind
    if not isinstance(scenario, str):
        raise SandwichError(f"{name}: the sidecar's config has a bad 'scenario'")
    # the name goes into the files' marker (at most 255 bytes): keep the tail of a long path
    label = name if len(name.encode()) <= 255 else "/".join(Path(name).parts[-2:])[-255:]
    path = str(Path(name).absolute())  # not resolved: messages name the path the user gave
    return ZooEntry(label, scenario, 0, f"local weights {name}", path, kind=kind)


def is_zoo_name(name: str) -> bool:
    """True when ``name`` is a model of this install's zoo: the only names a file may choose
    (a file naming weights on disk must not make the decoder load them)."""
    return name in ZOO


def get_entry(name: str) -> ZooEntry:
    """The zoo entry ``name``, or an entry for local weights when ``name`` ends in .safetensors."""
    if is_local(name):
        return _local_entry(name)
    try:
        return ZOO[name]
    except KeyError:
        raise SandwichError(
            f"unknown model {name!r}; `sandwich models` lists the zoo ({', '.join(ZOO)})"
        ) from None


def available(entry: ZooEntry) -> bool:
    return entry.weights is None or (weights_dir() / entry.weights).is_file()


def _weights_path(entry: ZooEntry) -> Path:
    return weights_dir() / str(entry.weights)  # an absolute path (local weights) stays as it is


def load_model(name: str, device: str = "cpu"):
    """The zoo model ``name`` or local weights ``*.safetensors`` (eval mode, on ``device``)."""
    from sandwich.models.registry import build_model
    from sandwich.zoo.weights import load_weights

    entry = get_entry(name)
    if entry.weights is None:  # analytic: the untrained model of its scenario
        config = {
            "scenario": entry.scenario,
            "pre_widths": list(entry.pre_widths),
            "post_widths": list(entry.post_widths),
        }
        model = build_model(entry.kind, config, name=entry.name, version=entry.version)
        model.eval()
    else:
        path = _weights_path(entry)
        if not path.is_file():
            raise SandwichError(f"model {name!r} has no weights in this install ({path})")
        model = load_weights(path, name=entry.name, version=entry.version)
        if entry.overrides or entry.kind != model.kind:  # the same networks as another type
            from sandwich.models.registry import build_model

            config = {**model.config(), **dict(entry.overrides)}
            other = build_model(entry.kind, config, name=entry.name, version=entry.version)
            other.load_state_dict(model.state_dict())
            model = other.eval()
    return model.to(device)
