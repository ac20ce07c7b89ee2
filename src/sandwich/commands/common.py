"""Helpers shared by the CLI commands: expanding inputs, writing JSON atomically."""

from __future__ import annotations

import json
from pathlib import Path

from sandwich.media.files import atomic_write_bytes, expand_images, list_images

__all__ = ["atomic_write_bytes", "console", "expand_images", "list_images", "write_json"]


def write_json(path: Path, obj, force: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode(), force=force)


def console():
    """A rich console that does not squeeze tables when output is piped."""
    import shutil

    from rich.console import Console

    return Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
