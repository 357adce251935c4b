"""Cohort index and DVH metrics against hand computations and a planning system.

Independent references
- The synthetic patients' dose is analytic, D(z) = Rx + g (z - z_c), constant over each
  contour plane of the box ROIs (rtplan.cohort.synthetic). A box ROI on K planes 3 mm
  apart with a rectangle of area A receives D(z_k) on a slab of A x 3 mm each, so:
  Dmean = mean_k D(z_k); Dmax = D(z_K); Dmin = D(z_1); V_d = (number of planes with
  D(z_k) >= d) x slab volume; D at a volume u slabs from the hot end (ICRU convention
  of rtplan.dose.dvh: each slab's dose at the middle of its volume, linear between) is
  D(z_K + 3/2 - 3u) for 1/2 <= u <= K - 1/2. EQD2 of a slab: D (D/n + a/b) / (2 + a/b)
  written out below, with a/b 1.5 Gy for the PTV and 3 Gy for Rectum and Bladder.
- Fraction categories and dose-per-fraction classes of 27/3, 37.5/5 and 61.2/34 Gy by
  the paper's and the ASTRO/ASCO/AUA 2018 definitions, written out as literals.
- The real Eclipse plan: its DVHSequence (mean dose in percent of the 14 Gy
  prescription, cumulative curves) as in tests/dose/test_dose_dvh.py.
Tolerances: 1e-6 Gy on synthetic doses (32-bit RTDOSE pixels quantise below 1e-8 Gy),
1e-9 relative on volumes (box edges on dose-voxel boundaries).
"""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pydicom
import pytest
from cohort_data import make_db, synthetic_cohort

from conftest import shared_path
from rtplan.cli.main import main
from rtplan.cohort import (
    DVHParameters,
    connect,
    export_metrics,
    index_tree,
    load_index,
    load_metrics,
    run_dvh,
)
from rtplan.errors import InputError

METRICS = ("Dmean", "Dmax", "Dmin", "D2%", "D50%", "D98%", "D2cc", "V20Gy", "V20Gy%")
SLAB_MM = 3.0
ALPHA_BETA = {"PTV": 1.5, "Rectum": 3.0, "Bladder": 3.0}


def eqd2(d, n, ab):
    return d * (d / n + ab) / (2.0 + ab)


def hot_end(values_desc, u):
    """Value u slabs from the hot end: slab j's value at u = j - 1/2, linear between."""
    k = len(values_desc)
    if u <= 0.5:
        return values_desc[0]
    if u >= k - 0.5:
        return values_desc[-1]
    j = math.floor(u - 0.5)
    f = (u - 0.5) - j
    return values_desc[j] + f * (values_desc[j + 1] - values_desc[j])


def expected(truth, roi, plan_index=0, ab=None):
    """{(metric, quantity): value} of one synthetic ROI, by hand."""
    plan = truth.plans[plan_index]
    n = int(plan["fractions"])
    z = np.asarray(roi.planes_z_mm)
    d = truth.dose_gy(z, plan_index)  # increasing with z (gradient > 0)
    area = (roi.x_mm[1] - roi.x_mm[0]) * (roi.y_mm[1] - roi.y_mm[0])
    slab_cc = area * SLAB_MM / 1000.0
    k = len(z)
    ab = ALPHA_BETA[roi.name] if ab is None else ab
    out = {("volume", "physical"): k * slab_cc}
    for quantity, vals in (("physical", d), ("EQD2", eqd2(d, n, ab))):
        desc = list(vals[::-1])
        out[("Dmean", quantity)] = float(np.mean(vals))
        out[("Dmax", quantity)] = float(vals[-1])
        out[("Dmin", quantity)] = float(vals[0])
        for pct in (2, 50, 98):
            out[(f"D{pct}%", quantity)] = hot_end(desc, pct / 100 * k)
        out[("D2cc", quantity)] = hot_end(desc, 2.0 / slab_cc)
        above = int(np.count_nonzero(vals >= 20.0))
        out[("V20Gy", quantity)] = above * slab_cc
        out[("V20Gy%", quantity)] = above * 100.0 / k
    return out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return synthetic_cohort(tmp_path_factory)


