"""Shared DICOM helpers: reading one file, and the modules every rtplan writer fills alike.

References
- PS3.6 (data dictionary, through pydicom's copy of it) for the tag and VR of each
  keyword the helpers set, and PS3.5 6.2 for the value lengths (LO 64, CS 16).
- PS3.10 7.1: a Part 10 file is a 128-byte preamble, "DICM" and a File Meta group; files
  without them (older exports) must still be read, as pydicom's ``force=True`` does.
- PS3.3 C.7.3.1: Laterality (0020,0060) is type 2C, required for paired body parts, so an
  empty value is written when the body part is unknown.
"""

from __future__ import annotations

import datetime as dt
import struct
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from rtplan import __version__
from rtplan._shared.dicom import (
    new_dataset,
    read_dataset,
    set_equipment,
    set_patient,
    set_series,
    set_study,
)
from rtplan.errors import DicomError, InputError
from rtplan.imaging import write_ct_series, write_pet_series
from rtplan.imaging.grid import Grid

PATIENT = SimpleNamespace(name="Doe^Jane", patient_id="P7", birth_date="19500102", sex="F")
STUDY = SimpleNamespace(date="20240101", time="101112", study_id="S9", accession_number="A1",
                        referring_physician="Who^Doc", description="pelvis")


# ---------------------------------------------------------------------------- read_dataset
def test_missing_file_is_an_input_error_naming_path_and_kind(tmp_path):
    p = tmp_path / "RD.dcm"
    with pytest.raises(InputError, match=r"RTDOSE file '.*RD\.dcm' does not exist") as info:
        read_dataset(p, "RTDOSE")
    assert not isinstance(info.value, DicomError)


def test_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_dataset(tmp_path, "registration")


@pytest.mark.filterwarnings("ignore:Expected implicit VR")  # pydicom, on the way
def test_corrupt_file_is_a_dicom_error_naming_path_and_kind(tmp_path):
    # a Part 10 header whose first element has the undefined VR "ZZ" (PS3.5 6.2)
    p = tmp_path / "bad.dcm"
    p.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00ZZ" + struct.pack("<H", 4)
                  + b"1.2\0")
    with pytest.raises(DicomError, match=r"cannot read RTSTRUCT file '.*bad\.dcm' as DICOM"):
        read_dataset(p, "RTSTRUCT")


def test_file_without_preamble_is_read(tmp_path):
    ds = Dataset()
    ds.Modality = "RTPLAN"
    ds.PatientID = "X1"
    p = tmp_path / "old.dcm"
    ds.save_as(p, implicit_vr=True, little_endian=True)  # no preamble, no file meta
    assert p.read_bytes()[128:132] != b"DICM"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(p)
    back = read_dataset(p, "RTPLAN")
    assert (back.Modality, back.PatientID) == ("RTPLAN", "X1")


# ---------------------------------------------------------------------------- writing
def test_new_dataset_is_a_valid_part10_file(tmp_path):
    ds = new_dataset(CTImageStorage, dt.datetime(2025, 1, 2, 3, 4, 5, 678901))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    p = tmp_path / "x.dcm"
    ds.save_as(p, enforce_file_format=True)
    assert p.read_bytes()[128:132] == b"DICM"
    back = pydicom.dcmread(p)
    # whole seconds: TM may hold fractions, but the CT/RTSTRUCT writers never wrote them
    assert (back.InstanceCreationDate, back.InstanceCreationTime) == ("20250102", "030405")
    assert back.SOPClassUID == back.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # explicit VR LE
    assert back.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        pytest.param(lambda ds: set_patient(ds, PATIENT), {
            (0x0010, 0x0010): ("PN", "Doe^Jane"), (0x0010, 0x0020): ("LO", "P7"),
            (0x0010, 0x0030): ("DA", "19500102"), (0x0010, 0x0040): ("CS", "F")},
            id="patient"),
        pytest.param(lambda ds: set_study(ds, STUDY, "1.2.3", date="x", time="y"), {
            (0x0020, 0x000D): ("UI", "1.2.3"), (0x0008, 0x0020): ("DA", "20240101"),
            (0x0008, 0x0030): ("TM", "101112"), (0x0020, 0x0010): ("SH", "S9"),
            (0x0008, 0x0050): ("SH", "A1"), (0x0008, 0x0090): ("PN", "Who^Doc"),
            (0x0008, 0x1030): ("LO", "pelvis")},
            id="study"),
        pytest.param(lambda ds: set_equipment(ds, "model"), {
            (0x0008, 0x0070): ("LO", "rtplan"), (0x0008, 0x1090): ("LO", "model"),
            (0x0018, 0x1020): ("LO", __version__)},
            id="equipment"),
    ],
)
def test_helpers_set_the_standard_tags(fill, expected):
    ds = Dataset()
    fill(ds)
    got = {(el.tag.group, el.tag.element): (el.VR, str(el.value)) for el in ds}
    assert got == expected
    for (group, element), (vr, _) in expected.items():
        assert dictionary_VR((group << 16) | element) == vr


