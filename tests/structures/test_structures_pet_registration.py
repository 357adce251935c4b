"""PET -> planning CT in different frames of reference, and exclusion regions (bladder).

Truth by construction. The PET (frame PET_FOR) and the CT (frame CT_FOR) are related by
a known rigid M: a 90 degree rotation about the S axis ((x, y, z) -> (-y, x, z), LPS)
then a translation (60, -40, 30) mm, p_ct = M @ p_pet. A lesion centred at
P_PET = (0, 0, -8) mm on the PET must land at M @ P_PET = (60, -40, 22) mm on the CT,
118 mm from the wrong-direction answer inv(M) @ P_PET = (40, 60, -38) mm (also inside
the CT, so a reversed implementation gives a wrong answer instead of an error). The
lesion is an ellipsoid elongated along the PET's x axis: on the CT it must be elongated
along y (R maps x to y).

SUV: 70 kg, 368.08 MBq F-18 injected one hour before the scan, so 3600 Bq/ml is SUVbw
1.00 (368.08e6 * 2^(-3600/6586.2) / 70000 = 3600.0 Bq/ml, as in test_imaging_pet_cli).

Exclusion: a sphere of radius 10 mm (SUV 10) whose top voxel touches a hot slab (the
"bladder", SUV 10) face to face. Without exclusion the 50 % of SUVmax component leaks
into the slab; with it the volume is that of the PET voxels (2 mm) whose centres lie
within 10 mm: 515 voxels (lattice points of Z^3 within radius 5, counted here
independently) = 4.12 cc, 1.7 % below the analytic 4/3 pi r^3 = 4.19 cc.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from rtplan.cli.main import main
from rtplan.errors import GeometryError
from rtplan.imaging import (
    Grid,
    RigidTransform,
    load_matrix,
    load_pet,
    read_spatial_registration,
)
from rtplan.imaging.ct import write_ct_series
from rtplan.structures import PlanarContour, ROIContours, rasterize, rtstruct_masks
from rtplan.structures.rtstruct import write_rtstruct
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets, lesion_gtv, resample_mask_nearest
from rtplan.structures.transfer import polygons_to_grid

PET_FOR = "1.2.826.0.1.3680043.8.498.2001"
CT_FOR = "1.2.826.0.1.3680043.8.498.2002"
THIRD_FOR = "1.2.826.0.1.3680043.8.498.2003"

R_Z90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
M = np.eye(4)
M[:3, :3], M[:3, 3] = R_Z90, [60.0, -40.0, 30.0]
P_PET = np.array([0.0, 0.0, -8.0])
P_CT = np.array([60.0, -40.0, 22.0])  # M @ P_PET, by hand
P_WRONG = np.array([40.0, 60.0, -38.0])  # inv(M) @ P_PET = R^T (P_PET - t), by hand

PET_GRID = Grid((32, 32, 32), origin_mm=(-32.0, -32.0, -32.0), spacing_mm=(2.0, 2.0, 2.0))
CT_GRID = Grid((62, 81, 41), origin_mm=(20.0, -80.0, -61.5), spacing_mm=(2.0, 2.0, 2.0))
# an image in the PET frame whose slices lie at z = 4.5 + 2n, for a PET-frame RTSTRUCT
PETCT_GRID = Grid((32, 64, 64), origin_mm=(-32.0, -32.0, -31.5), spacing_mm=(2.0, 1.0, 1.0))

SPHERE_R_MM = 10.0
SPHERE_TRUTH_CC = 515 * 8.0 / 1000.0
BLADDER_Z_PET = np.arange(4.5, 31.0, 2.0)  # contour planes (PET frame) of the bladder ROI
BLADDER_HALF_MM = 21.0  # contours |x|, |y| <= 21 mm; hot voxels |x|, |y| <= 20, z >= 4


def test_lattice_count_reference():
    # the 515 of the module docstring, by brute force on Z^3
    r = np.arange(-5, 6)
    x, y, z = np.meshgrid(r, r, r, indexing="ij")
    assert int(np.count_nonzero(x**2 + y**2 + z**2 <= 25)) == 515
    assert abs(SPHERE_TRUTH_CC / (4 / 3 * math.pi * 1.0**3) - 1) < 0.02  # 4.12 vs 4.19 cc


def world(grid: Grid) -> np.ndarray:
    k, i, j = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    return grid.index_to_world(np.stack([k, i, j], -1).astype(float))


def suv_volume(kind: str) -> np.ndarray:
    p = world(PET_GRID) - P_PET
    if kind == "ellipsoid":  # semi-axes 14 (x), 7 (y), 7 (z) mm
        hot = (p[..., 0] / 14) ** 2 + (p[..., 1] / 7) ** 2 + (p[..., 2] / 7) ** 2 <= 1
    else:
        w = world(PET_GRID)
        sphere = np.linalg.norm(p, axis=-1) <= SPHERE_R_MM
        bladder = (w[..., 2] >= 4) & (np.abs(w[..., 0]) <= 20) & (np.abs(w[..., 1]) <= 20)
        hot = sphere | bladder
    return np.where(hot, 10.0, 1.0)


def write_pet(folder, suv: np.ndarray, grid: Grid, frame_uid: str, weight=70.0) -> None:
    folder.mkdir()
    series = generate_uid()
    vol = np.rint(suv * 3600.0).astype(np.uint16)  # Bq/ml; 3600 Bq/ml = SUV 1
    for k in range(grid.shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "PT", series, frame_uid
        ds.Units, ds.DecayCorrection = "BQML", "START"
        ds.CorrectedImage = ["NORM", "ATTN", "SCAT", "DECY", "RAN"]
        ds.SeriesDate = ds.AcquisitionDate = "20250101"
        ds.SeriesTime = ds.AcquisitionTime = "110000"
        if weight is not None:
            ds.PatientWeight = weight
        rp = Dataset()
        rp.RadiopharmaceuticalStartDateTime = "20250101100000"
        rp.RadionuclideTotalDose = 368.08e6
        rp.RadionuclideHalfLife = 6586.2
        ds.RadiopharmaceuticalInformationSequence = [rp]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [float(v) for v in grid.index_to_world([k, 0, 0])]
        ds.PixelSpacing = [grid.spacing_mm[1], grid.spacing_mm[2]]
        ds.SliceThickness = grid.spacing_mm[0]
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1.0, 0.0
        ds.PixelData = vol[k].tobytes()
        ds.save_as(folder / f"PT{k:03d}.dcm", enforce_file_format=True)


def write_sro(path, registered_for, items) -> None:
    """Spatial Registration object; items = [(frame_uid, 4x4 into registered_for)]."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "", "", "", ""
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = generate_uid(), "1", ""
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = "20250101", "120000", ""
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "REG", generate_uid(), 900
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = registered_for, ""
    ds.Manufacturer, ds.InstanceNumber, ds.ContentLabel = "", 1, "PET_CT"
    ds.ContentDescription, ds.ContentCreatorName = "", ""
    ds.ContentDate, ds.ContentTime = "20250101", "120000"
    seq = []
    for frame, m in items:
        mat = Dataset()
        mat.FrameOfReferenceTransformationMatrixType = "RIGID"
        mat.FrameOfReferenceTransformationMatrix = [
            f"{v:.10g}" for v in np.round(np.asarray(m, float).ravel(), 9) + 0.0]
        mreg = Dataset()
        mreg.RegistrationTypeCodeSequence = []
        mreg.MatrixSequence = [mat]
        item = Dataset()
        item.FrameOfReferenceUID = frame
        item.MatrixRegistrationSequence = [mreg]
        seq.append(item)
    ds.RegistrationSequence = seq
    ds.save_as(path, enforce_file_format=True)