@pytest.fixture(scope="module")
def computed(cohort, tmp_path_factory):
    root, _truth = cohort
    db = tmp_path_factory.mktemp("metrics") / "c.sqlite"
    assert main(["cohort", "index", str(root), "--db", str(db)]) == 0
    summary = run_dvh(db, DVHParameters(metrics=METRICS), executor="serial")
    with connect(db) as con:
        rows = load_metrics(con)
        index = load_index(con)
    return db, summary, rows, index


# ------------------------------------------------------------------------ index
def test_index_statuses_and_issues(cohort):
    root, truth = cohort
    idx = index_tree(root)
    by = {p.patient_id: p for p in idx.patients}
    assert sorted(by) == sorted(truth)
    assert idx.n_ignored == 1  # README.txt
    for pid, t in truth.items():
        if t.kind == "normal":
            assert by[pid].status == "complete", (pid, by[pid])
            (plan,) = by[pid].plans
            assert plan.fractions == t.plans[0]["fractions"]
            assert plan.plan_uid == t.plans[0]["plan_uid"]
            assert plan.ct_files == plan.ct_referenced == 16
    assert by["SYN-PLAN-NO-DOSE"].status == "incomplete"
    assert "no RTDOSE references this plan" in by["SYN-PLAN-NO-DOSE"].plans[0].issues
    assert by["SYN-DOSE-NO-PLAN"].status == "incomplete"
    assert any("dose without plan" in i for i in by["SYN-DOSE-NO-PLAN"].issues)
    assert by["SYN-CORRUPT-DOSE"].status == "incomplete"
    assert [b.path.endswith("SYN-CORRUPT-DOSE/RD_0.dcm") for b in idx.bad_files] == [True]
    assert by["SYN-TWO-PLANS"].status == "ambiguous"
    assert [p.status for p in by["SYN-TWO-PLANS"].plans] == ["complete", "complete"]
    assert by["SYN-NO-CT"].status == "usable"
    assert any("CT series" in i for i in by["SYN-NO-CT"].plans[0].issues)
    assert by["SYN-RELATIVE-DOSE"].status == "complete"  # the index reads headers only


