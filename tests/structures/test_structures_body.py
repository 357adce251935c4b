"""The automatic body outline: several body parts per slice, the couch left out, and
targets that the body crop would remove.

References are analytic: the patient is a pelvis (elliptic cylinder, z >= 0) on two
separated legs (elliptic cylinders, z < 0) on a couch slab 10 mm thick, 8 mm below; the
External volume is the sum over slices of the ellipse areas (pi a b) times the slice
spacing; a bone lesion in each femur is a sphere (4/3 pi r^3).
"""

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from rtplan.cli.main import main
from rtplan.errors import InputError
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures.body import body_mask
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets

SPACING = (5.0, 1.5, 1.5)
SHAPE = (24, 110, 136)
PELVIS = (0.0, 0.0, 90.0, 60.0)  # centre x, y, semi-axes x, y (mm)
LEGS = [(-45.0, 0.0, 40.0, 45.0), (46.0, 0.0, 41.0, 46.0)]  # patient right (-x), left
COUCH_Y = (68.0, 78.0)  # the body ends at y = 60 mm (pelvis), 46 mm (legs)


def _grid():
    return Grid(SHAPE, origin_mm=(-101.25, -81.75, -57.5), spacing_mm=SPACING)


def _volume(grid, pelvis=True):
    z, y, x = (grid.origin_mm[::-1][a] + grid.voxel_centers_mm(a) for a in range(3))
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")

    def ellipse(cx, cy, a, b):
        return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0

    body = np.zeros(grid.shape, bool)
    if pelvis:
        body |= ellipse(*PELVIS) & (zz >= 0)
    for leg in LEGS:
        body |= ellipse(*leg) & (zz < 0 if pelvis else True)
    vol = np.where(body, 20.0, -1000.0)
    couch = (yy >= COUCH_Y[0]) & (yy <= COUCH_Y[1])
    vol[couch] = 250.0
    return vol, zz[:, 0, 0]


def _analytic_external_cc(z, pelvis=True):
    area_legs = sum(math.pi * a * b for _, _, a, b in LEGS)
    area_pelvis = math.pi * PELVIS[2] * PELVIS[3]
    per_slice = [area_pelvis if (pelvis and zk >= 0) else area_legs for zk in z]
    return sum(per_slice) * SPACING[0] / 1000.0


@pytest.fixture(scope="module")
def legs_ct(tmp_path_factory):
    grid = _grid()
    vol, z = _volume(grid)
    folder = tmp_path_factory.mktemp("legs") / "ct"
    return write_ct_series(folder, vol, grid), z


