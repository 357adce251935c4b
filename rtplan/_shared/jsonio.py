"""Safe reading of text and JSON input files: any bytes in -> a value or an InputError.

Every JSON reader of rtplan goes through :func:`load_json` (a file) or
:func:`loads_json` (text), and every CSV reader decodes its bytes with
:func:`decode_text`, so that hostile or accidental inputs get a one-line
:class:`~rtplan.errors.InputError` instead of a traceback or a wrong number:

- size: files larger than ``max_bytes`` (64 MiB by default) are refused before reading;
- encoding: UTF-8 (with or without BOM), UTF-16 and UTF-32 with a BOM, and BOM-less
  UTF-16/32 JSON (RFC 4627 detection) are accepted; anything else (Latin-1,
  Windows-1252, binary) is refused with the offending byte and how to convert;
- depth: JSON nested deeper than ``max_depth`` (64) levels is refused before parsing
  (no ``RecursionError``);
- numbers: ``NaN``/``Infinity`` literals, numbers that overflow a float (``1e999``) and
  integers of more than 100 digits are refused (Python's 4300-digit limit never fires).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from rtplan.errors import InputError

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_JSON_DEPTH",
    "check_input_file",
    "decode_text",
    "load_json",
    "loads_json",
    "read_text",
]

#: Largest text/JSON input file read (bytes).
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: Deepest JSON nesting accepted (rtplan's own files nest at most about 6 levels).
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted in JSON (digits).
_MAX_INT_DIGITS = 100

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def check_input_file(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a Path if it is a regular, readable file; else InputError.

    The message says what the path is instead: missing, a folder, a named pipe (FIFO),
    a device such as ``/dev/null``, a socket.

    Parameters
    ----------
    path
        The input file.
    what
        What the file should be, for the message (``"cohort file"``, ``"RTDOSE file"``).

    Examples
    --------
    >>> import tempfile
    >>> check_input_file(tempfile.mkdtemp(), "cohort file")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: cohort file '...' is a folder, not a file: give the path of a file
    >>> check_input_file("/dev/null", "cohort file")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: cohort file '/dev/null' is a device (...), not a regular ...
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} '{p}' does not exist: check the path") from None
    except NotADirectoryError:
        raise InputError(
            f"{what} '{p}' does not exist (a parent in the path is a file): check the path"
        ) from None
    except PermissionError:
        raise InputError(
            f"{what} '{p}' cannot be read (permission denied): check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(f"{what} '{p}' cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        if not os.access(p, os.R_OK):
            raise InputError(
                f"{what} '{p}' cannot be read (permission denied): check its permissions"
            )
        return p
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} '{p}' is a folder, not a file: give the path of a file")
    if stat.S_ISFIFO(mode):
        state = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        state = "a device (like /dev/null)"
    elif stat.S_ISSOCK(mode):
        state = "a socket"
    else:  # pragma: no cover - other file types
        state = "not a regular file"
    raise InputError(f"{what} '{p}' is {state}, not a regular file: give the path of a file")


def decode_text(data: bytes, what: str, *, json_text: bool = False) -> str:
    """Decode input bytes to text: UTF-8, or UTF-16/32 with a byte-order mark.

    Parameters
    ----------
    data
        The file's bytes.
    what
        What the bytes are, for the message (``"cohort file 'c.csv'"``).
    json_text
        Also detect BOM-less UTF-16/32 from the NUL pattern of the first bytes
        (RFC 4627: JSON text starts with an ASCII character).

    Raises
    ------
    InputError
        The bytes are not valid UTF-8 (e.g. Latin-1 or Windows-1252 text) or hold NUL
        characters (binary data).

    Examples
    --------
    >>> decode_text(b"\\xef\\xbb\\xbfid,age\\n", "cohort")
    'id,age\\n'
    >>> decode_text("id".encode("utf-16"), "cohort")
    'id'
    >>> decode_text("Müller".encode("latin-1"), "cohort")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: cohort is not UTF-8 text (byte 0xfc at offset 1): ...
    """
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    else:
        if json_text and len(data) >= 4 and b"\x00" in data[:4]:
            head = data[:4]
            if head[0] and not head[1] and not head[2] and not head[3]:
                encoding = "utf-32-le"
            elif not head[0] and not head[1] and not head[2]:
                encoding = "utf-32-be"
            elif head[0] and not head[1]:
                encoding = "utf-16-le"
            elif not head[0]:
                encoding = "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1]
        raise InputError(
            f"{what} is not {encoding.upper()} text (byte 0x{bad.hex()} at offset "
            f"{exc.start}): save it as UTF-8 (e.g. 'iconv -f latin1 -t utf-8' for "
            "Latin-1/Windows-1252 files; spreadsheets: 'CSV UTF-8')"
        ) from None
    if "\x00" in text:
        raise InputError(
            f"{what} holds NUL characters (offset {text.index(chr(0))}): it is binary, "
            "not a text file; give the text file (UTF-8)"
        )
    return text


def read_text(
    path: str | os.PathLike[str],
    what: str,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    json_text: bool = False,
) -> str:
    """Read a text input file safely: a regular file, at most ``max_bytes``, decoded.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.csv")
    >>> _ = Path(p).write_bytes("\\ufeffid\\n".encode("utf-16-le"))
    >>> read_text(p, "cohort file")
    'id\\n'
    """
    p = check_input_file(path, what)
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(
            f"{what} '{p}' is {size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} "
            "MiB rtplan reads: give the right file (or split it)"
        )
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{what} '{p}' cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # pragma: no cover - grew while reading
        raise InputError(f"{what} '{p}' is larger than {max_bytes} bytes")
    return decode_text(data, f"{what} '{p}'", json_text=json_text)


def _depth(text: str) -> int:
    """Deepest bracket nesting of JSON text (strings ignored)."""
    stripped = _STRING.sub("", text)
    codes = np.frombuffer(stripped.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.zeros(codes.shape, dtype=np.int64)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max()) if step.size else 0


def _bad_constant(name: str) -> Any:
    raise InputError(f"'{name}' is not a number JSON allows: give a finite number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise InputError(
            f"number {text[:40]} is too large (overflows to infinity): give a finite number"
        )
    return value


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise InputError(
            f"integer of {digits} digits ({text[:20]}...) is not a plausible value: give a "
            "number of at most {_MAX_INT_DIGITS} digits".replace(
                "{_MAX_INT_DIGITS}", str(_MAX_INT_DIGITS)
            )
        )
    return int(text)


def loads_json(text: str, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text or raise a one-line :class:`InputError` naming ``what``.

    Examples
    --------
    >>> loads_json('{"fractions": 5}', "plan")
    {'fractions': 5}
    >>> loads_json("[" * 100000 + "]" * 100000, "plan")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: plan is nested 100000 levels deep (more than 64): ...
    >>> loads_json('{"x": NaN}', "plan")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: plan: 'NaN' is not a number JSON allows: give a finite number
    """
    depth = _depth(text)
    if depth > max_depth:
        raise InputError(
            f"{what} is nested {depth} levels deep (more than {max_depth}): it is not an "
            "rtplan input file"
        )
    try:
        return json.loads(
            text,
            parse_constant=_bad_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise InputError(f"{what} is not usable JSON: {exc}") from None


def load_json(
    path: str | os.PathLike[str],
    what: str,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Read and parse a JSON file safely (see the module docstring for the rules).

    Parameters
    ----------
    path
        The JSON file.
    what
        What the file is, for the messages (``"cohort file"``, ``"lesions file"``).
    max_bytes, max_depth
        Largest file size (bytes) and deepest nesting accepted.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "plan.json")
    >>> _ = Path(p).write_text('{"fractions": 5}', encoding="utf-16")
    >>> load_json(p, "plan file")
    {'fractions': 5}
    """
    text = read_text(path, what, max_bytes=max_bytes, json_text=True)
    return loads_json(text, f"{what} '{path}'", max_depth=max_depth)


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by ``None``, recursively
    through dicts, lists and tuples (JSON has no NaN).

    Examples
    --------
    >>> finite_or_none({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj
