"""The registry of model types: the one place that maps a type's name to its class.

A weight sidecar records its model's ``kind`` (absent in older sandwich sidecars: ``sandwich``)
and ``config``; the zoo and ``load_weights`` build models through :func:`build_model`, and file
readers find the type of a file with :func:`identify_file`. Adding a model type is one module
(a :class:`~sandwich.models.base.CodecModel` subclass) and one line in :data:`MODEL_TYPES`.
"""

from __future__ import annotations

from sandwich.errors import SandwichError
from sandwich.models.base import CodecModel
from sandwich.models.clip_sandwich import ClipSandwichModel
from sandwich.models.progressive import ProgressiveCodec
from sandwich.models.progressive_clip import ProgressiveClipCodec
from sandwich.models.sandwich import SandwichModel

MODEL_TYPES: dict[str, type[CodecModel]] = {
    "sandwich": SandwichModel,
    "progressive": ProgressiveCodec,
    "clip-sandwich": ClipSandwichModel,
    "progressive-clip": ProgressiveClipCodec,
}
DEFAULT_KIND = "sandwich"  # sidecars written before kinds were recorded


def model_type(kind: str) -> type[CodecModel]:
    try:
        return MODEL_TYPES[kind]
    except KeyError:
        raise SandwichError(
            f"unknown model type {kind!r}; this install knows {', '.join(MODEL_TYPES)}"
        ) from None


def build_model(kind: str, config: dict, name: str = "local", version: int = 0) -> CodecModel:
    """An untrained model of type ``kind`` from a sidecar's ``config`` dictionary."""
    return model_type(kind).from_config(config, name=name, version=version)


def identify_file(data: bytes) -> tuple[type[CodecModel], str, str | None, int | None] | None:
    """(model type, format name, model named in the file or None, version or None) of the
    first model type whose files ``data`` looks like, or None."""
    for cls in MODEL_TYPES.values():
        found = cls.identify(data)
        if found is not None:
            return (cls, *found)
    return None


def known_formats() -> str:
    """The formats sandwich decodes, for messages: ``JPEG, progressive (.sndr) or MP4``."""
    names = [f for cls in MODEL_TYPES.values() for f in cls.formats()]
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def known_suffixes() -> tuple[str, ...]:
    """Suffixes of every file a model type writes (``.jpg``, ``.jpeg``, ``.sndr``)."""
    return tuple(dict.fromkeys(x for cls in MODEL_TYPES.values() for x in cls.suffixes()))


def for_type(table: dict, model):
    """The value ``table`` holds for ``model``'s type (or the nearest base class it lists): how
    other layers attach their own piece to each model type without naming kinds."""
    for cls in type(model).__mro__:
        if cls in table:
            return table[cls]
    raise SandwichError(f"{type(model).__name__} has no entry here; register its model type")
