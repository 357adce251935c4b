"""The automatic body outline on a real CT: ``shared/data/ct-head-neck`` (90 x 511 x 511,
1 x 1 x 3 mm), a head-neck patient in a thermoplastic mask, neck and shoulders on
head-rest blocks standing on a couch top (rows ~330-374; on slices 5-28 and 75-89 the
blocks and couch are above the threshold).

Reference (independent of rtplan, plain scipy): on every slice, threshold at -350 HU,
take the in-plane connected part containing the hand-picked point row 250, column 245
(inside the neck or head on all 90 slices), fill its holes. It gives 6879.0 cc. It was
checked by eye on slices 3, 4, 30, 60, 64, 76, 84, 88 (matplotlib renders, contours
over the CT): it follows the skin, never reaches the couch top (its lowest row per
slice is the patient's: <= 358 from slice 3 on, while the couch top starts at row
359-360) nor a head-rest block, except on slice 4 where a shoulder lies on a block (a
few cc, included by both). It also includes what the thermoplastic mask closes off on
the face where the mask touches the skin (slice 64: the nasal cavity, 2849 voxels),
which a body outline rightly leaves open: so the External is expected slightly below
it (measured 6840.0 cc, -0.57 %); the issue asks for 2 %.
"""

import numpy as np
import pytest
from scipy import ndimage

from conftest import shared_path
from rtplan.errors import InputError
from rtplan.imaging.ct import load_ct_series
from rtplan.structures import sdf_from_sphere
from rtplan.structures.body import body_mask, fraction_inside
from rtplan.structures.outline import mask_volume_cc, outline_contours
from rtplan.structures.rtstruct import rasterize_polygons
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets

REFERENCE_CC = 6879.0  # hand-checked, see the module docstring
SEED = (250, 245)  # row, column inside the patient on every slice


@pytest.fixture(scope="module")
def hn():
    ct = load_ct_series(shared_path("data", "ct-head-neck"))
    return ct, body_mask(ct.volume_hu, ct.grid)


@pytest.fixture(scope="module")
def reference(hn):
    ct, _ = hn
    above = ct.volume_hu > -350.0
    ref = np.zeros(above.shape, bool)
    for k in range(above.shape[0]):
        lab, _ = ndimage.label(above[k])
        assert lab[SEED] > 0, f"the seed is outside the patient on slice {k}"
        ref[k] = ndimage.binary_fill_holes(lab == lab[SEED])
    return ref


def test_reference_is_the_hand_checked_one(hn, reference):
    ct, _ = hn
    vox_cc = np.prod(ct.grid.spacing_mm) / 1000.0
    assert reference.sum() * vox_cc == pytest.approx(REFERENCE_CC, abs=1.0)


def test_external_is_the_patient_within_2_percent(hn, reference):
    ct, body = hn
    vox_cc = np.prod(ct.grid.spacing_mm) / 1000.0
    volume = body.sum() * vox_cc
    assert volume == pytest.approx(REFERENCE_CC, rel=0.02)
    assert mask_volume_cc(body, ct.grid) == pytest.approx(volume, rel=1e-12)
    # one 3D part, and (almost) nothing outside the patient's reference: the couch parts
    # of the former outline were 706 cc (9.4 %); allow 0.1 % (7 cc) for skin voxels
    _, n = ndimage.label(body)
    assert n == 1
    assert (body & ~reference).sum() * vox_cc <= 0.001 * REFERENCE_CC


def test_couch_and_head_rests_are_absent(hn, reference):
    ct, body = hn
    couch = np.zeros(body.shape, bool)
    couch[3:, 359:, :] = True  # couch top (the patient ends at row <= 358 from slice 3)
    couch[9:29, 340:, :] = True  # head-rest blocks under the neck (patient <= 338)
    couch[80:, 340:, :] = True  # blocks under the occiput (patient <= 337)
    assert not (reference & couch).any()  # the region is not patient
    assert ct.volume_hu[couch].max() > 0.0  # and holds the couch (HU like tissue)
    assert not (body & couch).any()


def test_the_curved_couch_is_left_to_the_core_rule(hn):
    # this couch top is a curved shell (walls ~12 mm, width changing row by row), not a
    # flat slab: the flat-couch step finds no row, the outline is the same without it
    ct, body = hn
    assert np.array_equal(body_mask(ct.volume_hu, ct.grid, couch_min_width_mm=0.0), body)


def test_external_contours_give_the_mask_back(hn):
    ct, body = hn
    contours = outline_contours(body, ct.grid)
    assert {c.slice_index for c in contours} == set(range(body.shape[0]))
    back = rasterize_polygons([c.points_mm for c in contours], ct.grid)
    assert np.array_equal(back, body)


# A sphere GTV (diameter 8 mm) inside the head-rest block under the neck (slice 7,
# row 353, column 263), 15 mm of air between its surface and the skin.
BOARD_LESION = {"id": "L1", "site": "bone", "source": {
    "kind": "sphere", "center_mm": [264.0, -158.0, -246.0], "diameter_mm": 8.0}}


def test_lesion_in_the_head_rest_is_outside_the_external(hn, reference):
    ct, body = hn
    gtv = sdf_from_sphere(ct.grid, (264.0, -158.0, -246.0), 4.0)
    # it is in the block: every voxel centre inside the sphere is above -350 HU ...
    z, y, x = (ct.grid.origin_mm[::-1][a] + ct.grid.voxel_centers_mm(a) for a in range(3))
    inside = ((z[:, None, None] + 246.0) ** 2 + (y[None, :, None] + 158.0) ** 2
              + (x[None, None, :] - 264.0) ** 2) <= 16.0
    assert inside.sum() > 50 and (ct.volume_hu[inside] > -350.0).all()
    # ... and 15 mm (+- 1.5 mm) of air from the patient (reference) at its surface
    gap = ndimage.distance_transform_edt(~reference, sampling=ct.grid.spacing_mm)
    assert gap[inside].min() == pytest.approx(15.0, abs=1.5)
    assert not (body & inside).any()
    assert fraction_inside(gtv, body) == 0.0
    assert fraction_inside(inside, body) == 0.0
    spec = LesionsFile.model_validate({"lesions": [BOARD_LESION]})
    with pytest.raises(InputError, match="outside the body"):
        build_targets(spec, ct, body=body)
