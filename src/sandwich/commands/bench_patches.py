"""``sandwich bench patches``: how detailed the training patches of a corpus are.

A sandwich learns what its patches show. A corpus of wallpapers is mostly sky and bokeh, while the
photos it will code may be mostly texture; this benchmark puts the two side by side as
percentiles of :func:`sandwich.training.dataset.detail` over random patches, for each
``--detail-draws`` setting, so the setting that matches a target folder can be read off.
"""

from __future__ import annotations

from pathlib import Path

import typer

PERCENTILES = (10, 25, 50, 75, 90)


def register(bench: typer.Typer) -> None:
    @bench.command("patches")
    def bench_patches(
        folders: list[Path] = typer.Argument(
            ..., help="image folders; each is sampled on its own (join several with ':')"
        ),
        patch: int = typer.Option(96, help="square patch side in pixels"),
        draws: list[int] = typer.Option(
            [1, 4], "--draws", help="--detail-draws settings to compare (repeat the option)"
        ),
        samples: int = typer.Option(2000, help="patches per folder and setting"),
        seed: int = typer.Option(0),
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """Percentiles of patch detail (mean absolute neighbour difference across + down, 0..255
        pixel scale) per folder and --detail-draws setting."""
        import torch
        from rich.table import Table

        from sandwich.commands.common import console, write_json
        from sandwich.errors import SandwichError
        from sandwich.training.dataset import PatchSampler, check_detail_draws, detail

        if samples < 1:
            raise SandwichError(f"--samples {samples}: use 1 or more patches")
        for k in draws:
            check_detail_draws(k)
        rows = []
        for folder in folders:
            sampler = PatchSampler(str(folder), patch)
            for k in draws:
                sampler.detail_draws = k
                gen = torch.Generator().manual_seed(seed)
                batches = [min(64, samples - n) for n in range(0, samples, 64)]
                values = torch.cat([detail(sampler.sample(b, gen)) for b in batches])
                q = torch.quantile(values, torch.tensor([p / 100 for p in PERCENTILES])).tolist()
                rows.append(
                    {
                        "folder": str(folder),
                        "detail_draws": k,
                        "patch": patch,
                        "samples": samples,
                        **{f"p{p}": round(v, 2) for p, v in zip(PERCENTILES, q, strict=True)},
                    }
                )
        table = Table(title=f"patch detail, {patch}x{patch} patches ({samples} per row)")
        for col in ("folder", "draws", *(f"p{p}" for p in PERCENTILES)):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                r["folder"], str(r["detail_draws"]), *(f"{r[f'p{p}']:.1f}" for p in PERCENTILES)
            )
        console().print(table)
        if json_out is not None:
            write_json(json_out, rows)
