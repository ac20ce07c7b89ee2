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
    kind: str = "sandwich"  # "sandwich" (pre/post around a real codec) or "progressive"

    @property
    def codec(self) -> str:
        if self.kind == "progressive":
            return "learned (recurrent, 0.125 bpp/iteration raw)"
        from sandwich.scenarios import get_scenario

        s = get_scenario(self.scenario)
        return (
            f"JPEG {s.subsampling}"
            + (f", 1/{s.downscale} size" if s.downscale > 1 else "")
            + (f", {s.bit_depth}-bit image" if s.bit_depth > 8 else "")
        )


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "gray-jpeg",
            "gray",
            1,
            "colour through grayscale JPEG (trained)",
            "gray-jpeg.safetensors",
        ),
        ZooEntry(
            "lowres2-jpeg",
            "lowres2",
            1,
            "full resolution through half-size JPEG (trained)",
            "lowres2-jpeg.safetensors",
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
            "gray-modem",
            "gray",
            1,
            "colour through grayscale JPEG, analytic carriers only (no learning)",
        ),
    ]
}

DEFAULT_MODEL = "gray-jpeg"


def weights_dir() -> Path:
    return Path(str(resources.files("sandwich.zoo") / "weights"))


def get_entry(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise SandwichError(
            f"unknown model {name!r}; `sandwich models` lists the zoo ({', '.join(ZOO)})"
        ) from None


def available(entry: ZooEntry) -> bool:
    return entry.weights is None or (weights_dir() / entry.weights).is_file()


def load_model(name: str, device: str = "cpu"):
    """The zoo model ``name`` (eval mode, on ``device``)."""
    from sandwich.models.sandwich import SandwichModel
    from sandwich.zoo.weights import load_weights

    entry = get_entry(name)
    if entry.kind == "progressive":
        from sandwich.zoo.weights import load_progressive_weights

        path = weights_dir() / str(entry.weights)
        if not path.is_file():
            raise SandwichError(f"model {name!r} has no weights in this install ({path})")
        return load_progressive_weights(path, name=entry.name, version=entry.version).to(device)
    if entry.weights is None:
        model = SandwichModel(
            entry.scenario,
            entry.pre_widths,
            entry.post_widths,
            name=entry.name,
            version=entry.version,
        )
        model.eval()
    else:
        path = weights_dir() / entry.weights
        if not path.is_file():
            raise SandwichError(f"model {name!r} has no weights in this install ({path})")
        model = load_weights(path, name=entry.name, version=entry.version)
    return model.to(device)
