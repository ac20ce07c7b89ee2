"""CLI commands, one module each; :func:`register_all` attaches them to the typer apps."""

from __future__ import annotations

import importlib

import typer

# module name -> (attach to bench app?)
COMMAND_MODULES = {
    "data_cmd": False,
    "calibrate_cmd": False,
    "train_cmd": False,
    "train_rnn_cmd": False,
    "train_video_cmd": False,
    "train_rnn_video_cmd": False,
    "files_cmd": False,
    "demo_cmd": False,
    "eval_cmd": False,
    "eval_video_cmd": False,
    "plot_cmd": False,
    "results_cmd": False,
    "results_video_cmd": False,
    "bench_models": True,
    "bench_modem": True,
    "bench_patches": True,
    "bench_proxy": True,
    "bench_rnn": True,
    "bench_rnn_video": True,
    "bench_fuzz": True,
    "bench_speed": True,
    "bench_speed_video": True,
}


def register_all(app: typer.Typer, bench_app: typer.Typer) -> None:
    for name, is_bench in COMMAND_MODULES.items():
        try:
            mod = importlib.import_module(f"sandwich.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"sandwich.commands.{name}":
                continue
            raise
        mod.register(bench_app if is_bench else app)
