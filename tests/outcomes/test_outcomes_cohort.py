"""Cohort models and loaders: date arithmetic, and errors that name file, row, field."""

from __future__ import annotations

import json

import pytest

from rtplan.errors import InputError, RecordError
from rtplan.outcomes import (
    Cohort,
    PatientRecord,
    days_to_months,
    load_cohort,
    load_lesions,
    load_psa,
    load_toxicity,
)

HEADER = "patient_id,fractions,total_dose_gy,os_months,os_event"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_days_per_month_is_a_julian_year_twelfth():
    # 4 calendar years with one leap day = 1461 days = 48 months (365.25 / 12 per month)
    assert days_to_months(1461) == 48.0


def test_dates_give_months_by_hand():
    p = PatientRecord(
        patient_id="P1", fractions=34, total_dose_gy=51, rt_start_date="2018-03-01",
        last_follow_up_date="2020-03-01", death_date=None, adt_start_date="2019-03-01",
    )
    # 2018-03-01 -> 2020-03-01 = 731 days (2020 is a leap year); -> 2019-03-01 = 365 days
    assert p.endpoint("os") == (pytest.approx(731 / 30.4375), 0)
    assert p.endpoint("adt_free") == (pytest.approx(365 / 30.4375), 1)
    assert p.endpoint("bpfs") is None
    dead = PatientRecord(patient_id="P2", fractions=5, total_dose_gy=37.5,
                         rt_start_date="2018-01-01", death_date="2018-01-31")
    assert dead.endpoint("os") == (pytest.approx(30 / 30.4375), 1)
    assert dead.endpoint("adt_free") == (pytest.approx(30 / 30.4375), 1)  # death first


def test_csv_cohort_loads_with_optional_fields(tmp_path):
    p = _write(tmp_path, "c.csv",
               HEADER + ",adt_concomitant,eni,initial_treatment,relapse,gleason,t_stage\n"
               "P1,3,27,30.5,0,yes,0,surgery,first,7,pT3a\n"
               "P2,34,51,12.25,1,,,radiotherapy,,,\n")
    c = load_cohort(p)
    assert [x.patient_id for x in c.patients] == ["P1", "P2"]
    assert c.patients[0].adt_concomitant is True and c.patients[0].eni is False
    assert c.patients[1].gleason is None
    t, e, _ = c.endpoint_arrays("os")
    assert t.tolist() == [30.5, 12.25] and e.tolist() == [0, 1]


def test_json_cohort_both_layouts(tmp_path):
    rec = {"patient_id": "A", "fractions": 5, "total_dose_gy": 35, "os_months": 3,
           "os_event": 1}
    a = _write(tmp_path, "a.json", json.dumps([rec]))
    b = _write(tmp_path, "b.json", json.dumps({"patients": [rec]}))
    assert load_cohort(a) == load_cohort(b)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("P1,5,35,-1,0", r"row 1 \(line 2\), patient 'P1': field 'os_months'"),
        ("P1,5,35,10,2", r"field 'os_event'.*got '2'"),
        ("P1,0,35,10,1", r"field 'fractions'"),
        ("P1,5,35,,1", r"field 'os_months': os_event is given without os_months"),
        ("P1,5,35,10,", r"field 'os_event': os_months is given without os_event"),
        ("P1,5,35,10,1\nP1,5,35,10,1", r"row 2 \(line 3\).*duplicate of row 1"),
    ],
)
def test_bad_cohort_rows_name_file_row_field(tmp_path, rows, match):
    p = _write(tmp_path, "bad.csv", HEADER + "\n" + rows + "\n")
    with pytest.raises(RecordError, match=match) as exc:
        load_cohort(p)
    assert "bad.csv" in str(exc.value)


