"""The lesions model: PSMA-positive lesions, their sources, margins and ENI.

One model for every reader of a lesions file (``rtplan structures``, ``rtplan lesions``,
PET measurement, the demo): the sites (:class:`LesionSite`), the source kinds
(:class:`SphereSource`, :class:`RTStructSource`, :class:`MaskSource`,
:class:`PETSeedSource`), :class:`Lesion`, :class:`LesionsFile` and
:func:`load_lesions_file`. This module is a bottom layer: it imports only pydantic, the
standard library and :mod:`rtplan.errors`. Adding a source kind means a model here (and in
:data:`LesionSource`) plus its handler (:func:`rtplan.structures.sources.source_gtv` for
targets).

Contract (JSON)::

    {"lesions": [{"id": "L1", "site": "pelvic_node",
                  "source": {"kind": "sphere", "center_mm": [x, y, z], "diameter_mm": d}},
                 {"id": "L2", "site": "bone",
                  "source": {"kind": "rtstruct", "path": "RS.dcm", "roi": "GTV-1"}},
                 {"id": "L3", "site": "visceral",
                  "source": {"kind": "mask", "path": "L3.nii.gz"}},
                 {"id": "L4", "site": "distant_node",
                  "source": {"kind": "pet_seed", "point_mm": [x, y, z],
                             "method": "background_adaptive", "level": 0.4,
                             "max_radius_mm": 25}}],
     "margins": {"ctv_margin_mm": 3, "ptv_margin_mm": 3},
     "eni": {"ctv": {"kind": "rtstruct", "path": "RS_atlas.dcm", "roi": "CTVn"},
             "margin_mm": 5, "sib": true}}

Relative paths are relative to the lesions file. Coordinates are DICOM patient
coordinates (LPS, mm): of the planning CT, except ``pet_seed`` points, which are in the
PET's frame of reference (mapped to the CT by the PET -> CT registration when the frames
differ).

Examples
--------
>>> x = Lesion.model_validate({"id": "L1", "site": "bone", "source": {
...     "kind": "pet_seed", "point_mm": [1, 2, 3]}})
>>> x.site.value, x.source.kind, x.is_pet_seed
('bone', 'pet_seed', True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rtplan.errors import InputError

__all__ = [
    "MAX_MARGIN_MM",
    "PROTOCOL_MARGIN_RANGE_MM",
    "THRESHOLD_PRESETS",
    "AnisotropicMargin",
    "ENISpec",
    "Lesion",
    "LesionSite",
    "LesionSource",
    "LesionsFile",
    "MarginSpec",
    "MaskSource",
    "PETSeedSource",
    "RTStructSource",
    "SegmentationMethod",
    "SphereSource",
    "ThresholdPreset",
    "duplicate_ids",
    "load_lesions_file",
    "margin_warnings",
    "validation_input_error",
]


class LesionSite(StrEnum):
    """Anatomical site of a PSMA-positive lesion (the lesions-file contract)."""

    PROSTATE_BED = "prostate_bed"
    PELVIC_NODE = "pelvic_node"
    DISTANT_NODE = "distant_node"
    BONE = "bone"
    VISCERAL = "visceral"


def _not_bool(value: object) -> object:
    """Refuse ``true``/``false`` where a number is expected (pydantic reads it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(
            "true/false is not a number (it would be read as 1 or 0): give the number"
        )
    return value


#: A float that is never a bool, finite.
_Num = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_not_bool)]
_Point = tuple[_Num, _Num, _Num]


#: Named threshold presets: name -> (method, level). ``adaptive`` (background-adaptive
#: 40 %, the default; FDG phantom basis, Radiother Oncol 2006, PubMed 16876272);
#: ``sensitive`` 20 % and ``specific`` 45 % of SUVmax (Zamboglou et al., Radiother Oncol
#: 2019;141:208-213). Sources: the module docstring of :mod:`rtplan.imaging.pet_lesions`.
THRESHOLD_PRESETS: dict[str, tuple[str, float]] = {
    "adaptive": ("background_adaptive", 0.40),
    "sensitive": ("percent_max", 0.20),
    "specific": ("percent_max", 0.45),
}


