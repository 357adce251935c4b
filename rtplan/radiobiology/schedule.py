"""Fractionation schedules, simultaneous-integrated-boost plans and the paper's presets."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    model_validator,
)

from rtplan.errors import InvalidParameterError, ScheduleParseError, from_validation_error
from rtplan.radiobiology.models import MAX_DOSE_GY, MAX_FRACTIONS

__all__ = [
    "PLAN_PRESETS",
    "PRESETS",
    "DoseLevel",
    "Fractionation",
    "PlanPreset",
    "SIBPlan",
    "get_preset",
    "parse_schedule",
]

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_GY = r"\s*(?:gy)?\s*"
_FX = r"\s*(?:fx|fractions?|f)?\s*"
# "37.5/5", "37.5 Gy / 5 fx", "37.5Gy/5fx"
_TOTAL_OVER_N = re.compile(rf"^{_NUM}{_GY}/\s*(\d+){_FX}$", re.IGNORECASE)
# "5x7.5", "5 x 7.5 Gy", "5 fx x 7.5Gy"
_N_TIMES_D = re.compile(rf"^(\d+){_FX}[x×*]\s*{_NUM}{_GY}$", re.IGNORECASE)
# "37.5 Gy in 5 fractions"
_TOTAL_IN_N = re.compile(rf"^{_NUM}{_GY}in\s+(\d+){_FX}$", re.IGNORECASE)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Fractionation(_Frozen):
    """A fractionation schedule: total dose in a whole number of equal fractions.

    The dose per fraction is kept exact (``total / fractions`` as a float), never
    rounded: 57.2 Gy in 34 fractions is 1.6823529... Gy per fraction.

    Parameters
    ----------
    total_dose_gy
        Total physical dose (Gy), >= 0.
    fractions
        Number of fractions, >= 1.

    Examples
    --------
    >>> f = Fractionation.parse("57.2/34")
    >>> f.total_dose_gy, f.fractions, round(f.dose_per_fraction_gy, 6)
    (57.2, 34, 1.682353)
    >>> Fractionation.parse("5x7.5") == Fractionation(total_dose_gy=37.5, fractions=5)
    True
    >>> str(Fractionation.parse("37.5Gy/5fx"))
    '37.5 Gy / 5 fx'
    """

    total_dose_gy: Annotated[float, Field(ge=0, allow_inf_nan=False, description="Gy")]
    fractions: Annotated[int, Field(ge=1, description="number of fractions")]

    @computed_field(description="Gy, exact total / fractions")  # type: ignore[prop-decorator]
    @property
    def dose_per_fraction_gy(self) -> float:
        """Dose per fraction (Gy), exact."""
        return self.total_dose_gy / self.fractions

    @classmethod
    def parse(cls, text: str) -> Fractionation:
        """Parse ``"37.5/5"``, ``"37.5Gy/5fx"``, ``"5x7.5"`` or ``"37.5 Gy in 5 fx"``."""
        return parse_schedule(text)

    @classmethod
    def from_dose_per_fraction(cls, dose_per_fraction_gy: float, fractions: int) -> Fractionation:
        """Schedule of ``fractions`` x ``dose_per_fraction_gy``.

        >>> Fractionation.from_dose_per_fraction(7.5, 5).total_dose_gy
        37.5
        """
        text = f"{fractions}x{dose_per_fraction_gy}"
        return _build(dose_per_fraction_gy * fractions, fractions, text)

    def label(self) -> str:
        """Compact label, e.g. ``37.5/5``."""
        return f"{self.total_dose_gy:g}/{self.fractions}"

    def __str__(self) -> str:
        return f"{self.total_dose_gy:g} Gy / {self.fractions} fx"


def _build(total: float, n: int, text: str) -> Fractionation:
    try:
        return Fractionation(total_dose_gy=total, fractions=n)
    except ValidationError as exc:
        raise from_validation_error(exc, f"schedule {text!r}") from None


def parse_schedule(text: str) -> Fractionation:
    """Parse a schedule string into a :class:`Fractionation`.

    Accepted forms (case-insensitive, spaces optional): ``TOTAL/N`` (``37.5/5``,
    ``37.5Gy/5fx``), ``NxDOSE`` (``5x7.5``, ``5 x 7.5 Gy``) and ``TOTAL Gy in N fx``.

    Raises
    ------
    ScheduleParseError
        If the text matches none of the forms.
    InvalidParameterError
        If it parses but the values are invalid (zero fractions).

    Examples
    --------
    >>> parse_schedule("27 Gy / 3 fx").dose_per_fraction_gy
    9.0
    >>> parse_schedule("37.5 in 5").fractions
    5
    >>> parse_schedule("3 fractions")
    Traceback (most recent call last):
    ...
    rtplan.errors.ScheduleParseError: cannot parse schedule '3 fractions': ...
    """
    if not isinstance(text, str):
        raise ScheduleParseError(f"a schedule must be text such as '37.5/5', got {text!r}")
    t = text.strip()
    if len(t) > 80:
        raise ScheduleParseError(
            f"schedule text of {len(t)} characters ({t[:20]!r}...) is too long: write "
            "TOTAL/N, e.g. 37.5/5"
        )
    if m := _TOTAL_OVER_N.match(t):
        total, n = float(m.group(1)), int(m.group(2))
    elif m := _N_TIMES_D.match(t):
        n, d = int(m.group(1)), float(m.group(2))
        total = d * n
    elif m := _TOTAL_IN_N.match(t):
        total, n = float(m.group(1)), int(m.group(2))
    else:
        if t.startswith("-") or "/-" in t.replace(" ", ""):
            raise InvalidParameterError(
                f"schedule {text!r} has a negative value: doses and fractions must be positive"
            )
        raise ScheduleParseError(
            f"cannot parse schedule {text!r}: write TOTAL/N (e.g. 37.5/5 or 37.5Gy/5fx), "
            "NxDOSE (e.g. 5x7.5) or 'TOTAL Gy in N fx'"
        )
    if n < 1 or n > MAX_FRACTIONS:
        raise InvalidParameterError(
            f"schedule {text!r} has {n} fractions: the number of fractions must be >= 1 "
            f"(and at most {MAX_FRACTIONS})"
        )
    if not total <= MAX_DOSE_GY:
        raise InvalidParameterError(
            f"schedule {text!r} has a total dose of {total:g} Gy: at most {MAX_DOSE_GY:g} Gy"
        )
    return _build(total, n, text)


class DoseLevel(_Frozen):
    """One prescription level of a plan (all levels share the plan's fractions).

    Parameters
    ----------
    name
        What receives it, e.g. ``"lesion"`` (boost) or ``"elective_nodes"``.
    total_dose_gy
        Total physical dose of the level (Gy).
    """

    name: Annotated[str, Field(min_length=1, max_length=64)]
    total_dose_gy: Annotated[float, Field(gt=0, allow_inf_nan=False, description="Gy")]


class SIBPlan(_Frozen):
    """A plan of one or more dose levels given in the same fractions (SIB).

    Each level's BED/EQD2 follows from its own dose per fraction
    (``level.total_dose_gy / fractions``); a boost level is *not* a separate course
    added to a base course.

    Examples
    --------
    >>> p = SIBPlan(name="eni_sib", fractions=34, levels=[
    ...     DoseLevel(name="lesion", total_dose_gy=61.2),
    ...     DoseLevel(name="elective_nodes", total_dose_gy=51.0)])
    >>> [round(s.dose_per_fraction_gy, 3) for s in p.schedules()]
    [1.8, 1.5]
    """

    name: Annotated[str, Field(min_length=1, max_length=64)]
    fractions: Annotated[int, Field(ge=1)]
    levels: Annotated[list[DoseLevel], Field(min_length=1)]
    description: str = ""

    @model_validator(mode="after")
    def _unique_levels(self) -> SIBPlan:
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"dose level names must be unique, got {names}")
        return self

    def schedules(self) -> list[Fractionation]:
        """One :class:`Fractionation` per level, in order."""
        return [
            Fractionation(total_dose_gy=lv.total_dose_gy, fractions=self.fractions)
            for lv in self.levels
        ]

    def level(self, name: str) -> Fractionation:
        """The schedule of the named level."""
        for lv in self.levels:
            if lv.name == name:
                return Fractionation(total_dose_gy=lv.total_dose_gy, fractions=self.fractions)
        raise InvalidParameterError(
            f"plan {self.name!r} has no level {name!r}; levels: "
            + ", ".join(lv.name for lv in self.levels)
        )

    @classmethod
    def single(cls, schedule: Fractionation, name: str | None = None) -> SIBPlan:
        """A one-level plan (the level is the lesion) from a schedule."""
        return cls(
            name=name or schedule.label(),
            fractions=schedule.fractions,
            levels=[DoseLevel(name="lesion", total_dose_gy=schedule.total_dose_gy)],
        )


class PlanPreset(_Frozen):
    """A named plan with its source."""

    key: str
    plan: SIBPlan
    source: str


_PAPER = (
    "PSMA-guided radiotherapy, Heidelberg cohort (shared/papers/"
    "psma-guided-radiotherapy-heidelberg.txt): 'the most commonly fractionation schedules "
    "were 27.0 Gy in 3 fractions and 37.5 Gy in 5 fractions for local irradiation as well "
    "as 51.0 Gy in 34 fractions for ENI including a simultaneous integrated boost to the "
    "PSMA-positive lesion (61.2 Gy or 57.2 Gy)'"
)


def _preset(key: str, description: str, fractions: int, **levels: float) -> PlanPreset:
    return PlanPreset(
        key=key,
        source=_PAPER,
        plan=SIBPlan(
            name=key,
            fractions=fractions,
            description=description,
            levels=[DoseLevel(name=k, total_dose_gy=v) for k, v in levels.items()],
        ),
    )


#: The four schedules of the paper, by key (plan presets; PET threshold presets are
#: :data:`rtplan.imaging.THRESHOLD_PRESETS`).
PLAN_PRESETS: dict[str, PlanPreset] = {
    p.key: p
    for p in (
        _preset("sbrt-27-3", "SBRT 27 Gy in 3 fractions", 3, lesion=27.0),
        _preset("sbrt-37.5-5", "SBRT 37.5 Gy in 5 fractions", 5, lesion=37.5),
        _preset(
            "eni-51-34-sib-61.2",
            "ENI 51 Gy in 34 fractions with SIB 61.2 Gy to the lesion",
            34,
            lesion=61.2,
            elective_nodes=51.0,
        ),
        _preset(
            "eni-51-34-sib-57.2",
            "ENI 51 Gy in 34 fractions with SIB 57.2 Gy to the lesion",
            34,
            lesion=57.2,
            elective_nodes=51.0,
        ),
    )
}
#: Alias of :data:`PLAN_PRESETS` (the name before 0.2).
PRESETS = PLAN_PRESETS


def get_preset(key: str) -> PlanPreset:
    """Look up a preset by key (case-insensitive).

    Examples
    --------
    >>> get_preset("SBRT-27-3").plan.levels[0].total_dose_gy
    27.0
    """
    k = key.strip().lower()
    if k not in PLAN_PRESETS:
        raise InvalidParameterError(
            f"unknown preset {key!r}: choose one of {', '.join(PLAN_PRESETS)} "
            "(see 'rtplan presets')"
        )
    return PLAN_PRESETS[k]
