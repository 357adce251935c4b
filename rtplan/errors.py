"""The rtplan exception hierarchy.

Every error rtplan raises on purpose derives from :class:`RTPlanError` and also from
the matching built-in exception, so ``except ValueError`` keeps working for callers
who do not know rtplan. Messages say what is wrong, show the offending value, and say
what to do next.

The command line prints the message of an :class:`RTPlanError` without a traceback and
exits with its :attr:`~RTPlanError.exit_code`: 2 for bad input (:class:`InputError` and
its subclasses) and unwritable outputs (:class:`OutputError`), 1 for anything else.

Examples
--------
>>> from rtplan.errors import InputError, RTPlanError
>>> try:
...     raise InputError("fractions must be >= 1, got 0: give a positive whole number")
... except ValueError as exc:
...     print(type(exc).__name__, isinstance(exc, RTPlanError), exc.exit_code)
InputError True 2
"""

from __future__ import annotations

__all__ = [
    "ComputationError",
    "DicomError",
    "GeometryError",
    "GridMismatchError",
    "InputError",
    "InvalidParameterError",
    "MissingDependencyError",
    "OutputError",
    "OutputExistsError",
    "RTPlanError",
    "RecordError",
    "ScheduleParseError",
    "SeriesError",
    "UnsupportedModelError",
    "from_validation_error",
]


class RTPlanError(Exception):
    """Root of every error rtplan raises on purpose."""

    #: Process exit status the command line uses for this error.
    exit_code: int = 1


class InputError(RTPlanError, ValueError):
    """The input (argument, file, record) is invalid; the user can fix it."""

    exit_code = 2


class InvalidParameterError(InputError):
    """A numeric or categorical parameter is outside its valid domain."""


class ScheduleParseError(InputError):
    """A fractionation schedule string could not be parsed."""


class UnsupportedModelError(InputError):
    """A radiobiological model name or its parameters are not supported."""


class RecordError(InputError):
    """A record of a data file (cohort, lesions, PSA, ...) is invalid.

    The message names the file, the row and the field.
    """


class DicomError(InputError):
    """A DICOM object is missing an attribute, or holds an unusable value."""


class SeriesError(DicomError):
    """A DICOM series is inconsistent (mixed series, duplicate or missing slices)."""


class GeometryError(InputError):
    """Image geometry is unsupported (gantry tilt, oblique) or inconsistent."""


class GridMismatchError(GeometryError):
    """Two arrays or grids that must match do not."""


class OutputError(RTPlanError, OSError):
    """An output cannot be written where asked (folder not writable, same as an input)."""

    exit_code = 2


class OutputExistsError(OutputError, FileExistsError):
    """An output file exists and overwriting was not requested."""

    exit_code = 2


class MissingDependencyError(RTPlanError, ImportError):
    """An optional dependency (an ``rtplan[extra]``) is not installed."""


class ComputationError(RTPlanError, RuntimeError):
    """A computation failed or did not converge."""


def from_validation_error(exc: Exception, source: str) -> InputError:
    """Turn a :class:`pydantic.ValidationError` into a readable :class:`InputError`.

    Parameters
    ----------
    exc
        The pydantic ``ValidationError``.
    source
        What was being validated, e.g. ``"lesions file 'lesions.json'"``.

    Examples
    --------
    >>> from pydantic import BaseModel, ValidationError
    >>> class M(BaseModel):
    ...     fractions: int
    >>> try:
    ...     M(fractions="many")
    ... except ValidationError as e:
    ...     print(from_validation_error(e, "schedule"))
    invalid schedule: fractions: Input should be a valid integer, ... (got 'many')
    """
    errors = getattr(exc, "errors", None)
    if errors is None:
        return InputError(f"invalid {source}: {exc}")
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(value)"
        msg = err.get("msg", "invalid value")
        given = err.get("input", None)
        given_s = "" if isinstance(given, dict) else f" (got {given!r})"
        parts.append(f"{loc}: {msg}{given_s}")
    return InputError(f"invalid {source}: " + "; ".join(parts))
