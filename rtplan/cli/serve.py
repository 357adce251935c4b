"""``rtplan serve``: the dose-equivalence calculator as a local web page."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rtplan.cli.options import new_command
from rtplan.errors import InvalidParameterError, MissingDependencyError


def _run_serve(args: argparse.Namespace) -> int:
    from rtplan.web import LOOPBACK_HOSTS, require_web, serve

    try:
        require_web()
    except MissingDependencyError as exc:
        print(f"rtplan serve: error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        raise InvalidParameterError(f"--port must be 0..65535, got {args.port}")
    if args.host not in LOOPBACK_HOSTS:
        print(
            f"rtplan serve: warning: binding {args.host} makes the calculator reachable from "
            "other machines (no authentication, no TLS); use the default 127.0.0.1 unless "
            "you mean it",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"rtplan calculator on http://{shown}:{args.port}/ (Ctrl+C to stop)", file=sys.stderr)
    serve(args.host, args.port)
    return 0


def register(sub: Any) -> None:
    """Add ``rtplan serve``."""
    p = new_command(
        sub,
        "serve",
        help="the BED/EQD2 calculator as a local web page",
        description=(
            "Start a local web page for BED/EQD2 of schedules side by side (the paper's "
            "presets one click away), the equivalence solver, SIB levels, LQ-L/USC models "
            "and a plot of EQD2 versus alpha/beta (Gy). Its JSON API under /api/ returns "
            "the objects of 'rtplan eqd2/compare/equivalent/presets --json'. Binds "
            "127.0.0.1 (this machine only) by default. Needs pip install 'rtplan[web]'."
        ),
        example="rtplan serve\nrtplan serve --port 8080",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.set_defaults(func=_run_serve)
