"""Contouring, rasterisation and volumes against independent references: shapely
point-in-polygon on the grid nodes (marching squares), the input masks themselves
(round trip), voxel-centre sphere tests and analytic volumes."""

import numpy as np
import pytest
from scipy import ndimage
from shapely import contains_xy
from shapely.geometry import Polygon

from rtplan.imaging.grid import Grid
from rtplan.structures import (
    contours_from_mask,
    contours_from_sdf,
    rasterize,
    sdf_from_mask,
    sdf_from_sphere,
    volume_cc,
)
from rtplan.structures._marching import marching_squares_rings


def _even_odd_inside(rings_xy, x, y):
    inside = np.zeros(x.shape, bool)
    for ring in rings_xy:
        inside ^= contains_xy(Polygon(ring), x, y)
    return inside


@pytest.mark.parametrize("seed", range(6))
def test_marching_squares_rings_separate_inside_from_outside_nodes(seed):
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=(2, 40, 50)), 2.0)
    f[:, [0, -1], :] = 1.0
    f[:, :, [0, -1]] = 1.0
    plane, start, pts, area = marching_squares_rings(f)
    yy, xx = np.mgrid[0 : f.shape[1], 0 : f.shape[2]]
    for p in range(f.shape[0]):
        rings = [pts[start[r] : start[r + 1]][:, ::-1] for r in np.nonzero(plane == p)[0]]
        for ring in rings:
            assert len(ring) >= 4
            assert Polygon(ring).is_valid
        inside = _even_odd_inside(rings, xx.astype(float), yy.astype(float))
        np.testing.assert_array_equal(inside, f[p] < 0)
        # orientation flags holes: the signed areas sum to the even-odd area
        total = sum(Polygon(r).area for r in rings)
        signed = area[plane == p].sum()
        assert signed <= total + 1e-9
        for r_idx in np.nonzero(plane == p)[0]:
            ring = pts[start[r_idx] : start[r_idx + 1]][:, ::-1]
            assert abs(area[r_idx]) == pytest.approx(Polygon(ring).area)


def test_marching_squares_saddles_and_touching_diagonals():
    f = np.ones((1, 6, 6))
    f[0, 1, 1] = f[0, 2, 2] = f[0, 3, 3] = -1.0  # diagonal chain: separate at saddles
    f[0, 3, 1] = f[0, 1, 3] = -0.2
    plane, start, pts, area = marching_squares_rings(f)
    assert np.all(area > 0)
    rings = [Polygon(pts[start[r] : start[r + 1]][:, ::-1]) for r in range(len(plane))]
    assert all(r.is_valid for r in rings)
    for i in range(len(rings)):
        for j in range(i + 1, len(rings)):
            assert not rings[i].intersects(rings[j])


def _blob_mask(grid, seed):
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=grid.shape), (0.8, 2.0, 2.0))
    m = f > 0.05
    m[:, :3] = m[:, -3:] = False
    m[:, :, :3] = m[:, :, -3:] = False
    return m


@pytest.mark.parametrize("seed", range(3))
def test_contours_from_mask_round_trip(seed):
    grid = Grid((8, 36, 40), origin_mm=(-20.1, -17.3, -12.0), spacing_mm=(3.0, 0.98, 0.98))
    m = _blob_mask(grid, seed)
    cs = contours_from_mask(m, grid)
    rec = np.zeros(grid.shape, bool)
    yy, xx = np.meshgrid(np.arange(grid.shape[1]), np.arange(grid.shape[2]), indexing="ij")
    centres = grid.index_to_world(np.stack([np.zeros_like(yy), yy, xx], -1))
    for k in range(grid.shape[0]):
        rings = [c.points_mm[:, :2] for c in cs if c.slice_index == k]
        if rings:
            rec[k] = _even_odd_inside(rings, centres[..., 0], centres[..., 1])
        z = grid.origin_mm[2] + grid.slice_positions_mm[k]
        for c in cs:
            if c.slice_index == k:
                np.testing.assert_allclose(c.points_mm[:, 2], z)
    np.testing.assert_array_equal(rec, m)
    np.testing.assert_array_equal(rasterize(sdf_from_mask(m, grid)), m)
    # voxel-edge surface: the volume is the voxel count (corners cut at 0.5 mm)
    assert volume_cc(sdf_from_mask(m, grid)) == pytest.approx(
        m.sum() * np.prod(grid.spacing_mm) / 1000, rel=0.02)


