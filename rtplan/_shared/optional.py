"""Lazy import of optional dependencies with an actionable error.

:func:`import_optional` imports a module when a feature needs it; :func:`require_optional`
checks, before any computation, that the packages a command will need are installed, so
that a missing extra is reported up front (exit 2) and not after minutes of work.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from rtplan.errors import MissingDependencyError

__all__ = ["import_optional", "require_optional"]

#: top-level module name -> (extra that provides it, pip package, minimum version)
_EXTRAS = {
    "matplotlib": ("plot", "matplotlib", "3.8"),
    "nibabel": ("nifti", "nibabel", "5.0"),
    "statsmodels": ("stats", "statsmodels", "0.14"),
    "rt_utils": (None, "rt-utils", None),
}


class _MissingOptional(MissingDependencyError):
    """A missing optional package: bad environment the user can fix (exit 2)."""

    exit_code = 2


def _missing(module: str, feature: str) -> MissingDependencyError:
    top = module.split(".")[0]
    extra, package, version = _EXTRAS.get(top, (None, top, None))
    needs = f" (needs {package} >= {version})" if version else ""
    hint = (
        f"install it with: pip install 'rtplan[{extra}]'{needs}"
        if extra
        else f"install it with: pip install {package}"
    )
    return _MissingOptional(
        f"{feature} needs the optional package '{package}', which is not installed: {hint}"
    )


def import_optional(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip package.

    The message names the package to install (``statsmodels``), not the submodule that
    failed to import, and the rtplan extra that provides it; the command line exits
    with status 2.

    Examples
    --------
    >>> import_optional("math", feature="arithmetic").sqrt(4.0)
    2.0
    >>> import_optional("no_such_module_xyz.sub", feature="testing")
    Traceback (most recent call last):
    ...
    rtplan._shared.optional._MissingOptional: testing needs ... 'no_such_module_xyz', ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(module, feature) from exc


def require_optional(*modules: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` now if any of ``modules`` is not installed.

    Call it before computing, for every optional package the requested outputs need.

    Examples
    --------
    >>> require_optional("math", feature="arithmetic")
    >>> require_optional("no_such_module_xyz", feature="--plots")
    Traceback (most recent call last):
    ...
    rtplan._shared.optional._MissingOptional: --plots needs the optional package ...
    """
    for module in modules:
        top = module.split(".")[0]
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise _missing(module, feature)