def test_study_defaults_when_empty():
    empty = SimpleNamespace(date="", time="", study_id="", accession_number="",
                            referring_physician="", description="")
    ds = Dataset()
    set_study(ds, empty, "1.2.3", date="20250102", time="090000.5")
    assert (ds.StudyDate, ds.StudyTime, ds.StudyID) == ("20250102", "090000.5", "1")
    # type 2: present and empty
    assert ds.AccessionNumber == "" and ds.ReferringPhysicianName == ""


@pytest.mark.parametrize(
    ("body_part", "present", "absent"),
    [
        ("pelvis", {"BodyPartExamined": "PELVIS"}, ["Laterality"]),
        ("x" * 20, {"BodyPartExamined": "X" * 16}, ["Laterality"]),  # CS: 16 characters
        ("", {"Laterality": ""}, ["BodyPartExamined"]),  # type 2C, unknown
        (None, {}, ["Laterality", "BodyPartExamined"]),  # RT Series module
    ],
)
def test_series_body_part(body_part, present, absent):
    ds = Dataset()
    set_series(ds, "CT", "1.2.3", number="4", description="d" * 70, date="20250102",
               time="090000", body_part=body_part)
    assert (ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber) == ("CT", "1.2.3", "4")
    assert (ds.SeriesDate, ds.SeriesTime) == ("20250102", "090000")
    assert ds.SeriesDescription == "d" * 64  # LO: 64 characters
    for kw, value in present.items():
        assert ds[tag_for_keyword(kw)].value == value
    for kw in absent:
        assert kw not in ds


def test_ct_and_pet_written_for_one_study_agree_on_patient_and_study(tmp_path):
    """The two writers share the Patient and General Study modules (same values)."""
    grid = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    patient = {"name": "Doe^Jane", "patient_id": "P7", "birth_date": "19500102", "sex": "F"}
    study = {"date": "20240101", "time": "101112", "study_id": "S9",
             "accession_number": "A1", "referring_physician": "Who^Doc",
             "description": "pelvis"}
    ct = write_ct_series(tmp_path / "ct", np.zeros(grid.shape), grid, patient=patient,
                         study=study)
    write_pet_series(tmp_path / "pet", np.ones(grid.shape), grid, weight_kg=70.0,
                     injected_dose_bq=370e6, injection_datetime=dt.datetime(2025, 3, 4, 10),
                     series_datetime=dt.datetime(2025, 3, 4, 11), patient=patient,
                     study=study, study_instance_uid=ct.study_instance_uid,
                     frame_of_reference_uid=ct.frame_of_reference_uid)
    c = pydicom.dcmread(ct.paths[0])
    p = pydicom.dcmread(sorted((tmp_path / "pet").iterdir())[0])
    shared = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
              "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
              "StudyDescription", "Manufacturer", "SoftwareVersions", "FrameOfReferenceUID",
              "BodyPartExamined", "SpecificCharacterSet"]
    assert {k: str(c[k].value) for k in shared} == {k: str(p[k].value) for k in shared}
    assert (c.Modality, p.Modality) == ("CT", "PT")
    assert (c.ManufacturerModelName, p.ManufacturerModelName) == (
        "rtplan synthetic CT", "rtplan synthetic PET")
    assert c.SeriesInstanceUID != p.SeriesInstanceUID
