"""Entry point of the ``rtplan`` command: dispatch, and errors without tracebacks."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from rtplan import __version__
from rtplan.errors import RTPlanError

#: Command modules under ``rtplan.cli``; each has ``register(subparsers)`` which adds its
#: parser with ``set_defaults(func=...)``; ``func(args) -> int`` returns the exit status.
_COMMAND_MODULES = [
    "rtplan.cli.lesions",
    "rtplan.cli.demo",
    "rtplan.cli.outcomes",
    "rtplan.cli.radiobiology",
    "rtplan.cli.dose",
    "rtplan.cli.structures",
    "rtplan.cli.cohort",
]


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors exit 2 with one line, as rtplan errors do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``rtplan`` argument parser with every registered command."""
    parser = _Parser(
        prog="rtplan",
        description=(
            "Radiotherapy-planning support for oligometastatic prostate cancer. "
            "Doses in Gy, distances in mm, alpha/beta in Gy."
        ),
        epilog="example:\n  rtplan compare\n  rtplan eqd2 27/3 37.5/5 --alpha-beta 1.5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rtplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input, 1 failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RTPlanError as exc:
        print(f"rtplan {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rtplan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        # a file-system problem (unreadable input, full disk): a message, not a traceback
        print(f"rtplan {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
