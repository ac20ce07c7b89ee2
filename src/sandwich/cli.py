"""Command-line interface: ``sandwich COMMAND ...``.

Each command lives in a small module of :mod:`sandwich.commands`; this file only wires them up and
turns :class:`~sandwich.errors.SandwichError` into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.exceptions import TyperException

from sandwich.errors import SandwichError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="sandwich: neural pre/post-processors around real, unmodified codecs.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print a table (and JSON).")
app.add_typer(bench_app, name="bench")


def _register() -> None:
    from sandwich.commands import register_all

    register_all(app, bench_app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sandwich`` console script."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except SandwichError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller --tile or a smaller image", file=sys.stderr)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        return 1
    except TyperException as e:  # usage errors: one line, with where to find the usage
        if type(e).__name__ == "NoArgsIsHelpError":  # `sandwich` or `sandwich bench` alone
            e.show()
            return e.exit_code
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "sandwich"
        message = " ".join(e.format_message().split())
        print(f"error: {message} (see `{where} --help`)", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("SANDWICH_DEBUG"):
            raise
        what = " ".join(str(e).split())[:300]
        print(
            f"error: unexpected {type(e).__name__}: {what} (a bug in sandwich: rerun with "
            "SANDWICH_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
