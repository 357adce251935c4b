"""Starlette application of the web calculator: the page and its JSON API.

Every API answer is the JSON object of a report function of
:mod:`rtplan.radiobiology.api` (the objects ``rtplan eqd2/equivalent/compare/presets
--json`` print). Bad input gives HTTP 422 with
``{"errors": [{"field": ..., "index": ..., "message": ...}]}``, where ``field`` is the
query parameter and ``index`` the position of a repeated parameter (or null). Inputs
are bounded (number of items, text length, numeric ranges) and no file path is
accepted: the page reads nothing from the file system but its own three files.

Query parameters
----------------
``/api/eqd2``: ``s`` (schedule, repeat), ``ab`` (alpha/beta in Gy, repeat).
``/api/compare`` and ``/api/curve``: ``plan`` (preset key, schedule, or an SIB plan as
inline JSON, repeat; none: the paper's presets), ``ab`` (repeat; compare only),
``ab_min``/``ab_max`` (curve only, Gy).
``/api/equivalent``: ``ref`` or ``target_eqd2`` or ``target_bed`` (Gy); ``fractions``
or ``dose_per_fraction`` (Gy); ``ab``.
Every calculation: ``model`` (lq, lql, usc), ``transition_dose_gy`` (LQ-L),
``usc_alpha`` (1/Gy), ``usc_d0_gy``, ``usc_dq_gy`` (USC).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rtplan._shared.jsonio import loads_json
from rtplan.errors import InputError, UnsupportedModelError, from_validation_error
from rtplan.radiobiology import LQ, LQL, PRESETS, USC, SIBPlan, model_from_name, parse_schedule
from rtplan.radiobiology.api import (
    ParameterError,
    compare_report,
    eqd2_curves,
    eqd2_report,
    equivalent_report,
    presets_listing,
    to_jsonable,
)

__all__ = ["LIMITS", "build_app"]

#: Input bounds of the API (a request beyond them is refused with HTTP 422).
LIMITS: dict[str, float] = {
    "query_chars": 8192,  # whole query string
    "items": 12,  # schedules / plans per request
    "alpha_beta_values": 12,
    "text_chars": 100,  # one schedule or preset key
    "plan_json_chars": 2000,  # one inline SIB plan
    "plan_levels": 8,
    "fractions": 1000,
    "total_dose_gy": 10000.0,
    "alpha_beta_min_gy": 0.01,
    "alpha_beta_gy": 1000.0,
    "target_gy": 10000.0,
    "dose_per_fraction_min_gy": 0.01,
    "dose_per_fraction_gy": 100.0,
    "model_parameter": 100.0,
}

_MODEL_PARAMS = ("model", "transition_dose_gy", "usc_alpha", "usc_d0_gy", "usc_dq_gy")

#: keyword arguments of the report functions -> query parameters
_FIELD_OF_KEYWORD = {
    "alpha_beta_values_gy": "ab",
    "alpha_beta_gy": "ab",
    "schedules": "s",
    "plans": "plan",
    "reference": "ref",
    "target_eqd2_gy": "target_eqd2",
    "target_bed_gy": "target_bed",
    "fractions": "fractions",
    "dose_per_fraction_gy": "dose_per_fraction",
    "model": "model",
    "alpha_beta_min_gy": "ab_min",
    "alpha_beta_max_gy": "ab_max",
}

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _error(field: str | None, message: str, index: int | None = None) -> dict[str, object]:
    return {"field": field, "index": index, "message": message}


def _errors_response(errors: list[dict[str, object]], status: int = 422) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=_api_headers())


def _api_headers() -> dict[str, str]:
    return {**_SECURITY_HEADERS, "Cache-Control": "no-store"}


class _Query:
    """Parse and bound query parameters, collecting one error per bad field."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        self.params = request.query_params
        self.errors: list[dict[str, object]] = []
        if len(request.url.query) > LIMITS["query_chars"]:
            self.errors.append(
                _error(None, f"the request is too long ({len(request.url.query)} characters; "
                             f"at most {LIMITS['query_chars']:g})")
            )
            self.params = type(self.params)()
            return
        for key in self.params:
            if key not in allowed:
                self.errors.append(
                    _error(key[:40], f"unknown parameter {key[:40]!r}; known: "
                           + ", ".join(sorted(allowed)))
                )

    def fail(self, field: str, message: str, index: int | None = None) -> None:
        self.errors.append(_error(field, message, index))

    def texts(self, name: str, max_items: float, max_chars: float) -> list[str]:
        values = self.params.getlist(name)
        if len(values) > max_items:
            self.fail(name, f"at most {max_items:g} values of {name}, got {len(values)}")
            return []
        out = []
        for i, v in enumerate(values):
            v = v.strip()
            if not v:
                self.fail(name, "empty: type a value or remove the row", i)
            elif len(v) > max_chars:
                self.fail(name, f"too long ({len(v)} characters; at most {max_chars:g})", i)
            else:
                out.append(v)
        return out

    def one(self, name: str) -> str | None:
        values = self.params.getlist(name)
        if len(values) > 1:
            self.fail(name, f"give {name} once, got {len(values)} values")
            return None
        if not values or not values[0].strip():
            return None
        if len(values[0]) > LIMITS["text_chars"]:
            self.fail(name, f"too long ({len(values[0])} characters)")
            return None
        return values[0].strip()

    def _number(
        self, name: str, text: str, lo: float, hi: float, index: int | None,
        *, lo_inclusive: bool = False, what: str = "a number of Gy",
    ) -> float | None:
        try:
            x = float(text)
        except ValueError:
            self.fail(name, f"expected {what}, got {text[:40]!r}", index)
            return None
        ok = (lo <= x if lo_inclusive else lo < x) and x <= hi
        if not ok:  # also NaN
            bound = f"{'>=' if lo_inclusive else '>'} {lo:g} and <= {hi:g}"
            self.fail(name, f"must be {bound}, got {text[:40]}", index)
            return None
        return x

    def number(
        self, name: str, lo: float, hi: float, *, lo_inclusive: bool = False,
        what: str = "a number of Gy",
    ) -> float | None:
        text = self.one(name)
        if text is None:
            return None
        return self._number(name, text, lo, hi, None, lo_inclusive=lo_inclusive, what=what)

    def alpha_betas(self, max_items: float) -> list[float]:
        """alpha/beta values (Gy), from one or more ``ab`` parameters (commas allowed)."""
        return self.numbers(
            "ab", LIMITS["alpha_beta_min_gy"], LIMITS["alpha_beta_gy"], max_items,
            lo_inclusive=True,
        )

    def check_usc_alpha_beta(self, model: LQ | LQL | USC | None, values: list[float]) -> None:
        """USC fixes alpha/beta: a different value given is an error of the ``ab`` field."""
        if isinstance(model, USC):
            for i, ab in enumerate(values):
                try:
                    model.resolve_alpha_beta(ab)
                except InputError as exc:
                    self.fail("ab", str(exc), i if len(values) > 1 else None)

    def numbers(
        self, name: str, lo: float, hi: float, max_items: float, *, lo_inclusive: bool = False
    ) -> list[float]:
        raw = self.params.getlist(name)
        texts = [t for part in raw for t in part.replace(",", " ").split()]
        if len(texts) > max_items:
            self.fail(name, f"at most {max_items:g} values, got {len(texts)}")
            return []
        out = []
        for i, t in enumerate(texts):
            x = self._number(name, t, lo, hi, i if len(texts) > 1 else None,
                             lo_inclusive=lo_inclusive)
            if x is not None:
                out.append(x)
        return out

    def integer(self, name: str, lo: int, hi: int) -> int | None:
        text = self.one(name)
        if text is None:
            return None
        try:
            n = int(text)
        except ValueError:
            self.fail(name, f"expected a whole number, got {text[:40]!r}")
            return None
        if not lo <= n <= hi:
            self.fail(name, f"must be from {lo} to {hi}, got {n}")
            return None
        return n

    def schedule_ok(self, name: str, text: str, index: int | None) -> bool:
        try:
            fx = parse_schedule(text)
        except InputError as exc:
            self.fail(name, str(exc), index)
            return False
        if fx.fractions > LIMITS["fractions"] or fx.total_dose_gy > LIMITS["total_dose_gy"]:
            self.fail(
                name,
                f"schedule {text!r} is out of range: at most {LIMITS['fractions']:g} "
                f"fractions and {LIMITS['total_dose_gy']:g} Gy",
                index,
            )
            return False
        return True

    def model(self) -> LQ | LQL | USC | None:
        name = (self.one("model") or "lq").lower()
        if name not in ("lq", "lql", "usc"):
            self.fail("model", f"model must be lq, lql or usc, got {name[:40]!r}")
            return None
        hi = LIMITS["model_parameter"]
        dt = self.number("transition_dose_gy", 0, hi)
        ua = self.number("usc_alpha", 0, hi, what="a number (1/Gy)")
        ud0 = self.number("usc_d0_gy", 0, hi)
        udq = self.number("usc_dq_gy", 0, hi)
        if self.errors:
            return None
        try:
            return model_from_name(
                name, transition_dose_gy=dt, alpha_per_gy=ua, d0_gy=ud0, dq_gy=udq
            )
        except UnsupportedModelError as exc:
            if name == "lql":
                field = "transition_dose_gy"
            else:
                field = next(
                    f for f, v in (("usc_alpha", ua), ("usc_d0_gy", ud0), ("usc_dq_gy", udq))
                    if v is None
                )
            self.fail(field, str(exc))
        except ValidationError as exc:
            self.fail("model", str(from_validation_error(exc, f"{name} model parameters")))
        except InputError as exc:
            self.fail("model", str(exc))
        return None

    def plans(self) -> list[SIBPlan]:
        texts = self.params.getlist("plan")
        if len(texts) > LIMITS["items"]:
            self.fail("plan", f"at most {LIMITS['items']:g} plans, got {len(texts)}")
            return []
        out = []
        for i, raw in enumerate(texts):
            text = raw.strip()
            if not text:
                self.fail("plan", "empty: type a schedule or a preset key, or remove the row", i)
            elif text.startswith("{"):
                plan = self._plan_json(text, i)
                if plan is not None:
                    out.append(plan)
            elif len(text) > LIMITS["text_chars"]:
                self.fail("plan", f"too long ({len(text)} characters)", i)
            elif text.lower() in PRESETS:
                out.append(PRESETS[text.lower()].plan)
            elif self.schedule_ok("plan", text, i):
                try:
                    out.append(SIBPlan.single(parse_schedule(text)))
                except ValidationError as exc:  # 0/1: a plan level needs a positive dose
                    self.fail("plan", str(from_validation_error(exc, f"plan {text!r}")), i)
        return out

    def _plan_json(self, text: str, i: int) -> SIBPlan | None:
        if len(text) > LIMITS["plan_json_chars"]:
            self.fail("plan", f"plan JSON too long ({len(text)} characters; at most "
                              f"{LIMITS['plan_json_chars']:g})", i)
            return None
        try:
            data = loads_json(text, "plan")
        except InputError as exc:
            self.fail("plan", str(exc)[:120], i)
            return None
        try:
            plan = SIBPlan.model_validate(data)
        except ValidationError as exc:
            self.fail("plan", str(from_validation_error(exc, "plan JSON")), i)
            return None
        if len(plan.levels) > LIMITS["plan_levels"]:
            self.fail("plan", f"at most {LIMITS['plan_levels']:g} dose levels", i)
            return None
        if plan.fractions > LIMITS["fractions"] or any(
            lv.total_dose_gy > LIMITS["total_dose_gy"] for lv in plan.levels
        ):
            self.fail("plan", f"plan out of range: at most {LIMITS['fractions']:g} fractions "
                              f"and {LIMITS['total_dose_gy']:g} Gy per level", i)
            return None
        return plan