class SegmentationMethod(StrEnum):
    """How the threshold is set from the lesion's SUVmax (and background)."""

    PERCENT_MAX = "percent_max"  # level x SUVmax
    ABSOLUTE = "absolute"  # level is an SUV
    BACKGROUND_ADAPTIVE = "background_adaptive"  # B + level (SUVmax - B)


class ThresholdPreset(StrEnum):
    """Named (method, level) pairs of :data:`THRESHOLD_PRESETS`."""

    ADAPTIVE = "adaptive"  # background_adaptive 0.40
    SENSITIVE = "sensitive"  # percent_max 0.20 (Zamboglou 2019)
    SPECIFIC = "specific"  # percent_max 0.45 (Zamboglou 2019: 40-50 %)


class PETSeedSource(BaseModel):
    """Lesions-file source ``{"kind": "pet_seed", ...}``: delineate from a PET seed.

    The threshold is ``method`` and ``level`` (default background-adaptive 40 %), or a
    named ``preset`` (:class:`ThresholdPreset`) that fills both: ``adaptive``
    (background_adaptive 0.40), ``sensitive`` (percent_max 0.20) or ``specific``
    (percent_max 0.45); sources in :mod:`rtplan.imaging.pet_lesions`. A preset given together with a
    different explicit ``method`` or ``level`` is refused.

    Examples
    --------
    >>> PETSeedSource(point_mm=(10, -5, 30)).method.value
    'background_adaptive'
    >>> s = PETSeedSource(point_mm=(10, -5, 30), preset="sensitive")
    >>> s.method.value, s.level
    ('percent_max', 0.2)
    >>> PETSeedSource(point_mm=(10, -5, 30), preset="specific", level=0.3)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for PETSeedSource
      Value error, preset 'specific' means method percent_max, level 0.45, but the source ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["pet_seed"] = "pet_seed"
    point_mm: _Point = Field(
        description="Seed in DICOM patient coordinates (LPS, mm) of the PET's frame of reference"
    )
    preset: ThresholdPreset | None = Field(
        default=None,
        description="Named threshold that fills method and level: adaptive "
        "(background_adaptive 0.40), sensitive (percent_max 0.20) or specific (percent_max "
        "0.45; Zamboglou et al. 2019). Must not contradict an explicit method or level.",
    )
    method: SegmentationMethod = SegmentationMethod.BACKGROUND_ADAPTIVE
    level: _Num = Field(default=0.4, gt=0, description="Fraction (percent/adaptive) or SUV")
    max_radius_mm: _Num = Field(default=25.0, gt=0, le=150)
    background_suv: Annotated[
        float, Field(ge=0, allow_inf_nan=False), BeforeValidator(_not_bool)
    ] | None = Field(default=None, description="Background SUV for background_adaptive")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        try:
            preset = ThresholdPreset(str(getattr(name, "value", name)))
        except ValueError:
            raise ValueError(
                f"unknown preset {name!r}: use " + ", ".join(p.value for p in ThresholdPreset)
            ) from None
        method, level = THRESHOLD_PRESETS[preset.value]
        conflicts = []
        given_method = data.get("method")
        if given_method is not None and str(getattr(given_method, "value", given_method)) != method:
            conflicts.append(f"method {getattr(given_method, 'value', given_method)}")
        given_level = data.get("level")
        if given_level is not None:
            try:
                same = math.isclose(float(given_level), level, rel_tol=1e-9)
            except (TypeError, ValueError):
                same = False
            if not same:
                conflicts.append(f"level {given_level}")
        if conflicts:
            raise ValueError(
                f"preset {preset.value!r} means method {method}, level {level:g}, but the "
                f"source also gives {' and '.join(conflicts)}: remove the preset or the "
                "explicit method/level"
            )
        return {**data, "preset": preset, "method": method, "level": level}

    @property
    def gives_threshold(self) -> bool:
        """True when the source itself sets ``preset``, ``method`` or ``level``."""
        return bool({"preset", "method", "level"} & self.model_fields_set)



#: Margins the paper's protocol uses for CTV and PTV (mm); others are allowed with a warning.
PROTOCOL_MARGIN_RANGE_MM = (2.0, 3.0)
MAX_MARGIN_MM = 20.0

_Margin = Annotated[
    float, Field(ge=0, le=MAX_MARGIN_MM, allow_inf_nan=False), BeforeValidator(_not_bool)
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SphereSource(_Model):
    """A lesion known by centre and size (e.g. from the PET report)."""

    kind: Literal["sphere"]
    center_mm: _Point = Field(description="LPS centre, mm")
    diameter_mm: Annotated[
        float, Field(gt=0, le=300, allow_inf_nan=False), BeforeValidator(_not_bool)
    ]


class RTStructSource(_Model):
    """An ROI already drawn in an RTSTRUCT on the planning CT's frame of reference."""

    kind: Literal["rtstruct"]
    path: str
    roi: Annotated[str, Field(min_length=1)]


