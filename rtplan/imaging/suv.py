"""Standardized uptake value (SUV) of one PET slice, with provenance.

The algorithm is the vendor-neutral one of the SUV computation manual shipped with the
SUV digital reference objects (Vácha, Hofheinz, Braune, Löck, Zwanenburg, OncoRay/HZDR
2026, CC BY 4.0; QIBA pseudo-code lineage), in this order:

1. Rescale: the caller applies RescaleSlope per slice; RescaleIntercept must be 0.
2. Units (0054,1001): ``BQML`` (Bq/ml); ``CNTS`` with a Philips private factor
   (7053,1000 SUV scale factor, or 7053,1009 activity-concentration scale factor);
   ``GML`` (already an SUV of SUVType (0054,1006): BW when empty, LBM, LBMJAMES128,
   LBMJANMA, IBW); ``CM2ML`` (SUVbsa). Other units are refused.
3. Corrections: CorrectedImage (0028,0051) must list ATTN; DECY must agree with
   DecayCorrection (0054,1102).
4. Decay correction START: the injected dose is decayed to the reference time. QIBA
   order: SeriesDate/SeriesTime if not after the acquisition time; else the GE private
   PET scan date-time (0009,100D); else back-computed from AcquisitionDateTime,
   FrameReferenceTime and ActualFrameDuration (the manual's option B, also available
   alone as ``reference_time_rule="backcompute"``). ADMIN: the dose is used as is.
   NONE: the slice is decay corrected to the injection time with the frame-average
   factor ``lambda T / (1 - exp(-lambda T))`` and ``exp(lambda (t_acq - t_inj))``.
5. Injection time from RadiopharmaceuticalStartDateTime (0018,1078), else
   RadiopharmaceuticalStartTime (0018,1072) on the reference date, one day earlier
   when that would fall after the scan (injection before midnight, scan after).
6. Dose (0018,1074) in Bq; a value below 1e5 is read as MBq (the manual's histogram has
   peaks at ~4e2 and ~4e8). PatientWeight (0010,1030) in kg; above 1000 it is read as g.
   PatientSize (0010,1020) in m; above 3 it is read as cm.
7. Half-life from RadionuclideHalfLife (0018,1075), else from the radionuclide code or
   name (RadionuclideCodeSequence (0054,0300), Radiopharmaceutical (0018,0031)).

Every rule that fires, and every plausibility heuristic used, is written into the
:class:`SUVProvenance` record carried by the returned factor (``SUVFactor.provenance``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rtplan.errors import DicomError, InvalidParameterError, from_validation_error
from rtplan.imaging._body_size import (
    body_surface_area_m2,
    ideal_body_weight_kg,
    lean_body_mass_kg,
)
from rtplan.imaging._dicom_time import parse_da, parse_dt, parse_tm

__all__ = [
    "NUCLIDE_HALF_LIFE_S",
    "ReferenceTimeRule",
    "SUVFactor",
    "SUVNormalization",
    "SUVOverrides",
    "SUVProvenance",
    "suv_factor",
]

#: Half-lives (s) used when RadionuclideHalfLife (0018,1075) is absent. Rounded
#: evaluated nuclear data (ENSDF/NNDC): F-18 109.77 min, Ga-68 67.71 min, C-11 20.364 min,
#: N-13 9.965 min, O-15 122.24 s, Cu-64 12.701 h, Zr-89 78.41 h, Rb-82 75.45 s.
NUCLIDE_HALF_LIFE_S: dict[str, float] = {
    "F-18": 6586.2,
    "Ga-68": 4062.6,
    "C-11": 1221.8,
    "N-13": 597.9,
    "O-15": 122.24,
    "Cu-64": 45723.6,
    "Zr-89": 282276.0,
    "Rb-82": 75.45,
}

_ELEMENTS = {
    "F": "Fluorine", "Ga": "Gallium", "C": "Carbon", "N": "Nitrogen", "O": "Oxygen",
    "Cu": "Copper", "Zr": "Zirconium", "Rb": "Rubidium",
}
#: SNOMED-RT codes of CID 4020 (PET Radionuclide) for the nuclides above.
_SRT_CODES = {"C-111A1": "F-18", "C-131A1": "Ga-68", "C-105A1": "C-11", "C-107A1": "N-13",
              "C-B1038": "O-15", "C-127A1": "Cu-64", "C-163AD": "Zr-89", "C-159A2": "Rb-82"}

_DOSE_MBQ_BELOW = 1e5  # RadionuclideTotalDose below this is read as MBq
_DOSE_PLAUSIBLE_BQ = (1e6, 1e11)
_WEIGHT_G_ABOVE = 1000.0  # PatientWeight above this is read as g (manual)
_WEIGHT_PLAUSIBLE_KG = (1.0, 500.0)
_HEIGHT_CM_ABOVE = 3.0  # PatientSize above this is read as cm
_HEIGHT_PLAUSIBLE_M = (0.3, 2.6)
_HALF_LIFE_MISMATCH = 0.05

_GE_CREATOR = "GEMS_PETD_01"
_PHILIPS_CREATOR = "Philips PET Private Group"


class SUVNormalization(StrEnum):
    """SUV normalization; values mirror DICOM SUVType (0054,1006) in lower case."""

    BW = "bw"
    LBM = "lbm"  # Morgan, 120 (W/H)^2 for males
    LBMJAMES128 = "lbmjames128"
    LBMJANMA = "lbmjanma"
    BSA = "bsa"
    IBW = "ibw"


class ReferenceTimeRule(StrEnum):
    """How the decay-correction reference time of a START series is found."""

    QIBA = "qiba"  # SeriesDateTime, else GE private, else back-computed
    BACKCOMPUTE = "backcompute"  # always back-computed from acquisition timing


class SUVOverrides(BaseModel):
    """User-supplied values that replace (or supply missing) header values.

    Parameters
    ----------
    weight_kg
        Patient weight in kg (replaces PatientWeight (0010,1030)); CLI ``--weight-kg``.
    injected_dose_mbq
        Injected activity in MBq at injection time (replaces RadionuclideTotalDose
        (0018,1074)); CLI ``--injected-dose-mbq``.
    injection_time
        Injection date-time, or time of day (then on the scan date, the day before if
        it would fall after the scan); ISO text accepted (``"2025-01-01T10:00"``,
        ``"10:00"``). CLI ``--injection-time``.
    height_cm
        Patient height in cm (replaces PatientSize (0010,1020)).
    sex
        ``"M"``, ``"F"`` or ``"O"`` (replaces PatientSex (0010,0040)).
    half_life_s
        Radionuclide half-life in s (replaces RadionuclideHalfLife (0018,1075)).

    Examples
    --------
    >>> SUVOverrides(weight_kg=80, injection_time="10:15").injection_time
    datetime.time(10, 15)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_kg: float | None = Field(default=None, gt=0, le=_WEIGHT_PLAUSIBLE_KG[1])
    injected_dose_mbq: float | None = Field(default=None, gt=0, le=1e5)
    injection_time: dt.datetime | dt.time | None = None
    height_cm: float | None = Field(default=None, gt=30, le=260)
    sex: str | None = None
    half_life_s: float | None = Field(default=None, gt=0)

    @field_validator("injection_time", mode="before")
    @classmethod
    def _parse_time(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip()
            try:
                return dt.datetime.fromisoformat(s) if len(s) > 8 else dt.time.fromisoformat(s)
            except ValueError:
                raise ValueError(
                    f"{v!r} is neither an ISO date-time (2025-01-01T10:00) nor a time (10:00)"
                ) from None
        return v

    @field_validator("sex")
    @classmethod
    def _check_sex(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in ("M", "F", "O"):
            raise ValueError("sex must be M, F or O")
        return None if v is None else v.upper()


class SUVProvenance(BaseModel):
    """How one slice's SUV factor was obtained (which rules fired, which values used).

    Times are naive local scanner times. ``normalizer`` is the normalizing quantity in
    ``normalizer_unit`` (g for bw/lbm/ibw, cm^2 for bsa): SUV = activity (Bq/ml) x
    normalizer / decayed dose (Bq).
    """

    model_config = ConfigDict(frozen=True)

    normalization: SUVNormalization
    factor: float
    units: str
    suv_type_stored: str | None = None
    rule: str
    decay_correction: str | None = None
    reference_time_rule: str | None = None
    reference_datetime: dt.datetime | None = None
    injection_datetime: dt.datetime | None = None
    injection_source: str | None = None
    elapsed_s: float | None = None
    half_life_s: float | None = None
    half_life_source: str | None = None
    injected_dose_bq: float | None = None
    dose_source: str | None = None
    decayed_dose_bq: float | None = None
    weight_kg: float | None = None
    weight_source: str | None = None
    height_m: float | None = None
    sex: str | None = None
    normalizer: float | None = None
    normalizer_unit: str | None = None
    heuristics: tuple[str, ...] = ()


class SUVFactor(float):
    """The SUV factor of one slice: a ``float`` that also carries its provenance.

    ``SUV = rescaled value x factor``, so the object is used directly as the factor
    (``rescaled * suv_factor(ds)``); :attr:`provenance` says how it was obtained and
    :attr:`factor` gives the plain ``float``. Instances are immutable; they compare and
    hash as their float value (two factors with equal values are equal whatever their
    provenance: compare ``.provenance`` for that), and pickle with their provenance.

    Parameters
    ----------
    factor
        The factor, in g/ml per Bq/ml (bw/lbm/ibw) or cm^2/ml per Bq/ml (bsa); or 1 /
        the normalizer ratio when the stored values already are an SUV.
    provenance
        The :class:`SUVProvenance` record.

    Examples
    --------
    >>> prov = SUVProvenance(normalization="bw", factor=2.5e-4, units="BQML", rule="demo")
    >>> f = SUVFactor(2.5e-4, prov)
    >>> 4000.0 * f, f.factor, f.provenance.rule
    (1.0, 0.00025, 'demo')
    >>> f
    SUVFactor(0.00025, normalization='bw', rule='demo')
    """

    __slots__ = ("_provenance",)
    _provenance: SUVProvenance

    def __new__(cls, factor: float, provenance: SUVProvenance) -> SUVFactor:
        if not isinstance(provenance, SUVProvenance):
            raise TypeError(
                f"provenance must be an SUVProvenance, got {type(provenance).__name__}"
            )
        obj = super().__new__(cls, factor)
        object.__setattr__(obj, "_provenance", provenance)
        return obj

    @property
    def provenance(self) -> SUVProvenance:
        """How the factor was obtained (rules fired, times, dose, heuristics)."""
        return self._provenance

    @property
    def factor(self) -> float:
        """The factor as a plain ``float``."""
        return float(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SUVFactor is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SUVFactor is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (float(self), self._provenance))

    def __repr__(self) -> str:
        p = self._provenance
        return (f"SUVFactor({float(self)!r}, normalization={p.normalization.value!r}, "
                f"rule={p.rule!r})")

    def __str__(self) -> str:
        return repr(float(self))


# --------------------------------------------------------------------------------------
# header access
# --------------------------------------------------------------------------------------
def _get(ds: Any, keyword: str) -> Any:
    v = getattr(ds, keyword, None) if keyword in ds else None
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return v


def _private(ds: Any, group: int, element: int, creator: str, manufacturer: str) -> Any:
    """Private value by fixed tag; accepted when its creator (or the maker) matches."""
    tag = (group, element)
    if tag not in ds:
        return None
    block = element >> 8
    creator_tag = (group, block)
    if creator_tag in ds:
        if creator.lower() not in str(ds[creator_tag].value).lower():
            return None
    elif manufacturer.lower() not in str(_get(ds, "Manufacturer") or "").lower():
        return None
    value = ds[tag].value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return value


def _rp_info(ds: Any) -> Any:
    seq = _get(ds, "RadiopharmaceuticalInformationSequence")
    return seq[0] if seq else None


def _combine(date: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(date, time)


def _series_datetime(ds: Any) -> dt.datetime | None:
    d, t = _get(ds, "SeriesDate"), _get(ds, "SeriesTime")
    if d is None or t is None:
        return None
    return _combine(parse_da(d, "SeriesDate (0008,0021)"), parse_tm(t, "SeriesTime (0008,0031)"))


def _acquisition_datetime(ds: Any) -> dt.datetime | None:
    adt = _get(ds, "AcquisitionDateTime")
    if adt is not None:
        return parse_dt(adt, "AcquisitionDateTime (0008,002A)")
    t = _get(ds, "AcquisitionTime")
    d = _get(ds, "AcquisitionDate") or _get(ds, "SeriesDate")
    if t is None or d is None:
        return None
    return _combine(parse_da(d, "AcquisitionDate (0008,0022)"),
                    parse_tm(t, "AcquisitionTime (0008,0032)"))


def _nuclide_from_text(text: str) -> str | None:
    """Nuclide of the table named in free text (``^68^Gallium``, ``Ga68-PSMA``, ``18F``)."""
    s = re.sub(r"[\^\-_\s]+", " ", text).strip()
    for nuc in NUCLIDE_HALF_LIFE_S:
        sym, mass = nuc.split("-")
        name = _ELEMENTS[sym]
        if re.search(rf"\b{mass} ?{name}\b|\b{name} ?{mass}\b", s, flags=re.IGNORECASE):
            return nuc
        if re.search(
            rf"(?<![A-Za-z0-9]){mass} ?{sym}(?![a-z0-9])|(?<![A-Za-z0-9]){sym} ?{mass}(?!\d)", s
        ):
            return nuc
    return None


def _nuclide(rp: Any) -> tuple[str | None, str]:
    """Nuclide name from the code sequence or free text, and where it came from."""
    if rp is None:
        return None, ""
    codes = _get(rp, "RadionuclideCodeSequence")
    if codes:
        item = codes[0]
        cv = str(_get(item, "CodeValue") or "")
        if cv in _SRT_CODES:
            return _SRT_CODES[cv], f"RadionuclideCodeSequence code {cv}"
        meaning = str(_get(item, "CodeMeaning") or "")
        nuc = _nuclide_from_text(meaning)
        if nuc:
            return nuc, f"RadionuclideCodeSequence meaning {meaning!r}"
    for kw in ("Radionuclide", "Radiopharmaceutical"):
        text = _get(rp, kw) if kw in rp else None
        if text:
            nuc = _nuclide_from_text(str(text))
            if nuc:
                return nuc, f"{kw} {str(text)!r}"
    return None, ""


# --------------------------------------------------------------------------------------
# the pieces of the algorithm
# --------------------------------------------------------------------------------------
class _Ctx:
    """Collects heuristics while the factor is computed."""

    def __init__(self) -> None:
        self.heuristics: list[str] = []


def _half_life(rp: Any, ov: SUVOverrides, ctx: _Ctx) -> tuple[float, str]:
    if ov.half_life_s is not None:
        return float(ov.half_life_s), "override half_life_s"
    nuc, nuc_src = _nuclide(rp)
    hl = _get(rp, "RadionuclideHalfLife") if rp is not None else None
    if hl is not None and float(hl) > 0:
        hl = float(hl)
        if nuc is not None:
            table = NUCLIDE_HALF_LIFE_S[nuc]
            if abs(hl - table) > _HALF_LIFE_MISMATCH * table:
                raise DicomError(
                    f"RadionuclideHalfLife (0018,1075) = {hl:g} s contradicts the nuclide "
                    f"{nuc} ({nuc_src}; half-life {table:g} s): correct the header or give "
                    "the half-life with the half_life_s override"
                )
        return hl, "RadionuclideHalfLife (0018,1075)"
    if nuc is not None:
        ctx.heuristics.append(
            f"RadionuclideHalfLife (0018,1075) absent: half-life of {nuc} from {nuc_src}"
        )
        return NUCLIDE_HALF_LIFE_S[nuc], f"nuclide table ({nuc}, from {nuc_src})"
    raise DicomError(
        "RadionuclideHalfLife (0018,1075) is missing and the radionuclide cannot be "
        "identified from RadionuclideCodeSequence (0054,0300): give the half-life with "
        "the half_life_s override"
    )


def _dose_bq(rp: Any, ov: SUVOverrides, ctx: _Ctx) -> tuple[float, str]:
    if ov.injected_dose_mbq is not None:
        return float(ov.injected_dose_mbq) * 1e6, "override injected_dose_mbq"
    v = _get(rp, "RadionuclideTotalDose") if rp is not None else None
    if v is None or float(v) <= 0:
        raise DicomError(
            f"RadionuclideTotalDose (0018,1074) is {'missing' if v is None else repr(v)}: "
            "give the injected activity with --injected-dose-mbq (injected_dose_mbq)"
        )
    v = float(v)
    src = "RadionuclideTotalDose (0018,1074)"
    if v < _DOSE_MBQ_BELOW:
        ctx.heuristics.append(
            f"RadionuclideTotalDose {v:g} < {_DOSE_MBQ_BELOW:g}: read as MBq, not Bq"
        )
        v *= 1e6
        src += " read as MBq"
    lo, hi = _DOSE_PLAUSIBLE_BQ
    if not lo <= v <= hi:
        raise DicomError(
            f"RadionuclideTotalDose (0018,1074) = {v:g} Bq is implausible (expected "
            f"{lo:g}..{hi:g} Bq): give the injected activity with --injected-dose-mbq"
        )
    return v, src


def _weight_kg(ds: Any, ov: SUVOverrides, ctx: _Ctx) -> tuple[float, str]:
    if ov.weight_kg is not None:
        return float(ov.weight_kg), "override weight_kg"
    v = _get(ds, "PatientWeight")
    if v is None or float(v) <= 0:
        raise DicomError(
            f"PatientWeight (0010,1030) is {'missing' if v is None else repr(str(v))}: "
            "SUV needs the body weight; give it with --weight-kg (weight_kg)"
        )
    w = float(v)
    src = "PatientWeight (0010,1030)"
    if w > _WEIGHT_G_ABOVE:
        ctx.heuristics.append(f"PatientWeight {w:g} > {_WEIGHT_G_ABOVE:g}: read as g")
        w /= 1000.0
        src += " read as g"
    lo, hi = _WEIGHT_PLAUSIBLE_KG
    if not lo <= w <= hi:
        raise DicomError(
            f"PatientWeight (0010,1030) = {v} gives {w:g} kg, outside {lo:g}..{hi:g} kg: "
            "give the weight with --weight-kg"
        )
    return w, src


def _height_m(ds: Any, ov: SUVOverrides, ctx: _Ctx) -> float:
    if ov.height_cm is not None:
        return float(ov.height_cm) / 100.0
    v = _get(ds, "PatientSize")
    if v is None or float(v) <= 0:
        raise DicomError(
            f"PatientSize (0010,1020) is {'missing' if v is None else repr(str(v))}: this "
            "SUV normalization needs the height; give it with the height_cm override"
        )
    h = float(v)
    if h > _HEIGHT_CM_ABOVE:
        ctx.heuristics.append(f"PatientSize {h:g} > {_HEIGHT_CM_ABOVE:g}: read as cm")
        h /= 100.0
    lo, hi = _HEIGHT_PLAUSIBLE_M
    if not lo <= h <= hi:
        raise DicomError(
            f"PatientSize (0010,1020) = {v} m is implausible (expected {lo}..{hi} m): "
            "give the height with the height_cm override"
        )
    return h


def _sex(ds: Any, ov: SUVOverrides) -> str:
    if ov.sex is not None:
        return ov.sex
    v = _get(ds, "PatientSex")
    if v is None or str(v).upper() not in ("M", "F", "O"):
        raise DicomError(
            f"PatientSex (0010,0040) is {'missing' if v is None else repr(str(v))}: this "
            "SUV normalization depends on sex; give it with the sex override (M, F or O)"
        )
    return str(v).upper()


class _Patient:
    """Lazily read patient size data, so BW needs only the weight."""

    def __init__(self, ds: Any, ov: SUVOverrides, ctx: _Ctx) -> None:
        self.ds, self.ov, self.ctx = ds, ov, ctx
        self.weight_kg: float | None = None
        self.weight_source: str | None = None
        self.height_m: float | None = None
        self.sex: str | None = None

    def weight(self) -> float:
        if self.weight_kg is None:
            self.weight_kg, self.weight_source = _weight_kg(self.ds, self.ov, self.ctx)
        return self.weight_kg

    def height_cm(self) -> float:
        if self.height_m is None:
            self.height_m = _height_m(self.ds, self.ov, self.ctx)
        return self.height_m * 100.0

    def sex_code(self) -> str:
        if self.sex is None:
            self.sex = _sex(self.ds, self.ov)
        return self.sex

    def normalizer(self, norm: SUVNormalization) -> float:
        """Normalizing quantity: g (bw, lbm, ibw) or cm^2 (bsa)."""
        if norm is SUVNormalization.BW:
            return self.weight() * 1000.0
        if norm is SUVNormalization.BSA:
            return body_surface_area_m2(self.weight(), self.height_cm()) * 1e4
        if norm is SUVNormalization.IBW:
            return ideal_body_weight_kg(self.height_cm(), self.sex_code()) * 1000.0
        formula = {
            SUVNormalization.LBM: "morgan120",
            SUVNormalization.LBMJAMES128: "james128",
            SUVNormalization.LBMJANMA: "janmahasatian",
        }[norm]
        return lean_body_mass_kg(
            self.weight(), self.height_cm(), self.sex_code(), formula  # type: ignore[arg-type]
        ) * 1000.0


def _average_count_time_s(lam: float, frame_s: float) -> float:
    """Average count-rate time within a frame: ``ln(lam T / (1 - exp(-lam T))) / lam``."""
    x = lam * frame_s
    return math.log(x / -math.expm1(-x)) / lam


def _frame_timing(ds: Any) -> tuple[float | None, float | None]:
    dur = _get(ds, "ActualFrameDuration")
    ref = _get(ds, "FrameReferenceTime")
    return (
        None if dur is None else float(dur) / 1000.0,
        None if ref is None else float(ref) / 1000.0,
    )


def _reference_time(
    ds: Any, rule: ReferenceTimeRule, lam: float, series_start: dt.datetime | None, ctx: _Ctx
) -> tuple[dt.datetime, str]:
    acq = _acquisition_datetime(ds)
    frame_s, frame_ref_s = _frame_timing(ds)
    if rule is ReferenceTimeRule.QIBA:
        series = _series_datetime(ds)
        if series is not None and acq is not None and series <= acq:
            return series, "SeriesDate/SeriesTime (not after the acquisition time; QIBA 1)"
        if series is not None and acq is None:
            ctx.heuristics.append(
                "AcquisitionTime (0008,0032) absent: SeriesTime used without the check "
                "that it is not after the acquisition"
            )
            return series, "SeriesDate/SeriesTime (acquisition time absent; QIBA 1)"
        ge = _private(ds, 0x0009, 0x100D, _GE_CREATOR, "GE")
        if ge is not None:
            return parse_dt(ge, "GE PET scan datetime (0009,100D)"), (
                "GE private PET scan datetime (0009,100D) (SeriesTime after "
                "AcquisitionTime; QIBA 2)"
            )
    if acq is not None and frame_s and frame_ref_s is not None and frame_s > 0:
        t_ave = _average_count_time_s(lam, frame_s)
        ref = acq + dt.timedelta(seconds=t_ave - frame_ref_s)
        return ref, (
            "back-computed: AcquisitionDateTime + Tave(ActualFrameDuration) - "
            "FrameReferenceTime (QIBA 4 / manual option B)"
        )
    if rule is ReferenceTimeRule.QIBA and series_start is not None:
        ctx.heuristics.append(
            "frame timing absent: earliest AcquisitionDateTime of the series used as the "
            "reference time (QIBA 3; wrong for multi-injection series)"
        )
        return series_start, "earliest AcquisitionDateTime of the series (QIBA 3)"
    missing = [
        name for name, v in (
            ("AcquisitionTime (0008,0032)", acq),
            ("ActualFrameDuration (0018,1242)", frame_s),
            ("FrameReferenceTime (0054,1300)", frame_ref_s),
        ) if v is None
    ]
    raise DicomError(
        "cannot find the decay-correction reference time: SeriesTime (0008,0031) is absent "
        "or after the acquisition, no GE private scan time, and "
        + ", ".join(missing or ["frame timing"]) + " missing: fix the header"
    )


def _injection(
    rp: Any, ov: SUVOverrides, scan: dt.datetime, ctx: _Ctx
) -> tuple[dt.datetime, str]:
    """Injection date-time; ``scan`` is the time it must precede (midnight rule)."""

    def on_scan_day(t: dt.time, src: str) -> tuple[dt.datetime, str]:
        inj = _combine(scan.date(), t)
        if inj > scan:
            inj -= dt.timedelta(days=1)
            ctx.heuristics.append(
                f"{src} {t.isoformat()} is after the scan time {scan.time().isoformat()} on "
                "the scan date: injection taken on the previous day (midnight crossing)"
            )
            src += " on the day before the scan (midnight crossing)"
        else:
            src += " on the scan date"
        return inj, src

    if isinstance(ov.injection_time, dt.datetime):
        return ov.injection_time.replace(tzinfo=None), "override injection_time"
    if isinstance(ov.injection_time, dt.time):
        return on_scan_day(ov.injection_time, "override injection_time")
    rp_dt = _get(rp, "RadiopharmaceuticalStartDateTime") if rp is not None else None
    rp_t = _get(rp, "RadiopharmaceuticalStartTime") if rp is not None else None
    if rp_dt is not None:
        inj = parse_dt(rp_dt, "RadiopharmaceuticalStartDateTime (0018,1078)")
        if rp_t is not None:
            t = parse_tm(rp_t, "RadiopharmaceuticalStartTime (0018,1072)")
            if t.replace(microsecond=0) != inj.time().replace(microsecond=0):
                ctx.heuristics.append(
                    f"RadiopharmaceuticalStartTime {t.isoformat()} differs from the time of "
                    f"RadiopharmaceuticalStartDateTime {inj.isoformat()}: the latter used"
                )
        return inj, "RadiopharmaceuticalStartDateTime (0018,1078)"
    if rp_t is not None:
        return on_scan_day(
            parse_tm(rp_t, "RadiopharmaceuticalStartTime (0018,1072)"),
            "RadiopharmaceuticalStartTime (0018,1072)",
        )
    raise DicomError(
        "RadiopharmaceuticalStartDateTime (0018,1078) and RadiopharmaceuticalStartTime "
        "(0018,1072) are both missing: give the injection time with --injection-time "
        "(injection_time)"
    )


def _elapsed_s(inj: dt.datetime, ref: dt.datetime, ref_name: str, ctx: _Ctx) -> float:
    elapsed = (ref - inj).total_seconds()
    if elapsed < 0:
        raise DicomError(
            f"injection time {inj.isoformat()} is after the {ref_name} {ref.isoformat()} "
            f"({-elapsed:.0f} s): RadiopharmaceuticalStartDateTime/Time (0018,1078/1072) "
            "contradicts the series times; give the injection time with --injection-time"
        )
    if elapsed > 86400:
        ctx.heuristics.append(
            f"{elapsed / 3600:.1f} h between injection and {ref_name}: check the dates"
        )
    return elapsed


def _check_corrections(ds: Any, units: str, dc: str | None, ctx: _Ctx) -> None:
    corrected = _get(ds, "CorrectedImage")
    if corrected is None:
        ctx.heuristics.append(
            "CorrectedImage (0028,0051) absent: attenuation and decay corrections assumed"
        )
        return
    values = [corrected] if isinstance(corrected, str) else list(corrected)
    flags = {str(c).strip().upper() for c in values}
    if "ATTN" not in flags:
        raise DicomError(
            f"the series is not attenuation corrected (CorrectedImage (0028,0051) = "
            f"{sorted(flags)} lacks ATTN): its values are not quantitative and no SUV can "
            "be computed; use the attenuation-corrected PET series"
        )
    if units in ("BQML", "CNTS") and dc is not None:
        if dc in ("START", "ADMIN") and "DECY" not in flags:
            raise DicomError(
                f"DecayCorrection (0054,1102) = {dc} contradicts CorrectedImage (0028,0051) "
                f"= {sorted(flags)}, which lacks DECY: fix the header"
            )
        if dc == "NONE" and "DECY" in flags:
            raise DicomError(
                "DecayCorrection (0054,1102) = NONE contradicts CorrectedImage (0028,0051), "
                "which lists DECY: fix the header"
            )


def _overrides(overrides: SUVOverrides | None, kwargs: dict[str, Any]) -> SUVOverrides:
    try:
        base = overrides.model_dump(exclude_none=True) if overrides is not None else {}
        base.update({k: v for k, v in kwargs.items() if v is not None})
        return SUVOverrides(**base)
    except ValidationError as exc:
        raise from_validation_error(exc, "SUV overrides") from None
    except TypeError as exc:
        raise InvalidParameterError(f"invalid SUV override: {exc}") from None


def _normalization(value: SUVNormalization | str) -> SUVNormalization:
    try:
        return SUVNormalization(str(getattr(value, "value", value)).lower())
    except ValueError:
        raise InvalidParameterError(
            f"unknown SUV normalization {value!r}: use one of "
            + ", ".join(n.value for n in SUVNormalization)
        ) from None


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------
def suv_factor(
    dataset: Any,
    normalization: SUVNormalization | str = "bw",
    overrides: SUVOverrides | None = None,
    *,
    reference_time_rule: ReferenceTimeRule | str = "qiba",
    series_start: dt.datetime | None = None,
    **override_values: Any,
) -> SUVFactor:
    """Factor that turns one PT slice's rescaled pixel values into SUV.

    Parameters
    ----------
    dataset
        A pydicom ``Dataset`` of one PET image slice (pixel data not needed).
    normalization
        ``"bw"`` (body weight, default), ``"lbm"`` (Morgan), ``"lbmjames128"``,
        ``"lbmjanma"`` (Janmahasatian), ``"bsa"`` (Du Bois) or ``"ibw"``.
    overrides
        An :class:`SUVOverrides`; or give its fields as keywords: ``weight_kg``,
        ``injected_dose_mbq``, ``injection_time``, ``height_cm``, ``sex``,
        ``half_life_s``. Overrides replace header values and are recorded.
    reference_time_rule
        ``"qiba"`` (default) or ``"backcompute"``, for DecayCorrection START.
    series_start
        Earliest AcquisitionDateTime of the series (supplied by :func:`load_pet`), the
        last-resort reference time when the slice lacks frame timing.

    Returns
    -------
    SUVFactor
        The factor itself (a ``float``): SUV = (RescaleSlope x stored value) x factor,
        in g/ml for bw/lbm/ibw and cm^2/ml for bsa; its ``.provenance`` is the
        :class:`SUVProvenance` record.

    Raises
    ------
    DicomError
        A required attribute is missing, implausible or contradicts another; the message
        names the attribute and the override that can supply it.

    Notes
    -----
    BQML, DecayCorrection START: ``factor = N / (D exp(-ln2 (t_ref - t_inj) / T_half))``
    with N the normalizer (body weight in g for SUVbw) and D the injected activity in Bq.
    NONE: ``factor = N / D * lam T / (1 - exp(-lam T)) * exp(lam (t_acq - t_inj))``.

    References
    ----------
    Vácha M, Hofheinz F, Braune A, Löck S, Zwanenburg A. Comprehensive manual for SUV
    computation and digital reference objects for its verification. OncoRay/HZDR, 2026
    (github.com/oncoray/suv_computation).

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.Units, ds.DecayCorrection = "BQML", "START"
    >>> ds.CorrectedImage = ["ATTN", "DECY"]
    >>> ds.SeriesDate, ds.SeriesTime = "20250101", "110000"
    >>> ds.AcquisitionDate, ds.AcquisitionTime = "20250101", "110000"
    >>> ds.PatientWeight = 70
    >>> rp = Dataset()
    >>> rp.RadionuclideTotalDose, rp.RadionuclideHalfLife = 368.08e6, 6586.2
    >>> rp.RadiopharmaceuticalStartTime = "100000"
    >>> ds.RadiopharmaceuticalInformationSequence = [rp]
    >>> factor = suv_factor(ds)
    >>> round(3600.0 * factor, 3)  # 3600 Bq/ml, one hour after injecting 368 MBq
    1.0
    >>> round(factor.provenance.decayed_dose_bq / 1e6, 1), factor.provenance.elapsed_s
    (252.0, 3600.0)
    """
    norm = _normalization(normalization)
    ov = _overrides(overrides, override_values)
    try:
        rule = ReferenceTimeRule(str(getattr(reference_time_rule, "value", reference_time_rule)))
    except ValueError:
        raise InvalidParameterError(
            f"unknown reference_time_rule {reference_time_rule!r}: use 'qiba' or 'backcompute'"
        ) from None
    ctx = _Ctx()
    units = str(_get(dataset, "Units") or "").upper()
    if not units:
        raise DicomError("Units (0054,1001) is missing: cannot interpret the PET values")
    intercept = _get(dataset, "RescaleIntercept")
    if intercept is not None and float(intercept) != 0.0:
        raise DicomError(
            f"RescaleIntercept (0028,1052) = {intercept}, but PET requires 0 (manual: "
            "exclude such series): fix or re-export the series"
        )
    dc_raw = _get(dataset, "DecayCorrection")
    dc = None if dc_raw is None else str(dc_raw).upper()
    _check_corrections(dataset, units, dc, ctx)
    patient = _Patient(dataset, ov, ctx)
    rp = _rp_info(dataset)
    info: dict[str, Any] = {"normalization": norm, "units": units, "decay_correction": dc}

    def done(factor: float, rule_text: str, **extra: Any) -> SUVFactor:
        if not (math.isfinite(factor) and factor > 0):
            raise DicomError(f"SUV factor {factor!r} is not a positive number: check the header")
        prov = SUVProvenance(
            factor=factor, rule=rule_text, weight_kg=patient.weight_kg,
            weight_source=patient.weight_source, height_m=patient.height_m, sex=patient.sex,
            heuristics=tuple(ctx.heuristics), **info, **extra,
        )
        return SUVFactor(factor, prov)

    unit_name = {SUVNormalization.BSA: "cm2"}.get(norm, "g")

    # ---- values that are already an SUV ----------------------------------------------
    if units in ("GML", "CM2ML"):
        stored_raw = _get(dataset, "SUVType")
        stored = None if stored_raw is None else str(stored_raw).upper()
        if units == "CM2ML":
            if stored not in (None, "BSA"):
                raise DicomError(
                    f"Units CM2ML (SUVbsa) contradicts SUVType (0054,1006) = {stored}: "
                    "fix the header"
                )
            if stored is None:
                ctx.heuristics.append("SUVType (0054,1006) absent with CM2ML: taken as BSA")
            stored = "BSA"
        else:
            if stored == "BSA":
                raise DicomError(
                    "Units GML contradicts SUVType (0054,1006) = BSA (SUVbsa is in CM2ML): "
                    "fix the header"
                )
            if stored is None:
                ctx.heuristics.append("SUVType (0054,1006) absent with GML: taken as BW")
                stored = "BW"
        try:
            stored_norm = SUVNormalization(stored.lower())
        except ValueError:
            raise DicomError(
                f"SUVType (0054,1006) = {stored!r} is not a DICOM SUV type (BW, LBM, "
                "LBMJAMES128, LBMJANMA, IBW, BSA): cannot interpret the values"
            ) from None
        info["suv_type_stored"] = stored
        if stored_norm is norm:
            return done(1.0, f"{units}: values are already SUV{norm.value}")
        n_to = patient.normalizer(norm)
        n_from = patient.normalizer(stored_norm)
        return done(
            n_to / n_from,
            f"{units}: stored SUV of type {stored} rescaled to SUV{norm.value} by the "
            "ratio of normalizers",
            normalizer=n_to, normalizer_unit=unit_name,
        )

    # ---- counts with Philips factors -------------------------------------------------
    to_bqml = 1.0
    if units == "CNTS":
        suv_sf = _private(dataset, 0x7053, 0x1000, _PHILIPS_CREATOR, "Philips")
        acsf = _private(dataset, 0x7053, 0x1009, _PHILIPS_CREATOR, "Philips")
        if suv_sf is not None and float(suv_sf) != 0.0:
            f = float(suv_sf)
            ctx.heuristics.append("Philips SUV scale factor taken as body-weight SUV")
            if norm is SUVNormalization.BW:
                return done(f, "CNTS: Philips SUV scale factor (7053,1000)")
            n_to, n_bw = patient.normalizer(norm), patient.normalizer(SUVNormalization.BW)
            return done(
                f * n_to / n_bw,
                f"CNTS: Philips SUV scale factor (7053,1000), rescaled to SUV{norm.value}",
                normalizer=n_to, normalizer_unit=unit_name,
            )
        if acsf is not None and float(acsf) != 0.0:
            to_bqml = float(acsf)
        else:
            raise DicomError(
                "Units CNTS without a non-zero Philips SUV scale factor (7053,1000) or "
                "activity concentration scale factor (7053,1009): counts cannot be turned "
                "into activity concentration; use a BQML export of the series"
            )
    elif units != "BQML":
        raise DicomError(
            f"Units (0054,1001) = {units!r} cannot be converted to SUV (supported: BQML, "
            "CNTS with Philips scale factors, GML, CM2ML): use a BQML export of the series"
        )
    prefix = "BQML" if units == "BQML" else (
        "CNTS x Philips activity concentration scale factor (7053,1009)"
    )

    # ---- activity concentration: dose, decay --------------------------------------------
    if dc is None:
        raise DicomError(
            "DecayCorrection (0054,1102) is missing: cannot tell to which time the activity "
            "refers; fix the header"
        )
    if dc not in ("START", "ADMIN", "NONE"):
        raise DicomError(
            f"DecayCorrection (0054,1102) = {dc!r} is not START, ADMIN or NONE: fix the header"
        )
    dose_bq, dose_src = _dose_bq(rp, ov, ctx)
    n_to = patient.normalizer(norm)
    info.update(injected_dose_bq=dose_bq, dose_source=dose_src, normalizer=n_to,
                normalizer_unit=unit_name)

    if dc == "ADMIN":
        inj = inj_src = None
        try:
            scan = _acquisition_datetime(dataset) or _series_datetime(dataset)
            if scan is not None:
                inj, inj_src = _injection(rp, ov, scan, _Ctx())
        except DicomError:
            inj = inj_src = None
        return done(
            to_bqml * n_to / dose_bq,
            f"{prefix}, DecayCorrection ADMIN: injected dose used without decay",
            reference_time_rule="injection time (ADMIN)", reference_datetime=inj,
            injection_datetime=inj, injection_source=inj_src, elapsed_s=0.0 if inj else None,
            decayed_dose_bq=dose_bq,
        )

    half_life, hl_src = _half_life(rp, ov, ctx)
    lam = math.log(2.0) / half_life
    info.update(half_life_s=half_life, half_life_source=hl_src)

    if dc == "START":
        ref, ref_rule = _reference_time(dataset, rule, lam, series_start, ctx)
        inj, inj_src = _injection(rp, ov, ref, ctx)
        elapsed = _elapsed_s(inj, ref, "reference time", ctx)
        decayed = dose_bq * math.exp(-lam * elapsed)
        return done(
            to_bqml * n_to / decayed,
            f"{prefix}, DecayCorrection START: dose decayed from injection to the "
            "reference time",
            reference_time_rule=ref_rule, reference_datetime=ref, injection_datetime=inj,
            injection_source=inj_src, elapsed_s=elapsed, decayed_dose_bq=decayed,
        )

    # DecayCorrection NONE: correct this slice's frame to the injection time
    acq = _acquisition_datetime(dataset)
    frame_s, _ = _frame_timing(dataset)
    if acq is None or not frame_s:
        missing = "AcquisitionTime (0008,0032)" if acq is None else (
            "ActualFrameDuration (0018,1242)"
        )
        raise DicomError(
            f"DecayCorrection NONE needs the frame start and duration, but {missing} is "
            "missing: fix the header"
        )
    inj, inj_src = _injection(rp, ov, acq, ctx)
    elapsed = _elapsed_s(inj, acq, "acquisition start", ctx)
    x = lam * frame_s
    decayed = dose_bq * math.exp(-lam * elapsed) * (-math.expm1(-x)) / x
    return done(
        to_bqml * n_to / decayed,
        f"{prefix}, DecayCorrection NONE: frame-average decay lam*T/(1-exp(-lam*T)) and "
        "decay from injection to the frame start applied to the values",
        reference_time_rule="injection time (values decay corrected to injection)",
        reference_datetime=inj, injection_datetime=inj, injection_source=inj_src,
        elapsed_s=elapsed, decayed_dose_bq=decayed,
    )
