"""``rtplan outcomes --cox``: Cox hazard ratios per endpoint in the report.

References: a direct :func:`rtplan.outcomes.cox_ph` call on the same data (itself tested
against R in test_outcomes_cox.py), and R 4.2.2 / survival 3.5-3 run on the same
numbers (scripts in the comments). Tolerance 1e-6 relative for hazard ratios, limits
and p-values (the reference README's suggestion for Cox coefficients).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from rtplan.cli.main import main
from rtplan.outcomes import Cohort, PatientRecord, cox_ph
from rtplan.outcomes._report import outcomes_report, report_markdown

pytest.importorskip(
    "statsmodels", reason="Cox models need the optional 'stats' extra (statsmodels)"
)

REL = 1e-6

# 18 patients, 6 per fraction category (5, 15 and 30 fractions); months, events by hand
MONTHS = [6, 14, 40, 9, 22, 22, 10, 26, 30, 12, 18, 33, 20, 50, 45, 22, 36, 60]
EVENTS = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1]
FRACTIONS = [5] * 6 + [15] * 6 + [30] * 6
GROUP = ["<10"] * 6 + ["10-24"] * 6 + [">24"] * 6

# R 4.2.2, survival 3.5-3:
#   g <- factor(rep(c("<10", "10-24", ">24"), each = 6), levels = c("<10", "10-24", ">24"))
#   f <- coxph(Surv(MONTHS, EVENTS) ~ g); summary(f)$coefficients; exp(confint(f))
#   2 * diff(f$loglik)
R_HR = {  # group: (exp(coef), lower .95, upper .95, Pr(>|z|))
    "10-24": (0.632458892444468, 0.168437964490764, 2.37478677589942, 0.497334900261952),
    ">24": (0.0997962793212992, 0.0114143247192793, 0.872526199430188, 0.0372305667859368),
}
R_LR = 6.62582346424894  # on 2 df


def _write_cohort(tmp_path: Path) -> Path:
    p = tmp_path / "cohort.csv"
    lines = ["patient_id,fractions,total_dose_gy,os_months,os_event"]
    lines += [f"P{i:02d},{f},30,{m},{e}"
              for i, (f, m, e) in enumerate(zip(FRACTIONS, MONTHS, EVENTS, strict=True))]
    p.write_text("\n".join(lines) + "\n")
    return p


def _json(capsys, *args: str) -> dict:
    assert main(["outcomes", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_cox_hazard_ratios_match_r_and_direct_call(tmp_path, capsys):
    out = _json(capsys, str(_write_cohort(tmp_path)), "--cox")
    cox = out["tests"]["os"]["cox"]
    assert (cox["reference"], cox["ties"], cox["n"], cox["events"]) == ("<10", "efron", 18, 12)
    assert [h["group"] for h in cox["hazard_ratios"]] == ["10-24", ">24"]
    for h in cox["hazard_ratios"]:
        want = R_HR[h["group"]]
        got = (h["hazard_ratio"], *h["ci"], h["p_value"])
        np.testing.assert_allclose(got, want, rtol=REL, err_msg=h["group"])
    assert cox["likelihood_ratio"]["statistic"] == pytest.approx(R_LR, rel=REL)
    assert cox["likelihood_ratio"]["df"] == 2
    # the same as calling the library directly on the same arrays
    g = np.array(GROUP)
    r = cox_ph(MONTHS, EVENTS, {"10-24": g == "10-24", ">24": g == ">24"})
    for i, h in enumerate(cox["hazard_ratios"]):
        assert h["hazard_ratio"] == pytest.approx(r.hazard_ratio[i], rel=1e-12)
        assert h["ci"] == pytest.approx([r.hr_lower[i], r.hr_upper[i]], rel=1e-12)
        assert h["p_value"] == pytest.approx(r.p_value[i], rel=1e-12)


def test_cli_without_cox_keeps_the_json_keys_exactly(tmp_path, capsys):
    out = _json(capsys, str(_write_cohort(tmp_path)))
    assert set(out["tests"]["os"]) == {"logrank", "trend", "pairwise"}
    with_cox = _json(capsys, str(_write_cohort(tmp_path)), "--cox")
    assert set(with_cox["tests"]["os"]) == {"logrank", "trend", "pairwise", "cox"}
    # everything else is unchanged by --cox
    for ep in with_cox["tests"]:
        del with_cox["tests"][ep]["cox"]
    assert with_cox == out


def test_two_groups_against_r_ovarian_rx(tmp_path, capsys):
    """ovarian as a cohort: rx 1 -> ADT 'no' (reference), rx 2 -> 'yes'.

    R 4.2.2 / survival 3.5-3: coxph(Surv(futime, event) ~ factor(rx), ovarian) gives
    coef -0.596380049392283, se 0.586989526366481; the hazard ratio does not depend on
    the time unit (months here = days / 30.4375).
    """
    with shared_path("reference", "survival", "data", "ovarian.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    p = tmp_path / "ovarian.csv"
    lines = ["patient_id,fractions,total_dose_gy,os_months,os_event,adt_concomitant"]
    lines += [f"OV{i:02d},5,35,{float(r['futime']) / 30.4375!r},{r['event']},"
              f"{'yes' if r['rx'] == '2' else 'no'}" for i, r in enumerate(rows)]
    p.write_text("\n".join(lines) + "\n")
    out = _json(capsys, str(p), "--by", "adt_concomitant", "--cox")
    cox = out["tests"]["os"]["cox"]
    assert cox["reference"] == "no" and cox["n"] == 26 and cox["events"] == 12
    (h,) = cox["hazard_ratios"]
    coef, se = -0.596380049392283, 0.586989526366481
    assert h["group"] == "yes"
    assert h["hazard_ratio"] == pytest.approx(np.exp(coef), rel=REL)
    assert h["ci"] == pytest.approx([np.exp(coef - 1.959963984540054 * se),
                                     np.exp(coef + 1.959963984540054 * se)], rel=REL)


def test_text_and_markdown_show_the_cox_table(tmp_path, capsys):
    cohort = _write_cohort(tmp_path)
    md = tmp_path / "r.md"
    assert main(["outcomes", str(cohort), "--cox", "--markdown", str(md)]) == 0
    text = capsys.readouterr().out
    assert "Overall survival: Cox hazard ratios vs <10" in text
    assert "0.63 (0.17-2.37)" in text and "0.10 (0.01-0.87)" in text
    body = md.read_text()
    assert "| >24 | 0.10 (0.01-0.87) | 0.037 |" in body
    assert "Cox proportional-hazards models per endpoint" in body
    # no Cox text without --cox
    assert "Cox" not in report_markdown(outcomes_report(_cohort()))


def _cohort(events_in_last_group: bool = True) -> Cohort:
    ev = list(EVENTS)
    if not events_in_last_group:
        ev[12:] = [0] * 6
    return Cohort(patients=tuple(
        PatientRecord(patient_id=f"P{i}", fractions=f, total_dose_gy=30, os_months=m,
                      os_event=e)
        for i, (f, m, e) in enumerate(zip(FRACTIONS, MONTHS, ev, strict=True))
    ))


def test_group_without_events_gives_a_note_and_warning_not_a_crash():
    rep = outcomes_report(_cohort(events_in_last_group=False), cox=True)
    cox = rep.tests["os"].cox
    assert cox is not None and cox.hazard_ratios == [] and cox.likelihood_ratio is None
    assert "may be infinite" in cox.note
    assert any(w.startswith("os: Cox model not estimable") and "'>24'" in w
               for w in rep.warnings)
    assert "not estimable (see warnings)" in report_markdown(rep)


def test_missing_statsmodels_exits_with_the_extra_named(tmp_path, capsys, monkeypatch):
    import sys

    for mod in [m for m in sys.modules if m.startswith("statsmodels")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    monkeypatch.setitem(sys.modules, "statsmodels.duration.hazard_regression", None)
    assert main(["outcomes", str(_write_cohort(tmp_path)), "--cox"]) == 2  # issue 11: exit 2
    assert "pip install 'rtplan[stats]'" in capsys.readouterr().err
