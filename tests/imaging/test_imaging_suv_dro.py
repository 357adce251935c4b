"""All 17 SUV digital reference objects convert to their truth.

Reference: ../shared/data/suv-dro (Vácha et al., OncoRay/HZDR 2026, CC BY 4.0). Truth
for every case: SUVbw 0.20 (cold sphere, minimum), 1.00 (background, median) and 4.00
(hot sphere, maximum) inside the DRO mask. Tolerance: 6 % for DRO_2_3 (stored values
quantised to 0.01 SUVbsa), 0.5 % elsewhere (README of the DRO set).

The mask (NIfTI, RAS) is sampled at the LPS centre of every voxel of the loaded grid,
so the test also checks slice order and grid geometry independently of the loader. The
library contract is checked slice by slice too: ``rescaled * suv_factor(ds)``, with the
slices read by pydicom here, not by the loader, gives the truth.
"""

from __future__ import annotations

import csv
import datetime

import numpy as np
import pydicom
import pytest

from conftest import shared_path
from rtplan.imaging import SUVFactor, load_pet, suv_factor

CASES = [
    "DRO_0_0", "DRO_1_0", "DRO_2_0", "DRO_2_1", "DRO_2_2", "DRO_2_3", "DRO_2_4", "DRO_2_5",
    "DRO_3_0", "DRO_3_1", "DRO_3_2", "DRO_3_3", "DRO_3_4", "DRO_4_0", "DRO_4_1", "DRO_4_2",
    "DRO_5_0",
]


def _mask_on_grid(case: str, grid) -> np.ndarray:
    nib = pytest.importorskip("nibabel")
    img = nib.load(shared_path("data", "suv-dro", "DRO", case, "mask", "DRO_mask.nii.gz"))
    data = np.asarray(img.dataobj) > 0
    k, i, j = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    lps = grid.index_to_world(np.stack([k, i, j], axis=-1).reshape(-1, 3).astype(float))
    ras = lps * np.array([-1.0, -1.0, 1.0])
    ijk = np.rint(
        (np.linalg.inv(img.affine) @ np.c_[ras, np.ones(len(ras))].T)[:3].T
    ).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(data.shape)), axis=1)
    out = np.zeros(len(ras), bool)
    out[inside] = data[tuple(ijk[inside].T)]
    return out.reshape(grid.shape)


def test_dro_list_covers_every_case():
    with shared_path("data", "suv-dro", "DRO", "DRO_list.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["ID"] for r in rows] == CASES
    assert {(r["SUVmin_expected"], r["SUVmed_expected"], r["SUVmax_expected"])
            for r in rows} == {("0.20", "1.00", "4.00")}


def _direct_suv(case: str, grid) -> np.ndarray:
    """SUV of every slice as ``RescaleSlope x stored value x suv_factor(ds)``, on ``grid``."""
    folder = shared_path("data", "suv-dro", "DRO", case, "PT")
    out = np.full(grid.shape, np.nan)
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        factor = suv_factor(ds)
        assert isinstance(factor, SUVFactor) and factor.provenance.factor == float(factor)
        rescaled = ds.pixel_array.astype(float) * float(ds.RescaleSlope)
        k = int(np.rint(grid.world_to_index(np.asarray(ds.ImagePositionPatient, float))[0]))
        out[k] = rescaled * factor  # the factor is used as is: SUV (g/ml)
    assert not np.isnan(out).any()
    return out


@pytest.mark.parametrize("case", CASES)
def test_dro_converts_to_truth(case):
    pet = load_pet(shared_path("data", "suv-dro", "DRO", case, "PT"))
    mask = _mask_on_grid(case, pet.grid)
    assert mask.sum() == 203202  # voxels of the DRO body (cold, hot, background)
    rtol = 0.06 if case == "DRO_2_3" else 0.005
    direct = _direct_suv(case, pet.grid)
    for values in (pet.suv[mask].astype(float), direct[mask]):
        assert values.min() == pytest.approx(0.20, rel=rtol)  # SUV (g/ml)
        assert np.median(values) == pytest.approx(1.00, rel=rtol)
        assert values.max() == pytest.approx(4.00, rel=rtol)
    # the loader applies the same factors (float32 storage: rel 1e-6)
    np.testing.assert_allclose(pet.suv, direct, rtol=1e-6, atol=1e-6)
    # slices sorted along +z, 4 mm apart, 4 mm pixels
    assert pet.grid.spacing_mm == pytest.approx((4.0, 4.0, 4.0))
    assert np.diff(pet.grid.slice_positions_mm) == pytest.approx(np.full(19, 4.0))


@pytest.mark.parametrize(
    ("case", "rule_fragment", "reference_fragment"),
    [
        ("DRO_0_0", "BQML, DecayCorrection START", "SeriesDate/SeriesTime"),
        ("DRO_2_1", "stored SUV of type LBMJAMES128", None),
        ("DRO_2_4", "Philips SUV scale factor", None),
        ("DRO_2_5", "activity concentration scale factor", "SeriesDate/SeriesTime"),
        ("DRO_3_1", "DecayCorrection ADMIN", "injection time"),
        ("DRO_3_2", "DecayCorrection START", "back-computed"),
        ("DRO_3_4", "DecayCorrection NONE", "injection time"),
    ],
)
def test_dro_provenance_names_the_rule(case, rule_fragment, reference_fragment):
    pet = load_pet(shared_path("data", "suv-dro", "DRO", case, "PT"))
    p = pet.provenance[10]
    assert rule_fragment in p.rule
    if reference_fragment is None:
        assert p.reference_time_rule is None
    else:
        assert reference_fragment in p.reference_time_rule


def test_dro_provenance_times_and_doses():
    # DRO_0_0: 368.08 MBq F-18 at 10:00, reference 11:00: decayed by
    # 2^(-3600/6586.2) = 0.68464 (hand calculation) -> 252.00 MBq
    p = load_pet(shared_path("data", "suv-dro", "DRO", "DRO_0_0", "PT")).provenance[0]
    assert p.elapsed_s == 3600.0
    assert p.half_life_source == "RadionuclideHalfLife (0018,1075)"
    assert p.decayed_dose_bq == pytest.approx(368.08e6 * 0.684637, rel=1e-5)
    assert p.heuristics == ()
    # DRO_3_0 stores the dose in MBq; DRO_4_2 crosses midnight
    p = load_pet(shared_path("data", "suv-dro", "DRO", "DRO_3_0", "PT")).provenance[0]
    assert p.injected_dose_bq == pytest.approx(368.08e6)
    assert any("read as MBq" in h for h in p.heuristics)
    p = load_pet(shared_path("data", "suv-dro", "DRO", "DRO_4_2", "PT")).provenance[0]
    assert p.injection_datetime.isoformat() == "2025-01-01T23:30:00"
    assert p.elapsed_s == 3600.0
    assert "midnight" in p.injection_source


def test_dro_3_2_backcompute_gives_the_same_reference_for_both_frames():
    # frames start 11:02:30 (FrameReferenceTime 450 s) and 11:05:00 (600 s), 603 s long:
    # Tave = ln(lam T / (1 - exp(-lam T))) / lam = 299.94 s -> both refer to 11:00:00
    pet = load_pet(shared_path("data", "suv-dro", "DRO", "DRO_3_2", "PT"))
    target = datetime.datetime(2025, 1, 1, 11, 0, 0)
    offsets_s = [(p.reference_datetime - target).total_seconds() for p in pet.provenance]
    assert np.abs(offsets_s).max() < 0.1  # s
