"""Files the installed package must carry: the JSON Schemas that ``--help`` texts cite.

The schemas live in ``schemas/`` (generated from the models, checked by
tests/test_schemas.py); ``rtplan/schemas`` links there and pyproject's package-data puts
them into the wheel as ``rtplan/schemas/<area>/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from importlib.resources import files
from pathlib import Path

from rtplan._shared.schemas import SCHEMA_MODELS
from rtplan.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _help_texts(parser: argparse.ArgumentParser):
    yield parser.description or ""
    yield parser.epilog or ""
    for action in parser._actions:
        yield action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _help_texts(sub)


def test_every_schema_is_package_data():
    pkg = files("rtplan") / "schemas"
    for rel in SCHEMA_MODELS:
        res = pkg.joinpath(*rel.split("/"))
        assert res.is_file(), rel
        assert json.loads(res.read_text(encoding="utf-8")) == json.loads(
            (ROOT / "schemas" / rel).read_text(encoding="utf-8"))


def test_schema_paths_cited_by_help_exist_in_the_package():
    cited = {m for text in _help_texts(build_parser())
             for m in re.findall(r"schemas/[\w/.-]+\.json", text)}
    assert cited, "no --help text cites a schema any more: drop this test"
    for path in cited:
        assert (files("rtplan") / path).is_file(), path


def test_pyproject_ships_the_schemas():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"schemas/*/*.json"' in text
