"""AAPM TG-263 target names, ROI types and display colours.

TG-263 target names are ``<type><classifier><number>[_<structure>][_<dose in cGy>]``:
the type (``GTV``, ``CTV``, ``PTV``); a lower-case classifier, which TG-263 defines as
``p`` (primary), ``n`` (nodal), ``sb`` (surgical bed), ``par`` (parenchyma), ``v``
(venous thrombus) or ``vas`` (vascular), or none; the lesion's number among the lesions
of that classifier (always written, from 1, in the order of the lesions file, also for a
single lesion: ``GTVn1``); an optional structure indicator after an underscore (a TG-263
structure name, e.g. ``_Bone``); and an optional dose suffix in cGy for dose levels
(``PTV_6120``, no number). Names have at most 16 characters and no spaces.

Lesion sites map to: pelvic and distant nodes ``n`` (``GTVn1``), the prostate bed ``sb``
(``GTVsb1``), bone metastases no classifier with the ``Bone`` indicator (``GTV1_Bone``)
and visceral metastases no classifier (``GTV2``; the organ is not known here). TG-263 has
no metastasis classifier: rtplan wrote ``GTVm1`` before, which TG-263 checkers reject.

References
----------
Mayo CS, Moran JM, Bosch W, et al. American Association of Physicists in Medicine Task
Group 263: Standardizing nomenclatures in radiation oncology. Int J Radiat Oncol Biol
Phys 2018;100:1057-1066.
"""

from __future__ import annotations

import re
from enum import StrEnum

from rtplan.errors import InvalidParameterError
from rtplan.lesions import LesionSite

__all__ = [
    "MAX_NAME_LENGTH",
    "TG263_CLASSIFIERS",
    "LesionSite",
    "RoiType",
    "colour_for",
    "dose_suffix",
    "site_classifier",
    "site_indicator",
    "target_name",
    "validate_name",
]

MAX_NAME_LENGTH = 16
_VALID = re.compile(r"^[A-Za-z][A-Za-z0-9_^!]*$")


class RoiType(StrEnum):
    """DICOM RTROIInterpretedType values rtplan writes."""

    GTV = "GTV"
    CTV = "CTV"
    PTV = "PTV"
    EXTERNAL = "EXTERNAL"
    ORGAN = "ORGAN"
    CONTROL = "CONTROL"


#: TG-263 target classifiers (primary, nodal, surgical bed, parenchyma, venous thrombus,
#: vascular); a target may also have none
TG263_CLASSIFIERS = ("p", "n", "sb", "par", "v", "vas")

_CLASSIFIER = {
    LesionSite.PROSTATE_BED: "sb",
    LesionSite.PELVIC_NODE: "n",
    LesionSite.DISTANT_NODE: "n",
    LesionSite.BONE: "",
    LesionSite.VISCERAL: "",
}
_INDICATOR = {LesionSite.BONE: "Bone"}


def site_classifier(site: LesionSite | str) -> str:
    """TG-263 classifier of a lesion site: ``n`` (nodes), ``sb`` (prostate bed, the
    surgical bed), none for bone and visceral metastases (TG-263 has no metastasis
    classifier).

    Examples
    --------
    >>> site_classifier("pelvic_node"), site_classifier("bone"), site_classifier("prostate_bed")
    ('n', '', 'sb')
    """
    return _CLASSIFIER[LesionSite(site)]


def site_indicator(site: LesionSite | str) -> str:
    """TG-263 structure indicator of a lesion site (after an underscore): ``Bone`` for
    bone metastases, none otherwise.

    Examples
    --------
    >>> site_indicator("bone"), site_indicator("visceral")
    ('Bone', '')
    """
    return _INDICATOR.get(LesionSite(site), "")


def dose_suffix(dose_gy: float) -> str:
    """Dose suffix in whole cGy, e.g. 61.2 Gy -> ``"6120"``.

    >>> dose_suffix(61.2), dose_suffix(57.2), dose_suffix(51)
    ('6120', '5720', '5100')
    """
    cgy = round(float(dose_gy) * 100)
    if cgy <= 0:
        raise InvalidParameterError(f"a dose suffix needs a positive dose, got {dose_gy} Gy")
    return str(cgy)


