"""Helpers shared by the CLI commands: expanding inputs, writing JSON atomically."""

from __future__ import annotations

import json
from pathlib import Path

from sandwich.errors import SandwichError
from sandwich.io import atomic_write_bytes, list_images


def expand_images(
    paths: list[Path], lister=None, empty: str = "no images in this folder"
) -> list[Path]:
    """Files as given, folders expanded by ``lister`` (default: their image files, sorted);
    ``empty`` is the error for a folder with none."""
    lister = lister or list_images
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = lister(p)
            if not found:
                raise SandwichError(f"{p}: {empty}")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SandwichError(f"{p}: no such file or folder")
    return out


def write_json(path: Path, obj, force: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode(), force=force)


def console():
    """A rich console that does not squeeze tables when output is piped."""
    import shutil

    from rich.console import Console

    return Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
