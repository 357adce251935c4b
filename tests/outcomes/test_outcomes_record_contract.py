"""Cohort contract: follow-up required, date order, ADT-free and bPFS definitions.

Expected values are computed by hand in the comments (months = days / 30.4375); errors
must name the file, the row and the offending field(s).
"""

from __future__ import annotations

import datetime as dt

import pytest

from rtplan.cli.main import main
from rtplan.errors import RecordError
from rtplan.outcomes import Cohort, PatientRecord, PsaRecord, load_cohort, load_psa
from rtplan.outcomes._plots import _waterfall_bars
from rtplan.outcomes._report import outcomes_report, report_markdown

DPM = 30.4375
DATES = "patient_id,fractions,total_dose_gy,rt_start_date,last_follow_up_date,death_date,"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("header", "row", "match"),
    [
        # neither times nor dates
        ("patient_id,fractions,total_dose_gy,eni", "P1,5,35,yes",
         r"fields 'os_months', 'rt_start_date', 'last_follow_up_date': no follow-up"),
        # a start date alone is no follow-up either
        ("patient_id,fractions,total_dose_gy,rt_start_date", "P1,5,35,2020-01-01",
         r"fields 'os_months', 'rt_start_date', 'last_follow_up_date': no follow-up"),
        # dates without a start date
        ("patient_id,fractions,total_dose_gy,last_follow_up_date", "P1,5,35,2021-01-01",
         r"fields 'rt_start_date', 'last_follow_up_date': last_follow_up_date 2021-01-01 is "
         r"given without rt_start_date"),
    ],
)
def test_row_without_follow_up_is_a_record_error(tmp_path, capsys, header, row, match):
    p = _write(tmp_path, "nofu.csv", f"{header}\n{row}\n")
    with pytest.raises(RecordError, match=r"nofu.csv', row 1 \(line 2\), patient 'P1': "
                       + match):
        load_cohort(p)
    # the command exits 2 with the message instead of dropping the row
    assert main(["outcomes", str(p)]) == 2
    assert "nofu.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dates", "field", "match"),
    [
        # rt start, last follow-up, death, ADT start
        (("2020-01-01", "2021-06-01", "2021-03-01", ""), "last_follow_up_date",
         "after death_date 2021-03-01"),
        (("2020-01-01", "2021-01-01", "2021-03-01", "2021-04-01"), "adt_start_date",
         "after death_date 2021-03-01"),
        (("2020-01-01", "2021-01-01", "", "2021-02-01"), "adt_start_date",
         "after last_follow_up_date 2021-01-01"),
        (("2020-01-01", "2019-12-01", "", ""), "last_follow_up_date",
         r"before rt_start_date 2020-01-01 \(censoring before RT start\)"),
        (("2020-01-01", "", "2019-12-31", ""), "death_date", "before rt_start_date"),
        # ADT on or before RT start: concomitant ADT belongs in adt_concomitant
        (("2020-01-01", "2021-01-01", "", "2020-01-01"), "adt_start_date",
         "on or before rt_start_date 2020-01-01.*adt_concomitant = yes"),
        (("2020-01-01", "2021-01-01", "", "2019-10-01"), "adt_start_date",
         "on or before rt_start_date 2020-01-01.*adt_concomitant = yes"),
    ],
)
def test_inconsistent_dates_name_the_field(tmp_path, dates, field, match):
    p = _write(tmp_path, "d.csv", DATES + "adt_start_date,adt_concomitant\n"
               f"P1,5,35,{','.join(dates)},yes\n")
    with pytest.raises(RecordError, match=rf"d.csv', row 1 \(line 2\), patient 'P1': "
                       rf"field '{field}': .*{match}"):
        load_cohort(p)


