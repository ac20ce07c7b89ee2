"""Config fields that declare their own command-line option, and typer commands built from them.

A run's config is a dataclass; each field is declared once, with its option's help text::

    steps: int = option(4000, "total optimiser steps")

and :func:`command` turns one or more such dataclasses into a typer command with one option per
field (``--steps``, named after the field unless ``flag`` says otherwise), so adding a config
field is one line. A field declared with :func:`config_only` (or a plain default) is recorded in
the run's config but is not an option.

What a field may say besides its help, for when the option differs from the field:

- ``flag``: the option's name, e.g. ``"--lambda"`` for the field ``lmbda``;
- ``cli_type``: the option's type, e.g. ``list[Path]`` for a field that records folders as one
  string;
- ``cli_default``: the option's default when it differs from the field's, e.g. ``None`` for
  "the scenario's";
- ``parse``: turns the option's value into the field's (``join_folders``, ``str``, ...).
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

_OPTION = "option"  # metadata key that marks a field as a command-line option


def option(
    default: Any = dataclasses.MISSING,
    help: str | None = None,  # noqa: A002 (typer's name for it)
    *,
    flag: str | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    cli_type: Any = None,
    cli_default: Any = dataclasses.MISSING,
    parse: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line option (no ``default``: required)."""
    meta = {
        "help": help,
        "flag": flag,
        "cli_type": cli_type,
        "cli_default": cli_default,
        "parse": parse,
    }
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={_OPTION: meta}
    )


def config_only(default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field recorded in the run's config but not offered as an option."""
    return dataclasses.field(default=default, **kwargs)


def command_line() -> str:
    """This process's command line as it would be typed (``sandwich ARGS``), shell-quoted."""
    return " ".join(shlex.quote(a) for a in ["sandwich", *sys.argv[1:]])


def path_or_none(path: Path | None) -> str | None:
    """``parse`` of an optional path option recorded as text or ``None``."""
    return str(path) if path else None


def path_or_empty(path: Path | None) -> str:
    """``parse`` of an optional path option recorded as text, ``""`` when not given."""
    return str(path) if path else ""


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if _OPTION in f.metadata]


def _without_none(annotation: Any) -> Any:
    """``int`` for ``int | None`` (typer reads a ``None`` default as "not given")."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _parameter(f: dataclasses.Field, hints: dict[str, Any]) -> inspect.Parameter:
    meta = f.metadata[_OPTION]
    if meta["cli_default"] is not dataclasses.MISSING:
        default = meta["cli_default"]
    elif f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = ...  # required
    decls = [meta["flag"]] if meta["flag"] else []
    kwargs = {"help": meta["help"]} if meta["help"] is not None else {}
    annotation = meta["cli_type"] or _without_none(hints[f.name])
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(default, *decls, **kwargs),
        annotation=annotation,
    )


def command(
    app: typer.Typer, *configs: type, name: str | None = None
) -> Callable[[Callable[[types.SimpleNamespace], None]], Callable]:
    """Decorator: register ``body(values)`` as the typer command ``name`` (default: the body's
    name, as typer spells it) with one option per option field of ``configs``, in order.

    ``values`` holds the options as given (before ``parse``), one attribute per field name;
    the body checks them and builds each config with :func:`from_options`. The body's docstring
    is the command's help.
    """

    def register(body: Callable[[types.SimpleNamespace], None]) -> Callable:
        params = []
        for cls in configs:
            hints = typing.get_type_hints(cls)
            params += [_parameter(f, hints) for f in option_fields(cls)]

        def callback(**values: Any) -> None:
            body(types.SimpleNamespace(**values))

        callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        callback.__annotations__ = {p.name: p.annotation for p in params}
        callback.__name__ = callback.__qualname__ = body.__name__
        callback.__doc__ = body.__doc__
        callback.__module__ = body.__module__
        app.command(name)(callback)
        return body

    return register


def from_options(cls: type, values: types.SimpleNamespace, **others: Any) -> Any:
    """The config ``cls`` from a command's option ``values`` (each ``parse``d, in field order);
    ``others`` gives fields that are not options (e.g. ``command``)."""
    kwargs = {}
    for f in option_fields(cls):
        value = getattr(values, f.name)
        parse = f.metadata[_OPTION]["parse"]
        kwargs[f.name] = parse(value) if parse is not None else value
    return cls(**kwargs, **others)


# The options every training run has, declared once for all tasks' configs; the training loop
# (:mod:`sandwich.training.loop`) reads out, steps, seed, ckpt_every, log_every, threads, device.


def data() -> Any:
    """``--data``, one or more folders of training images, recorded joined by ``os.pathsep``."""
    from sandwich.training.dataset import join_folders

    return option(
        help="folder of training images (see `sandwich data`); repeat to train on several, "
        "e.g. --data data/corpus/train --data data/corpus/extra",
        cli_type=list[Path],
        parse=join_folders,
    )


def out() -> Any:
    """``--out``, the run folder."""
    return option(
        help="run folder: checkpoint, log.jsonl, model.safetensors", cli_type=Path, parse=str
    )


def steps(default: int) -> Any:
    return option(default, "total optimiser steps")


def batch(default: int = 8) -> Any:
    return option(default)


def lr(default: float) -> Any:
    return option(default, "peak learning rate (cosine decay)")


def seed(default: int = 0) -> Any:
    return option(default)


def ckpt_every(default: int = 200) -> Any:
    return option(default, "checkpoint every N steps")


def log_every(default: int = 10) -> Any:
    return option(default, "write a log.jsonl record every N steps")


def threads(default: int = 2) -> Any:
    return option(default, "CPU threads (torch.set_num_threads)")


def device(default: str = "auto") -> Any:
    return option(default, "auto, cpu or cuda")


def command_field() -> Any:
    """The command line that started the run (recorded, not an option)."""
    return config_only("")
