"""Shared fixtures: the read-only ``../shared`` material and strict defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTPLAN_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ``../shared``; skip the test with a reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared material not found: {p} (set RTPLAN_SHARED to its folder)")
    return p


def load_shared_json(*parts: str) -> dict:
    """Load a JSON file under ``../shared`` (skips when absent)."""
    return json.loads(shared_path(*parts).read_text())


@pytest.fixture
def shared():
    """The ``shared_path`` helper as a fixture."""
    return shared_path
