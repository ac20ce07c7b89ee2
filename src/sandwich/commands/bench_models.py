"""``sandwich bench models``: parameters and MACs per pixel of the network configurations."""

from __future__ import annotations

from pathlib import Path

import typer


def register(bench: typer.Typer) -> None:
    @bench.command("models")
    def bench_models(
        json_out: Path = typer.Option(None, "--json", help="write the rows as JSON here"),
    ) -> None:
        """U-Net presets (3 -> 3 channels) and each scenario's sandwich with zoo widths."""
        import torch
        from rich.table import Table

        from sandwich.commands.common import write_json
        from sandwich.evaluation.complexity import count_params, macs_per_pixel, sandwich_complexity
        from sandwich.models.sandwich import SandwichModel
        from sandwich.nets.unet import UNET_PRESETS, UNet
        from sandwich.scenarios import SCENARIOS

        rows = []
        x = torch.rand(1, 3, 64, 64)
        for preset, widths in UNET_PRESETS.items():
            net = UNet(3, 3, widths)
            rows.append(
                {
                    "network": f"U-Net {preset} {widths}",
                    "params": count_params(net),
                    "macs_per_pixel": macs_per_pixel(net, x, [net]),
                }
            )
        for name in SCENARIOS:
            m = SandwichModel(name, (16, 32), (32, 64))
            cx = sandwich_complexity(m, size=64)
            rows.append(
                {
                    "network": f"sandwich {name} pre (16,32) post (32,64)",
                    "params": cx["params"],
                    "macs_per_pixel": cx["macs_per_pixel"],
                }
            )
        from sandwich.evaluation.complexity import progressive_complexity
        from sandwich.models.progressive import PRESETS, ProgressiveCodec

        for preset, pcfg in PRESETS.items():
            cx = progressive_complexity(ProgressiveCodec(pcfg), size=64)
            rows.append(
                {
                    "network": f"rnn {preset} {pcfg.unit} enc {pcfg.enc_widths} dec "
                    f"{pcfg.dec_widths} (per iteration)",
                    "params": cx["params"],
                    "macs_per_pixel": cx["macs_per_pixel"],
                }
            )
        table = Table(title="network complexity (MACs per pixel of the full-size image)")
        for col in ("network", "params", "MACs/pixel"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(r["network"], f"{r['params']:,}", f"{r['macs_per_pixel'] / 1e3:.1f}K")
        from sandwich.commands.common import console

        console().print(table)
        if json_out is not None:
            write_json(json_out, rows)