def _compute(default_field: str, fn: Callable[[], object]) -> JSONResponse:
    """Run a report; input errors become HTTP 422 next to the right field."""
    try:
        data = fn()
    except ParameterError as exc:
        field = _FIELD_OF_KEYWORD.get(exc.field, default_field)
        return _errors_response([_error(field, str(exc), exc.index)])
    except InputError as exc:
        return _errors_response([_error(default_field, str(exc))])
    except (ArithmeticError, ValueError) as exc:  # numeric edge cases beyond the bounds
        return _errors_response(
            [_error(default_field, f"cannot compute this input: {type(exc).__name__}: {exc}")]
        )
    return JSONResponse(data, headers=_api_headers())


async def _eqd2(request: Request) -> Response:
    q = _Query(request, {"s", "ab", *_MODEL_PARAMS})
    schedules = q.texts("s", LIMITS["items"], LIMITS["text_chars"])
    if not schedules and not any(e["field"] == "s" for e in q.errors):
        q.fail("s", "give at least one schedule, e.g. 27/3")
    for i, s in enumerate(schedules):
        q.schedule_ok("s", s, i)
    abs_ = q.alpha_betas(LIMITS["alpha_beta_values"])
    model = q.model()
    q.check_usc_alpha_beta(model, abs_)
    if not abs_ and not isinstance(model, USC) and not any(e["field"] == "ab" for e in q.errors):
        q.fail("ab", "give alpha/beta in Gy, e.g. 1.5 for prostate cancer")
    if q.errors or model is None:
        return _errors_response(q.errors)
    return _compute("s", lambda: to_jsonable(eqd2_report(schedules, abs_, model=model)))