def test_censoring_before_rt_start_and_event_without_date(tmp_path):
    p = _write(tmp_path, "d.csv",
               "patient_id,fractions,total_dose_gy,rt_start_date,last_follow_up_date\n"
               "P1,5,35,2020-05-01,2020-04-01\n")
    with pytest.raises(RecordError, match=r"patient 'P1'.*censoring before RT start"):
        load_cohort(p)
    # date-based record: the missing date is named, not the missing months
    q = _write(tmp_path, "e.csv",
               "patient_id,fractions,total_dose_gy,rt_start_date,last_follow_up_date,os_event\n"
               "P1,5,35,2020-05-01,2021-04-01,1\n")
    with pytest.raises(RecordError, match=r"e.csv', row 1 \(line 2\), patient 'P1': field "
                       r"'death_date': os_event = 1 \(death\) but death_date is empty"):
        load_cohort(q)
    # time-based record: the missing months are named
    r = _write(tmp_path, "f.csv", HEADER + "\nP1,5,35,,1\n")
    with pytest.raises(RecordError, match="field 'os_months': os_event is given without"):
        load_cohort(r)


def test_unknown_category_and_column_are_errors(tmp_path):
    p = _write(tmp_path, "u.csv", HEADER + ",initial_treatment\nP1,5,35,10,0,chemo\n")
    with pytest.raises(RecordError, match=r"field 'initial_treatment'.*got 'chemo'"):
        load_cohort(p)
    q = _write(tmp_path, "v.csv", HEADER + ",os_monhts\nP1,5,35,10,0,3\n")
    with pytest.raises(RecordError, match=r"field 'os_monhts': unknown column"):
        load_cohort(q)


def test_times_and_dates_must_agree(tmp_path):
    with pytest.raises(ValueError, match="disagree with the dates"):
        PatientRecord(patient_id="P", fractions=5, total_dose_gy=35, os_months=5, os_event=0,
                      rt_start_date="2020-01-01", last_follow_up_date="2021-01-01")


def test_long_tables(tmp_path):
    c = load_cohort(_write(tmp_path, "c.csv",
                           "patient_id,fractions,total_dose_gy,rt_start_date,"
                           "last_follow_up_date\nP1,5,35,2020-01-01,2021-01-01\n"))
    psa = load_psa(_write(tmp_path, "psa.csv",
                          "patient_id,date,days,psa_ng_ml\nP1,2019-12-31,,2.0\nP1,,90,0.5\n"), c)
    assert [r.days for r in psa] == [-1.0, 90.0]
    with pytest.raises(RecordError, match=r"psa2.csv', row 1 .*field 'psa_ng_ml'"):
        load_psa(_write(tmp_path, "psa2.csv", "patient_id,days,psa_ng_ml\nP1,10,-0.1\n"), c)
    with pytest.raises(RecordError, match="'P9' is not in the cohort"):
        load_psa(_write(tmp_path, "psa3.csv", "patient_id,days,psa_ng_ml\nP9,10,1\n"), c)
    tox = load_toxicity(_write(tmp_path, "t.csv",
                               "patient_id,timepoint,domain,grade\nP1,3m,GU,\nP1,3m,GI,2\n"), c)
    assert [t.grade for t in tox] == [None, 2]
    with pytest.raises(RecordError, match="field 'grade'"):
        load_toxicity(_write(tmp_path, "t2.csv",
                             "patient_id,timepoint,domain,grade\nP1,3m,GU,6\n"), c)
    les = load_lesions(_write(tmp_path, "l.csv",
                              "patient_id,site,suvmax_pre,suvmax_post\nP1,bone,7.4,0\n"), c)
    assert les[0].suvmax_post == 0


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_cohort(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unsupported extension"):
        load_cohort(_write(tmp_path, "c.xlsx", "x"))


def test_cohort_rejects_duplicate_ids():
    rec = PatientRecord(patient_id="A", fractions=3, total_dose_gy=27, os_months=5, os_event=0)
    with pytest.raises(ValueError, match="more than once"):
        Cohort(patients=(rec, rec))
