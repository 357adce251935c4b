"""rt-utils: it reads rtplan's RTSTRUCT; the adapter; and what rt-utils 1.2.7 gets wrong.

Tolerance between rt-utils' masks and rtplan's: rt-utils rounds every contour vertex to
the nearest voxel centre (up to half a voxel) and ``cv2.fillPoly`` fills every voxel the
outline touches, so its masks differ from the voxel-centre rule only in voxels within
one voxel (in-plane) of the contour; we assert exactly that, plus Dice >= 0.9.

The "measured problems" tests pin rt-utils 1.2.7's behaviour that README describes; if
one fails after an rt-utils upgrade, update README's rt-utils section.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import shapely
from scipy import ndimage

from rtplan.errors import GeometryError
from rtplan.imaging import Grid, write_ct_series
from rtplan.structures import PlanarContour, ROIContours, rtstruct_masks, write_rtstruct
from rtplan.structures.rtutils_adapter import (
    ct_from_rtutils,
    mask_from_rtutils_layout,
    mask_to_rtutils_layout,
    masks_from_rtutils,
    to_rtutils,
)

rt_utils = pytest.importorskip("rt_utils")
RTStructBuilder = rt_utils.RTStructBuilder


def _contour(grid, k, xy):
    z = grid.index_to_world([k, 0, 0])[2]
    xy = np.asarray(xy, float)
    return PlanarContour(k, np.c_[xy, np.full(len(xy), z)])


def _circle_xy(c, r, n=48):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[c[0] + r * np.cos(t), c[1] + r * np.sin(t)]


def _write_case(folder: Path, shape):
    grid = Grid(shape, origin_mm=(-0.5 * (shape[2] - 1), -0.5 * (shape[1] - 1), 0.0),
                spacing_mm=(3.0, 1.0, 1.0))
    ct = write_ct_series(folder / "ct", np.zeros(shape), grid)
    g = ct.grid
    rois = [
        ROIContours("GTV_1", "GTV", (255, 0, 0),
                    [_contour(g, k, _circle_xy((2.3, -1.7), r))
                     for k, r in ((2, 5.2), (3, 8.1), (4, 6.4))]),
        ROIContours("Ring", "ORGAN", (0, 0, 255),
                    [_contour(g, 3, _circle_xy((-3.1, 2.2), 13.3)),
                     _contour(g, 3, _circle_xy((-3.1, 2.2), 6.6))]),
    ]
    rs = write_rtstruct(folder / "RS.dcm", ct, rois)
    return ct, rois, rs


def _within_one_voxel(a, b):
    """Every voxel where a and b differ is within 1 voxel (in-plane) of both masks' edge."""
    st = np.zeros((3, 3, 3), bool)
    st[1] = True  # in-plane 3 x 3
    diff = a ^ b
    near_a = ndimage.binary_dilation(a, st) & ~ndimage.binary_erosion(a, st)
    return bool(np.all(near_a[diff]))


def test_rtutils_loads_our_rtstruct_and_recovers_masks(tmp_path):
    ct, _, rs = _write_case(tmp_path, (6, 48, 48))
    rt = RTStructBuilder.create_from(str(tmp_path / "ct"), str(rs))
    assert rt.get_roi_names() == ["GTV_1", "Ring"]
    ours = rtstruct_masks(rs, ct)
    for name in ("GTV_1", "Ring"):
        theirs = mask_from_rtutils_layout(rt.get_roi_mask_by_name(name), ct.grid)
        mine = ours[name]
        assert theirs.any()
        # same slices (rt-utils finds them by our per-contour image references)
        assert np.flatnonzero(theirs.any(axis=(1, 2))).tolist() == np.flatnonzero(
            mine.any(axis=(1, 2))).tolist()
        assert _within_one_voxel(mine, theirs), name
        dice = 2 * (mine & theirs).sum() / (mine.sum() + theirs.sum())
        assert dice >= 0.9, (name, dice)
    # the hole of the ring survives in rt-utils too
    ring = mask_from_rtutils_layout(rt.get_roi_mask_by_name("Ring"), ct.grid)
    i, j = np.round(ct.grid.world_to_index([-3.1, 2.2, ct.grid.index_to_world([3, 0, 0])[2]])
                    [1:]).astype(int)
    assert not ring[3, i, j]


def _shapely_masks(rs_path, grid):
    """Independent reference: each ROI's contours read with pydicom, voxel centres tested
    with shapely (even-odd per slice); axial grids as written here."""
    ds = pydicom.dcmread(rs_path)
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    z = grid.origin_mm[2] + grid.slice_positions_mm
    y = grid.origin_mm[1] + grid.voxel_centers_mm(1)
    x = grid.origin_mm[0] + grid.voxel_centers_mm(2)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    out = {}
    for rc in ds.ROIContourSequence:
        m = np.zeros(grid.shape, bool)
        for c in rc.ContourSequence:
            pts = np.asarray(c.ContourData, float).reshape(-1, 3)
            k = int(np.argmin(np.abs(z - pts[0, 2])))
            m[k] ^= shapely.contains_xy(shapely.Polygon(pts[:, :2]), xx, yy)
        out[names[rc.ReferencedROINumber]] = m
    return out


