"""RTSTRUCT contours -> distance field directly (sdf_from_contours), and one
rasterisation convention shared by structure masks and DVHs (rtplan.structures.raster).

Independent references
- The slab convention: each contour plane stands for the slab half a contour spacing
  either side, so a stack of circles of radius r_j on planes z_j is a union of finite
  cylinders; its expansion by m is the set within m of it, and the distance from a point
  to a finite cylinder is ``hypot(max(rho - r_j, 0), max(|z - z_j| - t/2, 0))``
  (closed form). Contour vertices of the grown structure must lie at distance m.
- Areas from shapely (even-odd of each plane's polygons) times the contour spacing.
- The voxel-centre rule counted independently with shapely.contains_xy.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from rtplan.dose import DoseGrid, structure_dvhs
from rtplan.errors import GeometryError, GridMismatchError
from rtplan.imaging import Grid, write_ct_series
from rtplan.structures import (
    PlanarContour,
    ROIContours,
    contours_from_sdf,
    expand,
    read_rtstruct,
    rtstruct_masks,
    volume_cc,
    write_rtstruct,
)
from rtplan.structures.constructors import sdf_from_contours, sdf_from_rtstruct
from rtplan.structures.raster import slab_mask

CENTRE_XY = (0.37, -0.21)  # mm, off the pixel grid


def _ct(tmp_path, spacing, n=40):
    grid = Grid((n, 80, 80), origin_mm=(-39.5 * spacing[2], -39.5 * spacing[1],
                                          -20 * spacing[0]), spacing_mm=spacing)
    return write_ct_series(tmp_path / "ct", np.zeros(grid.shape), grid)


def _circle(grid, k, radius_mm, n=720):
    z = grid.index_to_world([k, 0, 0])[2]
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[CENTRE_XY[0] + radius_mm * np.cos(t), CENTRE_XY[1] + radius_mm * np.sin(t),
                 np.full(n, z)]


def _rtstruct_roi(tmp_path, ct, slices, radii):
    """An RTSTRUCT of circles written by rtplan's writer and read back."""
    contours = [PlanarContour(k, _circle(ct.grid, k, r)) for k, r in zip(slices, radii,
                                                                          strict=True)]
    path = write_rtstruct(tmp_path / "RS.dcm", ct, [ROIContours("GTV_1", "GTV", (255, 0, 0),
                                                                contours)])
    return read_rtstruct(path)


def _distance_to_cylinders(points, planes_z, radii, t_mm):
    rho = np.hypot(points[:, 0] - CENTRE_XY[0], points[:, 1] - CENTRE_XY[1])
    d = np.full(len(points), np.inf)
    for z, r in zip(planes_z, radii, strict=True):
        dz = np.maximum(np.abs(points[:, 2] - z) - t_mm / 2, 0.0)
        d = np.minimum(d, np.hypot(np.maximum(rho - r, 0.0), dz))
    return d


CASES = [
    # slice spacing / pixel (mm), CT slices of the contours, radii (mm), margin chain (mm)
    ((3.0, 0.98, 0.98), range(18, 23), [8.0] * 5, [5.0]),
    ((3.0, 0.98, 0.98), range(18, 23), [4.0, 7.0, 9.0, 8.0, 5.0], [3.0]),
    ((3.0, 0.98, 0.98), range(18, 23), [4.0, 7.0, 9.0, 8.0, 5.0], [2.0, 3.0]),
    ((2.0, 1.2, 1.2), range(18, 22), [6.0] * 4, [0.7]),  # margin below the slice spacing
    ((3.0, 0.98, 0.98), range(16, 23, 2), [6.0, 8.0, 7.0, 5.0], [3.0]),  # every 2nd slice
    ((3.0, 0.98, 0.98), [20], [10.0], [4.0]),  # single plane: one CT slice thick
]


