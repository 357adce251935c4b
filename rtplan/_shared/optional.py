"""Lazy import of optional dependencies with an actionable error."""

from __future__ import annotations

import importlib
from types import ModuleType

from rtplan.errors import MissingDependencyError

#: module name -> (extra that provides it, minimum version)
_EXTRAS = {
    "matplotlib": ("plot", "3.8"),
    "nibabel": ("nifti", "5.0"),
    "statsmodels": ("stats", "0.14"),
}


def import_optional(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    Examples
    --------
    >>> import_optional("math", feature="arithmetic").sqrt(4.0)
    2.0
    >>> import_optional("no_such_module_xyz", feature="testing")
    Traceback (most recent call last):
    ...
    rtplan.errors.MissingDependencyError: testing needs ... 'no_such_module_xyz', ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, version = _EXTRAS.get(module.split(".")[0], (None, None))
        hint = (
            f"install it with: pip install 'rtplan[{extra}]' (needs {module} >= {version})"
            if extra
            else f"install it with: pip install {module}"
        )
        raise MissingDependencyError(
            f"{feature} needs the optional package '{module}', which is not installed: {hint}"
        ) from exc