@pytest.mark.parametrize(
    ("cols", "values", "match"),
    [
        ("os_event", "2020-01-01,2020-05-01,2020-06-01,0",
         "field 'os_event': os_event = 0 disagrees with the dates"),
        ("os_event", "2020-01-01,,,0", "field 'last_follow_up_date'|no follow-up"),
        ("adt_free_event", "2020-01-01,2021-01-01,,1",
         "fields 'adt_start_date', 'death_date': adt_free_event = 1 but"),
        ("bpfs_event", "2020-01-01,2021-01-01,,1",
         "field 'bpfs_months': bpfs_event is given without bpfs_months"),
    ],
)
def test_event_without_date_names_the_date_field(tmp_path, cols, values, match):
    p = _write(tmp_path, "ev.csv", DATES.rstrip(",") + f",{cols}\nP1,5,35,{values}\n")
    with pytest.raises(RecordError, match=rf"ev.csv', row 1 .*{match}"):
        load_cohort(p)


def test_event_consistent_with_dates_is_accepted():
    p = PatientRecord(patient_id="P", fractions=5, total_dose_gy=35, rt_start_date="2020-01-01",
                      death_date="2020-04-01", os_event=1)
    assert p.endpoint("os") == (pytest.approx(91 / DPM), 1)  # Jan 31 + Feb 29 + Mar 31 days


def test_times_after_the_end_of_follow_up_are_refused(tmp_path):
    p = _write(tmp_path, "t.csv", "patient_id,fractions,total_dose_gy,os_months,os_event,"
               "bpfs_months,bpfs_event\nP1,5,35,10,1,12,0\n")
    with pytest.raises(RecordError, match=r"field 'bpfs_months': bpfs_months 12.0 is after "
                       r"the end of follow-up \(death at 10.00 months\)"):
        load_cohort(p)
    # within one day is rounding, not an error
    ok = PatientRecord(patient_id="P", fractions=5, total_dose_gy=35, os_months=10,
                       os_event=1, adt_free_months=10.03, adt_free_event=1)
    assert ok.endpoint("adt_free") == (10.03, 1)


def test_adt_free_survival_with_concomitant_and_later_adt():
    start = dict(fractions=34, total_dose_gy=51, rt_start_date="2020-01-01",
                 last_follow_up_date="2022-01-01", adt_concomitant=True)
    # concomitant ADT only: not an event; censored at last follow-up (731 days)
    conc = PatientRecord(patient_id="C", **start)
    assert conc.endpoint("adt_free") == (pytest.approx(731 / DPM), 0)
    # concomitant ADT, then salvage ADT from 2021-01-01 (366 days): event then
    later = PatientRecord(patient_id="L", adt_start_date="2021-01-01", **start)
    assert later.endpoint("adt_free") == (pytest.approx(366 / DPM), 1)
    with pytest.raises(ValueError, match="adt_start_date 2020-01-01 is on or before"):
        PatientRecord(patient_id="X", adt_start_date="2020-01-01", **start)


def test_psa_after_death_is_a_record_error_naming_the_field(tmp_path):
    c = load_cohort(_write(
        tmp_path, "c.csv", "patient_id,fractions,total_dose_gy,rt_start_date,death_date,"
        "os_months,os_event\nP1,5,35,2020-01-01,2020-07-19,,\nP2,5,35,,,10,1\n"))
    # P1 died on day 200 (2020-07-19); a PSA on 2020-08-01 (day 213) is after death
    with pytest.raises(RecordError, match=r"psa.csv', row 2 \(line 3\), patient 'P1': field "
                       r"'date': PSA measured on day 213 after RT start, after the patient's "
                       r"death on day 200"):
        load_psa(_write(tmp_path, "psa.csv", "patient_id,date,days,psa_ng_ml\n"
                        "P1,2020-04-01,,0.5\nP1,2020-08-01,,0.4\n"), c)
    # P2 died at 10 months = 304.375 days; day 306 is more than a day later
    with pytest.raises(RecordError, match=r"psa2.csv', row 1 .*field 'days'"):
        load_psa(_write(tmp_path, "psa2.csv", "patient_id,days,psa_ng_ml\nP2,306,0.4\n"), c)
    ok = load_psa(_write(tmp_path, "psa3.csv", "patient_id,days,psa_ng_ml\nP2,305,0.4\n"), c)
    assert ok[0].days == 305.0


