"""Every zoo model on the bundled sample gives the bytes recorded in tests/data/golden.json (made
by ``python tests/golden.py`` before the codec-generic refactor): files and decodes unchanged."""

from __future__ import annotations

import json

import pytest
from golden import GOLDEN, record

RECORDED = json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def current() -> dict[str, dict[str, str]]:
    return record()


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_outputs_match_recording(current, name):
    assert name in current, f"zoo model {name} is gone"
    assert current[name] == RECORDED[name]


def test_every_zoo_model_recorded(current):
    assert sorted(current) == sorted(RECORDED)
