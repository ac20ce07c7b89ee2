"""``sandwich bench rnn-video``: the progressive video codec per prediction mode, against
intra-only coding and against x264 / x265 (:mod:`sandwich.evaluation.progressive_clip_eval`)."""

from __future__ import annotations

from pathlib import Path

import typer


def _list(text: str, kind=str) -> list:
    from sandwich.errors import SandwichError

    try:
        return [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SandwichError(f"{text!r}: give a comma-separated list") from None


def register(bench: typer.Typer) -> None:
    @bench.command("rnn-video")
    def bench_rnn_video(
        inputs: list[Path] = typer.Argument(
            ..., help="clips (video files or folders of PNG frames) not used in training"
        ),
        model: str = typer.Option("rnn-video", "--model", "-m", help="progressive video model"),
        predictions: str = typer.Option("none,previous,motion,extrapolate"),
        iterations: str = typer.Option("1,2,3,4,6", help="fixed iteration counts (RD points)"),
        frames: int = typer.Option(8, help="code the first N frames of each clip (one GOP)"),
        codecs: str = typer.Option("x264,x265", help="standard codecs to compare with"),
        crfs: str = typer.Option("22,27,32,37,42,47", help="their CRF sweep"),
        msssim_target: float = typer.Option(0.95, help="per-frame rate control target"),
        psnr_target: float = typer.Option(30.0, help="per-frame rate control target (dB)"),
        threads: int = typer.Option(2, help="torch threads"),
        json_out: Path = typer.Option(None, "--json", help="write everything here"),
        against: Path = typer.Option(
            None, help="a JSON of an earlier run (another model): BD-rate of this one against it"
        ),
    ) -> None:
        """Per prediction: RD at fixed iterations (motion bits included), BD-rate against
        intra-only, iterations per P frame at a target quality, and x264 / x265 at matched bpp."""
        import torch
        from tqdm import tqdm

        from sandwich.commands.common import console, write_json
        from sandwich.errors import SandwichError
        from sandwich.evaluation import progressive_clip_eval as ev
        from sandwich.evaluation.clip_eval import find_clips
        from sandwich.media.clips import read_clip
        from sandwich.zoo import load_model

        torch.set_num_threads(threads)
        net = load_model(model)
        if not hasattr(net, "encode_clip"):
            raise SandwichError(f"{model} is not a progressive video model (try -m rnn-video)")
        preds = _list(predictions)
        for p in preds:
            net.configure(prediction=p)  # refuses unknown modes before any work
        ks = _list(iterations, int)
        if not ks or min(ks) < 1 or max(ks) > net.cfg.max_iterations:
            raise SandwichError(f"--iterations: use 1..{net.cfg.max_iterations}")
        if frames < 2:
            raise SandwichError(f"--frames {frames}: use 2 or more (an I and a P frame)")
        clips = []
        for name, path, _ in find_clips(inputs):
            f, fps = read_clip(path)
            clips.append(ev.BenchClip(name, f[:frames], fps))
        other: list = []
        if against is not None:
            import json

            try:
                other = json.loads(against.read_text())["rows"]
            except (OSError, ValueError, KeyError, TypeError):
                raise SandwichError(f"--against {against}: not a bench rnn-video JSON") from None
        cods = _list(codecs)
        steps = len(clips) * (len(preds) * (len(ks) + 2) + len(cods))
        with tqdm(total=steps, desc="rnn-video bench") as bar:
            res = ev.run(
                net, clips, preds, ks, cods, _list(crfs, int), msssim_target, psnr_target,
                progress=lambda: bar.update(1),
            )  # fmt: skip
        if against is not None:
            res["against"] = ev.against(res["rows"], other)
            res["against_file"] = str(against)
        out = console()
        for table in ev.rich_tables(res, frames):
            out.print(table)
        out.print("BD-rate: negative = fewer bits than the anchor at the same quality; nan = "
                  "the curves do not overlap")  # fmt: skip
        if json_out is not None:
            write_json(json_out, res)
            out.print(f"wrote {json_out}")