async def _compare(request: Request) -> Response:
    q = _Query(request, {"plan", "ab", *_MODEL_PARAMS})
    plans = q.plans()
    abs_ = q.alpha_betas(LIMITS["alpha_beta_values"])
    model = q.model()
    q.check_usc_alpha_beta(model, abs_)
    if q.errors or model is None:
        return _errors_response(q.errors)
    ab_arg: list[float | None]
    if abs_:
        ab_arg = list(abs_)
    elif isinstance(model, USC):
        ab_arg = [None]
    else:
        ab_arg = [1.5, 3.0, 10.0]
    return _compute(
        "plan", lambda: to_jsonable(compare_report(plans or None, ab_arg, model=model))
    )


async def _curve(request: Request) -> Response:
    q = _Query(request, {"plan", "ab_min", "ab_max", *_MODEL_PARAMS})
    plans = q.plans() or [p.plan for p in PRESETS.values()]
    lo = q.number("ab_min", LIMITS["alpha_beta_min_gy"], LIMITS["alpha_beta_gy"],
                  lo_inclusive=True)
    hi = q.number("ab_max", LIMITS["alpha_beta_min_gy"], LIMITS["alpha_beta_gy"],
                  lo_inclusive=True)
    model = q.model()
    if q.errors or model is None:
        return _errors_response(q.errors)
    return _compute(
        "plan",
        lambda: to_jsonable(
            eqd2_curves(
                plans, alpha_beta_min_gy=0.5 if lo is None else lo,
                alpha_beta_max_gy=20.0 if hi is None else hi, model=model,
            )
        ),
    )