def validate_name(name: str) -> str:
    """Check a structure name against TG-263's form; return it.

    >>> validate_name("PTV_6120")
    'PTV_6120'
    >>> validate_name("PTV boost")
    Traceback (most recent call last):
    ...
    rtplan.errors.InvalidParameterError: structure name 'PTV boost' is not TG-263 compliant: ...
    """
    if len(name) > MAX_NAME_LENGTH or not _VALID.match(name):
        raise InvalidParameterError(
            f"structure name {name!r} is not TG-263 compliant: at most {MAX_NAME_LENGTH} "
            "characters, starting with a letter, letters/digits/underscore only, no spaces"
        )
    return name


def target_name(
    roi_type: RoiType | str,
    classifier: str = "",
    number: int | None = None,
    dose_gy: float | None = None,
    indicator: str = "",
) -> str:
    """Compose a TG-263 target name.

    Raises
    ------
    InvalidParameterError
        For a classifier TG-263 does not define, or a name over 16 characters.

    Examples
    --------
    >>> target_name("GTV", "n", 1), target_name("PTV", "", 2, indicator="Bone")
    ('GTVn1', 'PTV2_Bone')
    >>> target_name("PTV", dose_gy=61.2), target_name("CTV", "n", dose_gy=51)
    ('PTV_6120', 'CTVn_5100')
    """
    if classifier and classifier not in TG263_CLASSIFIERS:
        raise InvalidParameterError(
            f"target classifier {classifier!r} is not one of TG-263's "
            f"{', '.join(TG263_CLASSIFIERS)}: leave it empty for targets none describes"
        )
    name = str(RoiType(roi_type)) + classifier + ("" if number is None else str(int(number)))
    if indicator:
        name += "_" + indicator
    if dose_gy is not None:
        name += "_" + dose_suffix(dose_gy)
    return validate_name(name)


# Colours: GTV reds/pinks, CTV yellows/oranges, PTV blues/violets, External green. Every
# colour is bright (a channel >= 150: visible on the dark background of planning
# systems), at least 64 apart (RGB distance) from the others of its type, 50 from any
# other listed one, and 150 from External's green.
_BASE = {
    RoiType.GTV: [(255, 0, 0), (255, 0, 150), (255, 110, 110), (190, 0, 60), (255, 80, 0),
                  (220, 0, 220), (255, 170, 200), (200, 60, 120)],
    RoiType.CTV: [(255, 200, 0), (255, 130, 0), (255, 255, 110), (170, 130, 0),
                  (255, 190, 150), (210, 90, 30), (240, 240, 200), (200, 200, 60)],
    RoiType.PTV: [(0, 128, 255), (0, 210, 255), (110, 90, 255), (0, 60, 200),
                  (150, 170, 255), (170, 0, 255), (90, 255, 255), (0, 150, 150)],
    RoiType.EXTERNAL: [(0, 200, 0)],
}


def colour_for(roi_type: RoiType | str, index: int) -> tuple[int, int, int]:
    """A display colour for the ``index``-th ROI of a type.

    Eight hand-picked colours per target type (reds for GTVs, yellows for CTVs, blues
    for PTVs), distinct from each other and from External's green; beyond them, hues
    stepped by the golden angle (saturated and bright, skipping the greens).

    >>> colour_for("GTV", 0), colour_for("PTV", 1)
    ((255, 0, 0), (0, 210, 255))
    """
    import colorsys

    t = RoiType(roi_type)
    palette = _BASE.get(t, [(255, 0, 255)])
    if index < len(palette):
        return palette[index]
    hue = (0.61803398875 * (index - len(palette)) + 0.05) % 1.0
    if 0.22 < hue < 0.45:  # greens: External's
        hue = (hue + 0.25) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (round(255 * r), round(255 * g), round(255 * b))
