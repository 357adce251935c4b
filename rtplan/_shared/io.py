"""Safe output: atomic writes that refuse to overwrite unless asked."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from rtplan.errors import OutputExistsError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "check_writable"]


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        # mkstemp creates 0600 files: give the output the usual permissions (0666 - umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return dest


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
