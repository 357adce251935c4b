"""Dose metrics of the cohort joined to outcomes: covariate and grouping.

References: statsmodels' Logit (maximum likelihood, Wald SE and p, likelihood-ratio p)
on the same doses and outcomes, to 1e-6; group counts by hand from the exported table.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from cohort_data import make_db, synthetic_cohort

from rtplan.cli.main import main
from rtplan.cohort import DVHParameters, export_metrics, run_dvh

DOSE = "Rectum:D2cc:EQD2"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root, truth = synthetic_cohort(tmp_path_factory)
    d = tmp_path_factory.mktemp("outcomes")
    db = make_db(root, d / "c.sqlite")
    run_dvh(db, DVHParameters(metrics=("D2cc", "Dmean")), executor="serial")
    export_metrics(db, d / "m.csv")
    with open(d / "m.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["roi"] == "Rectum" and
                r["metric"] == "D2cc" and r["quantity"] == "EQD2"]
    dose = {r["patient_id"]: float(r["value"]) for r in rows
            if r["patient_id"].startswith("SYN-0")}
    category = {r["patient_id"]: r["fraction_category"] for r in rows}
    rng = np.random.default_rng(3)
    pids = sorted(dose)
    x = np.array([dose[p] for p in pids])
    prob = 1 / (1 + np.exp(-(x - np.median(x)) / np.std(x)))
    grades = [int(g) for g in np.where(rng.random(len(x)) < prob, 2, rng.integers(0, 2, len(x)))]
    (d / "cohort.csv").write_text(
        "patient_id,fractions,total_dose_gy,os_months,os_event\n" + "".join(
            f"{p},{truth[p].plans[0]['fractions']},{truth[p].plans[0]['prescription_gy']},"
            f"{12 + i},{i % 2}\n" for i, p in enumerate(pids)))
    (d / "tox.csv").write_text("patient_id,timepoint,domain,grade\n" + "".join(
        f"{p},12 months,GI,{g}\n{p},3 months,GU,0\n" for p, g in zip(pids, grades,
                                                                    strict=True)))
    return d, pids, x, np.array([g >= 2 for g in grades], dtype=float), category


def test_logistic_dose_response_equals_statsmodels(files, capsys):
    sm = pytest.importorskip("statsmodels.api")
    d, pids, x, y, _ = files
    assert 0 < y.sum() < len(y)
    plot = d / "dose_response.png"
    assert main(["outcomes", str(d / "cohort.csv"), "--toxicity", str(d / "tox.csv"),
                 "--dose-metrics", str(d / "m.csv"), "--dose", DOSE, "--toxicity-domain",
                 "GI", "--dose-plot", str(plot), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["dose_response"]
    assert r["patient_ids"] == pids and r["doses"] == list(x)
    assert r["outcomes"] == [int(v) for v in y]
    ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    assert r["intercept"] == pytest.approx(ref.params[0], rel=1e-6)
    assert r["slope_per_unit"] == pytest.approx(ref.params[1], rel=1e-6)
    assert r["slope_se"] == pytest.approx(ref.bse[1], rel=1e-6)
    assert r["p_wald"] == pytest.approx(ref.pvalues[1], rel=1e-6)
    assert r["p_likelihood_ratio"] == pytest.approx(ref.llr_pvalue, rel=1e-6)
    assert r["dose_50"] == pytest.approx(-ref.params[0] / ref.params[1], rel=1e-6)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grouping_by_a_dose_cut_within_fraction_category(files, capsys):
    d, pids, x, _, category = files
    cut = float(np.median(x))
    assert main(["outcomes", str(d / "cohort.csv"), "--dose-metrics", str(d / "m.csv"),
                 "--dose", DOSE, "--dose-cut", f"{cut!r}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = {g["group"]: g["n"] for g in out["groups"]}
    want: dict[str, int] = {}
    for p, v in zip(pids, x, strict=True):
        key = f"{category[p]} {'<' if v < cut else '>='} {cut:g}"
        want[key] = want.get(key, 0) + 1
    assert got == want
    assert "cut" in out["by"]


def test_dose_options_errors(files, capsys):
    d = files[0]
    base = ["outcomes", str(d / "cohort.csv")]
    assert main([*base, "--dose", DOSE]) == 2
    assert "--dose-metrics" in capsys.readouterr().err
    assert main([*base, "--dose-metrics", str(d / "m.csv")]) == 2
    assert main([*base, "--dose-metrics", str(d / "m.csv"), "--dose", "Rectum:D99cc"]) == 2
    assert "no dose metric" in capsys.readouterr().err
    assert main([*base, "--dose-metrics", str(d / "m.csv"), "--dose", "Rectum"]) == 2


def test_patient_with_two_plans_needs_a_plan_label(files, capsys):
    d, pids, _, _, _ = files
    text = (d / "cohort.csv").read_text() + "SYN-TWO-PLANS,34,61.2,20,0\n"
    (d / "cohort2.csv").write_text(text)
    base = ["outcomes", str(d / "cohort2.csv"), "--dose-metrics", str(d / "m.csv"), "--dose",
            DOSE, "--json"]
    assert main(base) == 2
    assert "SYN-TWO-PLANS: ['34fx', '5fx']" in capsys.readouterr().err
    assert main([*base, "--dose-plan", "34fx", "--dose-cut", "1000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {g["group"]: g["n"] for g in out["groups"]}[">24 < 1000"] == 1 + sum(
        1 for i in range(len(pids)) if i % 3 == 2)  # SYN-002, -005, ... are 34 fx
