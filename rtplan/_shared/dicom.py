"""Small DICOM helpers shared by the CT and RTSTRUCT writers."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rtplan.errors import DicomError

__all__ = ["ds_bytes", "ds_strings", "format_ds"]

#: DICOM limits a Decimal String (DS) value to 16 characters.
DS_MAX_CHARS = 16


def format_ds(value: float, decimals: int = 6) -> str:
    """Format a number as a DICOM Decimal String of at most 16 characters.

    Uses fixed notation with up to ``decimals`` decimals (trailing zeros removed),
    dropping decimals until the text fits DICOM's 16-character limit.

    Parameters
    ----------
    value
        The number (e.g. a coordinate in mm).
    decimals
        Most decimals to keep (6: a micrometre in mm is 3).

    Examples
    --------
    >>> format_ds(-123.456789012345)
    '-123.456789'
    >>> format_ds(1.0), format_ds(-0.0000001)
    ('1', '0')
    >>> len(format_ds(-12345678.123456789)) <= 16
    True
    """
    v = float(value)
    if not math.isfinite(v):
        raise DicomError(f"cannot write {value!r} as a DICOM decimal string: give finite numbers")
    for d in range(decimals, -1, -1):
        s = f"{v:.{d}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
        if len(s) <= DS_MAX_CHARS:
            return s
    s = f"{v:.8e}"
    if len(s) > DS_MAX_CHARS:
        raise DicomError(f"cannot write {value!r} in 16 characters as a DICOM decimal string")
    return s


def ds_strings(values: Iterable[float], decimals: int = 6) -> list[str]:
    """Format many numbers with :func:`format_ds` (a DS multi-value).

    Examples
    --------
    >>> ds_strings([0.5, 1 / 3])
    ['0.5', '0.333333']
    """
    return [format_ds(v, decimals) for v in values]


def ds_bytes(values: Iterable[float], decimals: int = 6) -> bytes:
    """A DS multi-value as the bytes DICOM stores: backslash-separated, even length.

    Same text as :func:`ds_strings`, but fast for the many values of contour data:
    numbers below 1e8 in magnitude always fit 16 characters with 6 decimals.

    Examples
    --------
    >>> ds_bytes([1.5, 2.5])  # padded to an even length
    b'1.5\\\\2.5 '
    >>> ds_bytes([-0.0000001, 2 / 3])
    b'0\\\\0.666667'
    """
    vals = [float(v) for v in values]
    if decimals == 6 and all(math.isfinite(v) and abs(v) < 1e8 for v in vals):
        texts = [f"{v:.6f}".rstrip("0").rstrip(".") for v in vals]
        texts = ["0" if t == "-0" else t for t in texts]
    else:
        texts = ds_strings(vals, decimals)
    data = "\\".join(texts).encode("ascii")
    return data + b" " if len(data) % 2 else data