def _bpfs_cohort(**kw) -> Cohort:
    start = dt.date(2020, 1, 1)
    day = lambda n: (start + dt.timedelta(days=n)).isoformat()  # noqa: E731
    base = dict(fractions=34, total_dose_gy=51, rt_start_date=start.isoformat(),
                last_follow_up_date=day(400))
    pts = (
        PatientRecord(patient_id="R1", initial_treatment="radiotherapy", **base),
        PatientRecord(patient_id="S1", initial_treatment="surgery", **base),
        PatientRecord(patient_id="D1", initial_treatment="surgery", fractions=34,
                      total_dose_gy=51, rt_start_date=start.isoformat(),
                      last_follow_up_date=day(190), death_date=day(200)),
        PatientRecord(patient_id="N1", initial_treatment="surgery", **base),
    )
    psa = [
        # R1: nadir 0.5; day 182 exactly nadir + 2 (not "over"); day 273 over it
        ("R1", -14, 3.0), ("R1", 91, 0.5), ("R1", 182, 2.5), ("R1", 273, 2.7),
        # S1: two consecutive rises 0.2 -> 0.3 -> 0.4 at day 273
        ("S1", -14, 1.0), ("S1", 91, 0.2), ("S1", 182, 0.3), ("S1", 273, 0.4),
        # D1: falling PSA, last value day 180, death day 200
        ("D1", -14, 2.0), ("D1", 91, 0.5), ("D1", 180, 0.4),
        # N1: only a pre-RT value
        ("N1", -14, 1.5),
    ]
    return Cohort(patients=pts, psa=tuple(
        PsaRecord(patient_id=i, days=d, psa_ng_ml=v) for i, d, v in psa), **kw)


def test_report_bpfs_death_is_event_and_patients_without_post_rt_psa_left_out():
    rep = outcomes_report(_bpfs_cohort())
    b = rep.groups[0].endpoints["bpfs"]
    # R1 fails at 273 (strict rule), S1 at 273, D1 dies at 200; N1 left out
    assert (b.n, b.events) == (3, 3)
    # KM: S = 2/3 after 200/DPM, 0 after 273/DPM -> median 273/DPM by hand
    assert b.median_months == pytest.approx(273 / DPM, rel=1e-15)
    assert any("no PSA value after RT start" in w and "N1" in w for w in rep.warnings)
    assert rep.bpfs_death_is_event is True
    cens = outcomes_report(_bpfs_cohort(), bpfs_death_is_event=False)
    b = cens.groups[0].endpoints["bpfs"]
    assert (b.n, b.events) == (3, 2)
    assert b.median_months == pytest.approx(273 / DPM, rel=1e-15)  # S: 1 -> 1 -> 0


def test_paper_rule_is_strict_phoenix_after_definitive_rt():
    # R1 (after definitive RT): paper -> day 273, phoenix (inclusive) -> day 182
    paper = outcomes_report(_bpfs_cohort()).groups[0].endpoints["bpfs"]
    phoenix = outcomes_report(_bpfs_cohort(), bpfs_rule="phoenix").groups[0].endpoints["bpfs"]
    # under "phoenix" every patient uses Phoenix: R1 fails at 182; S1 (0.4 < 0.2 + 2)
    # does not fail and is censored at day 273; D1 dies at 200
    assert (phoenix.n, phoenix.events) == (3, 2)
    assert phoenix.median_months == pytest.approx(200 / DPM, rel=1e-15)  # S 2/3 -> 1/3
    assert paper.median_months == pytest.approx(273 / DPM, rel=1e-15)