def test_rasterize_sphere_is_voxel_centre_test():
    grid = Grid((30, 50, 50), origin_mm=(-24.3, -24.1, -43.0), spacing_mm=(3.0, 0.98, 0.98))
    c = np.array([0.37, -0.52, 1.1])
    got = rasterize(sdf_from_sphere(grid, c, 9.0))
    zz, yy, xx = np.meshgrid(*[grid.voxel_centers_mm(a) for a in range(3)], indexing="ij")
    d = np.linalg.norm(np.stack([xx, yy, zz], -1) + grid.origin_mm - c, axis=-1)
    clear = np.abs(d - 9.0) > 0.02  # ignore centres within 0.02 mm of the surface
    np.testing.assert_array_equal(got[clear], (d <= 9.0)[clear])


@pytest.mark.parametrize("radius_mm", [3.0, 5.0, 10.0, 20.0])
def test_volume_of_spheres(radius_mm):
    grid = Grid((40, 90, 90), origin_mm=(-44.0, -44.0, -60.0), spacing_mm=(3.0, 0.98, 0.98))
    v = volume_cc(sdf_from_sphere(grid, (0.3, 0.2, 0.1), radius_mm))
    exact = 4 / 3 * np.pi * radius_mm**3 / 1000
    assert v == pytest.approx(exact, rel=0.005)  # measured < 0.15 %


def test_contours_on_irregular_slices_and_min_points():
    offsets = np.cumsum([0.0] + [2.0, 3.5, 1.0, 2.5] * 6)
    grid = Grid((offsets.size, 40, 40), origin_mm=(-19.6, -19.6, -30.0),
                spacing_mm=(2.0, 0.98, 0.98), slice_offsets_mm=offsets)
    c = np.array([0.21, -0.33, -0.4])
    cs = contours_from_sdf(sdf_from_sphere(grid, c, 8.0))
    for ct in cs:
        z = grid.origin_mm[2] + offsets[ct.slice_index]
        np.testing.assert_allclose(ct.points_mm[:, 2], z)
        assert ct.n_points >= 4
        dz = z - c[2]
        r = np.sqrt(Polygon(ct.points_mm[:, :2]).area / np.pi)
        assert np.hypot(r, dz) == pytest.approx(8.0, abs=0.1)
    expected = {k for k, o in enumerate(offsets) if abs(grid.origin_mm[2] + o - c[2]) < 8.0}
    assert {ct.slice_index for ct in cs} == expected


@pytest.mark.parametrize("spacing", [(1.5, 0.98, 0.98), (2.5, 1.1, 0.9), (2.0, 0.7, 1.3)])
def test_volume_of_voxel_masks_is_voxel_count(spacing):
    # the surface of a voxel mask is the union of its voxel boxes: its volume is the
    # voxel count times the voxel volume (reference), on anisotropic lattices too
    grid = Grid((16, 60, 60), origin_mm=(-20.0, -30.0, -30.0), spacing_mm=spacing)
    box = np.zeros(grid.shape, bool)
    box[5:9, 10:27, 12:40] = True
    hollow = box.copy()
    hollow[6:8, 15:20, 20:30] = False
    yy, xx = np.mgrid[: grid.shape[1], : grid.shape[2]]
    disk = np.zeros(grid.shape, bool)
    disk[3:12] = (yy - 30) ** 2 + (xx - 30) ** 2 < 150
    for mask in (box, hollow, disk):
        exact = mask.sum() * np.prod(spacing) / 1000
        assert volume_cc(sdf_from_mask(mask, grid)) == pytest.approx(exact, rel=0.002)
