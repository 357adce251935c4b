"""Cohort records (pydantic models) and their CSV/JSON loaders.

Every record is validated where it enters. A bad row raises
:class:`~rtplan.errors.RecordError` naming the file, the row and the field; rows are
never dropped silently. Dates become months as days / 30.4375 (one twelfth of a
Julian year: 365.25 / 12 days).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rtplan._shared.jsonio import check_input_file, load_json, read_text
from rtplan.errors import InputError, RecordError

__all__ = [
    "DAYS_PER_MONTH",
    "ENDPOINTS",
    "Cohort",
    "InitialTreatment",
    "LesionRecord",
    "PatientRecord",
    "PsaRecord",
    "Relapse",
    "ToxicityRecord",
    "days_to_months",
    "load_cohort",
    "load_lesions",
    "load_psa",
    "load_toxicity",
]

#: Days per month used to turn dates into months (365.25 / 12).
DAYS_PER_MONTH = 30.4375
#: Time-to-event endpoints of a patient record.
ENDPOINTS: tuple[str, ...] = ("os", "bpfs", "adt_free")

#: Longest follow-up accepted (months): 100 years; larger values are data errors.
MAX_MONTHS = 1200.0
#: Largest PSA (ng/ml) or SUV accepted; larger values are data errors (or wrong units).
MAX_VALUE = 1e6
Months = Annotated[float, Field(ge=0, le=MAX_MONTHS, allow_inf_nan=False)]
EventFlag = Literal[0, 1]
NonNegative = Annotated[float, Field(ge=0, le=MAX_VALUE, allow_inf_nan=False)]


def days_to_months(days: float) -> float:
    """Convert days to months (days / 30.4375).

    Examples
    --------
    >>> days_to_months(365.25)
    12.0
    """
    return float(days) / DAYS_PER_MONTH


class InitialTreatment(StrEnum):
    """Primary treatment before the relapse."""

    surgery = "surgery"
    radiotherapy = "radiotherapy"
    other = "other"


class Relapse(StrEnum):
    """Which relapse the metastasis-directed therapy treats."""

    first = "first"
    second = "second"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class _FieldError(ValueError):
    """A record-level validation error that names the offending field(s)."""

    def __init__(self, fields: str | Sequence[str], message: str) -> None:
        super().__init__(message)
        self.fields: tuple[str, ...] = (fields,) if isinstance(fields, str) else tuple(fields)


#: Tolerance when comparing times given in months (one day).
_ONE_DAY_MONTHS = 1.0 / DAYS_PER_MONTH


class PatientRecord(_Record):
    """One patient of the cohort (one row of the cohort file).

    Times are in months. Each patient needs follow-up given either as **times**
    (``os_months``/``os_event``, likewise ``bpfs_*`` and ``adt_free_*``; 1 = event,
    0 = censored) or as **dates** (``rt_start_date`` with ``last_follow_up_date``
    and/or ``death_date``, optionally ``adt_start_date``); months = days / 30.4375.
    When both are given they must agree to within one day.

    Date rules (a violation raises an error naming the field):

    - every date is on or after ``rt_start_date``; ``adt_start_date`` strictly after:
      it is the start of ADT *after* RT (salvage or palliative ADT, the event of
      ADT-free survival). ADT given with RT is recorded by ``adt_concomitant``; an
      ``adt_start_date`` on or before RT start is an error;
    - nothing happens after death: ``last_follow_up_date`` and ``adt_start_date`` are
      on or before ``death_date`` (a last follow-up before the death date is allowed:
      the death may be learnt from a registry after the last visit);
    - ``adt_start_date`` is on or before ``last_follow_up_date`` (the last contact);
    - with dates, ``os_event`` / ``adt_free_event`` may be given without months but must
      match the dates (``os_event`` = 1 needs ``death_date``).

    Explicit ``bpfs_months`` and ``adt_free_months`` may not exceed the end of follow-up
    (OS time) by more than one day.

    Examples
    --------
    >>> p = PatientRecord(patient_id="P1", fractions=5, total_dose_gy=37.5,
    ...                   rt_start_date="2019-01-01", last_follow_up_date="2021-01-01")
    >>> p.endpoint("os")
    (24.016..., 0)
    >>> PatientRecord(patient_id="P2", fractions=5, total_dose_gy=37.5,
    ...               rt_start_date="2019-01-01", last_follow_up_date="2021-01-01",
    ...               adt_start_date="2018-12-01")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for PatientRecord
      Value error, adt_start_date 2018-12-01 is on or before rt_start_date 2019-01-01: ...
    ...
    """

    patient_id: str = Field(min_length=1)
    fractions: int = Field(ge=1, le=100, description="number of radiotherapy fractions")
    total_dose_gy: float = Field(gt=0, le=200, allow_inf_nan=False, description="Gy")
    os_months: Months | None = None
    os_event: EventFlag | None = None
    bpfs_months: Months | None = None
    bpfs_event: EventFlag | None = None
    adt_free_months: Months | None = None
    adt_free_event: EventFlag | None = None
    rt_start_date: dt.date | None = None
    last_follow_up_date: dt.date | None = Field(
        None, description="last contact (alive); on or before death_date"
    )
    death_date: dt.date | None = None
    adt_start_date: dt.date | None = Field(
        None,
        description="start of ADT after RT (salvage/palliative), strictly after "
        "rt_start_date; ADT given with RT is recorded by adt_concomitant",
    )
    adt_concomitant: bool | None = Field(
        None, description="ADT given concomitantly with RT (started before or at RT start)"
    )
    eni: bool | None = Field(None, description="elective nodal irradiation")
    initial_treatment: InitialTreatment | None = None
    relapse: Relapse | None = None
    ipsa_ng_ml: NonNegative | None = Field(None, description="initial PSA at diagnosis")
    gleason: int | None = Field(None, ge=2, le=10)
    t_stage: str | None = Field(None, pattern=r"^(c|p)?T[0-4x]([abc])?$")
    psa_pre_ng_ml: NonNegative | None = Field(None, description="PSA before RT")
    psa_3m_ng_ml: NonNegative | None = Field(None, description="PSA 3 months after RT")

    @model_validator(mode="after")
    def _consistent(self) -> PatientRecord:
        self._check_dates()
        self._check_time_event_pairs()
        self._check_has_follow_up()
        self._check_times_against_dates()
        return self

    def _check_dates(self) -> None:
        start = self.rt_start_date
        dates = {
            "last_follow_up_date": self.last_follow_up_date,
            "death_date": self.death_date,
            "adt_start_date": self.adt_start_date,
        }
        if start is None:
            for name, d in dates.items():
                if d is not None:
                    raise _FieldError(
                        ("rt_start_date", name),
                        f"{name} {d} is given without rt_start_date, so it cannot be turned "
                        "into months: add rt_start_date",
                    )
            return
        for name, d in dates.items():
            if d is not None and d < start and name != "adt_start_date":
                what = "censoring" if name == "last_follow_up_date" else name[:-5]
                raise _FieldError(
                    name,
                    f"{name} {d} is before rt_start_date {start} ({what} before RT start): "
                    "check both dates",
                )
        adt = self.adt_start_date
        if adt is not None and adt <= start:
            raise _FieldError(
                "adt_start_date",
                f"adt_start_date {adt} is on or before rt_start_date {start}: "
                "adt_start_date is the start of ADT after RT (salvage or palliative), the "
                "event of ADT-free survival. ADT given with RT is recorded as "
                "adt_concomitant = yes; leave adt_start_date empty unless ADT was started "
                "(again) after RT",
            )
        death, last = self.death_date, self.last_follow_up_date
        if death is not None:
            if last is not None and last > death:
                raise _FieldError(
                    "last_follow_up_date",
                    f"last_follow_up_date {last} is after death_date {death} (follow-up "
                    "after death): the last follow-up is the last contact alive, on or "
                    "before the death date; check both dates",
                )
            if adt is not None and adt > death:
                raise _FieldError(
                    "adt_start_date",
                    f"adt_start_date {adt} is after death_date {death} (ADT started after "
                    "death): check both dates",
                )
        if adt is not None and last is not None and adt > last:
            raise _FieldError(
                "adt_start_date",
                f"adt_start_date {adt} is after last_follow_up_date {last}: the last "
                "follow-up is the last contact and cannot precede a known ADT start; "
                "update last_follow_up_date",
            )

    def _check_time_event_pairs(self) -> None:
        dated = self.rt_start_date is not None
        for ep in ENDPOINTS:
            months, event = getattr(self, f"{ep}_months"), getattr(self, f"{ep}_event")
            if months is not None and event is None:
                raise _FieldError(
                    f"{ep}_event",
                    f"{ep}_months is given without {ep}_event: give both (1 = event, "
                    "0 = censored) or neither",
                )
            if event is None or months is not None:
                continue
            if not dated or ep == "bpfs":
                raise _FieldError(
                    f"{ep}_months",
                    f"{ep}_event is given without {ep}_months: give both or neither"
                    + ("" if ep == "bpfs" else " (or dates from rt_start_date)"),
                )
            derived = self._from_dates(ep)
            if ep == "os":
                if event == 1 and self.death_date is None:
                    raise _FieldError(
                        "death_date",
                        "os_event = 1 (death) but death_date is empty: give the date of "
                        "death (or os_months)",
                    )
                if derived is None:
                    raise _FieldError(
                        "last_follow_up_date",
                        "os_event = 0 (censored) but last_follow_up_date is empty: give the "
                        "date of the last follow-up (or os_months)",
                    )
            elif event == 1 and self.adt_start_date is None and self.death_date is None:
                raise _FieldError(
                    ("adt_start_date", "death_date"),
                    "adt_free_event = 1 but adt_start_date and death_date are empty: give "
                    "the date of ADT start or death (or adt_free_months)",
                )
            if derived is not None and derived[1] != event:
                raise _FieldError(
                    f"{ep}_event",
                    f"{ep}_event = {event} disagrees with the dates (which give "
                    f"{derived[1]}): fix the event or the dates",
                )

    def _check_has_follow_up(self) -> None:
        has_times = any(getattr(self, f"{ep}_months") is not None for ep in ENDPOINTS)
        has_dates = self.rt_start_date is not None and (
            self.last_follow_up_date is not None or self.death_date is not None
        )
        if not (has_times or has_dates):
            raise _FieldError(
                ("os_months", "rt_start_date", "last_follow_up_date"),
                "no follow-up: give times (os_months with os_event, and/or bpfs_* / "
                "adt_free_*) or dates (rt_start_date with last_follow_up_date and/or "
                "death_date)",
            )

    def _check_times_against_dates(self) -> None:
        for ep in ("os", "adt_free"):
            given = getattr(self, f"{ep}_months")
            derived = self._from_dates(ep)
            if given is not None and derived is not None:
                if abs(given - derived[0]) > _ONE_DAY_MONTHS + 1e-9 or (
                    getattr(self, f"{ep}_event") != derived[1]
                ):
                    raise _FieldError(
                        f"{ep}_months",
                        f"{ep}_months/{ep}_event ({given}, {getattr(self, f'{ep}_event')}) "
                        f"disagree with the dates ({derived[0]:.2f}, {derived[1]}): fix one "
                        "or leave the times empty",
                    )
        os_ = self.endpoint("os")
        if os_ is None:
            return
        for ep in ("bpfs", "adt_free"):
            m = getattr(self, f"{ep}_months")
            if m is not None and m > os_[0] + _ONE_DAY_MONTHS + 1e-9:
                end = "death" if os_[1] == 1 else "the last follow-up"
                raise _FieldError(
                    f"{ep}_months",
                    f"{ep}_months {m} is after the end of follow-up ({end} at "
                    f"{os_[0]:.2f} months): no time can exceed the OS time; check both",
                )

    def _from_dates(self, endpoint: str) -> tuple[float, int] | None:
        start = self.rt_start_date
        if start is None:
            return None
        end_fu = self.last_follow_up_date
        if endpoint == "os":
            if self.death_date is not None:
                return days_to_months((self.death_date - start).days), 1
            if end_fu is None:
                return None
            return days_to_months((end_fu - start).days), 0
        if endpoint == "adt_free":
            events = [d for d in (self.adt_start_date, self.death_date) if d is not None]
            if events:
                return days_to_months((min(events) - start).days), 1
            if end_fu is None:
                return None
            return days_to_months((end_fu - start).days), 0
        return None

    def endpoint(self, name: str) -> tuple[float, int] | None:
        """(months, event) of an endpoint (``os``, ``bpfs``, ``adt_free``), or None.

        Explicit times win; otherwise OS and ADT-free survival come from the dates:
        OS ends at death (event) or last follow-up (censored); ADT-free survival ends
        at the start of ADT or death, whichever is first (event), or last follow-up.
        bPFS from a PSA series is derived by :func:`rtplan.outcomes.bpfs_from_psa`.
        """
        if name not in ENDPOINTS:
            raise InputError(f"unknown endpoint {name!r}: choose one of {list(ENDPOINTS)}")
        months = getattr(self, f"{name}_months")
        if months is not None:
            return float(months), int(getattr(self, f"{name}_event"))
        return self._from_dates(name)

    @property
    def follow_up_months(self) -> float | None:
        """Months from RT start to last follow-up (or death), if known."""
        os_ = self.endpoint("os")
        return None if os_ is None else os_[0]


class PsaRecord(_Record):
    """One PSA value: ``days`` after RT start (negative = before) or a ``date``.

    Examples
    --------
    >>> PsaRecord(patient_id="P1", days=90, psa_ng_ml=0.4).psa_ng_ml
    0.4
    """

    patient_id: str = Field(min_length=1)
    date: dt.date | None = None
    days: float | None = Field(None, allow_inf_nan=False)
    psa_ng_ml: NonNegative

    @model_validator(mode="after")
    def _one_time(self) -> PsaRecord:
        if (self.date is None) == (self.days is None):
            raise _FieldError(
                ("date", "days"), "give exactly one of date or days (days after RT start)"
            )
        return self


class ToxicityRecord(_Record):
    """A CTCAE v5 grade (0-5) of one domain at one timepoint; None = not assessed.

    Examples
    --------
    >>> ToxicityRecord(patient_id="P1", timepoint="3 months", domain="GU", grade=None).grade
    """

    patient_id: str = Field(min_length=1)
    timepoint: str = Field(min_length=1)
    domain: str = Field(min_length=1)
    grade: int | None = Field(None, ge=0, le=5)


class LesionRecord(_Record):
    """SUVmax of one irradiated lesion before and after RT (either may be unknown).

    Examples
    --------
    >>> LesionRecord(patient_id="P1", site="bone", suvmax_pre=7.4, suvmax_post=0).site
    'bone'
    """

    patient_id: str = Field(min_length=1)
    site: str = Field(min_length=1)
    suvmax_pre: NonNegative | None = None
    suvmax_post: NonNegative | None = None


class Cohort(BaseModel):
    """A validated cohort: patients plus optional PSA, toxicity and lesion tables.

    Examples
    --------
    >>> c = Cohort(patients=[PatientRecord(patient_id="A", fractions=3, total_dose_gy=27,
    ...                                    os_months=12, os_event=0)])
    >>> c.endpoint_arrays("os")[0].tolist()
    [12.0]
    """

    model_config = ConfigDict(frozen=True)

    patients: tuple[PatientRecord, ...]
    psa: tuple[PsaRecord, ...] = ()
    toxicity: tuple[ToxicityRecord, ...] = ()
    lesions: tuple[LesionRecord, ...] = ()

    @model_validator(mode="after")
    def _ids(self) -> Cohort:
        seen: set[str] = set()
        for p in self.patients:
            if p.patient_id in seen:
                raise ValueError(f"patient_id {p.patient_id!r} appears more than once")
            seen.add(p.patient_id)
        return self

    def patient(self, patient_id: str) -> PatientRecord:
        """The record of ``patient_id`` (KeyError if absent)."""
        for p in self.patients:
            if p.patient_id == patient_id:
                return p
        raise KeyError(patient_id)

    def endpoint_arrays(self, name: str) -> tuple[Any, Any, list[str]]:
        """(months, events, patient_ids) of patients with data for endpoint ``name``."""
        import numpy as np

        rows: list[tuple[str, tuple[float, int]]] = []
        for p in self.patients:
            v = p.endpoint(name)
            if v is not None:
                rows.append((p.patient_id, v))
        t = np.array([v[0] for _, v in rows], dtype=np.float64)
        e = np.array([v[1] for _, v in rows], dtype=np.int64)
        return t, e, [pid for pid, _ in rows]


# ------------------------------------------------------------------------- loaders

M = TypeVar("M", bound=BaseModel)


def _read_rows(path: Path, list_key: str) -> tuple[list[dict[str, Any]], int]:
    """Rows of a CSV (header line) or JSON (list, or object with ``list_key``) file.

    Returns the rows and the line number of the first data row (CSV) or 0 (JSON).
    """
    check_input_file(path, "file")  # missing, folder, FIFO, /dev/null: said precisely
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = load_json(path, "file")
        if isinstance(data, Mapping):
            if list_key not in data:
                raise InputError(
                    f"file '{path}': JSON object has no '{list_key}' list; give a list of "
                    f"records or {{\"{list_key}\": [...]}}"
                )
            data = data[list_key]
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise InputError(f"file '{path}': expected a list of records (JSON objects)")
        return [dict(r) for r in data], 0
    if suffix in (".csv", ".tsv", ".txt"):
        text = read_text(path, "file")
        delim = "\t" if suffix == ".tsv" else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delim)
        try:
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
            rows = []
            for row in reader:
                if None in row:
                    raise RecordError(
                        f"file '{path}', line {reader.line_num}: more values than the "
                        f"{len(reader.fieldnames or [])} header columns"
                    )
                if all((v or "").strip() == "" for v in row.values()):
                    continue  # blank line
                rows.append({k.strip(): v for k, v in row.items()})
        except csv.Error as exc:
            raise InputError(
                f"file '{path}', line {reader.line_num}: not a readable CSV table ({exc})"
            ) from None
        dups = sorted({h for h in header if header.count(h) > 1})
        if dups:
            raise InputError(
                f"file '{path}': header column(s) {dups} appear more than once: which value "
                "counts would be a guess; keep one column of each name"
            )
        return rows, 2
    raise InputError(f"file '{path}': unsupported extension '{suffix}': use .csv or .json")


def _clean_csv_value(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s == "" or s.upper() in ("NA", "NAN", "NULL"):
            return None
        return s
    return v


def _coerce(model: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _clean_csv_value(v) for k, v in row.items()}
    for name in model.model_fields:
        v = out.get(name)
        if isinstance(v, str) and name.endswith("_event") and v in ("0", "1", "0.0", "1.0"):
            out[name] = int(float(v))
    return {k: v for k, v in out.items() if v is not None}


def _describe(path: Path, index: int, first_line: int, row: Mapping[str, Any]) -> str:
    where = f"row {index + 1}"
    if first_line:
        where += f" (line {index + first_line})"
    pid = row.get("patient_id")
    if pid:
        where += f", patient {str(pid).strip()!r}"
    return f"file '{path}', {where}"


def _validate_rows(
    model: type[M], path: Path, rows: Sequence[dict[str, Any]], first_line: int
) -> list[M]:
    out = []
    for i, raw in enumerate(rows):
        try:
            out.append(model.model_validate(_coerce(model, raw)))
        except ValidationError as exc:
            parts = []
            for err in exc.errors():
                loc = [str(x) for x in err.get("loc", ())]
                cause = (err.get("ctx") or {}).get("error")
                fields: tuple[str, ...]
                if loc:
                    fields = (loc[0],)
                elif isinstance(cause, _FieldError):
                    fields = cause.fields
                else:
                    fields = ("(record)",)
                msg = err.get("msg", "invalid value").removeprefix("Value error, ")
                given = raw.get(fields[0]) if loc else None
                shown = repr(given) if not isinstance(given, str) or len(given) <= 60 else (
                    f"{given[:20]!r}... ({len(given)} characters)")
                got = f" (got {shown})" if given not in (None, "") else ""
                if err.get("type") == "extra_forbidden":
                    msg = (
                        f"unknown column; known columns are {sorted(model.model_fields)}"
                    )
                label = "field" if len(fields) == 1 else "fields"
                parts.append(f"{label} {', '.join(repr(f) for f in fields)}: {msg}{got}")
            where = _describe(path, i, first_line, raw)
            raise RecordError(f"{where}: " + "; ".join(parts)) from None
    return out


def load_cohort(path: str | os.PathLike[str]) -> Cohort:
    """Load patients from a CSV or JSON file into a validated :class:`Cohort`.

    Parameters
    ----------
    path
        ``.csv`` with a header row, or ``.json`` holding a list of records or
        ``{"patients": [...]}``. Empty cells and ``NA`` are missing values.

    Raises
    ------
    RecordError
        A row is invalid; the message names file, row (and CSV line), patient and field.
    InputError
        The file is missing, unreadable or of an unknown type.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = p.write_text("patient_id,fractions,total_dose_gy,os_months,os_event\\n"
    ...                  "P1,5,37.5,30.0,0\\nP2,3,27,-1,1\\n")
    >>> load_cohort(p)
    Traceback (most recent call last):
    ...
    rtplan.errors.RecordError: file '...c.csv', row 2 (line 3), patient 'P2': field 'os_months': ...
    """
    p = Path(path)
    rows, first = _read_rows(p, "patients")
    if not rows:
        raise InputError(f"file '{p}' has no patient rows")
    patients = _validate_rows(PatientRecord, p, rows, first)
    seen: dict[str, int] = {}
    for i, rec in enumerate(patients):
        if rec.patient_id in seen:
            raise RecordError(
                f"{_describe(p, i, first, rows[i])}: field 'patient_id': duplicate of row "
                f"{seen[rec.patient_id] + 1}; patient ids must be unique"
            )
        seen[rec.patient_id] = i
    return Cohort(patients=tuple(patients))


def _check_known(
    path: Path, rows: Sequence[dict[str, Any]], first: int, records: Iterable[Any], cohort: Cohort
) -> None:
    ids = {p.patient_id for p in cohort.patients}
    for i, rec in enumerate(records):
        if rec.patient_id not in ids:
            raise RecordError(
                f"{_describe(path, i, first, rows[i])}: field 'patient_id': "
                f"{rec.patient_id!r} is not in the cohort file; add the patient or fix the id"
            )


def load_psa(path: str | os.PathLike[str], cohort: Cohort) -> tuple[PsaRecord, ...]:
    """Load a long PSA table (``patient_id``, ``date`` or ``days``, ``psa_ng_ml``).

    Dates are turned into days after the patient's ``rt_start_date`` (which must
    then be known). A PSA value after the patient's death (``death_date``, or
    ``os_months`` with ``os_event`` = 1, within one day) is an error. Raises
    :class:`RecordError` naming file, row and field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "c.csv").write_text("patient_id,fractions,total_dose_gy,rt_start_date,"
    ...                              "last_follow_up_date\\nP1,5,37.5,2020-01-01,2021-01-04\\n")
    >>> _ = (d / "psa.csv").write_text("patient_id,date,days,psa_ng_ml\\n"
    ...                                "P1,,-7,2.4\\nP1,2020-04-01,,0.3\\n")
    >>> [(r.days, r.psa_ng_ml) for r in load_psa(d / "psa.csv", load_cohort(d / "c.csv"))]
    [(-7.0, 2.4), (91.0, 0.3)]
    """
    p = Path(path)
    rows, first = _read_rows(p, "psa")
    recs = _validate_rows(PsaRecord, p, rows, first)
    _check_known(p, rows, first, recs, cohort)
    out = []
    for i, r in enumerate(recs):
        if r.date is not None:
            start = cohort.patient(r.patient_id).rt_start_date
            if start is None:
                raise RecordError(
                    f"{_describe(p, i, first, rows[i])}: field 'date': the patient has no "
                    "rt_start_date in the cohort file, so the date cannot be placed; give "
                    "'days' after RT start instead"
                )
            r = PsaRecord(patient_id=r.patient_id, days=float((r.date - start).days),
                          psa_ng_ml=r.psa_ng_ml)
        death = _death_day(cohort.patient(r.patient_id))
        if death is not None and r.days is not None and r.days > death[0] + death[1]:
            field = "date" if recs[i].date is not None else "days"
            raise RecordError(
                f"{_describe(p, i, first, rows[i])}: field '{field}': PSA measured on day "
                f"{r.days:g} after RT start, after the patient's death on day {death[0]:g} "
                "(cohort file): check the PSA date or the death date"
            )
        out.append(r)
    return tuple(out)


def _death_day(patient: PatientRecord) -> tuple[float, float] | None:
    """Day of death after RT start and its uncertainty in days, or None if alive/unknown.

    From ``death_date`` (exact: uncertainty 0) or from ``os_months`` with ``os_event``
    = 1 (days = months x 30.4375, uncertainty one day for rounded months).

    Examples
    --------
    >>> p = PatientRecord(patient_id="P", fractions=5, total_dose_gy=35,
    ...                   rt_start_date="2020-01-01", death_date="2020-03-01")
    >>> _death_day(p)
    (60.0, 0.0)
    """
    if patient.rt_start_date is not None and patient.death_date is not None:
        return float((patient.death_date - patient.rt_start_date).days), 0.0
    os_ = patient.endpoint("os")
    if os_ is not None and os_[1] == 1:
        return os_[0] * DAYS_PER_MONTH, 1.0
    return None


def load_toxicity(path: str | os.PathLike[str], cohort: Cohort) -> tuple[ToxicityRecord, ...]:
    """Load a long toxicity table (``patient_id``, ``timepoint``, ``domain``, ``grade``).

    An empty grade means "not assessed" (kept apart from grade 0).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "c.csv").write_text("patient_id,fractions,total_dose_gy,os_months,os_event\\n"
    ...                              "P1,5,37.5,24,0\\n")
    >>> _ = (d / "tox.csv").write_text("patient_id,timepoint,domain,grade\\n"
    ...                                "P1,3 months,GU,0\\nP1,3 months,GI,\\n")
    >>> [(r.domain, r.grade) for r in load_toxicity(d / "tox.csv", load_cohort(d / "c.csv"))]
    [('GU', 0), ('GI', None)]
    """
    p = Path(path)
    rows, first = _read_rows(p, "toxicity")
    recs = _validate_rows(ToxicityRecord, p, rows, first)
    _check_known(p, rows, first, recs, cohort)
    return tuple(recs)


def load_lesions(path: str | os.PathLike[str], cohort: Cohort) -> tuple[LesionRecord, ...]:
    """Load a lesion table (``patient_id``, ``site``, ``suvmax_pre``, ``suvmax_post``).

    An empty SUVmax is unknown (None). Lesions of patients absent from ``cohort`` raise
    :class:`RecordError` naming file, row and field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "c.csv").write_text("patient_id,fractions,total_dose_gy,os_months,os_event\\n"
    ...                              "P1,5,37.5,24,0\\n")
    >>> _ = (d / "les.csv").write_text("patient_id,site,suvmax_pre,suvmax_post\\n"
    ...                                "P1,bone,7.4,1.2\\nP1,pelvic_node,5.0,\\n")
    >>> [(r.site, r.suvmax_pre, r.suvmax_post)
    ...  for r in load_lesions(d / "les.csv", load_cohort(d / "c.csv"))]
    [('bone', 7.4, 1.2), ('pelvic_node', 5.0, None)]
    """
    p = Path(path)
    rows, first = _read_rows(p, "lesions")
    recs = _validate_rows(LesionRecord, p, rows, first)
    _check_known(p, rows, first, recs, cohort)
    return tuple(recs)
