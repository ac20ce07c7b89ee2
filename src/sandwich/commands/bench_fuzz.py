"""``sandwich bench fuzz N``: decode N mutated sandwich files and count how each one ended."""

from __future__ import annotations

from pathlib import Path

import typer

from sandwich.errors import SandwichError


def register(bench: typer.Typer) -> None:
    @bench.command("fuzz")
    def bench_fuzz(
        cases: int = typer.Argument(1000, help="how many mutated files to decode"),
        seed: int = typer.Option(0, help="seed of the mutations (same seed, same cases)"),
        time_limit: float = typer.Option(10.0, help="seconds per decode before it is a hang"),
        json_out: Path = typer.Option(None, "--json", help="write the report as JSON here"),
    ) -> None:
        """Mutate real files (bit flips, overwrites, cuts, insertions, marker and .sndr header
        fields with fixed checksums) and decode them as `decompress` does: count decoded, one-line
        errors, crashes (tracebacks) and hangs. Exits non-zero if any crash or hang."""
        from dataclasses import asdict

        from rich.table import Table
        from tqdm import tqdm

        from sandwich.commands.common import console, write_json
        from sandwich.evaluation.fuzz import OUTCOMES, run_fuzz

        if cases < 1:
            raise SandwichError(f"{cases} cases: give at least 1")
        with tqdm(total=cases, desc="fuzz") as bar:
            report = run_fuzz(cases, seed, time_limit, progress=lambda: bar.update(1))
        table = Table(title=f"{cases} mutated files, seed {seed}, {report.seconds:.0f} s")
        table.add_column("mutation")
        for col in OUTCOMES:
            table.add_column(col, justify="right")
        for name, row in [*report.by_mutation.items(), ("all", report.counts)]:
            table.add_row(name, *[f"{row[k]:,}" for k in OUTCOMES])
        console().print(table)
        for f in report.failures:
            typer.echo(f"case {f['case']} ({f['mutation']}): {f['detail']}", err=True)
        if json_out is not None:
            write_json(json_out, asdict(report))
        if report.counts["crash"] or report.counts["hang"]:
            raise SandwichError(
                f"{report.counts['crash']} crash(es) and {report.counts['hang']} hang(s); "
                "rerun with the same --seed to reproduce"
            )