def test_methods_text_states_the_definitions():
    md = report_markdown(outcomes_report(_bpfs_cohort(), band_percent=10))
    for phrase in ("strictly over nadir + 2 ng/ml", "death from any cause is an event",
                   "censored at the last PSA value after the start of radiotherapy",
                   "within +-30 days", "changes within +-10 % count as unchanged",
                   "adt_start_date on or before the start of "
                   "radiotherapy is rejected", "ADT given with radiotherapy (adt_concomitant) "
                   "is not an event", "clinical order <10, 10-24, >24"):
        assert phrase in md, phrase
    md = report_markdown(outcomes_report(_bpfs_cohort(), bpfs_death_is_event=False))
    assert "death is not an event: patients are censored at the last PSA value" in md


def test_cli_bpfs_censor_death_flag(tmp_path, capsys):
    import json

    c = _write(tmp_path, "c.csv", "patient_id,fractions,total_dose_gy,rt_start_date,"
               "last_follow_up_date,death_date,initial_treatment\n"
               "D1,34,51,2020-01-01,2020-07-09,2020-07-19,surgery\n"
               "S1,5,35,2020-01-01,2021-02-04,,surgery\n")
    psa = _write(tmp_path, "p.csv", "patient_id,days,psa_ng_ml\nD1,-14,2\nD1,91,0.5\n"
                 "D1,180,0.4\nS1,-14,1\nS1,91,0.5\n")
    assert main(["outcomes", str(c), "--psa", str(psa), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ev = {g["group"]: g["endpoints"]["bpfs"] for g in out["groups"]}
    assert out["bpfs_death_is_event"] is True
    assert main(["outcomes", str(c), "--psa", str(psa), "--json", "--bpfs-censor-death"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    assert out2["bpfs_death_is_event"] is False
    assert ev[">24"]["median_months"] == pytest.approx(200 / DPM, rel=1e-15)
    assert out2["groups"][1]["endpoints"]["bpfs"]["median_months"] is None


@pytest.mark.parametrize(
    ("band", "expected"),
    [
        # pre 2.0 -> post 2.1 (+5 %), 1.0 (-50 %), 3.0 (+50 %), 2.0 (0 %)
        (0.0, ["rise", "rise", "unchanged", "decrease"]),
        (10.0, ["rise", "unchanged", "unchanged", "decrease"]),
    ],
)
def test_waterfall_colours_follow_the_band(band, expected):
    bars = _waterfall_bars([2.0, 2.0, 2.0, 2.0], [2.1, 1.0, 3.0, 2.0], band)
    assert [round(b.percent_change, 6) for b in bars] == [50.0, 5.0, 0.0, -50.0]
    assert [b.category for b in bars] == expected


def test_report_places_dated_psa_values_and_refuses_psa_after_death():
    start = dt.date(2020, 1, 1)
    pt = PatientRecord(patient_id="S1", fractions=34, total_dose_gy=51,
                       rt_start_date=start.isoformat(), last_follow_up_date="2021-01-01",
                       initial_treatment="surgery")
    # dated values (days -14, 91, 182, 273): two rises -> failure on day 273
    psa = tuple(PsaRecord(patient_id="S1", date=start + dt.timedelta(days=d), psa_ng_ml=v)
                for d, v in ((-14, 1.0), (91, 0.2), (182, 0.3), (273, 0.4)))
    b = outcomes_report(Cohort(patients=(pt,), psa=psa)).groups[0].endpoints["bpfs"]
    assert (b.n, b.events) == (1, 1)
    assert b.median_months == pytest.approx(273 / DPM, rel=1e-15)
    # a cohort built in code with a PSA after death: an error naming the patient
    dead = PatientRecord(patient_id="D1", fractions=34, total_dose_gy=51, os_months=6,
                         os_event=1, initial_treatment="surgery")
    late = (PsaRecord(patient_id="D1", days=91, psa_ng_ml=0.5),
            PsaRecord(patient_id="D1", days=300, psa_ng_ml=0.4))
    with pytest.raises(RecordError, match="bPFS of patient 'D1': PSA value on day 300 is "
                       "after death"):
        outcomes_report(Cohort(patients=(dead,), psa=late))
