"""How evaluations name their pipelines and knobs on the command line (light: no torch)."""

from __future__ import annotations

from sandwich.errors import SandwichError

DEFAULT_QUALITIES = "10,20,30,40,50,60,70,80,90"


def parse_ints(text: str, option: str) -> list[int]:
    try:
        values = [int(q) for q in text.split(",") if q.strip()]
    except ValueError:
        raise SandwichError(f"{option} {text!r}: give integers like 10,50,90") from None
    if not values:
        raise SandwichError(f"{option} {text!r}: give integers like 10,50,90")
    return values


def split_model_spec(spec: str) -> tuple[str, str, int]:
    """``NAME[@CODEC][+xN]`` -> (zoo name or weights path, other codec or "", ensemble size).

    ``+xN`` decodes with an N-pass self-ensemble (1, 2, 4 or 8; :mod:`sandwich.nets.ensemble`).
    """
    from sandwich.nets.ensemble import ENSEMBLE_SIZES, check_ensemble

    n = 1
    if "+x" in spec:
        spec, _, members = spec.rpartition("+x")
        try:
            n = check_ensemble(int(members))
        except ValueError:
            sizes = ", ".join(f"+x{k}" for k in ENSEMBLE_SIZES)
            raise SandwichError(f"{spec}+x{members}: unknown ensemble; use {sizes}") from None
    name, _, codec = spec.partition("@")
    return name, codec, n
