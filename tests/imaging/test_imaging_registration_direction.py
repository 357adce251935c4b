"""One place decides which way a registration points (``transform_between``); the PET ->
CT transform of the targets and the CT -> PET transform of the exclusion regions are
each other's inverse whatever way the user stated the matrix.

Reference: a pure translation, whose direction is read off by applying it to a point.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtplan.errors import GeometryError
from rtplan.imaging.registration import RigidTransform, SpatialRegistration, transform_between
from rtplan.structures.transfer import into_frame

PET, CT = "1.2.826.0.1.1", "1.2.826.0.1.2"


def shift(z_mm: float) -> np.ndarray:
    m = np.eye(4)
    m[2, 3] = z_mm
    return m


@pytest.mark.parametrize("stated", [
    RigidTransform(shift(5.0), "PET", "CT"),        # matrix file: PET -> CT by label
    RigidTransform(shift(-5.0), "CT", "PET"),       # the same, stated CT -> PET: inverted
    RigidTransform(shift(5.0), PET, CT),             # by UID
    RigidTransform(shift(5.0)),                      # no frames: taken as stated (PET -> CT)
    shift(5.0),                                      # a bare 4 x 4 too
])
def test_pet_to_ct_and_ct_to_pet_agree(stated):
    pet_to_ct = transform_between(PET, CT, transform=stated, moving_label="PET",
                                  fixed_label="CT")
    assert pet_to_ct.apply([0, 0, 0]).tolist() == [0.0, 0.0, 5.0]  # PET z 0 -> CT z 5 mm
    assert (pet_to_ct.moving_frame_uid, pet_to_ct.fixed_frame_uid) == (PET, CT)
    to_pet = into_frame(PET, transform=stated)(CT)  # CT ROIs onto the PET
    assert to_pet.apply([0, 0, 5]).tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(to_pet.matrix @ pet_to_ct.matrix, np.eye(4), atol=1e-12)


def test_a_registration_object_and_refusals():
    # SRO whose registered RCS is the CT's frame: the PET item maps PET -> CT (+5 mm z)
    sro = SpatialRegistration(CT, {PET: shift(5.0), CT: np.eye(4)},
                              {PET: ("RIGID",), CT: ("RIGID",)}, path="REG.dcm")
    assert transform_between(PET, CT, registration=sro).apply([0, 0, 0])[2] == 5.0
    assert into_frame(PET, registration=sro)(CT).apply([0, 0, 5])[2] == 0.0
    with pytest.raises(GeometryError, match=r"pass registration= .* or transform="):
        transform_between(PET, CT)
    with pytest.raises(GeometryError, match=r"maps frame 1\.9\.9"):
        transform_between(PET, CT, transform=RigidTransform(shift(5.0), "1.9.9", "1.9.8"))