@pytest.mark.parametrize(("spacing", "slices", "radii", "chain"), CASES)
def test_rtstruct_circles_expand_to_the_exact_slab_stack_expansion(
    tmp_path, spacing, slices, radii, chain
):
    ct = _ct(tmp_path, spacing)
    ss = _rtstruct_roi(tmp_path, ct, list(slices), radii)
    gtv = sdf_from_rtstruct(ss, "GTV_1", ct)
    planes_z = [ct.grid.index_to_world([k, 0, 0])[2] for k in slices]
    t_mm = planes_z[1] - planes_z[0] if len(planes_z) > 1 else spacing[0]
    grown = gtv
    for m in chain:
        grown = expand(grown, m)
    cs = contours_from_sdf(grown)
    assert cs
    pts = np.concatenate([c.points_mm for c in cs])
    err = np.abs(_distance_to_cylinders(pts, planes_z, radii, t_mm) - sum(chain))
    assert err.max() <= 0.1  # mm (measured <= 0.03)
    # the CT slices crossed: exactly those within m of the slab stack along z
    z_lo, z_hi = planes_z[0] - t_mm / 2 - sum(chain), planes_z[-1] + t_mm / 2 + sum(chain)
    pos = ct.grid.slice_positions_mm + ct.grid.origin_mm[2]
    inside = np.nonzero((pos > z_lo + 1e-3) & (pos < z_hi - 1e-3))[0]
    assert sorted({c.slice_index for c in cs}) == inside.tolist()


def test_source_contours_are_the_polygons_and_volume_is_area_times_spacing(tmp_path):
    ct = _ct(tmp_path, (3.0, 0.98, 0.98))
    radii = [4.0, 7.0, 9.0]
    ss = _rtstruct_roi(tmp_path, ct, [18, 19, 20], radii)
    polys = ss.roi("GTV_1").polygons_mm
    gtv = sdf_from_contours(polys, ct.grid)
    by_slice = {c.slice_index: c for c in contours_from_sdf(gtv)}
    assert sorted(by_slice) == [18, 19, 20]  # the slabs end half-way to slices 17 and 21
    for k, r in zip([18, 19, 20], radii, strict=True):
        p = by_slice[k].points_mm
        rho = np.hypot(p[:, 0] - CENTRE_XY[0], p[:, 1] - CENTRE_XY[1])
        assert np.abs(rho - r).max() <= 0.05  # mm
    exact_cc = sum(shapely.Polygon(p[:, :2]).area for p in polys) * 3.0 / 1000
    assert volume_cc(gtv) == pytest.approx(exact_cc, rel=1e-9)


def test_holes_and_islands_follow_even_odd_nesting():
    grid = Grid((10, 60, 60), origin_mm=(-29.5, -29.5, -15.0), spacing_mm=(3, 1, 1))

    def square(half, z):
        return np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])

    polys = [square(20, z) for z in (-3.0, 0.0, 3.0)] + [square(10, 0.0), square(4, 0.0)]
    f = sdf_from_contours(polys, grid, resolution_mm=0.5)
    # plane 0 (slab -1.5..1.5 mm): the 40 mm square minus the 20 mm one plus an 8 mm
    # island; the planes at -3 and 3 mm: full 40 mm squares. Points off the field's kinks:
    pts = [[11.5, 0.3, 0.0],   # in the frame: 1.5 mm to the hole's edge
           [7.0, 0.3, 0.9],    # in the hole: 0.6 mm below the slab above
           [1.0, 2.0, 0.0],    # in the island: 2 mm to its edge
           [0.4, 0.3, 3.9]]    # top slab: 0.6 mm below the end of the stack
    np.testing.assert_allclose(f.value_at(pts), [-1.5, 0.6, -2.0, -0.6], atol=1e-3)  # mm
    area_mm2 = 2 * 1600 + (1600 - 400 + 64)
    assert volume_cc(f) == pytest.approx(area_mm2 * 3 / 1000, rel=1e-9)


def test_contours_must_be_parallel_to_the_slices():
    grid = Grid((10, 40, 40), origin_mm=(-20, -20, -15), spacing_mm=(3, 1, 1))
    tilted = [[0, 0, 0], [5, 0, 1], [0, 5, 0]]
    with pytest.raises(GeometryError, match="not parallel to the CT slices"):
        sdf_from_contours([tilted], grid)
    assert sdf_from_contours([], grid).is_empty


