"""Safe output: atomic writes that refuse to overwrite unless asked."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from rtplan.errors import OutputError, OutputExistsError, RTPlanError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_not_input",
    "check_writable",
]


def check_not_input(
    output: str | os.PathLike[str], *inputs: str | os.PathLike[str] | None
) -> Path:
    """Return ``output`` as a Path; raise :class:`OutputError` if it is one of ``inputs``.

    rtplan never modifies an input file, not even with ``--force``: an output that
    resolves to the same file (or lies inside an input folder given as input) is refused.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> src = os.path.join(d, "RD.dcm")
    >>> check_not_input(os.path.join(d, "RD_eqd2.dcm"), src).name
    'RD_eqd2.dcm'
    >>> check_not_input(os.path.join(d, ".", "RD.dcm"), src)
    Traceback (most recent call last):
    ...
    rtplan.errors.OutputError: output '...RD.dcm' is also an input (...): rtplan never ...
    """
    out = Path(output)
    target = out.resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if target == src or (src.is_dir() and src in target.parents):
            raise OutputError(
                f"output '{out}' is also an input{' folder' if src.is_dir() else ''} "
                f"('{item}'): rtplan never overwrites its inputs, even with --force; "
                "choose another output path"
            )
    return out


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path; raise :class:`OutputExistsError` if it exists.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> check_writable(os.path.join(d, "new.json")).name
    'new.json'
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{p}' already exists: choose another path, or pass --force "
            "(overwrite=True) to replace it"
        )
    if p.exists() and p.is_dir():
        raise OutputExistsError(f"output '{p}' is a directory: give a file path")
    return p


def atomic_write(
    path: str | os.PathLike[str],
    writer: Callable[[Path], None],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` then rename onto ``path``.

    The temporary file lives in the destination folder, so the rename is atomic on
    POSIX; on any error it is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = atomic_write(os.path.join(d, "x.txt"), lambda t: t.write_text("hi"))
    >>> p.read_text()
    'hi'
    """
    dest = check_writable(path, overwrite=overwrite)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise _output_error(dest, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        # mkstemp creates 0600 files: give the output the usual permissions (0666 - umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, dest)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, RTPlanError):
            raise _output_error(dest, exc) from exc
        raise
    return dest


def _output_error(dest: Path, exc: OSError) -> OutputError:
    why = exc.strerror or str(exc)
    return OutputError(
        f"cannot write '{dest}': {why}: check that the folder '{dest.parent}' can be "
        "created and written to, or choose another output path"
    )


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, overwrite: bool = False
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"), overwrite=overwrite)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda t: t.write_bytes(data), overwrite=overwrite)
