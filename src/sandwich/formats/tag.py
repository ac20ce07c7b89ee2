"""The tag a sandwich file carries inside its codec's standard format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileTag:
    """What a sandwich file records about the model that made it, inside the codec's standard
    format (an APP11 segment in JPEG, container metadata in MP4): the model's name and version
    and the size of the original media (the bottleneck may be smaller). ``knob``: the codec
    setting the file was made at (e.g. the x265 CRF), for models whose decoder is told it and
    formats that do not show it (JPEG's quality is read from its tables instead: None)."""

    model: str
    model_version: int
    height: int
    width: int
    format_version: int = 1
    knob: float | None = None