def test_frame_of_reference_is_checked(tmp_path):
    ct = _ct(tmp_path, (3.0, 1.0, 1.0))
    ss = _rtstruct_roi(tmp_path, ct, [20], [5.0])
    other = write_ct_series(tmp_path / "other", np.zeros(ct.grid.shape), ct.grid)
    with pytest.raises(GridMismatchError, match="frame of reference"):
        sdf_from_rtstruct(ss, "GTV_1", other)
    assert not sdf_from_rtstruct(ss, "GTV_1", other, check_frame_of_reference=False).is_empty


# ------------------------------------------------------- one rasterisation convention
@pytest.mark.parametrize("step", [1, 2])  # contours on every CT slice / every other one
def test_structure_volume_and_dvh_volume_agree(tmp_path, step):
    ct = _ct(tmp_path, (3.0, 0.98, 0.98))
    slices = list(range(14, 27, step))
    zc = ct.grid.index_to_world([20, 0, 0])[2]
    radii = [float(np.sqrt(max(144.0 - (ct.grid.index_to_world([k, 0, 0])[2] - zc) ** 2, 4)))
             for k in slices]  # a sphere of radius 12 mm, contoured
    ss = _rtstruct_roi(tmp_path, ct, slices, radii)
    roi = ss.roi("GTV_1")
    t_mm = 3.0 * step
    analytic_cc = sum(shapely.Polygon(p[:, :2]).area for p in roi.polygons_mm) * t_mm / 1000
    mask = rtstruct_masks(ss, ct)["GTV_1"]
    vox_cc = ct.grid.voxel_volume_mm3 / 1000
    structure_cc = mask.sum() * vox_cc
    dose = DoseGrid(np.ones(ct.grid.shape), ct.grid, ct.frame_of_reference_uid)
    dvh_cc = structure_dvhs(dose, ss, supersampling=1)["GTV_1"].total_volume_cc
    # the same voxels: mask count and DVH samples agree exactly
    assert dvh_cc == pytest.approx(structure_cc, rel=1e-12)
    # every CT slice within the slabs is filled: with contours every other slice, a
    # plane's slab [z - 3, z + 3) mm holds its own slice and the one below
    filled = np.nonzero(mask.any(axis=(1, 2)))[0].tolist()
    assert filled == list(range(slices[0] - (step - 1), slices[-1] + 1))
    # independent voxel-centre count with shapely on each filled slice
    x = ct.grid.origin_mm[0] + np.arange(80) * 0.98
    y = ct.grid.origin_mm[1] + np.arange(80) * 0.98
    xx, yy = np.meshgrid(x, y)
    for k in filled:
        plane = k if k in slices else k + 1
        poly = shapely.Polygon(roi.polygons_mm[slices.index(plane)][:, :2])
        np.testing.assert_array_equal(mask[k], shapely.contains_xy(poly, xx, yy))
    # both agree with the analytic slab volume within the voxelisation error: at most
    # half a pixel times the perimeter, per slab
    perim = sum(shapely.Polygon(p[:, :2]).length for p in roi.polygons_mm) * t_mm / 1000
    assert abs(structure_cc - analytic_cc) <= 0.5 * 0.98 * perim
    dvh3_cc = structure_dvhs(dose, ss)["GTV_1"].total_volume_cc  # 3 x 3 sub-samples
    assert abs(dvh3_cc - analytic_cc) <= 0.5 * 0.98 / 3 * perim
    # the distance field of the same contours measures the analytic slab volume
    assert volume_cc(sdf_from_rtstruct(ss, "GTV_1", ct)) == pytest.approx(analytic_cc,
                                                                          rel=1e-9)


def test_slab_mask_of_a_single_plane_is_one_slice_thick():
    g = Grid((3, 16, 16), origin_mm=(-18.75, -18.75, 0.0), spacing_mm=(3, 2.5, 2.5))
    sq = np.array([[-10, -10, 1.5], [10, -10, 1.5], [10, 10, 1.5], [-10, 10, 1.5]])
    # the plane at 1.5 mm stands for [0, 3): the slice at z = 0 (8 x 8 pixel centres)
    assert slab_mask([sq], g).sum(axis=(1, 2)).tolist() == [64, 0, 0]
