"""Entry point of the ``rtplan`` command: dispatch, and errors without tracebacks."""

from __future__ import annotations

import argparse
import errno
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
    "rtplan.cli.serve",
    "rtplan.cli.cohort",
]


#: The commands each module registers: only the module of the command being run is
#: imported (importing all of them costs seconds of start-up: scipy.stats, statsmodels).
_COMMANDS = {
    "lesions": "rtplan.cli.lesions",
    "demo": "rtplan.cli.demo",
    "outcomes": "rtplan.cli.outcomes",
    "eqd2": "rtplan.cli.radiobiology",
    "equivalent": "rtplan.cli.radiobiology",
    "compare": "rtplan.cli.radiobiology",
    "presets": "rtplan.cli.radiobiology",
    "dose": "rtplan.cli.dose",
    "structures": "rtplan.cli.structures",
    "serve": "rtplan.cli.serve",
    "cohort": "rtplan.cli.cohort",
}


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors exit 2 with one line, as rtplan errors do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the ``rtplan`` argument parser: with every registered command, or, when
    ``argv`` names a command (its first word), with that command's module only."""
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
    first = next((a for a in (argv or ()) if not a.startswith("-")), None)
    wanted = _COMMANDS.get(first) if first is not None and argv and argv[0] == first else None
    for name in _COMMAND_MODULES:
        if wanted is None or name == wanted:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input, 1 failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
        print(f"rtplan {args.command}: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2 if exc.errno in _INPUT_ERRNOS else 1
    except (OverflowError, RecursionError, MemoryError) as exc:
        # hostile numbers or nesting that slipped past a reader's checks: still one line
        if isinstance(exc, OverflowError):
            what = "a number is too large to compute with"
        elif isinstance(exc, RecursionError):
            what = "the input is nested too deeply"
        else:
            what = "the input is too large for the available memory"
        print(f"rtplan {args.command}: error: {what} ({_first_line(exc)}): check the "
              "input values", file=sys.stderr)
        return 2
    except ValueError as exc:
        if "Exceeds the limit" in str(exc) and "integer" in str(exc):
            # int() of a number with more than 4300 digits (sys.set_int_max_str_digits)
            print(f"rtplan {args.command}: error: a number has more than 4300 digits: "
                  "give a plausible value", file=sys.stderr)
            return 2
        raise


#: errno values that mean "the user gave a bad path" (exit 2, like other input errors).
_INPUT_ERRNOS = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM,
                 errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _os_error_text(exc: OSError) -> str:
    """One line for an OSError: "disk full" for ENOSPC, never a multi-line dump."""
    where = f" '{exc.filename}'" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: cannot write{where}: free some space or choose another path"
    if exc.strerror:
        return f"{exc.strerror}{where}"
    return _first_line(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
