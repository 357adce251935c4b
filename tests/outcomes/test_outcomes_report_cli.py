"""The outcomes report, the ``rtplan outcomes`` command, plots and committed schemas.

Numbers in the report are cross-checked against the library functions that are
themselves tested against R (test_outcomes_survival_r.py) and against hand counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from rtplan.cli.main import main
from rtplan.outcomes import Cohort, PatientRecord, kaplan_meier, logrank, logrank_trend
from rtplan.outcomes._report import outcomes_report, report_markdown
from rtplan.outcomes._schema import outcomes_json_schemas

EXAMPLE = REPO / "examples" / "synthetic_cohort"

# 9 patients, 3 per fraction category; months and events chosen by hand
ROWS = [
    # id, fractions, os_months, os_event, adt_concomitant
    ("A1", 3, 6.0, 1, True), ("A2", 5, 14.0, 1, False), ("A3", 5, 40.0, 0, True),
    ("B1", 15, 10.0, 1, False), ("B2", 20, 26.0, 0, True), ("B3", 20, 30.0, 1, False),
    ("C1", 34, 20.0, 0, True), ("C2", 34, 50.0, 0, False), ("C3", 28, 45.0, 1, True),
]


def _cohort() -> Cohort:
    return Cohort(patients=tuple(
        PatientRecord(patient_id=i, fractions=f, total_dose_gy=30.0, os_months=m, os_event=e,
                      adt_concomitant=a)
        for i, f, m, e, a in ROWS
    ))


def _write_csv(tmp_path: Path) -> Path:
    p = tmp_path / "cohort.csv"
    lines = ["patient_id,fractions,total_dose_gy,os_months,os_event,adt_concomitant"]
    lines += [f"{i},{f},30,{m},{e},{'yes' if a else 'no'}" for i, f, m, e, a in ROWS]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_report_groups_and_endpoints_agree_with_library():
    rep = outcomes_report(_cohort())
    assert rep.n_patients == 9
    assert [(g.group, g.n, round(g.percent, 4)) for g in rep.groups] == [
        ("<10", 3, 33.3333), ("10-24", 3, 33.3333), (">24", 3, 33.3333)]
    g = rep.groups[0].endpoints["os"]
    # <10: deaths at 6 and 14 of 3 -> S(24) = 1/3 by hand; last follow-up 40 months
    assert g.rate_24m == pytest.approx(1 / 3, abs=1e-12)
    assert g.median_months == 14.0
    assert not g.rate_36m_beyond_follow_up
    # 10-24: last time 30 months, S(30) = 0 -> known 0 at 36 months
    assert rep.groups[1].endpoints["os"].rate_36m == 0.0
    # >24 at 36 months: last follow-up 50 > 36 -> estimable
    t = np.array([r[2] for r in ROWS])
    e = np.array([r[3] for r in ROWS])
    grp = np.array(["<10"] * 3 + ["10-24"] * 3 + [">24"] * 3, dtype=object)
    lr = logrank(t, e, grp)
    assert rep.tests["os"].logrank.statistic == pytest.approx(lr.statistic, abs=1e-12)
    assert rep.tests["os"].logrank.df == 2
    tr = logrank_trend(t, e, grp, scores={"<10": 0, "10-24": 1, ">24": 2})
    assert rep.tests["os"].trend.p_value == pytest.approx(tr.p_value, abs=1e-12)
    assert len(rep.tests["os"].pairwise) == 3
    km = kaplan_meier(t, e)
    assert rep.median_follow_up is not None
    assert km.n == 9
    assert any("bpfs: no patient has data" in w for w in rep.warnings)


def test_landmark_beyond_follow_up_is_null_with_flag_and_warning():
    pts = [PatientRecord(patient_id=f"P{i}", fractions=3, total_dose_gy=27, os_months=m,
                         os_event=0) for i, m in enumerate([10.0, 20.0, 30.0])]
    rep = outcomes_report(Cohort(patients=pts))
    s = rep.groups[0].endpoints["os"]
    assert s.rate_36m is None and s.rate_36m_beyond_follow_up
    assert s.rate_24m == 1.0
    assert any("36-month rate not estimable" in w for w in rep.warnings)


def test_cli_json_keys_exactly_as_specified(tmp_path, capsys):
    code = main(["outcomes", str(_write_csv(tmp_path)), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("n_patients", "groups", "tests", "warnings"):
        assert key in out
    g = out["groups"][0]
    assert set(g) == {"group", "n", "percent", "endpoints"}
    assert {"median_months", "median_ci", "rate_24m", "rate_24m_ci", "rate_36m",
            "rate_36m_ci"} <= set(g["endpoints"]["os"])
    assert set(out["tests"]["os"]) == {"logrank", "trend", "pairwise"}
    assert set(out["tests"]["os"]["logrank"]) == {"statistic", "df", "p_value"}
    assert out["n_patients"] == 9


def test_cli_by_adt_and_text_and_markdown(tmp_path, capsys):
    cohort = _write_csv(tmp_path)
    md = tmp_path / "r.md"
    assert main(["outcomes", str(cohort), "--by", "adt_concomitant", "--markdown", str(md)]) == 0
    text = capsys.readouterr().out
    assert "Groups by adt_concomitant" in text and "log-rank" in text
    assert md.read_text().startswith("# Outcomes report")
    # refuses to overwrite without --force (exit 2, message, no traceback)
    assert main(["outcomes", str(cohort), "--markdown", str(md)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_bad_row_exits_2_naming_file_row_field(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("patient_id,fractions,total_dose_gy,os_months,os_event\nP1,5,35,12,yes\n")
    assert main(["outcomes", str(p)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "row 1" in err and "os_event" in err


def test_cli_plots_write_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig"
    assert main(["outcomes", str(_write_csv(tmp_path)), "--plots", str(out)]) == 0
    assert (out / "km_os.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_renders_not_reached():
    pts = [PatientRecord(patient_id="A", fractions=3, total_dose_gy=27, os_months=5,
                         os_event=0)]
    md = report_markdown(outcomes_report(Cohort(patients=pts)))
    assert "NR" in md


@pytest.mark.skipif(not EXAMPLE.exists(), reason="example cohort not present")
def test_example_cohort_has_paper_marginals_and_report_is_current(capsys):
    args = ["outcomes", str(EXAMPLE / "patients.csv"), "--psa", str(EXAMPLE / "psa.csv"),
            "--toxicity", str(EXAMPLE / "toxicity.csv"), "--lesions",
            str(EXAMPLE / "lesions.csv"), "--psa-band", "10", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_patients"] == 86
    assert [(g["group"], g["n"]) for g in out["groups"]] == [
        ("<10", 14), ("10-24", 21), (">24", 51)]
    committed = json.loads((EXAMPLE / "report.json").read_text())
    assert committed == out, "rerun the command in examples/synthetic_cohort/README.md"


def test_committed_schemas_match_models():
    d = REPO / "schemas" / "outcomes"
    expected = outcomes_json_schemas()
    for name, text in expected.items():
        path = d / name
        assert path.exists(), f"missing {path}: run python -m rtplan.outcomes._schema"
        assert path.read_text() == text, (
            f"{path} is out of date: run python -m rtplan.outcomes._schema"
        )


def test_schema_validates_a_patient_record_shape():
    schema = json.loads(outcomes_json_schemas()["patient.schema.json"])
    assert set(schema["required"]) == {"patient_id", "fractions", "total_dose_gy"}
    assert schema["additionalProperties"] is False
    assert not math.isnan(schema["properties"]["fractions"]["minimum"])