class MaskSource(_Model):
    """A label map on the planning CT grid (NIfTI, needs ``rtplan[nifti]``).

    ``label`` selects one label of a multi-label map (default: any non-zero voxel).
    """

    kind: Literal["mask"]
    path: str
    label: Annotated[int, Field(ge=1), BeforeValidator(_not_bool)] | None = None


LesionSource = Annotated[
    SphereSource | RTStructSource | MaskSource | PETSeedSource, Field(discriminator="kind")
]


class Lesion(_Model):
    """One PSMA-positive lesion that becomes a GTV."""

    id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
    site: LesionSite
    source: LesionSource

    @property
    def is_pet_seed(self) -> bool:
        """True when the source is a ``pet_seed`` (delineated on the PET)."""
        return isinstance(self.source, PETSeedSource)


def duplicate_ids(ids: Iterable[str]) -> list[str]:
    """The ids that occur more than once, sorted (the one unique-id check).

    Examples
    --------
    >>> duplicate_ids(["L1", "L2", "L1"]), duplicate_ids(["L1"])
    (['L1'], [])
    """
    seen: set[str] = set()
    dup: set[str] = set()
    for i in ids:
        (dup if i in seen else seen).add(i)
    return sorted(dup)


#: Smallest direction of a six-value margin (mm); see rtplan.structures.margins.
MIN_ANISOTROPIC_MARGIN_MM = 1.0


class AnisotropicMargin(_Model):
    """Six margins (mm) in patient directions."""

    right_mm: _Margin
    left_mm: _Margin
    anterior_mm: _Margin
    posterior_mm: _Margin
    superior_mm: _Margin
    inferior_mm: _Margin

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        """(right, left, anterior, posterior, superior, inferior) in mm."""
        return (self.right_mm, self.left_mm, self.anterior_mm, self.posterior_mm,
                self.superior_mm, self.inferior_mm)

    @model_validator(mode="after")
    def _each_direction_at_least_1_mm(self) -> AnisotropicMargin:
        # the six-direction expansion is accurate only from about one lattice cell on
        # (rtplan.structures.margins.MIN_ANISOTROPIC_MARGIN_MM): refuse, never grow wrong
        if min(self.as_tuple()) < MIN_ANISOTROPIC_MARGIN_MM:
            raise ValueError(
                f"every direction of a six-value margin must be >= "
                f"{MIN_ANISOTROPIC_MARGIN_MM:g} mm (got {list(self.as_tuple())}); a 0 mm "
                "direction is not supported: give at least 1 mm"
            )
        return self


