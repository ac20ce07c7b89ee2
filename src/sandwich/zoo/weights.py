"""Saving and loading sandwich weights as safetensors plus a JSON sidecar (config, provenance)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from sandwich.errors import SandwichError
from sandwich.models.base import CodecModel
from sandwich.models.registry import DEFAULT_KIND, build_model


def save_weights(model: CodecModel, path: Path, meta: dict | None = None) -> None:
    """Write ``path`` (.safetensors, fp32) and ``path.with_suffix('.json')`` (config + meta).

    Sandwich sidecars record no ``kind`` (the default type), as they always have; other types
    record theirs first."""
    head = {} if model.kind == DEFAULT_KIND else {"kind": model.kind}
    _save(model, path, {**head, "config": model.config(), **(meta or {})})


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


MAX_SIDECAR_BYTES = 1 << 20  # real sidecars are a few kB


def read_sidecar(path: Path) -> dict:
    """The JSON sidecar of weights ``path`` (``path`` with suffix .json), as a dict; anything
    else (missing, huge, not JSON, not an object, nested beyond reason) is a one-line
    :class:`SandwichError`."""
    side_path = path.with_suffix(".json")
    if not path.is_file() or not side_path.is_file():
        raise SandwichError(f"{path}: weights or their .json sidecar are missing")
    if side_path.stat().st_size > MAX_SIDECAR_BYTES:
        raise SandwichError(f"{side_path}: too large for a weights sidecar")
    try:
        side = json.loads(side_path.read_text())
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise SandwichError(f"{side_path}: not a JSON weights sidecar") from None
    if not isinstance(side, dict) or not isinstance(side.get("kind", DEFAULT_KIND), str):
        raise SandwichError(f"{side_path}: not a weights sidecar (a JSON object with a config)")
    return side


def load_weights(path: Path, name: str = "local", version: int = 0) -> CodecModel:
    """Build the model a .safetensors file and its JSON sidecar describe (any registered type:
    the sidecar's ``kind``) and load its weights, in eval mode."""
    side = read_sidecar(path)
    model = build_model(side.get("kind", DEFAULT_KIND), side.get("config"), name, version)
    return _load_state(model, path)


save_progressive_weights = save_weights  # one writer for every model type


load_progressive_weights = load_weights  # the sidecar says which type to build