@pytest.mark.parametrize("shape", [(6, 48, 48), (6, 40, 64)], ids=["square", "non-square"])
def test_masks_from_rtutils_against_references(tmp_path, shape):
    # masks_from_rtutils reads the structure set an rt_utils.RTStruct holds (with the CT
    # rebuilt from its series_data). References: shapely point-in-polygon on the written
    # contours (exact, every shape), and rt-utils' own masks (square images only: there
    # they differ only at the edge ring, rt-utils rounds vertices to voxel centres and
    # fills with OpenCV; on non-square images rt-utils' own masks are mis-shaped, see
    # test_rtutils_problems_when_reading)
    ct, _, rs = _write_case(tmp_path, shape)
    rt = RTStructBuilder.create_from(str(tmp_path / "ct"), str(rs))
    ct2, masks = masks_from_rtutils(rt)
    ct2.grid.check_same(ct.grid)
    assert ct2.sop_instance_uids == ct.sop_instance_uids
    reference = _shapely_masks(rs, ct.grid)
    assert masks.keys() == reference.keys() == {"GTV_1", "Ring"}
    for name, ref in reference.items():
        np.testing.assert_array_equal(masks[name], ref)
        if shape[1] == shape[2]:
            theirs = mask_from_rtutils_layout(rt.get_roi_mask_by_name(name), ct.grid)
            assert _within_one_voxel(masks[name], theirs), name
            dice = 2 * (masks[name] & theirs).sum() / (masks[name].sum() + theirs.sum())
            assert dice >= 0.9, (name, dice)


def test_to_rtutils_wraps_our_dataset(tmp_path):
    ct, rois, rs = _write_case(tmp_path, (6, 48, 48))
    rt = to_rtutils(ct, rois)
    assert rt.get_roi_names() == ["GTV_1", "Ring"]
    assert [o.RTROIInterpretedType for o in rt.ds.RTROIObservationsSequence] == ["GTV", "ORGAN"]
    assert rt.frame_of_reference_uid == ct.frame_of_reference_uid
    ct_from_rtutils(rt).grid.check_same(ct.grid)
    np.testing.assert_array_equal(
        mask_from_rtutils_layout(rt.get_roi_mask_by_name("Ring"), ct.grid),
        mask_from_rtutils_layout(
            RTStructBuilder.create_from(str(tmp_path / "ct"), str(rs)).get_roi_mask_by_name(
                "Ring"), ct.grid),
    )


def test_layout_helpers():
    m = np.zeros((3, 4, 5), bool)
    m[2, 1, 4] = True
    r = mask_to_rtutils_layout(m)
    assert r.shape == (4, 5, 3) and r[1, 4, 2]
    np.testing.assert_array_equal(mask_from_rtutils_layout(r), m)
    grid = Grid((3, 4, 5), (0, 0, 0), (1, 1, 1))
    with pytest.raises(GeometryError, match="crops non-square images"):
        mask_from_rtutils_layout(np.zeros((5, 4, 3), bool), grid)


# --------------------------------------------------------------- measured problems (1.2.7)
def _quiet_create_new(folder):
    with warnings.catch_warnings():  # rt-utils sets a pydicom attribute deprecated in 3.0
        warnings.simplefilter("ignore", DeprecationWarning)
        return RTStructBuilder.create_new(str(folder))


def test_rtutils_problems_when_writing(tmp_path, capsys):
    grid = Grid((4, 32, 32), (-15.5, -15.5, 0), (2.5, 0.9765625, 0.9765625))
    write_ct_series(tmp_path / "ct", np.zeros(grid.shape), grid)
    rt = _quiet_create_new(tmp_path / "ct")
    mask = np.zeros((32, 32, 4), bool)
    mask[10:20, 5:15, 1] = True  # 10 x 10 voxels = 95.37 mm^2
    rt.add_roi(mask=mask, name="Square")
    item = rt.ds.ROIContourSequence[0].ContourSequence[0]
    pts = np.array(item.ContourData, float).reshape(-1, 3)
    # contour through voxel centres: a 9 x 9 voxel polygon, 19 % less area
    area_mm2 = shapely.Polygon(pts[:, :2]).area
    assert area_mm2 == pytest.approx(81 * 0.9765625**2, rel=1e-3)
    # RTROIInterpretedType left blank
    assert rt.ds.RTROIObservationsSequence[0].RTROIInterpretedType == ""
    # decimal strings longer than 16 characters, and dciodvfy errors
    out = tmp_path / "rtutils.dcm"
    rt.save(str(out))
    values = pydicom.dcmread(out).ROIContourSequence[0].ContourSequence[0]["ContourData"].value
    assert max(len(str(v)) for v in values) > 16
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if Path(exe).exists():
        text = subprocess.run([exe, str(out)], capture_output=True, text=True).stderr
        assert "Length invalid for this VR" in text
        assert "Missing attribute Type 2 Required Element=<OperatorsName>" in text


def test_rtutils_problems_when_reading(tmp_path):
    ct, _, rs = _write_case(tmp_path, (6, 40, 64))  # 40 rows x 64 columns
    rt = RTStructBuilder.create_from(str(tmp_path / "ct"), str(rs))
    theirs = rt.get_roi_mask_by_name("GTV_1")
    assert theirs.shape == (64, 40, 6)  # (Columns, Rows): mis-shaped and cropped
    # contours without per-contour image references: rt-utils fails, rtplan does not
    ds = pydicom.dcmread(rs)
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            del c.ContourImageSequence
    ds.save_as(tmp_path / "RS_norefs.dcm")
    rt2 = RTStructBuilder.create_from(str(tmp_path / "ct"), str(tmp_path / "RS_norefs.dcm"))
    with pytest.raises(AttributeError, match="ContourImageSequence"):
        rt2.get_roi_mask_by_name("GTV_1")
    np.testing.assert_array_equal(masks_from_rtutils(rt2)[1]["GTV_1"],
                                  rtstruct_masks(rs, ct)["GTV_1"])
