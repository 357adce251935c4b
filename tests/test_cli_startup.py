"""The command line imports only the module of the command it runs.

Reference: the set of commands registered when every module is loaded (what ``rtplan
--help`` lists) must equal the start-up table, so a new command cannot be forgotten; and a
structures run must not import the outcomes statistics (scipy.stats, statsmodels), which
cost seconds of start-up.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from rtplan.cli.main import _COMMANDS, build_parser


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_start_up_table_lists_every_command():
    assert _choices(build_parser()) == set(_COMMANDS)


def test_one_command_parser_has_that_command_only():
    assert _choices(build_parser(["eqd2", "27/3", "--alpha-beta", "1.5"])) == {
        "eqd2", "equivalent", "compare", "presets"}
    assert _choices(build_parser(["--version"])) == set(_COMMANDS)


def test_structures_does_not_import_outcome_statistics():
    code = ("import sys; from rtplan.cli.main import build_parser; "
            "build_parser(['structures', '--help-not-parsed']); "
            "print('rtplan.outcomes._cox' in sys.modules, 'statsmodels' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
