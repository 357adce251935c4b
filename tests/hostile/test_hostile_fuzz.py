"""Issue 11, property tests: any bytes in -> a result or an ``InputError``, never another
exception. One test per reader; a new reader adds its own case here (``READERS``).

Each case starts from a valid file and mutates it (truncation, flipped bytes, inserted
or deleted runs, spliced garbage), or feeds arbitrary bytes. Warnings (pydicom's
"invalid value for VR", numpy overflow) are allowed: they are not errors for the user.
The examples per reader are bounded so that the whole module runs in about 30 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.examples import get_path
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import RTPlanStorage

from rtplan._shared.jsonio import load_json
from rtplan.dose import DoseGrid, fractions_from_rtplan, read_rtdose, write_rtdose
from rtplan.errors import InputError
from rtplan.imaging import Grid, load_ct_series, load_pet, write_ct_series
from rtplan.outcomes import load_cohort, load_psa
from rtplan.structures.rtstruct import read_rtstruct

#: Examples per reader: 40 in the normal suite; set RTPLAN_FUZZ_EXAMPLES for a long run.
#: The normal suite is derandomized (the same examples every run, no flaky CI); a long
#: run with RTPLAN_FUZZ_EXAMPLES explores new random examples.
_LONG = "RTPLAN_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=int(os.environ.get("RTPLAN_FUZZ_EXAMPLES", "40")), deadline=None,
                derandomize=not _LONG, database=None if not _LONG else settings.default.database,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` after one to three random edits."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "splice"]))
        n = len(out)
        if n == 0:
            break
        pos = draw(st.integers(0, n - 1))
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip":
            out[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[pos:pos + draw(st.integers(1, 16))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=64))
            out[pos:pos + len(chunk)] = chunk
    return bytes(out)


def result_or_input_error(read: Callable[[], object]) -> None:
    """The rule: a result, or an InputError with a one-line message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read()
        except InputError as exc:
            assert "\n" not in str(exc), str(exc)


# ------------------------------------------------------------------------ samples
def _ct_files() -> list[bytes]:
    g = Grid((3, 6, 6), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    with tempfile.TemporaryDirectory() as d:
        ct = write_ct_series(d, np.full(g.shape, 40.0), g)
        return [Path(p).read_bytes() for p in ct.paths]


def _rtdose_file() -> bytes:
    g = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    with tempfile.TemporaryDirectory() as d:
        p = write_rtdose(Path(d) / "RD.dcm", DoseGrid(np.full(g.shape, 2.0), g),
                         description="fuzz")
        return p.read_bytes()


def _rtplan_file() -> bytes:
    ds = Dataset()
    ds.SOPClassUID = RTPlanStorage
    ds.Modality = "RTPLAN"
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = 5
    ds.FractionGroupSequence = DicomSequence([fg])
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "RP.dcm"
        ds.save_as(p, implicit_vr=True)
        return p.read_bytes()


def _pet_files() -> list[bytes]:
    import datetime as dt

    from rtplan.imaging import write_pet_series

    g = Grid((3, 5, 5), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    suv = np.ones(g.shape)
    suv[1, 2, 2] = 6.0
    t0 = dt.datetime(2024, 1, 31, 10, 0, 0)
    with tempfile.TemporaryDirectory() as d:
        write_pet_series(d, suv, g, weight_kg=80.0, injected_dose_bq=2.5e8,
                         injection_datetime=t0, series_datetime=t0 + dt.timedelta(hours=1))
        return [p.read_bytes() for p in sorted(Path(d).iterdir())]


CT = _ct_files()
PET = _pet_files()
RTDOSE = _rtdose_file()
RTPLAN = _rtplan_file()
RTSTRUCT = Path(get_path("rt_ss")).read_bytes()
COHORT = (
    b"patient_id,fractions,total_dose_gy,os_months,os_event,rt_start_date\n"
    b"P1,5,37.5,12.5,1,2020-01-01\nP2,3,27,30,0,\n"
)
PSA = b"patient_id,days,psa_ng_ml\nP1,-10,2.5\nP1,90,0.4\nP2,30,1.0\n"
JSON = b'{"patients": [{"patient_id": "P1", "fractions": 5, "total_dose_gy": 37.5, ' \
       b'"os_months": 12, "os_event": 1}], "x": [1.5, -2e3, null, true, "\\u00fc"]}'


def _write(folder: Path, name: str, data: bytes) -> Path:
    p = folder / name
    p.write_bytes(data)
    return p


# ------------------------------------------------------------------------ readers
def test_samples_are_valid():
    # the unmutated samples read (so the mutations start from a real file)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for i, data in enumerate(CT):
            _write(folder, f"CT{i}.dcm", data)
        assert load_ct_series(folder).n_slices == 3
        pet_folder = folder / "pet"
        pet_folder.mkdir()
        for i, data in enumerate(PET):
            _write(pet_folder, f"PT{i}.dcm", data)
        assert float(load_pet(pet_folder).suv.max()) == pytest.approx(6.0, rel=1e-3)
        assert read_rtdose(_write(folder, "RD.x", RTDOSE), fractions=5,
                           allow_effective=True).max_gy == pytest.approx(2.0, rel=1e-4)
        assert fractions_from_rtplan(_write(folder, "RP.x", RTPLAN)) == 5
        assert len(read_rtstruct(_write(folder, "RS.x", RTSTRUCT)).rois) == 3
        cohort = load_cohort(_write(folder, "c.csv", COHORT))
        assert len(cohort.patients) == 2
        assert len(load_psa(_write(folder, "p.csv", PSA), cohort)) == 3
        assert load_json(_write(folder, "x.json", JSON), "file")["x"][4] == "ü"


@FUZZ
@given(st.data())
def test_fuzz_ct_series(data):
    which = data.draw(st.integers(0, len(CT) - 1))
    bad = data.draw(mutated(CT[which]))
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for i, raw in enumerate(CT):
            _write(folder, f"CT{i}.dcm", bad if i == which else raw)
        result_or_input_error(lambda: load_ct_series(folder))


@FUZZ
@given(st.data())
def test_fuzz_pet_series(data):
    which = data.draw(st.integers(0, len(PET) - 1))
    bad = data.draw(mutated(PET[which]))
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for i, raw in enumerate(PET):
            _write(folder, f"PT{i}.dcm", bad if i == which else raw)
        result_or_input_error(lambda: load_pet(folder))


@FUZZ
@given(mutated(RTDOSE))
def test_fuzz_rtdose(bad):
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), "RD.dcm", bad)
        result_or_input_error(lambda: read_rtdose(p, fractions=5, allow_effective=True))


