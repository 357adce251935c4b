"""Options and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from rtplan._shared.jsonio import finite_or_none
from rtplan.errors import InputError, RTPlanError

__all__ = [
    "KEYWORD_FLAGS",
    "MAX_OPTION_DOSE_GY",
    "add_force",
    "add_json",
    "add_model_options",
    "alpha_beta_arg",
    "dose_gy_arg",
    "flags_for_keywords",
    "float_arg",
    "help_command",
    "keywords_as_flags",
    "model_from_args",
    "new_command",
    "non_negative_float_arg",
    "parse_source",
    "positive_float_arg",
    "print_json",
    "progress_printer",
]

#: Library keyword arguments named in error messages -> the command-line options that
#: set them (``rtplan structures``, ``rtplan lesions``, ``rtplan demo``).
KEYWORD_FLAGS: dict[str, str] = {
    "body='none'": "--body none",
    "body='auto'": "--body auto",
    "body=mask": "--body RS.dcm:ROI",
    "body=": "--body",
    "pet=": "--pet DIR",
    "registration= or pet_transform=": "--registration REG.dcm or --pet-to-ct-matrix FILE",
    "registration=": "--registration REG.dcm",
    "pet_transform=": "--pet-to-ct-matrix FILE",
    "pet_to_ct=": "--pet-to-ct-matrix FILE",
    "transform=": "--pet-to-ct-matrix FILE",
    "exclude=": "--exclude",
    "inside_skin_mm=": "--inside-skin-mm",
    "eni= with its ctv": "--eni-ctv RS.dcm:ROI",
    "report=": "--report",
    "qa=": "--qa",
    "output=": "-o",
}
_KEYWORD_RE = re.compile(
    r"(?<![A-Za-z0-9_.])("
    + "|".join(re.escape(k) for k in sorted(KEYWORD_FLAGS, key=len, reverse=True))
    + r")"
)


def flags_for_keywords(message: str) -> str:
    """An error message of the library with its keyword arguments named as options.

    Examples
    --------
    >>> flags_for_keywords("give the PET series (pet=), or use body='none'")
    'give the PET series (--pet DIR), or use --body none'
    """
    return _KEYWORD_RE.sub(lambda m: KEYWORD_FLAGS[m.group(1)], message)


def keywords_as_flags(func: Callable[[argparse.Namespace], int]
                      ) -> Callable[[argparse.Namespace], int]:
    """Decorate a command: rtplan errors it raises name options, not keyword arguments."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except RTPlanError as exc:
            if exc.args and isinstance(exc.args[0], str):
                exc.args = (flags_for_keywords(exc.args[0]), *exc.args[1:])
            raise

    return run


def parse_source(text: str, option: str = "--eni-ctv") -> dict[str, Any]:
    """``RS.dcm:ROI`` -> an rtstruct source; ``mask.nii.gz[:label]`` -> a mask source.

    Examples
    --------
    >>> parse_source("RS.dcm:Bladder"), parse_source("atlas.nii.gz:3")
    ({'kind': 'rtstruct', 'path': 'RS.dcm', 'roi': 'Bladder'}, {'kind': 'mask', \
'path': 'atlas.nii.gz', 'label': 3})
    """
    low = text.lower()
    if ".nii" in low:
        i = low.index(".nii")
        end = i + 7 if low[i + 4:i + 7] == ".gz" else i + 4
        path, rest = text[:end], text[end:]
        src: dict[str, Any] = {"kind": "mask", "path": path}
        if rest.startswith(":") and rest[1:]:
            try:
                src["label"] = int(rest[1:])
            except ValueError:
                raise InputError(
                    f"{option} {text!r}: the label after ':' must be a whole number"
                ) from None
        return src
    path, sep, roi = text.rpartition(":")
    if not sep or not path or not roi:
        raise InputError(
            f"{option} {text!r}: give RTSTRUCT:ROI (e.g. RS.dcm:Bladder) or a NIfTI mask "
            "(mask.nii.gz[:label])"
        )
    return {"kind": "rtstruct", "path": path, "roi": roi}


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



def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (NaN and infinities become ``null``)."""
    json.dump(finite_or_none(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def float_arg(text: str) -> float:
    """argparse type: a number (range checks are left to the command)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


#: Largest dose (Gy) any option accepts (as the radiobiology library's limit).
MAX_OPTION_DOSE_GY = 1e5


def dose_gy_arg(text: str) -> float:
    """argparse type of model doses (Gy): a number of at most 100000 Gy in magnitude
    (the sign and NaN are left to the model's own validation, which names the field).

    Examples
    --------
    >>> dose_gy_arg("6")
    6.0
    >>> dose_gy_arg("1e308")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a dose of at most 100000 Gy, got '1e308'
    """
    value = float_arg(text)
    if abs(value) > MAX_OPTION_DOSE_GY:
        raise argparse.ArgumentTypeError(
            f"expected a dose of at most {MAX_OPTION_DOSE_GY:g} Gy, got {text!r}"
        )
    return value


def positive_float_arg(text: str) -> float:
    """argparse type: a finite number > 0 (``nan``, ``inf``, ``0`` and ``-1`` refused).

    Examples
    --------
    >>> positive_float_arg("3")
    3.0
    >>> positive_float_arg("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a finite number > 0, got 'nan'
    """
    value = float_arg(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def non_negative_float_arg(text: str) -> float:
    """argparse type: a finite number >= 0.

    Examples
    --------
    >>> non_negative_float_arg("0"), non_negative_float_arg("2.5")
    (0.0, 2.5)
    """
    value = float_arg(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


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
        "--transition-dose-gy", type=dose_gy_arg, metavar="GY",
        help="LQ-L transition dose per fraction (Gy), required with --model lql",
    )
    g.add_argument("--usc-alpha", type=float_arg, metavar="PER_GY",
                   help="USC alpha (1/Gy)")
    g.add_argument("--usc-d0-gy", type=dose_gy_arg, metavar="GY", help="USC D0 (Gy)")
    g.add_argument("--usc-dq-gy", type=dose_gy_arg, metavar="GY", help="USC Dq (Gy)")


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


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """A ``progress`` callback printing ``[  1.2 s] message`` to standard error."""
    start = time.perf_counter()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    return say


def help_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command function for a group without a subcommand (``rtplan dose``): print the
    group's help and return 2."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run
