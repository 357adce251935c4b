"""Safe output: atomic writes that refuse to overwrite unless asked."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from rtplan.errors import OutputError, OutputExistsError, RTPlanError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_not_input",
    "check_outputs",
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
    writer: Callable[[Path], object],
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
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(
            f"cannot write '{dest}': disk full (no space left on the device of "
            f"'{dest.parent}'): free some space or choose another output path; nothing "
            "was written"
        )
    if exc.errno == errno.EROFS:
        return OutputError(
            f"cannot write '{dest}': the file system of '{dest.parent}' is read-only: "
            "choose another output path"
        )
    why = exc.strerror or str(exc).splitlines()[0]
    return OutputError(
        f"cannot write '{dest}': {why}: check that the folder '{dest.parent}' can be "
        "created and written to, or choose another output path"
    )


def _writable_folder(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (``folder`` itself if it exists)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return None  # pragma: no cover - "/" always exists


def check_outputs(
    *outputs: str | os.PathLike[str] | None,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    overwrite: bool = False,
    folders: Iterable[str | os.PathLike[str] | None] = (),
) -> list[Path]:
    """Check every output of a command before it computes anything (all or nothing).

    Each output (``None`` = not requested) must not be one of ``inputs`` (nor inside an
    input folder), must not exist unless ``overwrite``, must not be a folder, and its
    folder must exist or be creatable and be writable. Two outputs may not be the same
    file. ``folders`` are output folders (e.g. ``--plots DIR``): they may exist as
    folders, but not as files. Call it first, then compute, then write each output with
    :func:`atomic_write`: a refused output then leaves no partial result behind.

    Returns
    -------
    list of Path
        The requested outputs (files, then folders), in the order given.

    Raises
    ------
    OutputError
        An output is an input, two outputs coincide, a folder is not writable or a
        folder output is a file.
    OutputExistsError
        An output exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> cohort = os.path.join(d, "cohort.csv"); _ = open(cohort, "w").close()
    >>> [p.name for p in check_outputs(os.path.join(d, "r.md"), None, inputs=[cohort])]
    ['r.md']
    >>> check_outputs(cohort, inputs=[cohort], overwrite=True)
    Traceback (most recent call last):
    ...
    rtplan.errors.OutputError: output '...cohort.csv' is also an input (...): rtplan never ...
    """
    srcs = list(inputs)
    checked: list[Path] = []
    seen: dict[Path, Path] = {}
    for item in outputs:
        if item is None:
            continue
        out = check_not_input(item, *srcs)
        check_writable(out, overwrite=overwrite)
        _check_folder_writable(out, out.parent)
        _no_twice(out, seen)
        checked.append(out)
    for item in folders:
        if item is None:
            continue
        out = check_not_input(item, *srcs)
        if out.exists() and not out.is_dir():
            raise OutputError(
                f"output folder '{out}' is a file, not a folder: give a folder path"
            )
        _check_folder_writable(out, out)
        _no_twice(out, seen)
        checked.append(out)
    return checked


def _no_twice(out: Path, seen: dict[Path, Path]) -> None:
    key = out.resolve()
    if key in seen:
        raise OutputError(
            f"outputs '{seen[key]}' and '{out}' are the same file: give each output its "
            "own path"
        )
    seen[key] = out


def _check_folder_writable(out: Path, folder: Path) -> None:
    base = _writable_folder(folder)
    if base is None or not base.is_dir():
        raise OutputError(
            f"cannot write '{out}': '{base}' is a file, so the folder '{folder}' cannot be "
            "created: choose another output path"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write '{out}': the folder '{base}' is not writable (permission "
            "denied): choose another output path"
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
