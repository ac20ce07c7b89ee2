"""Saving and loading sandwich weights as safetensors plus a JSON sidecar (config, provenance)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from sandwich.errors import SandwichError
from sandwich.models.sandwich import SandwichModel


def save_weights(model: SandwichModel, path: Path, meta: dict | None = None) -> None:
    """Write ``path`` (.safetensors, fp32) and ``path.with_suffix('.json')`` (config + meta)."""
    _save(model, path, {"config": model.config(), **(meta or {})})


def _save(model, path: Path, side: dict) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    side["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")


def _load_state(model, path: Path):
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as e:  # safetensors raises several kinds
        raise SandwichError(f"{path}: cannot load weights ({e})") from None
    model.eval()
    return model


def load_weights(path: Path, name: str = "local", version: int = 0) -> SandwichModel:
    """Build a :class:`SandwichModel` from a .safetensors file and its JSON sidecar."""
    side_path = path.with_suffix(".json")
    if not path.exists() or not side_path.exists():
        raise SandwichError(f"{path}: weights or their .json sidecar are missing")
    side = json.loads(side_path.read_text())
    cfg = side["config"]
    model = SandwichModel(
        cfg["scenario"],
        tuple(cfg["pre_widths"]),
        tuple(cfg["post_widths"]),
        rounding=cfg.get("rounding", "ste"),
        quality_input=cfg.get("quality_input", False),
        activation=cfg.get("activation", "relu"),
        name=name,
        version=version,
    )
    return _load_state(model, path)


def save_progressive_weights(model, path: Path, meta: dict | None = None) -> None:
    """Like :func:`save_weights` for a :class:`~sandwich.models.progressive.ProgressiveCodec`."""
    _save(model, path, {"kind": "progressive", "config": model.config(), **(meta or {})})


def load_progressive_weights(path: Path, name: str = "local", version: int = 0):
    """Build a :class:`~sandwich.models.progressive.ProgressiveCodec` from weights + sidecar."""
    from sandwich.models.progressive import ProgressiveCodec, ProgressiveConfig

    side_path = path.with_suffix(".json")
    if not path.exists() or not side_path.exists():
        raise SandwichError(f"{path}: weights or their .json sidecar are missing")
    cfg = json.loads(side_path.read_text())["config"]
    conf = ProgressiveConfig(
        enc_widths=tuple(cfg["enc_widths"]),
        dec_widths=tuple(cfg["dec_widths"]),
        unit=cfg["unit"],
        mode=cfg["mode"],
        bits=cfg["bits"],
        max_iterations=cfg["max_iterations"],
    )
    return _load_state(ProgressiveCodec(conf, name=name, version=version), path)