async def _equivalent(request: Request) -> Response:
    q = _Query(
        request,
        {"ref", "target_eqd2", "target_bed", "fractions", "dose_per_fraction", "ab",
         *_MODEL_PARAMS},
    )
    ref = q.one("ref")
    if ref is not None:
        q.schedule_ok("ref", ref, None)
    te = q.number("target_eqd2", 0, LIMITS["target_gy"])
    tb = q.number("target_bed", 0, LIMITS["target_gy"])
    n = q.integer("fractions", 1, int(LIMITS["fractions"]))
    d = q.number("dose_per_fraction", LIMITS["dose_per_fraction_min_gy"],
                 LIMITS["dose_per_fraction_gy"], lo_inclusive=True)
    abs_ = q.alpha_betas(1)
    model = q.model()
    q.check_usc_alpha_beta(model, abs_)
    if not q.errors:
        given = [k for k, v in (("ref", ref), ("target_eqd2", te), ("target_bed", tb))
                 if v is not None]
        if len(given) != 1:
            q.fail("ref", "give one of: a reference schedule (e.g. 37.5/5), a target EQD2 "
                          "or a target BED (Gy)" + (f"; got {', '.join(given)}" if given else ""))
        if (n is None) == (d is None):
            q.fail("fractions", "give one of: the number of fractions (solve for the dose "
                                "per fraction) or the dose per fraction (solve for the number "
                                "of fractions)")
        if not abs_ and not isinstance(model, USC):
            q.fail("ab", "give alpha/beta in Gy, e.g. 1.5 for prostate cancer")
    if q.errors or model is None:
        return _errors_response(q.errors)
    ab = abs_[0] if abs_ else None
    return _compute(
        "ref",
        lambda: to_jsonable(
            equivalent_report(
                ab, reference=ref, target_eqd2_gy=te, target_bed_gy=tb, fractions=n,
                dose_per_fraction_gy=d, model=model,
            )
        ),
    )


async def _presets(request: Request) -> Response:
    q = _Query(request, set())
    if q.errors:
        return _errors_response(q.errors)
    return JSONResponse(to_jsonable(presets_listing()), headers=_api_headers())


_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def _static_route(path: str, body: bytes, media_type: str) -> Route:
    async def endpoint(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=_SECURITY_HEADERS)

    return Route(path, endpoint, methods=["GET", "HEAD"])


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return _errors_response([_error(None, str(detail))], status=status)


def build_app() -> Starlette:
    """Build the application (the page and its three files are read once, here)."""
    static = resources.files("rtplan.web") / "static"
    routes = [
        _static_route(path, (static / name).read_bytes(), media)
        for path, (name, media) in _STATIC.items()
    ]
    routes += [
        Route("/api/eqd2", _eqd2),
        Route("/api/compare", _compare),
        Route("/api/curve", _curve),
        Route("/api/equivalent", _equivalent),
        Route("/api/presets", _presets),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})

