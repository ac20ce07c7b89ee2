"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations


class SandwichError(Exception):
    """An error the CLI reports as one line (no traceback) with a non-zero exit."""

    exit_code = 2
