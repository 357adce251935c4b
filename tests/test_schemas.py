"""The committed JSON Schemas in schemas/ are exactly what the pydantic models generate."""

import json

import pytest

from conftest import REPO
from rtplan._shared.schemas import SCHEMA_MODELS, render_schemas

RENDERED = render_schemas()


@pytest.mark.parametrize("rel", sorted(SCHEMA_MODELS))
def test_committed_schema_matches_model(rel):
    path = REPO / "schemas" / rel
    assert path.is_file(), f"{path} missing: run python -m rtplan._shared.schemas schemas"
    assert path.read_text(encoding="utf-8") == RENDERED[rel], (
        f"{rel} drifted from its model: run python -m rtplan._shared.schemas schemas"
    )


def test_no_stale_schema_files():
    # folders generated from this registry (schemas/outcomes has its own generator and
    # drift test in tests/outcomes)
    folders = {rel.split("/")[0] for rel in SCHEMA_MODELS}
    on_disk = {
        p.relative_to(REPO / "schemas").as_posix()
        for f in folders
        for p in (REPO / "schemas" / f).rglob("*.json")
    }
    registered = set(SCHEMA_MODELS)
    stale = on_disk - registered
    assert not stale, f"schema files without a model: {sorted(stale)}"


def test_schema_validates_an_example():
    # the SIB plan schema accepts the plan JSON shown in the README
    schema = json.loads(RENDERED["radiobiology/sib_plan.json"])
    assert set(schema["required"]) == {"name", "fractions", "levels"}
