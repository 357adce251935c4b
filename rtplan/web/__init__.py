"""The dose-equivalence calculator as a local web page (``rtplan serve``).

A Starlette application with one static page (plain JavaScript, no build step) and a
JSON API whose answers are the objects the command line prints with ``--json``: both
call the report functions of :mod:`rtplan.radiobiology.api`. Needs the ``web`` extra
(``pip install 'rtplan[web]'``: Starlette and uvicorn).

Examples
--------
>>> from rtplan.web import web_available
>>> isinstance(web_available(), bool)
True
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from rtplan.errors import MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from starlette.applications import Starlette

__all__ = ["LOOPBACK_HOSTS", "create_app", "require_web", "serve", "web_available"]

#: Host names that only the local machine can reach.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_WEB_MODULES = ("starlette", "uvicorn")


def web_available() -> bool:
    """True when the ``web`` extra (Starlette and uvicorn) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in _WEB_MODULES)


def require_web() -> None:
    """Raise :class:`~rtplan.errors.MissingDependencyError` unless the extra is there.

    The message names ``pip install 'rtplan[web]'``.
    """
    missing = [m for m in _WEB_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"the web calculator needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            "pip install 'rtplan[web]'"
        )


def create_app() -> Starlette:
    """The calculator's ASGI application (page at ``/``, JSON API under ``/api/``).

    Examples
    --------
    >>> from starlette.testclient import TestClient
    >>> TestClient(create_app()).get("/api/eqd2?s=27/3&ab=1.5").json()[0]["eqd2_gy"]
    81.0
    """
    require_web()
    from rtplan.web.app import build_app

    return build_app()


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the calculator with uvicorn until interrupted (localhost by default).

    Parameters
    ----------
    host
        Interface to bind; ``127.0.0.1`` (default) keeps it to this machine.
    port
        TCP port, 1..65535 (0: any free port).
    """
    require_web()
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