def _margin_value(v: object) -> object:
    if isinstance(v, list | tuple):
        if len(v) != 6:
            raise ValueError(
                "an anisotropic margin has six values in mm: right, left, anterior, "
                f"posterior, superior, inferior; got {len(v)}"
            )
        keys = ("right_mm", "left_mm", "anterior_mm", "posterior_mm", "superior_mm",
                "inferior_mm")
        return dict(zip(keys, v, strict=True))
    return v


class MarginSpec(_Model):
    """CTV and PTV margins (mm): one value (isotropic) or six (anisotropic)."""

    ctv_margin_mm: _Margin | AnisotropicMargin = 3.0
    ptv_margin_mm: _Margin | AnisotropicMargin = 3.0

    @field_validator("ctv_margin_mm", "ptv_margin_mm", mode="before")
    @classmethod
    def _six(cls, v: object) -> object:
        return _margin_value(v)


class ENISpec(_Model):
    """Elective nodal irradiation: the nodal CTV, its PTV margin and the SIB option."""

    ctv: RTStructSource | MaskSource | None = None
    margin_mm: _Margin | AnisotropicMargin = 5.0
    sib: Annotated[bool, Field(strict=True)] = False
    boost_dose_gy: Annotated[
        float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_not_bool)
    ] = 61.2
    elective_dose_gy: Annotated[
        float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_not_bool)
    ] = 51.0
    gap_mm: Annotated[
        float, Field(ge=0, le=MAX_MARGIN_MM, allow_inf_nan=False), BeforeValidator(_not_bool)
    ] = 0.0

    @field_validator("margin_mm", mode="before")
    @classmethod
    def _six(cls, v: object) -> object:
        return _margin_value(v)


class LesionsFile(_Model):
    """The lesions file (see the module docstring for the JSON contract)."""

    lesions: Annotated[list[Lesion], Field(min_length=1)]
    margins: MarginSpec = MarginSpec()
    eni: ENISpec | None = None

    @field_validator("lesions")
    @classmethod
    def _unique_ids(cls, v: list[Lesion]) -> list[Lesion]:
        dup = duplicate_ids(lesion.id for lesion in v)
        if dup:
            raise ValueError(f"lesion ids must be unique; repeated: {dup}")
        return v


#: pydantic error types that only say "this union branch is not the input's type"
_TYPE_MISMATCH = {"float_type", "float_parsing", "int_type", "int_parsing", "model_type",
                  "dict_type", "list_type", "tuple_type", "string_type", "bool_type",
                  "model_attributes_type", "is_instance_of"}


def _union_member(segment: object) -> bool:
    """A location segment naming a union branch (``AnisotropicMargin``,
    ``constrained-float``, ``function-after[...]``), not a field or an index."""
    return isinstance(segment, str) and (segment[:1].isupper() or "-" in segment
                                         or "[" in segment)


def _where(loc: tuple, data: object) -> str:
    """``lesions[1] (L2).source.diameter_mm`` from a pydantic location (union branches
    left out; the lesion's id added when the data has it)."""
    out = ""
    node = data
    for seg in loc:
        if _union_member(seg):
            continue
        if isinstance(seg, int):
            out += f"[{seg}]"
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f" ({node['id']})"
        else:
            out += ("." if out else "") + str(seg)
            node = node.get(seg) if isinstance(node, dict) else None
    return out or "(file)"


