"""Options shared by ``rtplan lesions`` and ``rtplan structures --pet``.

SUV overrides, the PET -> CT registration (DICOM Spatial Registration or a 4 x 4
matrix) and exclusion ROIs (``--exclude``) rasterised onto the PET grid.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from rtplan.cli.options import parse_source, positive_float_arg
from rtplan.errors import InputError, from_validation_error
from rtplan.lesions import MaskSource, RTStructSource

if TYPE_CHECKING:
    from rtplan.imaging.ct import CTSeries
    from rtplan.imaging.pet import PETVolume
    from rtplan.imaging.registration import RigidTransform, SpatialRegistration
    from rtplan.structures.transfer import ExclusionMask

SUV_OVERRIDES = ("weight_kg", "injected_dose_mbq", "injection_time")

MATRIX_HELP = (
    "4 x 4 rigid matrix mapping PET (moving) coordinates to planning-CT (fixed) "
    "coordinates, p_ct = M @ [p_pet, 1] (LPS mm): JSON {\"matrix\": [[...], ...], "
    "\"from_frame\": \"PET\", \"to_frame\": \"CT\"} or 16 numbers row by row"
)
REGISTRATION_HELP = (
    "DICOM Spatial Registration object (REG) relating the PET's and the CT's frames of "
    "reference (rigid only; read per PS3.3 C.20.2)"
)
EXCLUDE_HELP = (
    "region no PET delineation may include or cross (e.g. bladder): RTSTRUCT:ROI (in the "
    "PET frame, or a registered frame) or a NIfTI mask[.nii.gz[:label]] on the PET grid "
    "(rtplan structures: or on the CT grid)"
)


def add_suv_overrides(p: argparse.ArgumentParser) -> None:
    """Add ``--weight-kg``, ``--injected-dose-mbq``, ``--injection-time``."""
    g = p.add_argument_group("SUV overrides (replace or supply header values)")
    g.add_argument("--weight-kg", type=positive_float_arg, metavar="KG", help="patient weight (kg)")
    g.add_argument("--injected-dose-mbq", type=positive_float_arg, metavar="MBQ",
                   help="injected activity (MBq) at injection time")
    g.add_argument("--injection-time", metavar="TIME",
                   help="injection time: 'HH:MM[:SS]' or ISO date-time '2025-01-01T10:00'")


def suv_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The SUV override values given on the command line (``load_pet`` keywords)."""
    return {k: getattr(args, k) for k in SUV_OVERRIDES if getattr(args, k, None) is not None}


def add_registration(p: argparse.ArgumentParser, purpose: str) -> None:
    """Add the mutually exclusive ``--registration`` / ``--pet-to-ct-matrix``."""
    g = p.add_argument_group(f"PET -> CT registration ({purpose})")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--registration", metavar="REG.dcm", help=REGISTRATION_HELP)
    x.add_argument("--pet-to-ct-matrix", metavar="FILE", help=MATRIX_HELP)


def add_exclude(p: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--exclude SOURCE``."""
    p.add_argument("--exclude", action="append", default=[], metavar="SOURCE",
                   help=EXCLUDE_HELP + " (repeatable)")


def exclude_sources(texts: Sequence[str]) -> list[RTStructSource | MaskSource]:
    """Parse ``--exclude`` values into rtstruct / mask sources."""
    adapter: TypeAdapter[RTStructSource | MaskSource] = TypeAdapter(RTStructSource | MaskSource)
    out = []
    for text in texts:
        try:
            out.append(adapter.validate_python(parse_source(text, option="--exclude")))
        except ValidationError as exc:
            raise from_validation_error(exc, f"--exclude {text!r}") from None
    return out


def load_registration(
    args: argparse.Namespace,
) -> tuple[SpatialRegistration | None, RigidTransform | None]:
    """``(SpatialRegistration | None, RigidTransform | None)`` from the options."""
    from rtplan.imaging.registration import load_matrix, load_spatial_registration

    reg = getattr(args, "registration", None)
    mat = getattr(args, "pet_to_ct_matrix", None)
    if reg and mat:  # argparse refuses this already
        raise InputError("give either --registration or --pet-to-ct-matrix, not both")
    return (load_spatial_registration(reg) if reg else None,
            load_matrix(mat) if mat else None)


def build_exclusion(
    texts: Sequence[str],
    pet: PETVolume,
    *,
    registration: SpatialRegistration | None = None,
    transform: RigidTransform | None = None,
    ct: CTSeries | None = None,
) -> ExclusionMask | None:
    """The :class:`~rtplan.structures.transfer.ExclusionMask` on the PET grid, or None."""
    if not texts:
        return None
    from rtplan.structures.transfer import exclusion_mask, into_frame

    to_pet = into_frame(pet.frame_of_reference_uid, registration=registration,
                        transform=transform)
    return exclusion_mask(exclude_sources(texts), pet.grid,
                          pet_frame_uid=pet.frame_of_reference_uid, to_pet=to_pet, ct=ct)
