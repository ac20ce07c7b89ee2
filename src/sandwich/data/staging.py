"""Build a dataset folder out of sight and swap it in whole: never a half-built folder.

Used by ``sandwich data`` for every kind of dataset (corpus, 16-bit corpus, material).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandwich.errors import SandwichError

MANIFEST_NAME = "manifest.json"


def command_line() -> str:
    """The command line of this process (recorded in manifests), ``python -m sandwich`` as such."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "sandwich":
        argv[0:1] = [Path(sys.executable).name, "-m", "sandwich"]
    return shlex.join(argv)


def check_out(out: Path, force: bool) -> bool:
    """True if ``out`` holds something that the new folder will replace (needs ``force``)."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise SandwichError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return False
    if not force:
        raise SandwichError(f"{out} already exists; pass --force to rebuild it")
    return True


@contextmanager
def staged_folder(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``out``; when the block ends normally it becomes
    ``out`` (replacing the old one, which needs ``force``), when it raises it is removed.

    ``out`` itself stays readable during the block (e.g. to reuse its download cache).
    """
    out = Path(out).absolute()
    replace = check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a dataset is an ordinary folder
    try:
        yield tmp
        if replace:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # an empty folder
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_manifest(folder: Path, manifest: dict) -> None:
    """Write ``folder/manifest.json`` (indented, UTF-8)."""
    text = json.dumps(manifest, indent=2) + "\n"
    (Path(folder) / MANIFEST_NAME).write_text(text, encoding="utf-8")
