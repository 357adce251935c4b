"""Options and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = [
    "add_force",
    "add_json",
    "add_model_options",
    "alpha_beta_arg",
    "float_arg",
    "model_from_args",
    "new_command",
    "print_json",
]


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


def float_arg(text: str) -> float:
    """argparse type: a number (range checks are left to the command)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def alpha_beta_arg(text: str) -> float:
    """argparse type of every ``--alpha-beta``: a number of Gy, or a tissue preset key.

    The one rule of the command line (and of :func:`rtplan.dose.parse_alpha_beta`):
    a number is Gy; otherwise the text is a key of :data:`rtplan.radiobiology.TISSUES`
    (``prostate`` 1.5 Gy, ``rectum_late``, ``bladder_late``, ``tumour``),
    case-insensitive. The range (> 0) is checked by the command, which names the value.

    Examples
    --------
    >>> alpha_beta_arg("3"), alpha_beta_arg("prostate"), alpha_beta_arg("Rectum_late")
    (3.0, 1.5, 3.0)
    """
    from rtplan.radiobiology import TISSUES, get_tissue

    try:
        return float(text)
    except ValueError:
        pass
    if text.strip().lower() in TISSUES:
        return get_tissue(text).alpha_beta_gy
    raise argparse.ArgumentTypeError(
        f"expected a number (Gy) or a tissue preset ({', '.join(TISSUES)}), got {text!r}"
    )


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Add ``--model lq|lql|usc`` and its parameters (read by :func:`model_from_args`)."""
    g = p.add_argument_group("dose-response model")
    g.add_argument(
        "--model",
        choices=["lq", "lql", "usc"],
        default="lq",
        help="lq: linear-quadratic (default); lql: LQ-L (Astrahan 2008); "
        "usc: universal survival curve (Park 2008)",
    )
    g.add_argument(
        "--transition-dose-gy", type=float_arg, metavar="GY",
        help="LQ-L transition dose per fraction (Gy), required with --model lql",
    )
    g.add_argument("--usc-alpha", type=float_arg, metavar="PER_GY",
                   help="USC alpha (1/Gy)")
    g.add_argument("--usc-d0-gy", type=float_arg, metavar="GY", help="USC D0 (Gy)")
    g.add_argument("--usc-dq-gy", type=float_arg, metavar="GY", help="USC Dq (Gy)")


def model_from_args(args: argparse.Namespace) -> Any:
    """The :mod:`rtplan.radiobiology` model of :func:`add_model_options`' options."""
    from pydantic import ValidationError

    from rtplan.errors import from_validation_error
    from rtplan.radiobiology import model_from_name

    try:
        return model_from_name(
            args.model,
            transition_dose_gy=args.transition_dose_gy,
            alpha_per_gy=args.usc_alpha,
            d0_gy=args.usc_d0_gy,
            dq_gy=args.usc_dq_gy,
        )
    except ValidationError as exc:
        raise from_validation_error(exc, f"{args.model} model parameters") from None