def _femur_lesions(extra=()):
    lesions = [{"id": f"L{i}", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [cx + 0.3, 0.2, -32.6], "diameter_mm": 12.0}}
        for i, (cx, *_rest) in enumerate(LEGS, start=1)]
    return {"lesions": lesions + list(extra),
            "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}}


def test_both_legs_are_in_the_body_and_their_lesions_kept(legs_ct):
    ct, z = legs_ct
    ts = build_targets(LesionsFile.model_validate(_femur_lesions()), ct, body="auto")
    assert ts.warnings == []
    sphere = 4 / 3 * math.pi * 6.0**3 / 1000
    for name in ("GTV1_Bone", "GTV2_Bone"):
        assert ts.by_name(name).volume_cc() == pytest.approx(sphere, rel=0.01)
    for name, r in (("PTV1_Bone", 11.0), ("PTV2_Bone", 11.0)):
        assert ts.by_name(name).volume_cc() == pytest.approx(4 / 3 * math.pi * r**3 / 1000,
                                                             rel=0.01)
    # External: pelvis above z = 0, both legs below, the couch left out (pixelised
    # ellipses: 0.5 %)
    ext = ts.by_name("External").volume_cc()
    assert ext == pytest.approx(_analytic_external_cc(z), rel=0.005)
    y = ct.grid.origin_mm[1] + ct.grid.voxel_centers_mm(1)
    assert not ts.body[:, (y >= COUCH_Y[0]) & (y <= COUCH_Y[1]), :].any()


def test_legs_never_joined_in_the_field_of_view_are_both_kept(tmp_path):
    grid = _grid()
    vol, z = _volume(grid, pelvis=False)
    mask = body_mask(vol, grid)
    volume_cc = mask.sum() * np.prod(SPACING) / 1000.0
    assert volume_cc == pytest.approx(_analytic_external_cc(z, pelvis=False), rel=0.005)


def test_body_keeps_a_large_thin_couch_out_and_fills_holes():
    grid = _grid()
    vol, _ = _volume(grid)
    vol[:, 50:60, 60:70] = -1000.0  # gas inside the pelvis (rows 50-59: y -7..6 mm)
    mask = body_mask(vol, grid)
    assert mask[-1, 50:60, 60:70].all()  # filled
    # a second thin object beside the patient (a board 10 mm thick): not body
    vol[:, 5:12, :] = 100.0
    assert not body_mask(vol, grid)[:, 5:12, :].any()


def test_target_removed_by_the_body_crop_is_an_error(legs_ct, tmp_path, capsys):
    ct, _ = legs_ct
    # between the legs, below the pelvis: air
    gap = {"id": "L9", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [0.4, 0.2, -40.1], "diameter_mm": 4.0}}
    spec = LesionsFile.model_validate(_femur_lesions([gap]))
    with pytest.raises(InputError, match=r"lesion L9's GTV3_Bone lies entirely outside the body"):
        build_targets(spec, ct, body="auto")
    assert build_targets(spec, ct, body="none").by_name("GTV3_Bone").volume_cc() > 0
    lesions = tmp_path / "lesions.json"
    lesions.write_text(json.dumps(_femur_lesions([gap])))
    folder = tmp_path / "ct"
    write_ct_series(folder, ct.volume_hu, ct.grid)
    code = main(["structures", "--ct", str(folder), "--lesions", str(lesions),
                 "-o", str(tmp_path / "RS.dcm"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "L9" in err and "--body none" in err
    assert not (tmp_path / "RS.dcm").exists()


def test_target_partly_outside_the_body_is_a_warning(legs_ct):
    ct, _ = legs_ct
    # a sphere r = 8 mm centred 4 mm inside the pelvis's posterior edge (y = 60 mm at x = 0):
    # the cap beyond the skin is cut; a warning says how much
    edge = {"id": "L3", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [0.2, 56.0, 30.4], "diameter_mm": 16.0}}
    spec = LesionsFile.model_validate({"lesions": [edge],
                                       "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}})
    ts = build_targets(spec, ct, body="auto")
    assert any(w.startswith("lesion L3's GTV1_Bone:") and "outside the body" in w
               for w in ts.warnings)


# ---------------------------------------------------------------- thick/thin contacts
def test_a_block_touching_the_patient_on_one_slice_is_left_out_elsewhere():
    # a head-rest block 24 mm tall stands on the couch under the pelvis with 6 mm of air
    # between them, except on one slice where it touches the skin: only that slice's
    # contact stays (it is one section with the patient there), never the block itself
    grid = _grid()
    vol, z = _volume(grid)
    y = grid.origin_mm[1] + grid.voxel_centers_mm(1)
    x = grid.origin_mm[2] + grid.voxel_centers_mm(2)
    block = ((y >= 66.0) & (y < 90.0))[:, None] & (np.abs(x) <= 30.0)[None, :]
    vol[:, block] = 60.0
    touch = 20  # z = 42.5 mm: pelvis; fill the air between skin and block
    vol[touch, ((y > 55.0) & (y < 66.0))[:, None] & (np.abs(x) <= 20.0)[None, :]] = 60.0
    mask = body_mask(vol, grid)
    others = [k for k in range(grid.shape[0]) if k != touch]
    assert not mask[np.ix_(others, (y >= 63.0), np.ones(x.size, bool))].any()
    volume_cc = mask.sum() * np.prod(SPACING) / 1000.0
    # the pelvis slices and the legs, plus at most the contact slice's block
    extra_cc = block.sum() * 2.25 * 5 / 1000 + 11 * 40 * 1.5 * 5 / 1000
    assert _analytic_external_cc(z) <= volume_cc * 1.005
    assert volume_cc <= _analytic_external_cc(z) * 1.005 + extra_cc


def test_small_separate_thick_part_is_not_body():
    # a solid block 40 x 40 mm (thick: it has a core) under the legs, separate in 3D:
    # 6 % of the patient, not a body part; a leg-sized part would be
    grid = _grid()
    vol, z = _volume(grid)
    vol[:, 100:, 40:67] = 60.0  # rows 100-109 (y 68-82 mm), 40 mm wide, below the couch
    mask = body_mask(vol, grid)
    assert not mask[:, 100:, :].any()
    assert mask.sum() * np.prod(SPACING) / 1000.0 == pytest.approx(
        _analytic_external_cc(z), rel=0.005)


# ------------------------------------------------------------ outline contours, volume
def _ring_polygons(contours, grid):
    """Per slice: shapely even-odd combination (XOR) of the rings, in (column, row) mm.
    Each ring must be simple; outer rings run counter-clockwise in that frame, holes
    clockwise."""
    from shapely.geometry import Polygon

    out = {}
    for c in contours:
        local = (c.points_mm - grid.origin_mm) @ grid.direction.T
        poly = Polygon(local[:, [2, 1]])
        assert poly.is_valid  # a simple ring (corner-touching pixels: see outline.py)
        assert poly.exterior.is_ccw == (not c.is_hole)
        prev = out.get(c.slice_index)
        out[c.slice_index] = poly if prev is None else prev.symmetric_difference(poly)
    return out


def _voxel_squares(mask2d, grid):
    from shapely.geometry import box
    from shapely.ops import unary_union

    sy, sx = grid.spacing_mm[1], grid.spacing_mm[2]
    return unary_union([box((j - 0.5) * sx, (i - 0.5) * sy, (j + 0.5) * sx, (i + 0.5) * sy)
                        for i, j in zip(*np.nonzero(mask2d), strict=True)])


@pytest.mark.parametrize("seed", range(6))
def test_outline_contours_are_the_union_of_the_voxel_squares(seed):
    from rtplan.imaging.grid import AXIAL
    from rtplan.structures.outline import outline_contours
    from rtplan.structures.rtstruct import rasterize_polygons

    rng = np.random.default_rng(seed)
    # random blobs with holes, islands and corner-touching pixels; a rotated grid for
    # odd seeds (rows along +x, columns along -y)
    direction = AXIAL if seed % 2 == 0 else np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0.0]])
    grid = Grid((4, 17, 23), origin_mm=(-7.3, 12.1, 40.0), spacing_mm=(2.5, 0.7, 1.3),
                direction=direction)
    mask = rng.random(grid.shape) < (0.3 + 0.1 * seed)
    mask[1] = ndimage_smooth(rng.random(grid.shape[1:])) > 0.5
    mask[2] = False
    contours = outline_contours(mask, grid)
    assert {c.slice_index for c in contours} == {k for k in range(4) if mask[k].any()}
    pixel_mm2 = 0.7 * 1.3
    geoms = _ring_polygons(contours, grid)
    for k in range(4):
        if not mask[k].any():
            continue
        squares = _voxel_squares(mask[k], grid)
        assert geoms[k].area == pytest.approx(mask[k].sum() * pixel_mm2, rel=1e-12)
        assert geoms[k].symmetric_difference(squares).area == pytest.approx(0.0, abs=1e-9)
        # each contour lies on its slice's plane
    for c in contours:
        along = (c.points_mm - grid.origin_mm) @ grid.direction[0]
        assert np.allclose(along, c.slice_index * 2.5, atol=1e-9)
    back = rasterize_polygons([c.points_mm for c in contours], grid)
    assert np.array_equal(back, mask)


def ndimage_smooth(a):
    from scipy import ndimage

    return ndimage.uniform_filter(a, 3)


def test_outline_contours_round_trip_through_rtstruct(legs_ct, tmp_path):
    from rtplan.structures.contour import ROIContours
    from rtplan.structures.outline import mask_volume_cc, outline_contours
    from rtplan.structures.rtstruct import rtstruct_masks, write_rtstruct

    ct, z = legs_ct
    body = body_mask(ct.volume_hu, ct.grid)
    body[20, 40:50, 60:70] = False  # a hole (gas, in the pelvis) kept open: a hole ring
    contours = outline_contours(body, ct.grid)
    assert any(c.is_hole and c.slice_index == 20 for c in contours)
    roi = ROIContours("External", "EXTERNAL", (0, 255, 0), contours)
    path = write_rtstruct(tmp_path / "RS.dcm", ct, [roi])
    back = rtstruct_masks(path, ct)["External"]
    assert np.array_equal(back, body)
    # the volume of the voxel boxes: count x voxel volume; pixelised ellipses within
    # 0.5 % of the analytic body (100 voxels of hole removed)
    assert mask_volume_cc(body, ct.grid) == pytest.approx(
        body.sum() * np.prod(SPACING) / 1000.0, rel=1e-12)
    assert mask_volume_cc(body, ct.grid) == pytest.approx(
        _analytic_external_cc(z) - 100 * 11.25 / 1000, rel=0.005)


def test_mask_volume_on_irregular_slices():
    from rtplan.structures.outline import mask_volume_cc

    # slices at 0, 2, 5, 9 mm: thicknesses 2, 2.5, 3.5, 4 mm (half-way to neighbours,
    # the end spacing repeated); 10 pixels of 0.5 x 0.8 mm each
    grid = Grid((4, 5, 5), origin_mm=(0, 0, 0), spacing_mm=(3, 0.5, 0.8),
                slice_offsets_mm=[0.0, 2.0, 5.0, 9.0])
    m = np.zeros(grid.shape, bool)
    m[:, 1, :] = True
    m[:, 3, :] = True
    assert mask_volume_cc(m, grid) == pytest.approx(
        10 * 0.4 * (2 + 2.5 + 3.5 + 4) / 1000, rel=1e-12)
    m[1] = False
    assert mask_volume_cc(m, grid) == pytest.approx(10 * 0.4 * (2 + 3.5 + 4) / 1000, rel=1e-12)


# ------------------------------------------------------------------------------ arms
def _trunk_and_arms(joined_slices):
    """A trunk (ellipse 150 x 100 mm) with two arms (discs r = 40 mm, centres x = +-205
    mm: 15 mm of air from the trunk) on a couch slab; on ``joined_slices`` each arm is
    joined to the trunk by a bridge 40 mm thick (a shoulder)."""
    grid = Grid((12, 150, 260), origin_mm=(-149.0, -149.0, 0.0), spacing_mm=(5.0, 2.0, 2.0))
    y = grid.origin_mm[1] + grid.voxel_centers_mm(1)
    x = grid.origin_mm[2] + grid.voxel_centers_mm(2)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    trunk = (xx / 150.0) ** 2 + (yy / 100.0) ** 2 <= 1.0
    arms = ((np.abs(xx) - 205.0) ** 2 + yy**2) <= 40.0**2
    bridge = (np.abs(xx) <= 205.0) & (np.abs(yy) <= 20.0)
    vol = np.full(grid.shape, -1000.0)
    vol[:, trunk | arms] = 30.0
    for k in joined_slices:
        vol[k, bridge] = 30.0
    vol[:, (yy >= 110.0) & (yy <= 120.0)] = 250.0  # couch, 10 mm below the trunk
    return grid, vol, trunk, arms, bridge


def test_arms_joined_to_the_trunk_in_3d_are_kept_on_every_slice():
    grid, vol, trunk, arms, bridge = _trunk_and_arms(joined_slices=[10, 11])
    mask = body_mask(vol, grid)
    expected = np.broadcast_to(trunk | arms, grid.shape).copy()
    expected[10:] |= bridge
    # the opening rounds the bridge's corners (radius 3 mm): a few voxels per slice
    assert (mask != expected).sum() <= 0.002 * expected.sum()
    assert mask[:, :, :].sum(axis=(1, 2)).min() >= (trunk | arms).sum() - 10
    assert not mask[:, 130:, :].any()  # the couch rows


def test_arms_never_joined_in_the_field_of_view_are_left_out():
    # the documented limitation: an arm's core is ~7 % of the trunk's, < 25 %
    grid, vol, trunk, arms, _ = _trunk_and_arms(joined_slices=[])
    mask = body_mask(vol, grid)
    assert (vol[:, arms] > 0).all() and not mask[:, arms].any()
    assert np.array_equal(mask, np.broadcast_to(trunk, grid.shape))


def test_thin_sections_at_the_vertex_are_kept_a_block_beyond_it_is_not():
    # a head: ellipsoid with semi-axes 70 (x), 90 (y), 100 (z) mm, centre z = 0; slices
    # every 5 mm up to z = 99 mm, where its section (9.9 x 12.7 mm) has no core; behind
    # the head, a head-rest block 40 x 15 mm on the slices z >= 60 mm, >= 28 mm of air
    # from the head
    grid = Grid((30, 120, 120), origin_mm=(-119.0, -119.0, -46.0), spacing_mm=(5.0, 2.0, 2.0))
    z, y, x = (grid.origin_mm[::-1][a] + grid.voxel_centers_mm(a) for a in range(3))
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    head = (xx / 70.0) ** 2 + (yy / 90.0) ** 2 + (zz / 100.0) ** 2 <= 1.0
    vol = np.where(head, 30.0, -1000.0)
    block = (zz >= 60.0) & (np.abs(xx) <= 20.0) & (yy >= 100.0) & (yy <= 115.0)
    vol[block] = 60.0
    mask = body_mask(vol, grid)
    assert not (mask & block).any()
    # every section is kept, but for the single-pixel steps at the tips of the
    # pixelised ellipses that the opening (radius 3 mm) shaves off
    assert not (mask & ~head).any()
    for k in range(grid.shape[0]):
        assert (head[k] & ~mask[k]).sum() <= max(8, 0.01 * head[k].sum()), k
    assert z[-1] == pytest.approx(99.0) and mask[-1].sum() > 50
    # without the rule for the ends, that last section would be lost
    assert not body_mask(vol, grid, end_overlap=2.0)[-1].any()


# --- the independent review's couch setups: a flat couch top 500 mm wide (the whole
# field of view), 2 mm pixels, 3 mm slices; patient shapes known by construction ---

def _review_grid(ns, nr, nc=250):
    grid = Grid((ns, nr, nc), origin_mm=(0.0, 0.0, 0.0), spacing_mm=(3.0, 2.0, 2.0))
    yy, xx = np.mgrid[:nr, :nc] * 2.0  # row/column centres, mm
    return grid, yy, xx


def _check_outline(mask, patient, couch, contact_rows=()):
    """Every couch voxel out; every patient voxel one pixel inside its outline in (the
    opening, radius 3 mm, shaves single-pixel steps of the pixelised ellipses off); no
    voxel outside the patient, but for the stated contact rows."""
    inner = ndimage.binary_erosion(patient, structure=np.ones((1, 3, 3), bool))
    outside = mask & ~patient
    outside[:, list(contact_rows), :] = False
    assert not (mask & couch).any(), int((mask & couch).sum())
    assert not (inner & ~mask).any(), int((inner & ~mask).sum())
    assert not outside.any(), int(outside.sum())


@pytest.mark.parametrize("couch_hu", [-250.0, 250.0])
def test_review_a_pelvis_with_a_flattened_back_on_a_couch_top(couch_hu):
    # ellipse 340 x 220 mm, back flattened at y = 280 mm, directly on a 15 mm couch top
    # (y 282-294 mm); before: 1500 of the 1750 couch voxels per slice kept
    grid, yy, xx = _review_grid(20, 200)
    pelvis = (((xx - 250.0) / 170.0) ** 2 + ((yy - 180.0) / 110.0) ** 2 <= 1.0) & (yy <= 280.0)
    couch = (yy > 280.0) & (yy <= 295.0)
    vol = np.full(grid.shape, -1000.0)
    vol[:, pelvis] = 20.0
    vol[:, couch] = couch_hu
    mask = body_mask(vol, grid)
    shape = grid.shape
    _check_outline(mask, np.broadcast_to(pelvis, shape), np.broadcast_to(couch, shape))
    # the old rules alone (couch step off) keep the couch
    assert body_mask(vol, grid, couch_min_width_mm=0.0)[:, couch].sum() > 1000 * shape[0]


@pytest.mark.parametrize("thick_mm", [15, 22, 26, 30])
def test_review_b_pelvis_sagging_onto_a_thick_couch_on_four_slices(thick_mm):
    # ellipse 340 x 180 mm (bottom y = 190 mm), couch from y = 200 mm, 10 mm of air
    # between; on slices 12-15 the buttocks fill the gap (|x - 250| < 60 mm, y 186-198)
    grid, yy, xx = _review_grid(30, 160)
    pelvis = ((xx - 250.0) / 170.0) ** 2 + ((yy - 100.0) / 90.0) ** 2 <= 1.0
    couch = (yy >= 200.0) & (yy < 200.0 + thick_mm)
    sag = (yy >= 186.0) & (yy < 200.0) & (np.abs(xx - 250.0) < 60.0)
    patient = np.broadcast_to(pelvis, grid.shape).copy()
    patient[12:16] |= sag
    vol = np.where(patient, 20.0, -1000.0)
    vol[:, couch] = -250.0
    mask = body_mask(vol, grid)
    _check_outline(mask, patient, np.broadcast_to(couch, grid.shape))
    assert mask[12:16][:, sag].all()  # the sagging part is body


@pytest.mark.parametrize("thick_mm", [15, 25, 30, 40])
def test_review_c_legs_only_above_a_thick_couch(thick_mm):
    # two legs (discs of radius 60 mm, never joined), couch 10 mm below them; before, a
    # couch >= 25 mm had a core above 25 % of one leg's and was kept whole
    grid, yy, xx = _review_grid(20, 160)
    legs = np.zeros(yy.shape, bool)
    for cx in (170.0, 330.0):
        legs |= (xx - cx) ** 2 + (yy - 150.0) ** 2 <= 60.0**2
    couch = (yy >= 220.0) & (yy < 220.0 + thick_mm)
    vol = np.where(legs, 20.0, -1000.0)[None].repeat(20, axis=0)
    vol[:, couch] = -250.0
    mask = body_mask(vol, grid)
    _check_outline(mask, np.broadcast_to(legs, grid.shape), np.broadcast_to(couch, grid.shape))


@pytest.mark.parametrize("width_mm", [404.0, 410.0, 440.0, 500.0])
@pytest.mark.parametrize("semi_ap_mm", [40.0, 60.0, 110.0])
def test_a_wide_patient_constant_along_z_is_not_taken_for_a_couch(width_mm, semi_ap_mm):
    # rows near an ellipse's equator are wide, single runs, the same on every slice:
    # like a couch top, but their width changes gradually (no edge 6 mm away)
    grid, yy, xx = _review_grid(10, 160, 260)
    patient = ((xx - 260.0) / (width_mm / 2)) ** 2 + ((yy - 150.0) / semi_ap_mm) ** 2 <= 1.0
    vol = np.where(patient, 20.0, -1000.0)[None].repeat(10, axis=0)
    mask = body_mask(vol, grid)
    _check_outline(mask, np.broadcast_to(patient, grid.shape), np.zeros(grid.shape, bool))
