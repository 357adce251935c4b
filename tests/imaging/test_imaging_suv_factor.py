"""``suv_factor`` returns the factor itself: a float that carries its provenance.

Reference: hand calculation of SUVbw for 70 kg, 368.08 MBq F-18 injected at 10:00 and a
reference time of 11:00: 70000 g / (368.08e6 Bq x 2^(-3600/6586.2)) = 2.77778e-4 ml/g,
so 3600 Bq/ml is SUV 1.000.
"""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from pydicom import Dataset

from rtplan.imaging import SUVFactor, SUVProvenance, suv_factor

FACTOR_1H = 70000.0 / (368.08e6 * 2.0 ** (-3600.0 / 6586.2))  # ml/g, hand calculation


def pt_header() -> Dataset:
    ds = Dataset()
    ds.Units, ds.DecayCorrection = "BQML", "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.SeriesDate, ds.SeriesTime = "20250101", "110000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20250101", "110000"
    ds.PatientWeight = 70.0
    rp = Dataset()
    rp.RadionuclideTotalDose, rp.RadionuclideHalfLife = 368.08e6, 6586.2
    rp.RadiopharmaceuticalStartDateTime = "20250101100000"
    ds.RadiopharmaceuticalInformationSequence = [rp]
    return ds


def test_factor_multiplies_rescaled_values_directly():
    f = suv_factor(pt_header())
    rescaled = np.array([[0.0, 3600.0], [7200.0, 14400.0]])  # Bq/ml
    suv = rescaled * f
    assert type(suv) is np.ndarray and suv.dtype == np.float64
    np.testing.assert_allclose(suv, [[0.0, 1.0], [2.0, 4.0]], rtol=1e-5)  # SUV (g/ml)
    assert 3600.0 * f == pytest.approx(1.0, rel=1e-5)
    assert f * 3600.0 == pytest.approx(1.0, rel=1e-5)
    assert float(f) == pytest.approx(FACTOR_1H, rel=1e-9)
    assert f == pytest.approx(FACTOR_1H, rel=1e-9)
    assert np.float32(3600.0) * f == pytest.approx(1.0, rel=1e-5)


def test_provenance_and_plain_factor():
    f = suv_factor(pt_header())
    assert isinstance(f, float) and isinstance(f, SUVFactor)
    assert type(f.factor) is float and f.factor == float(f)
    assert isinstance(f.provenance, SUVProvenance)
    assert f.provenance.factor == f.factor
    assert f.provenance.elapsed_s == 3600.0  # s, 10:00 -> 11:00
    assert "DecayCorrection START" in f.provenance.rule
    assert type(f * 2.0) is float  # arithmetic gives plain floats, no stale provenance


def test_immutable():
    f = suv_factor(pt_header())
    with pytest.raises(AttributeError, match="immutable"):
        f.provenance = None
    with pytest.raises(AttributeError, match="immutable"):
        f.extra = 1
    with pytest.raises(AttributeError):
        del f.provenance
    with pytest.raises(TypeError, match="SUVProvenance"):
        SUVFactor(1.0, {"rule": "x"})


def test_pickle_copy_and_equality():
    f = suv_factor(pt_header())
    for g in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f), copy.copy(f)):
        assert type(g) is SUVFactor
        assert g == f and float(g) == float(f)
        assert g.provenance == f.provenance
    # equality and hashing are those of the float value
    assert f == float(f) and hash(f) == hash(float(f))
    assert {f: 1}[float(f)] == 1
    other = SUVFactor(float(f), f.provenance.model_copy(update={"rule": "other"}))
    assert other == f and other.provenance != f.provenance
    assert f != SUVFactor(2.0 * float(f), f.provenance)


def test_repr_str_and_json():
    f = suv_factor(pt_header())
    assert repr(f).startswith(f"SUVFactor({float(f)!r}, normalization='bw', rule='BQML")
    assert str(f) == repr(float(f))
    assert f"{f:.4e}" == f"{FACTOR_1H:.4e}"
    assert json.loads(json.dumps({"factor": f}))["factor"] == float(f)