def validation_input_error(exc: ValidationError, source: str, data: object = None) -> InputError:
    """A short :class:`~rtplan.errors.InputError` for a lesions-file (or option) error.

    One line per problem: where (``lesions[1] (L2).source.diameter_mm``), what pydantic
    says, and the offending value when it is short. Of a union (a margin is a number or
    six values; an ENI CTV is an RTSTRUCT ROI or a mask), only the branches the input
    could be are reported; the input itself is never dumped whole.

    Examples
    --------
    >>> try:
    ...     MarginSpec.model_validate({"ctv_margin_mm": 25})
    ... except ValidationError as exc:
    ...     print(validation_input_error(exc, "margins"))
    invalid margins: ctv_margin_mm: Input should be less than or equal to 20 (got 25)
    """
    errors = exc.errors()
    groups: dict[tuple, dict[object, list]] = {}
    for err in errors:
        loc = tuple(err.get("loc", ()))
        u = next((i for i, seg in enumerate(loc) if _union_member(seg)), None)
        if u is not None:
            groups.setdefault(loc[:u], {}).setdefault(loc[u], []).append(err)
    dropped: set[int] = set()
    for branches in groups.values():
        if len(branches) < 2:
            continue
        wrong = {b for b, errs in branches.items()
                 if any(e["type"] in _TYPE_MISMATCH and len(e["loc"]) == len(errs[0]["loc"])
                        and e["loc"][-1] == b for e in errs)
                 or any(e["type"] == "literal_error" and e["loc"][-1] == "kind" for e in errs)}
        if wrong and len(wrong) < len(branches):
            for b in wrong:
                dropped.update(id(e) for e in branches[b])
    parts = []
    for err in errors:
        if id(err) in dropped:
            continue
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        given = err.get("input")
        shown = repr(given)
        got = "" if isinstance(given, dict) or len(shown) > 60 else f" (got {shown})"
        line = f"{_where(tuple(err.get('loc', ())), data)}: {msg}{got}"
        if line not in parts:
            parts.append(line)
    return InputError(f"invalid {source}: " + "; ".join(parts))


def load_lesions_file(path: str | Path) -> LesionsFile:
    """Read and validate a lesions file; relative source paths become absolute.

    Raises
    ------
    InputError
        If the file is missing, not JSON, or does not match the schema (the message
        names the field).
    """
    from rtplan._shared.jsonio import load_json

    p = Path(path)
    if not p.exists():
        raise InputError(f"lesions file '{p}' not found: give the path of the JSON file")
    data = load_json(p, "lesions file")
    try:
        spec = LesionsFile.model_validate(data)
    except ValidationError as exc:
        raise validation_input_error(exc, f"lesions file '{p}'", data) from None
    return _resolve_paths(spec, p.parent)


_Src = TypeVar("_Src", bound=BaseModel)


def _resolve(src: _Src, base: Path) -> _Src:
    """A file source with its path made absolute (relative to ``base``); others as is."""
    path = getattr(src, "path", None)
    if isinstance(path, str) and not Path(path).is_absolute():
        return src.model_copy(update={"path": str((base / path).resolve())})
    return src


def _resolve_paths(spec: LesionsFile, base: Path) -> LesionsFile:
    lesions = [
        lesion.model_copy(update={"source": _resolve(lesion.source, base)})
        for lesion in spec.lesions
    ]
    eni = spec.eni
    if eni is not None and eni.ctv is not None:
        eni = eni.model_copy(update={"ctv": _resolve(eni.ctv, base)})
    return spec.model_copy(update={"lesions": lesions, "eni": eni})


def margin_warnings(spec: MarginSpec) -> list[str]:
    """Warnings for CTV/PTV margins outside the protocol's 2-3 mm.

    Examples
    --------
    >>> margin_warnings(MarginSpec(ctv_margin_mm=3, ptv_margin_mm=3))
    []
    >>> margin_warnings(MarginSpec(ctv_margin_mm=0, ptv_margin_mm=5))[1]
    'PTV margin 5 mm is outside the protocol range 2-3 mm (paper: PTV = CTV + 2-3 mm)'
    """
    lo, hi = PROTOCOL_MARGIN_RANGE_MM
    out = []
    for label, m in (("CTV", spec.ctv_margin_mm), ("PTV", spec.ptv_margin_mm)):
        values = m.as_tuple() if isinstance(m, AnisotropicMargin) else (m,)
        if any(v < lo or v > hi for v in values):
            shown = ", ".join(f"{v:g}" for v in values)
            base = "GTV" if label == "CTV" else "CTV"
            out.append(
                f"{label} margin {shown} mm is outside the protocol range {lo:g}-{hi:g} mm "
                f"(paper: {label} = {base} + 2-3 mm)"
            )
    return out
