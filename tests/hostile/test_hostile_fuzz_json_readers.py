"""Issue 11, property tests of the JSON readers built on ``load_json``: any bytes, and
any JSON value in any field, give a result or a one-line ``InputError``, never another
exception (lesions file, PET -> CT matrix file, ``rtplan compare`` plan file, demo PET
truth file). ``dose sum --registration`` JSON uses the matrix reader.

Each case starts from a valid document and either mutates its bytes or replaces one
field by an arbitrary JSON value (bools, huge integers, NaN-free floats, nested lists,
strings). Examples are bounded and derandomized as in ``test_hostile_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtplan.errors import InputError

_LONG = "RTPLAN_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=int(os.environ.get("RTPLAN_FUZZ_EXAMPLES", "40")), deadline=None,
                derandomize=not _LONG, database=None if not _LONG else settings.default.database,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LESIONS = {
    "lesions": [
        {"id": "L1", "site": "bone", "source": {"kind": "sphere", "center_mm": [0, 0, 0],
                                               "diameter_mm": 10}},
        {"id": "L2", "site": "pelvic_node", "source": {
            "kind": "pet_seed", "point_mm": [1, 2, 3], "level": 0.4, "max_radius_mm": 20}},
        {"id": "L3", "site": "visceral", "source": {"kind": "mask", "path": "m.nii.gz",
                                                   "label": 2}},
    ],
    "margins": {"ctv_margin_mm": 3, "ptv_margin_mm": [2, 2, 3, 3, 2, 2]},
    "eni": {"ctv": {"kind": "rtstruct", "path": "RS.dcm", "roi": "CTVn"}, "margin_mm": 5,
            "sib": True, "boost_dose_gy": 61.2, "elective_dose_gy": 51.0, "gap_mm": 0},
}
MATRIX = {"matrix": [[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, 1, -2], [0, 0, 0, 1]],
          "from_frame": "PET", "to_frame": "CT"}
PLAN = {"name": "p", "fractions": 5, "levels": [{"name": "lesion", "total_dose_gy": 35},
                                                {"name": "nodes", "total_dose_gy": 25}]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10**90, 10**120)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) to a value inside ``doc``."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def one_field_replaced(draw, doc: dict) -> bytes:
    """``doc`` with one value (at any depth) replaced by an arbitrary JSON value."""
    new = json.loads(json.dumps(doc))
    path = draw(st.sampled_from(_paths(new)))
    target = new
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(json_values)
    return json.dumps(new).encode("utf-8")


@st.composite
def mutated(draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not out:
            break
        pos = draw(st.integers(0, len(out) - 1))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip":
            out[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del out[pos:pos + draw(st.integers(1, 16))]
    return bytes(out)


def hostile(doc: dict) -> st.SearchStrategy[bytes]:
    raw = json.dumps(doc).encode("utf-8")
    return st.one_of(one_field_replaced(doc), mutated(raw), st.binary(max_size=200))


def result_or_input_error(read: Callable[[], object]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read()
        except InputError as exc:
            assert "\n" not in str(exc), str(exc)


def _write(data: bytes, name: str) -> Path:
    d = Path(tempfile.mkdtemp())
    p = d / name
    p.write_bytes(data)
    return p


def test_samples_are_valid():
    from rtplan.cli.radiobiology import _load_plan
    from rtplan.imaging import load_matrix
    from rtplan.lesions import load_lesions_file

    assert len(load_lesions_file(_write(json.dumps(LESIONS).encode(), "l.json")).lesions) == 3
    assert load_matrix(_write(json.dumps(MATRIX).encode(), "m.json")).apply(
        [0, 0, 0]).tolist() == [5.0, 0.0, -2.0]
    assert _load_plan(str(_write(json.dumps(PLAN).encode(), "p.json"))).fractions == 5


@FUZZ
@given(hostile(LESIONS))
def test_fuzz_lesions_file(bad):
    from rtplan.lesions import load_lesions_file

    p = _write(bad, "lesions.json")
    result_or_input_error(lambda: load_lesions_file(p))


@FUZZ
@given(st.one_of(hostile(MATRIX), mutated(b"1 0 0 5\n0 1 0 0\n0 0 1 -2\n0 0 0 1\n")))
def test_fuzz_matrix_file(bad):
    from rtplan.imaging import load_matrix

    for name in ("m.json", "m.txt"):
        p = _write(bad, name)
        result_or_input_error(lambda p=p: load_matrix(p))


@FUZZ
@given(hostile(PLAN))
def test_fuzz_compare_plan_file(bad):
    from rtplan.cli.radiobiology import _load_plan
    from rtplan.radiobiology import SIBPlan

    p = _write(bad, "plan.json")

    def read() -> None:
        plan = _load_plan(str(p))
        assert isinstance(plan, SIBPlan)
        # a plan that is read is usable: its schedules compute
        for s in plan.schedules():
            assert s.dose_per_fraction_gy > 0

    result_or_input_error(read)


@FUZZ
@given(st.one_of(st.binary(max_size=200),
                 one_field_replaced({"fwhm_mm": 6.0, "sigma_mm": 2.5, "lesions": []})))
def test_fuzz_demo_truth_file(bad):
    from rtplan.demo import measure_demo_pet

    truth = _write(bad, "truth.json")
    lesions = _write(json.dumps(LESIONS).encode(), "lesions.json")
    # the truth file is read first; a valid one then meets the missing PET folder
    with pytest.raises(InputError) as info:
        measure_demo_pet(truth.parent / "no-pet", lesions, truth)
    assert "\n" not in str(info.value)


def test_json_reader_list_is_complete():
    # every JSON reader of rtplan (all through rtplan._shared.jsonio) has a case here or
    # in test_hostile_fuzz.py (cohort/PSA loaders, load_json itself)
    readers = {name for name in globals() if name.startswith("test_fuzz_")}
    assert readers == {"test_fuzz_lesions_file", "test_fuzz_matrix_file",
                       "test_fuzz_compare_plan_file", "test_fuzz_demo_truth_file"}