def bladder_rois(image, transform: np.ndarray | None) -> ROIContours:
    """The bladder box's contours, mapped by ``transform`` (PET -> image frame)."""
    h = BLADDER_HALF_MM
    contours = []
    for z in BLADDER_Z_PET:
        pts = np.array([[-h, -h, z], [h, -h, z], [h, h, z], [-h, h, z]])
        if transform is not None:
            pts = pts @ transform[:3, :3].T + transform[:3, 3]
        k = round(float(image.grid.world_to_index(pts[0])[0]))
        assert abs(image.grid.index_to_world([k, 0, 0])[2] - pts[0, 2]) < 1e-6
        contours.append(PlanarContour(k, pts))
    return ROIContours("Bladder", "ORGAN", (200, 200, 0), contours)


def write_nifti(path, mask: np.ndarray, grid: Grid) -> None:
    nib = pytest.importorskip("nibabel")
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine  # [k, i, j] -> RAS
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), ras), str(path))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("petreg")
    write_pet(d / "pet_ell", suv_volume("ellipsoid"), PET_GRID, PET_FOR)
    write_pet(d / "pet_bl", suv_volume("bladder"), PET_GRID, PET_FOR)
    write_pet(d / "pet_noweight", suv_volume("ellipsoid"), PET_GRID, PET_FOR, weight=None)
    ct = write_ct_series(d / "ct", np.full(CT_GRID.shape, -1000.0), CT_GRID,
                         frame_of_reference_uid=CT_FOR)
    petct = write_ct_series(d / "petct", np.full(PETCT_GRID.shape, -1000.0), PETCT_GRID,
                            frame_of_reference_uid=PET_FOR)
    write_rtstruct(d / "RS_pet.dcm", petct, [bladder_rois(petct, None)])
    write_rtstruct(d / "RS_ct.dcm", ct, [bladder_rois(ct, M)])
    w = world(PET_GRID)
    bladder = (w[..., 2] >= 4) & (np.abs(w[..., 0]) <= 20) & (np.abs(w[..., 1]) <= 20)
    write_nifti(d / "bladder.nii.gz", np.where(bladder, 3, 0), PET_GRID)
    # the usual SRO: in the CT frame, identity item for the CT, PET item = M
    write_sro(d / "reg.dcm", CT_FOR, [(CT_FOR, np.eye(4)), (PET_FOR, M)])
    # a third registered frame A: A_M_CT = G, A_M_PET = G @ M
    g = np.eye(4)
    g[:3, :3] = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]  # cyclic axis swap
    g[:3, 3] = [-100.0, 7.0, 250.0]
    write_sro(d / "reg3.dcm", THIRD_FOR, [(CT_FOR, g), (PET_FOR, g @ M)])
    (d / "m.json").write_text(json.dumps({"matrix": M.tolist(), "from_frame": "PET",
                                          "to_frame": "CT"}))
    (d / "m.txt").write_text("\n".join(" ".join(f"{v:g}" for v in row) for row in M))
    (d / "m_scaled.json").write_text(json.dumps({
        "matrix": (M @ np.diag([1.1, 1.1, 1.1, 1.0])).tolist(), "from_frame": "PET",
        "to_frame": "CT"}))
    (d / "lesion.json").write_text(json.dumps({"lesions": [{
        "id": "L1", "site": "pelvic_node",
        "source": {"kind": "pet_seed", "point_mm": P_PET.tolist(), "method": "percent_max",
                   "level": 0.5, "max_radius_mm": 25}}],
        "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 2}}))
    return {"dir": d, "ct": ct}


def centroid_and_axes(mask: np.ndarray, grid: Grid):
    pts = grid.index_to_world(np.argwhere(mask).astype(float))
    return pts.mean(axis=0), pts.var(axis=0)


def check_direction(mask: np.ndarray, grid: Grid) -> None:
    c, var = centroid_and_axes(mask, grid)
    assert np.linalg.norm(c - P_CT) < 1.0  # mm: within half a 2 mm voxel of M @ p_pet
    assert np.linalg.norm(c - P_WRONG) > 100.0
    # PET x (14 mm semi-axis) becomes CT y: the long axis is y
    assert var[1] > 3 * var[0] and var[1] > 3 * var[2]


def spec():
    return LesionsFile.model_validate({"lesions": [{
        "id": "L1", "site": "pelvic_node",
        "source": {"kind": "pet_seed", "point_mm": P_PET.tolist(), "method": "percent_max",
                   "level": 0.5, "max_radius_mm": 25}}]})


# --------------------------------------------------------------------- direction: library
@pytest.mark.parametrize("how", ["sro", "sro_third_frame", "json", "text"])
def test_direction_library(scene, how):
    d, ct = scene["dir"], scene["ct"]
    pet = load_pet(d / "pet_ell")
    assert pet.frame_of_reference_uid == PET_FOR
    tf = {
        "sro": lambda: read_spatial_registration(d / "reg.dcm", PET_FOR, CT_FOR),
        "sro_third_frame": lambda: read_spatial_registration(d / "reg3.dcm", PET_FOR, CT_FOR),
        "json": lambda: load_matrix(d / "m.json"),
        "text": lambda: load_matrix(d / "m.txt"),
    }[how]()
    lesion = spec().lesions[0]
    gtv = lesion_gtv(lesion, ct, pet=pet, pet_transform=tf)
    check_direction(rasterize(gtv), CT_GRID)


def test_direction_negative_control(scene):
    # the same PET mask pushed with the inverse lands at inv(M) @ p_pet: the checks above
    # would catch a reversed implementation
    pet = load_pet(scene["dir"] / "pet_ell")
    hot = pet.suv > 5
    wrong = resample_mask_nearest(hot, pet.grid, CT_GRID, np.linalg.inv(M))
    c, _ = centroid_and_axes(wrong, CT_GRID)
    assert np.linalg.norm(c - P_WRONG) < 1.0
    right = resample_mask_nearest(hot, pet.grid, CT_GRID, M)
    assert right.sum() == hot.sum()  # 90 deg and whole-voxel shifts: a permutation


def test_no_transform_for_different_frames(scene):
    pet = load_pet(scene["dir"] / "pet_ell")
    # the library names its keyword arguments (the CLI maps them to its options)
    with pytest.raises(GeometryError, match=r"different frames of reference.*registration="
                       r" or pet_transform="):
        build_targets(spec(), scene["ct"], body="none", pet=pet)


# --------------------------------------------------------------------- direction: CLI
@pytest.mark.parametrize("flag", [("--registration", "reg.dcm"),
                                  ("--pet-to-ct-matrix", "m.json")])
def test_direction_cli(scene, tmp_path, capsys, flag):
    d = scene["dir"]
    out = tmp_path / "RS.dcm"
    code = main(["structures", "--ct", str(d / "ct"), "--lesions", str(d / "lesion.json"),
                 "--pet", str(d / "pet_ell"), flag[0], str(d / flag[1]), "--body", "none",
                 "-o", str(out), "-q", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0
    reg = rep["pet"]["registration"]
    assert reg["rotation_deg"] == pytest.approx(90.0, abs=1e-6)
    assert reg["translation_mm"] == pytest.approx([60.0, -40.0, 30.0], abs=1e-6)
    assert (reg["moving_frame"], reg["fixed_frame"]) == (PET_FOR, CT_FOR)
    gtv = rtstruct_masks(out, scene["ct"], ["GTVn1"])["GTVn1"]
    check_direction(gtv, CT_GRID)
    assert pydicom.dcmread(out).FrameOfReferenceUID == CT_FOR


def test_cli_errors(scene, tmp_path, capsys):
    d = scene["dir"]
    base = ["structures", "--ct", str(d / "ct"), "--lesions", str(d / "lesion.json"),
            "--body", "none", "-o", str(tmp_path / "RS.dcm"), "-q"]
    pet = ["--pet", str(d / "pet_ell")]
    assert main([*base, *pet]) == 2
    err = capsys.readouterr().err
    assert "different frames of reference" in err and "--registration" in err
    assert "--pet-to-ct-matrix" in err and "Traceback" not in err
    assert main([*base, *pet, "--pet-to-ct-matrix", str(d / "m_scaled.json")]) == 2
    assert "not rigid" in capsys.readouterr().err
    # an SRO that does not register the PET's frame: the frames present are listed
    write_sro(tmp_path / "other.dcm", CT_FOR, [(THIRD_FOR, M)])
    assert main([*base, *pet, "--registration", str(tmp_path / "other.dcm")]) == 2
    err = capsys.readouterr().err
    assert f"moving frame of reference {PET_FOR}" in err and THIRD_FOR in err
    with pytest.raises(SystemExit) as exc:
        main([*base, *pet, "--registration", str(d / "reg.dcm"), "--pet-to-ct-matrix",
              str(d / "m.json")])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main([*base, "--exclude", str(d / "RS_ct.dcm") + ":Bladder"]) == 2
    assert "give --pet DIR too" in capsys.readouterr().err
    assert not (tmp_path / "RS.dcm").exists()


def test_structures_suv_overrides(scene, tmp_path, capsys):
    d = scene["dir"]
    argv = ["structures", "--ct", str(d / "ct"), "--lesions", str(d / "lesion.json"),
            "--pet", str(d / "pet_noweight"), "--pet-to-ct-matrix", str(d / "m.txt"),
            "--body", "none", "-o", str(tmp_path / "RS.dcm"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "PatientWeight (0010,1030) is missing" in err and "--weight-kg" in err
    assert main([*argv, "--weight-kg", "70"]) == 0
    capsys.readouterr()
    check_direction(rtstruct_masks(tmp_path / "RS.dcm", scene["ct"], ["GTVn1"])["GTVn1"],
                    CT_GRID)


def test_same_frame_transform_applied_with_warning(scene):
    # a PET declared in the CT's frame, with an explicit PET -> CT matrix: it is applied
    # (the user asked for it) and the report says so
    import dataclasses

    pet = dataclasses.replace(load_pet(scene["dir"] / "pet_ell"), frame_of_reference_uid=CT_FOR)
    ts = build_targets(spec(), scene["ct"], body="none", pet=pet,
                       pet_transform=load_matrix(scene["dir"] / "m.json"))
    check_direction(rasterize(ts.by_name("GTVn1").sdf), CT_GRID)
    assert any("share FrameOfReferenceUID" in w for w in ts.warnings)


# --------------------------------------------------------------------- exclusion
def lesion_volume(capsys, args) -> tuple[float, dict]:
    assert main(["lesions", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return out["lesions"][0]["measures"]["volume_cc"], out


def test_exclusion_lesions_cli(scene, capsys):
    d = scene["dir"]
    base = ["--pet", str(d / "pet_bl"), "--lesions", str(d / "lesion.json")]
    leaky, _ = lesion_volume(capsys, base)
    assert leaky > 3 * SPHERE_TRUTH_CC  # the component runs into the bladder slab
    for exclude in ([str(d / "RS_pet.dcm") + ":Bladder"],  # RTSTRUCT in the PET frame
                    [str(d / "bladder.nii.gz") + ":3"],  # NIfTI label on the PET grid
                    [str(d / "RS_ct.dcm") + ":bladder", "--registration", str(d / "reg.dcm")],
                    [str(d / "RS_ct.dcm") + ":Bladder", "--pet-to-ct-matrix",
                     str(d / "m.json")]):
        vol, out = lesion_volume(capsys, [*base, "--exclude", *exclude])
        assert vol == pytest.approx(SPHERE_TRUTH_CC, abs=1e-9)  # exactly the 515 voxels
        assert vol == pytest.approx(4 / 3 * math.pi * SPHERE_R_MM**3 / 1000, rel=0.02)
        warn = out["lesions"][0]["warnings"]
        assert any("hot voxels left out by the exclusion mask" in w for w in warn)
        # the slab holds 21 x 21 x 14 hot voxels (|x|, |y| <= 20, z = 4..30 mm)
        assert out["exclusion"]["pet_voxels"] == 21 * 21 * 14
    assert main(["lesions", *base, "--exclude", str(d / "RS_pet.dcm") + ":Bladder"]) == 0
    text = capsys.readouterr().out
    assert "excluded (6174 PET voxels): RS_pet.dcm:Bladder (PET frame" in text
    assert "hot voxels left out by the exclusion mask" in text
    # a CT-frame ROI without a registration is refused, naming both options
    assert main(["lesions", *base, "--exclude", str(d / "RS_ct.dcm") + ":Bladder"]) == 2
    err = capsys.readouterr().err
    assert CT_FOR in err and "--registration" in err and "--pet-to-ct-matrix" in err


def test_exclusion_structures_cli(scene, tmp_path, capsys):
    d = scene["dir"]
    base = ["structures", "--ct", str(d / "ct"), "--lesions", str(d / "lesion.json"),
            "--pet", str(d / "pet_bl"), "--registration", str(d / "reg.dcm"), "--body",
            "none", "-q", "--json"]
    assert main([*base, "-o", str(tmp_path / "leaky.dcm")]) == 0
    leaky = json.loads(capsys.readouterr().out)
    # the bladder ROI drawn on the CT (CT frame), mapped CT -> PET through the SRO
    assert main([*base, "--exclude", str(d / "RS_ct.dcm") + ":Bladder", "-o",
                 str(tmp_path / "RS.dcm")]) == 0
    rep = json.loads(capsys.readouterr().out)
    vol = {s["name"]: s["volume_cc"] for s in rep["structures"]}
    assert {s["name"]: s["volume_cc"] for s in leaky["structures"]}["GTVn1"] > 3 * vol["GTVn1"]
    # the GTV is the 515 PET voxels copied onto the CT (a voxel permutation); its volume
    # from the distance field is within 3 % of the voxel count
    gtv = rtstruct_masks(tmp_path / "RS.dcm", scene["ct"], ["GTVn1"])["GTVn1"]
    assert int(gtv.sum()) == 515
    assert vol["GTVn1"] == pytest.approx(SPHERE_TRUTH_CC, rel=0.03)
    assert any("hot PET voxels left out by the exclusion mask" in w for w in rep["warnings"])
    assert "frame " + CT_FOR + " -> PET" in rep["pet"]["exclusion"]["sources"][0]


# --------------------------------------------------------------------- kernels
def test_resample_matches_scipy_affine_transform():
    # second implementation: scipy.ndimage.affine_transform (order 0) with the matrix
    # from target index to source index, inv(A_src) @ inv(T) @ A_dst
    rng = np.random.default_rng(3)
    src = Grid((20, 24, 22), origin_mm=(-20.3, -25.1, -18.7), spacing_mm=(2.5, 2.1, 1.9))
    dst = Grid((30, 28, 26), origin_mm=(-31.1, -29.4, -27.2), spacing_mm=(1.7, 2.3, 2.05))
    mask = ndimage.binary_opening(rng.random(src.shape) > 0.25, iterations=1)
    mask[:2] = mask[-2:] = False
    t = np.eye(4)
    t[:3, :3] = [[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]  # 36.87 deg about S
    t[:3, 3] = [3.3, -1.2, 2.9]
    ours = resample_mask_nearest(mask, src, dst, t)
    a = np.linalg.inv(src.affine) @ np.linalg.inv(t) @ dst.affine
    ref = ndimage.affine_transform(mask.astype(np.uint8), a[:3, :3], a[:3, 3],
                                   output_shape=dst.shape, order=0, mode="grid-constant") > 0
    assert ours.sum() > 1000
    assert np.array_equal(ours, ref)  # no exact .5 ties in this geometry


def test_polygons_to_rotated_grid_volume():
    # a cylinder r = 15 mm, 30 mm long, drawn on z planes every 2.5 mm (CT frame), put on
    # a 2 mm grid whose frame is rotated 90 degrees about x (the axis becomes y)
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    z_planes = np.arange(0.0, 30.0, 2.5) + 1.25  # 12 slabs of 2.5 mm: 0..30 mm
    polys = [np.c_[15 * np.cos(t), 15 * np.sin(t), np.full(t.size, z)] for z in z_planes]
    rot = np.eye(4)
    rot[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]  # z -> -y
    grid = Grid((24, 30, 24), origin_mm=(-23.0, -41.0, -23.0), spacing_mm=(2.0, 2.0, 2.0))
    m = polygons_to_grid(polys, grid, RigidTransform(rot))
    vol_cc = m.sum() * 8.0 / 1000.0
    assert vol_cc == pytest.approx(math.pi * 15**2 * 30 / 1000.0, rel=0.05)
    ys = grid.index_to_world(np.argwhere(m).astype(float))[:, 1]
    assert ys.min() >= -31.0 and ys.max() <= 1.0  # along -y from 0 to -30 mm (+- 1 voxel)
