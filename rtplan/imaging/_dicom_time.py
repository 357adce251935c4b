"""Parsing of DICOM DA / TM / DT values into :mod:`datetime` objects.

Time-zone suffixes (``&ZZXX``) are dropped: SUV needs differences between times that
one scanner wrote, which share one clock. Old ACR-NEMA ``HH:MM:SS`` times are accepted.
"""

from __future__ import annotations

import datetime as dt
import re

from rtplan.errors import DicomError

__all__ = ["parse_da", "parse_dt", "parse_tm"]

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")


def parse_da(value: object, what: str) -> dt.date:
    """Parse a DA value ``YYYYMMDD`` (``YYYY.MM.DD`` also accepted).

    >>> parse_da("20250101", "SeriesDate")
    datetime.date(2025, 1, 1)
    """
    s = str(value).strip().replace(".", "").replace("-", "")
    m = _DA.match(s)
    if not m:
        raise DicomError(f"{what} {value!r} is not a DICOM date YYYYMMDD: fix the header")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise DicomError(f"{what} {value!r} is not a valid date: {exc}") from None


def parse_tm(value: object, what: str) -> dt.time:
    """Parse a TM value ``HH[MM[SS[.ffffff]]]`` (``HH:MM:SS`` also accepted).

    >>> parse_tm("233000.5", "RadiopharmaceuticalStartTime")
    datetime.time(23, 30, 0, 500000)
    """
    s = str(value).strip().replace(":", "")
    m = _TM.match(s)
    if not m:
        raise DicomError(f"{what} {value!r} is not a DICOM time HHMMSS.ffffff: fix the header")
    frac = int((m[4] or "0").ljust(6, "0"))
    try:
        return dt.time(int(m[1]), int(m[2] or 0), min(int(m[3] or 0), 59), frac)
    except ValueError as exc:
        raise DicomError(f"{what} {value!r} is not a valid time: {exc}") from None


def parse_dt(value: object, what: str) -> dt.datetime:
    """Parse a DT value ``YYYYMMDDHHMMSS.ffffff[&ZZXX]`` (offset dropped).

    >>> parse_dt("20250101100000.000000+0100", "RadiopharmaceuticalStartDateTime")
    datetime.datetime(2025, 1, 1, 10, 0)
    """
    s = str(value).strip()
    m = _DT.match(s)
    if not m or m[3] is None:
        raise DicomError(
            f"{what} {value!r} is not a DICOM date-time YYYYMMDDHHMMSS: fix the header"
        )
    frac = int((m[7] or "0").ljust(6, "0"))
    try:
        return dt.datetime(
            int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0), int(m[5] or 0),
            min(int(m[6] or 0), 59), frac,
        )
    except ValueError as exc:
        raise DicomError(f"{what} {value!r} is not a valid date-time: {exc}") from None
