"""One alpha/beta rule for every ``--alpha-beta``: a number of Gy or a tissue preset."""

from __future__ import annotations

import argparse
import json

import pytest

from rtplan.cli.main import main
from rtplan.cli.options import alpha_beta_arg
from rtplan.dose import parse_alpha_beta
from rtplan.radiobiology import TISSUES


def test_presets_and_numbers_same_rule_in_cli_and_library():
    for key, tissue in TISSUES.items():
        assert alpha_beta_arg(key) == parse_alpha_beta(key) == tissue.alpha_beta_gy
        assert alpha_beta_arg(key.upper()) == tissue.alpha_beta_gy
    assert alpha_beta_arg("1.5") == parse_alpha_beta("1.5") == 1.5
    with pytest.raises(argparse.ArgumentTypeError, match="tissue preset"):
        alpha_beta_arg("prostrate")


def test_rtplan_eqd2_accepts_prostate_preset(capsys):
    # prostate preset = 1.5 Gy: EQD2 of 37.5 Gy / 5 fx = 37.5 (7.5 + 1.5) / (2 + 1.5)
    assert main(["eqd2", "37.5/5", "--alpha-beta", "prostate", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["alpha_beta_gy"] == 1.5
    assert row["eqd2_gy"] == pytest.approx(37.5 * 9.0 / 3.5, abs=1e-9)


@pytest.mark.parametrize("command", [["eqd2", "37.5/5"], ["compare", "30/5"],
                                     ["equivalent", "37.5/5", "--fractions", "3"]])
def test_every_radiobiology_command_takes_presets(capsys, command):
    # rectum_late = 3 Gy (rtplan presets)
    assert main([*command, "--alpha-beta", "rectum_late", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ab = out[0]["alpha_beta_gy"] if isinstance(out, list) else out["alpha_beta_gy"]
    assert ab in (3.0, [3.0])
