"""Options and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = ["add_force", "add_json", "new_command", "print_json"]


def new_command(
    subparsers: Any, name: str, *, help: str, description: str, example: str
) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` ends with an example."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="example:\n  " + example.strip().replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output on standard output)."""
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of a table"
    )


def add_force(parser: argparse.ArgumentParser) -> None:
    """Add ``--force`` (allow overwriting existing outputs)."""
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing output files"
    )


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (NaN and infinities become ``null``)."""
    json.dump(_clean(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