def test_index_refuses_a_missing_root(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        index_tree(tmp_path / "nope")


# ------------------------------------------------------------------------ metrics
def test_metrics_equal_hand_computation(cohort, computed):
    _, truth = cohort
    _, summary, rows, _ = computed
    got = {(r.patient_id, r.plan_uid, r.roi, r.metric, r.quantity): r for r in rows}
    checked = 0
    for pid, t in truth.items():
        if t.kind not in ("normal", "no_ct", "two_plans"):
            continue
        for i, plan in enumerate(t.plans):
            for roi in t.rois:
                for (metric, quantity), value in expected(t, roi, i).items():
                    r = got[(pid, plan["plan_uid"], roi.name, metric, quantity)]
                    if r.unit == "Gy":
                        assert r.value == pytest.approx(value, abs=1e-6), (pid, roi.name,
                                                                           metric, quantity)
                    else:
                        assert r.value == pytest.approx(value, rel=1e-9, abs=1e-12)
                    checked += 1
    assert checked >= 22 * 3 * 19
    assert summary.computed == 23 and summary.skipped_unchanged == 0


def test_categories_alpha_beta_and_classes(cohort, computed):
    _, _truth = cohort
    _, _, rows, _ = computed
    classes = {3: ("<10", "ultrahypofractionation"), 5: ("<10", "ultrahypofractionation"),
               34: (">24", "conventional")}
    seen = set()
    for r in rows:
        assert (r.fraction_category, r.dose_per_fraction_class) == classes[r.fractions]
        seen.add(r.fractions)
        if r.quantity == "EQD2":
            assert r.alpha_beta_gy == ALPHA_BETA[r.roi]
            assert r.alpha_beta_source == ("rule:target" if r.roi == "PTV" else
                                           f"rule:{r.roi.lower()}")
        else:
            assert r.alpha_beta_gy is None
    assert seen == {3, 5, 34}


def test_failures_are_stored_and_listed(computed):
    db, summary, rows, _ = computed
    assert sorted(summary.not_computable) == ["SYN-CORRUPT-DOSE", "SYN-DOSE-NO-PLAN",
                                              "SYN-PLAN-NO-DOSE"]
    assert [(f.patient_id, f.error_kind) for f in summary.failed] == [
        ("SYN-RELATIVE-DOSE", "input")]
    assert "DoseUnits 'RELATIVE'" in summary.failed[0].error
    assert summary.exit_code == 0  # every patient succeeded or was reported
    assert not any(r.patient_id == "SYN-RELATIVE-DOSE" for r in rows)
    with connect(db) as con:
        status = dict(con.execute("SELECT patient_id, status FROM results"))
    assert status["SYN-RELATIVE-DOSE"] == "error" and status["SYN-000"] == "ok"


def test_alpha_beta_override_recomputes(cohort, tmp_path):
    root, truth = cohort
    db = make_db(root, tmp_path / "c.sqlite")
    params = DVHParameters(metrics=("Dmean",), alpha_beta_gy={"rect*": 5.0})
    first = run_dvh(db, params, executor="serial")
    again = run_dvh(db, params, executor="serial")
    assert again.computed == 1 and again.skipped_unchanged == first.computed - 1  # the
    # failed patient is retried, the others are unchanged
    changed = run_dvh(db, DVHParameters(metrics=("Dmean",)), executor="serial")
    assert changed.computed == first.computed
    run_dvh(db, params, executor="serial")
    with connect(db) as con:
        rows = [r for r in load_metrics(con) if r.patient_id == "SYN-004" and
                r.quantity == "EQD2"]
    t = truth["SYN-004"]
    rect = next(r for r in rows if r.roi == "Rectum")
    assert (rect.alpha_beta_gy, rect.alpha_beta_source) == (5.0, "override")
    roi = next(r for r in t.rois if r.name == "Rectum")
    assert rect.value == pytest.approx(expected(t, roi, ab=5.0)[("Dmean", "EQD2")], abs=1e-6)


# ------------------------------------------------------------------------ export
def test_export_csv_and_parquet(computed, tmp_path):
    db, _, rows, _ = computed
    out = tmp_path / "m.csv"
    assert main(["cohort", "export", "--db", str(db), "-o", str(out)]) == 0
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    assert list(table[0]) == ["patient_id", "plan_uid", "plan_label", "roi", "metric",
                              "quantity", "value", "unit", "alpha_beta_gy",
                              "alpha_beta_source", "fractions", "fraction_category",
                              "dose_per_fraction_class"]
    for line, r in zip(table, rows, strict=True):
        assert (line["patient_id"], line["roi"], line["metric"]) == (r.patient_id, r.roi,
                                                                      r.metric)
        assert float(line["value"]) == r.value  # full precision
    assert main(["cohort", "export", "--db", str(db), "-o", str(out)]) == 2  # exists
    pq = pytest.importorskip("pyarrow.parquet")
    pout = tmp_path / "m.parquet"
    assert export_metrics(db, pout) == len(rows)
    back = pq.read_table(pout).to_pylist()
    assert [b["value"] for b in back] == [r.value for r in rows]


# ------------------------------------------------------------------------ CLI
def test_cli_errors(computed, tmp_path, capsys):
    db = computed[0]
    assert main(["cohort", "dvh", "--db", str(db), "--metrics", "D2xx"]) == 2
    assert "unknown metric 'D2xx'" in capsys.readouterr().err
    assert main(["cohort", "dvh", "--db", "mysql://u@h/db"]) == 2
    assert "mysql:// is not supported" in capsys.readouterr().err
    pytest.importorskip("sqlalchemy")
    assert main(["cohort", "dvh", "--db", "postgresql://u@127.0.0.1:1/db"]) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert main(["cohort", "dvh", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert main(["cohort", "dvh", "--db", str(db), "--alpha-beta", "Rectum"]) == 2
    assert main(["cohort", "export", "--db", str(db), "-o", str(tmp_path / "x.xlsx")]) == 2


# ------------------------------------------------------------------------ Eclipse
def test_eclipse_plan_as_a_patient(tmp_path):
    base = ("data", "dicompyler-core-rt")
    tree = tmp_path / "tree" / "eclipse"
    tree.mkdir(parents=True)
    for f in ("ct.0.dcm", "rtdose.dcm", "rtplan.dcm", "rtss.dcm"):
        shutil.copy(shared_path(*base, f), tree / f)
    db = tmp_path / "c.sqlite"
    assert main(["cohort", "index", str(tmp_path / "tree"), "--db", str(db)]) == 0
    with connect(db) as con:
        (patient,) = load_index(con).patients
    assert patient.status == "usable"
    (plan,) = patient.plans
    assert (plan.fractions, plan.prescription_gy, plan.ct_files, plan.ct_referenced) == (
        7, 14.0, 1, 98)
    assert "97 of 98 CT images referenced by the RTSTRUCT not found" in plan.issues
    summary = run_dvh(db, DVHParameters(metrics=("Dmean", "Dmax", "D2%")),
                      executor="serial")
    assert summary.computed == 1 and not summary.failed
    with connect(db) as con:
        got = {(r.roi, r.metric, r.quantity): r for r in load_metrics(con)}
    ds = pydicom.dcmread(shared_path(*base, "rtdose.dcm"))
    ss = pydicom.dcmread(shared_path(*base, "rtss.dcm"), stop_before_pixels=True)
    names = {int(r.ROINumber): r.ROIName for r in ss.StructureSetROISequence}
    for item in ds.DVHSequence:
        name = names[int(item.DVHReferencedROISequence[0].ReferencedROINumber)]
        if name not in ("Heart", "Lt Lung", "Tumor Bed"):
            continue
        mean = got[(name, "Dmean", "physical")]
        assert (mean.fractions, mean.fraction_category, mean.dose_per_fraction_class) == (
            7, "<10", "conventional")  # 14 Gy / 7 = 2 Gy per fraction
        assert mean.value == pytest.approx(float(item.DVHMeanDose) * 0.14, abs=0.01)
        data = np.asarray(item.DVHData, dtype=float)
        width, volume = data[0::2], data[1::2]
        edges = np.cumsum(width) - width
        d2 = float(np.interp(-2.0, -volume / volume[0] * 100, edges))  # Eclipse's D2%
        e = got[(name, "D2%", "EQD2")]
        ab = e.alpha_beta_gy
        assert ab == 3.0
        slope = (2 * d2 / 7 + ab) / (2 + ab)  # dEQD2/dD: 0.05 Gy physical -> EQD2
        assert e.value == pytest.approx(eqd2(d2, 7, ab), abs=0.05 * slope + 1e-3)
        dmax = got[(name, "Dmax", "physical")].value
        assert got[(name, "Dmax", "EQD2")].value == pytest.approx(eqd2(dmax, 7, 3.0),
                                                                  rel=1e-12)


def test_index_database_may_not_lie_in_the_dicom_tree(tmp_path, capsys):
    from rtplan.cli.main import main

    root = tmp_path / "dicom"
    root.mkdir()
    (root / "a.dcm").write_bytes(b"not dicom")
    assert main(["cohort", "index", str(root), "--db", str(root / "cohort.sqlite")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["a.dcm"]