@FUZZ
@given(mutated(RTPLAN))
def test_fuzz_rtplan_fractions(bad):
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), "RP.dcm", bad)
        result_or_input_error(lambda: fractions_from_rtplan(p))


@FUZZ
@given(mutated(RTSTRUCT))
def test_fuzz_rtstruct(bad):
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), "RS.dcm", bad)
        result_or_input_error(lambda: read_rtstruct(p))


@FUZZ
@given(st.one_of(mutated(COHORT), st.binary(max_size=200)),
       st.sampled_from(["c.csv", "c.tsv", "c.json"]))
def test_fuzz_cohort_loader(bad, name):
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), name, bad)
        result_or_input_error(lambda: load_cohort(p))


@FUZZ
@given(st.one_of(mutated(PSA), st.binary(max_size=200)))
def test_fuzz_psa_loader(bad):
    with tempfile.TemporaryDirectory() as d:
        cohort = load_cohort(_write(Path(d), "c.csv", COHORT))
        p = _write(Path(d), "p.csv", bad)
        result_or_input_error(lambda: load_psa(p, cohort))


@FUZZ
@given(st.one_of(mutated(JSON), st.binary(max_size=300),
                 st.text(alphabet='[]{}",:0123456789.eE-+ntrufalsNI\\', max_size=300)
                 .map(lambda t: t.encode("utf-8"))))
def test_fuzz_json_loader(bad):
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), "x.json", bad)
        result_or_input_error(lambda: load_json(p, "file"))


def test_fuzz_folder_with_only_garbage():
    # a folder of non-DICOM files: no CT series, said in one line
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for i in range(3):
            _write(folder, f"x{i}.dcm", bytes(range(i, 200)))
        with pytest.raises(InputError, match="no CT image series"):
            load_ct_series(folder)
    shutil.rmtree(d, ignore_errors=True)


def test_reader_list_is_complete():
    # a reader added to rtplan gets a fuzz case here: this list documents the coverage
    readers = {name for name in globals() if name.startswith("test_fuzz_")}
    assert {"test_fuzz_ct_series", "test_fuzz_pet_series", "test_fuzz_rtdose",
            "test_fuzz_rtplan_fractions", "test_fuzz_rtstruct", "test_fuzz_cohort_loader",
            "test_fuzz_psa_loader",
            "test_fuzz_json_loader"} <= readers


# silence "unused" for pydicom: it is the library the DICOM cases exercise
assert pydicom.__version__
