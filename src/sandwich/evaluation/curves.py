"""Learning curves from a training ``log.jsonl`` (sandwich or progressive codec runs)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from sandwich.errors import SandwichError


def read_log(path: Path) -> list[dict]:
    """The JSON records of a log, in order; a clear error for an empty or broken file."""
    records = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise SandwichError(f"{path}:{n}: not a JSON record; is this a training log?") from None
    if not records or "step" not in records[0]:
        raise SandwichError(f"{path}: no training records")
    return records


def validation_curve(records: list[dict], iteration: int = 4) -> list[tuple[int, float]]:
    """(step, validation MS-SSIM after ``iteration`` iterations) for an rnn run's records."""
    return [
        (r["step"], r["val"]["msssim"][iteration - 1])
        for r in records
        if "val" in r and len(r["val"]["msssim"]) >= iteration
    ]


def plot_training_log(records: list[dict], out: Path, title: str = "") -> None:
    """Loss and PSNR against steps; with validation records, MS-SSIM per iteration too."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    has_val = any("val" in r for r in records)
    fig = Figure(figsize=(11 if has_val else 7, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if has_val else 1, squeeze=False)[0]
    steps = [r["step"] for r in records]
    ax = axes[0]
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    psnr_key = "psnr" if "psnr" in records[0] else "psnr_last"
    if psnr_key in records[0]:
        twin = ax.twinx()
        twin.plot(steps, [r[psnr_key] for r in records], color="tab:orange", lw=1)
        twin.set_ylabel(f"training {psnr_key} (dB)", color="tab:orange")
    ax.set_title(title)
    if has_val:
        ax = axes[1]
        n = max(len(r["val"]["msssim"]) for r in records if "val" in r)
        for k in sorted({1, 2, 4, 8, n} & set(range(1, n + 1))):
            pts = validation_curve(records, k)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"{k} it.")
        ax.set_xlabel("step")
        ax.set_ylabel("validation MS-SSIM")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".plot-", suffix=out.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
