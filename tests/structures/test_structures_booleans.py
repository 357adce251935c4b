"""Boolean operations against closed-form sphere volumes (lens of two spheres)."""

import numpy as np
import pytest
from shapely.geometry import Polygon

from rtplan.errors import GridMismatchError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.structures import (
    contours_from_sdf,
    difference,
    intersection,
    sdf_from_sphere,
    union,
    volume_cc,
)


def _grid(slice_mm=3.0):
    return Grid((int(80 / slice_mm), 80, 80), origin_mm=(-39.1, -38.9, -40.0),
                spacing_mm=(slice_mm, 0.98, 0.98))


def _ball_mm3(r):
    return 4.0 / 3.0 * np.pi * r**3


def _lens_mm3(r1, r2, d):
    """Volume of the intersection of two balls (radii r1, r2, centres d apart)."""
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        return _ball_mm3(min(r1, r2))
    return (np.pi * (r1 + r2 - d) ** 2
            * (d**2 + 2 * d * r2 - 3 * r2**2 + 2 * d * r1 + 6 * r1 * r2 - 3 * r1**2)
            / (12 * d))


@pytest.mark.parametrize("slice_mm", [1.5, 3.0])
@pytest.mark.parametrize(("r1", "r2", "d"), [(8.0, 8.0, 6.0), (10.0, 6.0, 9.0),
                                             (12.0, 5.0, 14.0), (7.0, 9.0, 3.0)])
def test_boolean_volumes_match_lens_formula(slice_mm, r1, r2, d):
    grid = _grid(slice_mm)
    c1 = np.array([0.31, -0.27, 0.45])
    u = np.array([0.6, 0.0, 0.8])
    a = sdf_from_sphere(grid, c1, r1)
    b = sdf_from_sphere(grid, c1 + d * u, r2)
    lens = _lens_mm3(r1, r2, d)
    # closed form; rtol 1.5 %: the rim of the lens is a crease the volume
    # estimate smooths over a cell (measured <= 1 %)
    assert volume_cc(intersection(a, b)) * 1000 == pytest.approx(lens, rel=0.015, abs=2.0)
    assert volume_cc(union(a, b)) * 1000 == pytest.approx(
        _ball_mm3(r1) + _ball_mm3(r2) - lens, rel=0.005)
    assert volume_cc(difference(a, b)) * 1000 == pytest.approx(
        _ball_mm3(r1) - lens, rel=0.01, abs=2.0)  # abs: thin crescents (65 mm^3)


def test_difference_with_gap_is_difference_with_expanded_sphere():
    grid = _grid()
    c = np.array([0.2, 0.1, -0.3])
    eni = sdf_from_sphere(grid, c, 15.0)
    boost = sdf_from_sphere(grid, c + np.array([6.0, 0, 0]), 5.0)
    elective = difference(eni, boost, gap_mm=2.0)
    expect = _ball_mm3(15.0) - _lens_mm3(15.0, 7.0, 6.0)
    assert volume_cc(elective) * 1000 == pytest.approx(expect, rel=0.005)
    # the gap: a point 1 mm outside the boost sphere is not in the elective volume
    assert elective.value_at(c + np.array([12.0, 0, 0])) > 0
    assert elective.value_at(c + np.array([14.5, 0, 0])) < 0


def test_hollow_shell_gives_hole_contours():
    grid = _grid()
    c = np.array([0.2, 0.1, 0.0])
    shell = difference(sdf_from_sphere(grid, c, 12.0), sdf_from_sphere(grid, c, 6.0))
    cs = contours_from_sdf(shell)
    by_slice = {}
    for ct in cs:
        by_slice.setdefault(ct.slice_index, []).append(ct)
    z0 = grid.origin_mm[2]
    n_holes = 0
    for k, group in by_slice.items():
        dz = z0 + grid.slice_positions_mm[k] - c[2]
        outer = [g for g in group if not g.is_hole]
        holes = [g for g in group if g.is_hole]
        assert len(outer) == 1
        poly = Polygon(outer[0].points_mm[:, :2], [h.points_mm[:, :2] for h in holes])
        assert poly.is_valid
        r_in2 = max(6.0**2 - dz**2, 0.0)
        if r_in2 > 1.0:
            assert len(holes) == 1
            n_holes += 1
        expect = np.pi * (12.0**2 - dz**2 - r_in2)
        assert poly.area == pytest.approx(expect, rel=0.02)
    assert n_holes >= 3


def test_union_of_distant_lesions_stays_cropped():
    grid = Grid((100, 256, 256), origin_mm=(-125, -125, -150), spacing_mm=(3, 0.98, 0.98))
    a = sdf_from_sphere(grid, (-80, -60, -100), 5.0)
    b = sdf_from_sphere(grid, (90, 70, 120), 7.0)
    u = union(a, b)
    assert len(u.patches) == 2
    assert u.n_cells == a.n_cells + b.n_cells
    assert volume_cc(u) * 1000 == pytest.approx(_ball_mm3(5.0) + _ball_mm3(7.0), rel=0.005)
    assert intersection(a, b).is_empty


def test_boolean_errors():
    a = sdf_from_sphere(_grid(), (0, 0, 0), 5.0)
    other = sdf_from_sphere(_grid(1.5), (0, 0, 0), 5.0)
    with pytest.raises(GridMismatchError, match="shape"):
        union(a, other)
    with pytest.raises(InvalidParameterError, match="gap_mm"):
        difference(a, a, gap_mm=-1.0)
    assert difference(a, a).is_empty
