"""load_pet: slice sorting, geometry, per-slice rescale, and series-level refusals.

Geometry reference: the DICOM image-plane equation (PS3.3 C.7.6.2.1.1), position of
pixel (row r, column c) = IPP + c * PixelSpacing[1] * IOP[0:3] + r * PixelSpacing[0] *
IOP[3:6], evaluated directly from the written headers.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtplan.errors import DicomError, GeometryError, InputError, SeriesError
from rtplan.imaging import load_pet

SERIES = generate_uid()


def pt_slice(position, value, *, slope=1.0, iop=(1, 0, 0, 0, 1, 0), series=SERIES,
             corrected=("ATTN", "DECY")):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "PT", series, "1.2.3"
    ds.Units, ds.SUVType, ds.DecayCorrection = "GML", "BW", "START"
    ds.CorrectedImage = list(corrected)
    ds.ImageOrientationPatient = list(iop)
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.PixelSpacing = [2.0, 3.0]  # row spacing 2 mm, column spacing 3 mm
    ds.SliceThickness = 4.0
    ds.Rows, ds.Columns = 3, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = slope, 0.0
    pix = np.full((3, 4), value, np.uint16)
    pix[0, 1] = 0  # a marker that fixes the in-plane orientation
    ds.PixelData = pix.tobytes()
    return ds


def write(folder, name, ds):
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / name, enforce_file_format=True)


def test_sorted_by_position_not_file_name_with_oblique_geometry(tmp_path):
    # orientation rotated 30 degrees about z, then tilted: an oblique stack
    a = np.radians(30)
    row_cos = np.array([np.cos(a), np.sin(a), 0.0])
    col_cos = np.array([-np.sin(a) * 0.8, np.cos(a) * 0.8, 0.6])
    normal = np.cross(row_cos, col_cos)
    origin = np.array([-100.0, 20.0, 5.0])
    offsets = [0.0, 4.0, 8.0, 12.5]  # irregular last gap
    names = ["d.dcm", "c.dcm", "a.dcm", "b.dcm"]  # file order unrelated to position
    for off, name, slope in zip(offsets, names, [1.0, 0.5, 2.0, 0.25], strict=True):
        # stored value * slope = 10 * (slice number + 1)
        value = round(10 * (offsets.index(off) + 1) / slope)
        write(tmp_path, name, pt_slice(origin + off * normal, value, slope=slope,
                                       iop=[*row_cos, *col_cos]))
    (tmp_path / "notes.txt").write_text("not DICOM")
    pet = load_pet(tmp_path)
    assert pet.suv.shape == (4, 3, 4)
    assert pet.suv[:, 2, 2].tolist() == [10.0, 20.0, 30.0, 40.0]  # per-slice slope used
    assert pet.suv[0, 0, 1] == 0.0
    assert pet.grid.slice_positions_mm == pytest.approx(offsets)
    for k, off in enumerate(offsets):
        for r, c in [(0, 0), (2, 3), (1, 2)]:
            expected = origin + off * normal + c * 3.0 * row_cos + r * 2.0 * col_cos
            assert pet.grid.index_to_world([k, r, c]) == pytest.approx(expected, abs=1e-9)
    assert [p.rule for p in pet.provenance] == ["GML: values are already SUVbw"] * 4
    assert pet.frame_of_reference_uid == "1.2.3"
    assert [s.rsplit("/", 1)[-1] for s in pet.sources] == names


def test_mixed_series_refused_and_selectable(tmp_path):
    other = generate_uid()
    for k in range(3):
        write(tmp_path, f"a{k}.dcm", pt_slice((0, 0, 4 * k), 10))
        write(tmp_path, f"b{k}.dcm", pt_slice((0, 0, 4 * k), 20, series=other))
    with pytest.raises(SeriesError, match=r"2 PET series .* choose one with series_uid"):
        load_pet(tmp_path)
    pet = load_pet(tmp_path, series_uid=other)
    assert pet.suv[:, 2, 2].tolist() == [20.0, 20.0, 20.0]
    with pytest.raises(SeriesError, match=r"series '9.9' not in"):
        load_pet(tmp_path, series_uid="9.9")


def test_duplicate_positions_refused(tmp_path):
    for k, z in enumerate([0, 4, 4]):
        write(tmp_path, f"{k}.dcm", pt_slice((0, 0, z), 10))
    with pytest.raises(SeriesError, match=r"same position 4.000 mm"):
        load_pet(tmp_path)


def test_sheared_stack_refused(tmp_path):
    for k in range(3):
        write(tmp_path, f"{k}.dcm", pt_slice((2.0 * k, 0, 4 * k), 10))
    with pytest.raises(GeometryError, match=r"off the slice normal"):
        load_pet(tmp_path)


def test_not_attenuation_corrected_series_refused(tmp_path):
    for k in range(2):
        write(tmp_path, f"{k}.dcm", pt_slice((0, 0, 4 * k), 10, corrected=("DECY",)))
    with pytest.raises(DicomError, match=r"not attenuation corrected"):
        load_pet(tmp_path)


def test_folder_without_pet(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DicomError, match=r"no PET image"):
        load_pet(tmp_path)
    with pytest.raises(InputError, match=r"does not exist"):
        load_pet(tmp_path / "missing")
