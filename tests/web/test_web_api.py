"""The web calculator's JSON API, in-process (Starlette TestClient).

References: the CLI's own ``--json`` output for the same inputs (the API must equal it),
the JSON Schemas in schemas/radiobiology, and closed-form LQ values:
EQD2 = D (d + a/b) / (2 + a/b), BED = D (1 + d / (a/b)).
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO

pytest.importorskip("starlette", reason="the web extra is not installed: pip install -e '.[web]'")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from rtplan.cli.main import main  # noqa: E402
from rtplan.web import create_app  # noqa: E402
from rtplan.web.app import LIMITS  # noqa: E402

CLIENT = TestClient(create_app(), raise_server_exceptions=False)
SCHEMAS = REPO / "schemas" / "radiobiology"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def validate(instance: object, name: str) -> None:
    jsonschema.validate(instance, schema(name))


def cli_json(capsys, *argv: str) -> object:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def api(path: str, params: list[tuple[str, str]] | None = None):
    return CLIENT.get(path, params=params or [])


USC_CLI = ["--model", "usc", "--usc-alpha", "0.33", "--usc-d0-gy", "1.25", "--usc-dq-gy", "1.8"]
USC_API = [("model", "usc"), ("usc_alpha", "0.33"), ("usc_d0_gy", "1.25"), ("usc_dq_gy", "1.8")]

# (CLI argv, API path, API params, schema of the answer (of each item for eqd2))
SAME_AS_CLI = [
    (["eqd2", "27/3", "37.5/5", "61.2/34", "--alpha-beta", "1.5", "--alpha-beta", "10"],
     "/api/eqd2", [("s", "27/3"), ("s", "37.5/5"), ("s", "61.2/34"), ("ab", "1.5"),
                   ("ab", "10")], "eqd2_result.json"),
    (["eqd2", "5x7.5", "1x20", "--alpha-beta", "3", "--model", "lql",
      "--transition-dose-gy", "6"],
     "/api/eqd2", [("s", "5x7.5"), ("s", "1x20"), ("ab", "3"), ("model", "lql"),
                   ("transition_dose_gy", "6")], "eqd2_result.json"),
    (["eqd2", "1x20", *USC_CLI], "/api/eqd2", [("s", "1x20"), *USC_API], "eqd2_result.json"),
    (["eqd2", "1x25", "--alpha-beta", "3"], "/api/eqd2", [("s", "1x25"), ("ab", "3")],
     "eqd2_result.json"),
    (["equivalent", "37.5/5", "--fractions", "3", "--alpha-beta", "1.5"],
     "/api/equivalent", [("ref", "37.5/5"), ("fractions", "3"), ("ab", "1.5")],
     "equivalent_report.json"),
    (["equivalent", "--target-eqd2", "78", "--dose-per-fraction", "3", "--alpha-beta", "1.5"],
     "/api/equivalent", [("target_eqd2", "78"), ("dose_per_fraction", "3"), ("ab", "1.5")],
     "equivalent_report.json"),
    (["equivalent", "--target-bed", "100", "--dose-per-fraction", "12", "--alpha-beta", "3"],
     "/api/equivalent", [("target_bed", "100"), ("dose_per_fraction", "12"), ("ab", "3")],
     "equivalent_report.json"),
    (["equivalent", "--target-eqd2", "60", "--fractions", "5", *USC_CLI],
     "/api/equivalent", [("target_eqd2", "60"), ("fractions", "5"), *USC_API],
     "equivalent_report.json"),
    (["compare"], "/api/compare", [], "comparison_report.json"),
    (["compare", "sbrt-37.5-5", "eni-51-34-sib-61.2", "30/5", "--alpha-beta", "1.5",
      "--alpha-beta", "10"],
     "/api/compare", [("plan", "sbrt-37.5-5"), ("plan", "eni-51-34-sib-61.2"),
                      ("plan", "30/5"), ("ab", "1.5"), ("ab", "10")],
     "comparison_report.json"),
    (["compare", "27/3", "eni-51-34-sib-57.2", "--model", "lql", "--transition-dose-gy", "6"],
     "/api/compare", [("plan", "27/3"), ("plan", "eni-51-34-sib-57.2"), ("model", "lql"),
                      ("transition_dose_gy", "6")], "comparison_report.json"),
    (["compare", "30/5", *USC_CLI], "/api/compare", [("plan", "30/5"), *USC_API],
     "comparison_report.json"),
    (["presets"], "/api/presets", [], "presets_listing.json"),
]


@pytest.mark.parametrize("argv, path, params, schema_name", SAME_AS_CLI,
                         ids=[" ".join(c[0]) for c in SAME_AS_CLI])
def test_api_equals_cli_json_and_schema(capsys, argv, path, params, schema_name):
    expected = cli_json(capsys, *argv, "--json")
    resp = api(path, params)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got == expected  # same keys, same values, same order of items
    assert list(got) == list(expected) if isinstance(got, dict) else True  # key order
    for item in got if isinstance(got, list) else [got]:
        validate(item, schema_name)


def test_plan_as_inline_json_equals_cli_plan_file(capsys, tmp_path):
    plan = {"name": "my-sib", "fractions": 28, "description": "test",
            "levels": [{"name": "lesion", "total_dose_gy": 70.0},
                       {"name": "elective_nodes", "total_dose_gy": 50.4}]}
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(plan))
    expected = cli_json(capsys, "compare", str(f), "--alpha-beta", "1.5", "--json")
    resp = api("/api/compare", [("plan", json.dumps(plan)), ("ab", "1.5")])
    assert resp.status_code == 200, resp.text
    assert resp.json() == expected
    lesion, nodes = resp.json()["plans"][0]["levels"]
    # closed form: 70 Gy in 2.5 Gy fractions at a/b 1.5 -> 70 * 4 / 3.5 = 80 Gy
    assert lesion["results"][0]["eqd2_gy"] == pytest.approx(80.0, abs=1e-9)
    # 50.4 Gy in 1.8 Gy fractions -> 50.4 * 3.3 / 3.5 = 47.52 Gy
    assert nodes["results"][0]["eqd2_gy"] == pytest.approx(47.52, abs=1e-9)


def test_eqd2_27_in_3_at_1_5_is_81_gy():
    r = api("/api/eqd2", [("s", "27/3"), ("ab", "1.5")]).json()[0]
    # 27 (9 + 1.5) / (2 + 1.5) = 81; BED 27 (1 + 9 / 1.5) = 189 (Gy)
    assert r["eqd2_gy"] == pytest.approx(81.0, abs=1e-9)
    assert r["bed_gy"] == pytest.approx(189.0, abs=1e-9)
    assert r["fraction_category"] == "<10"


def test_alpha_beta_list_as_comma_text():
    # the page sends "1.5, 3, 10" in one parameter
    a = api("/api/compare", [("plan", "27/3"), ("ab", "1.5, 3,10")]).json()
    b = api("/api/compare", [("plan", "27/3"), ("ab", "1.5"), ("ab", "3"), ("ab", "10")]).json()
    assert a == b and a["alpha_beta_gy"] == [1.5, 3.0, 10.0]


def test_curve_values_and_ranking_flip():
    resp = api("/api/curve", [("plan", "sbrt-37.5-5"), ("plan", "eni-51-34-sib-61.2"),
                              ("ab_min", "1"), ("ab_max", "20")])
    assert resp.status_code == 200, resp.text
    data = resp.json()
    validate(data, "eqd2_curves.json")
    grid = data["alpha_beta_gy"]
    assert grid[0] == pytest.approx(1.0) and grid[-1] == pytest.approx(20.0)
    curves = {(c["plan"], c["level"]): c["eqd2_gy"] for c in data["curves"]}
    assert set(curves) == {("sbrt-37.5-5", "lesion"), ("eni-51-34-sib-61.2", "lesion"),
                           ("eni-51-34-sib-61.2", "elective_nodes")}
    for k in (0, len(grid) // 2, len(grid) - 1):
        ab = grid[k]
        assert curves[("sbrt-37.5-5", "lesion")][k] == pytest.approx(
            37.5 * (7.5 + ab) / (2 + ab), rel=1e-12)
        assert curves[("eni-51-34-sib-61.2", "elective_nodes")][k] == pytest.approx(
            51.0 * (1.5 + ab) / (2 + ab), rel=1e-12)
    # 37.5 (7.5 + x) = 61.2 (1.8 + x)  ->  x = 171.09 / 23.7 Gy
    (flip,) = data["lesion_flips"]
    assert flip["alpha_beta_gy"] == pytest.approx(171.09 / 23.7, abs=1e-6)
    assert flip["eqd2_gy"] == pytest.approx(37.5 * (7.5 + 171.09 / 23.7) / (2 + 171.09 / 23.7),
                                            abs=1e-5)


def test_curve_refuses_usc():
    resp = api("/api/curve", [("plan", "30/5"), *USC_API])
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "model"


# -- bad input: 422 with the field ------------------------------------------------------
BAD = [
    ("/api/eqd2", [("s", "27/3"), ("s", "27/0"), ("ab", "1.5")], "s", 1, "fractions must be >= 1"),
    ("/api/eqd2", [("s", "twenty/3"), ("ab", "1.5")], "s", 0, "cannot parse schedule"),
    ("/api/eqd2", [("s", "-27/3"), ("ab", "1.5")], "s", 0, "negative"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "abc")], "ab", None, "expected a number"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "0")], "ab", None, "must be >= 0.01"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "nan")], "ab", None, "must be >= 0.01"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "inf")], "ab", None, "must be >= 0.01"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "1.5, x")], "ab", 1, "expected a number"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "3"), *USC_API], "ab", None, "imply alpha/beta"),
    ("/api/compare", [("plan", "0/1")], "plan", 0, "greater than 0"),
    ("/api/curve", [("plan", "27/3"), ("plan", "0/1")], "plan", 1, "greater than 0"),
    ("/api/curve", [("ab_min", "10"), ("ab_max", "5")], "ab_min", None, "min < max"),
    ("/api/eqd2", [("s", "27/3")], "ab", None, "give alpha/beta"),
    ("/api/eqd2", [("ab", "1.5")], "s", None, "at least one schedule"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "3"), ("model", "lql")], "transition_dose_gy", None,
     "transition dose"),
    ("/api/eqd2", [("s", "27/3"), ("model", "usc"), ("usc_alpha", "0.33")], "usc_d0_gy", None,
     "D0"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "3"), ("model", "xyz")], "model", None, "lq, lql or usc"),
    ("/api/eqd2", [("s", "27/3"), ("ab", "3"), ("file", "/etc/passwd")], "file", None,
     "unknown parameter"),
    ("/api/eqd2", [("s", "27/99999"), ("ab", "3")], "s", 0, "at most 10000"),
    ("/api/eqd2", [("s", "9" * 400 + "/3"), ("ab", "3")], "s", 0, "too long"),
    ("/api/eqd2", [("s", "27/3")] * 13 + [("ab", "3")], "s", None, "at most 12"),
    ("/api/eqd2", [("s", "27/3"), ("ab", " ".join(["1"] * 13))], "ab", None, "at most 12"),
    ("/api/compare", [("plan", "/etc/passwd")], "plan", 0, "cannot parse schedule"),
    ("/api/compare", [("plan", "plan.json")], "plan", 0, "cannot parse schedule"),
    ("/api/compare", [("plan", "sbrt-37.5-5"), ("plan", '{"name": "x"')], "plan", 1,
     "is not valid JSON"),
    ("/api/compare", [("plan", '{"name": "x", "fractions": 3, "levels": []}')], "plan", 0,
     "levels"),
    ("/api/compare", [("plan", "{" + "[" * 2100)], "plan", 0, "too long"),
    ("/api/compare", [("plan", '{"a":' + "[" * 990 + "]" * 990 + "}")], "plan", 0,
     "levels deep"),
    ("/api/compare", [("plan", "30/5"), ("ab", "-1")], "ab", None, "must be >= 0.01"),
    ("/api/equivalent", [("ab", "1.5"), ("fractions", "3")], "ref", None, "reference schedule"),
    ("/api/equivalent", [("ref", "37.5/5"), ("target_eqd2", "70"), ("fractions", "3"),
                         ("ab", "1.5")], "ref", None, "got ref, target_eqd2"),
    ("/api/equivalent", [("ref", "37.5/5"), ("ab", "1.5")], "fractions", None, "give one of"),
    ("/api/equivalent", [("ref", "37.5/5"), ("fractions", "0"), ("ab", "1.5")], "fractions",
     None, "from 1 to 1000"),
    ("/api/equivalent", [("ref", "37.5/5"), ("fractions", "2.5"), ("ab", "1.5")], "fractions",
     None, "whole number"),
    ("/api/equivalent", [("ref", "37.5/5"), ("dose_per_fraction", "0.001"), ("ab", "1.5")],
     "dose_per_fraction", None, ">= 0.01"),
    ("/api/equivalent", [("ref", "37.5/5"), ("fractions", "3"), ("ab", "1.5"), ("ab", "3")],
     "ab", None, "at most 1"),
    ("/api/equivalent", [("ref", "x"), ("fractions", "3"), ("ab", "1.5")], "ref", None,
     "cannot parse"),
    ("/api/presets", [("x", "1")], "x", None, "unknown parameter"),
]


@pytest.mark.parametrize("path, params, field, index, message", BAD)
def test_bad_input_is_422_next_to_the_field(path, params, field, index, message):
    resp = api(path, params)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    match = [e for e in errors if e["field"] == field and e["index"] == index]
    assert match, errors
    assert any(message in e["message"] for e in match), errors


def test_query_too_long_is_refused():
    resp = api("/api/eqd2", [("s", "27/3"), ("ab", "1" * (int(LIMITS["query_chars"]) + 10))])
    assert resp.status_code == 422
    assert "too long" in resp.json()["errors"][0]["message"]


def test_no_file_system_access_and_security_headers():
    assert api("/../pyproject.toml").status_code == 404
    assert api("/static/index.html").status_code == 404
    assert api("/app.js/../../etc/passwd").status_code == 404
    page = api("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert api("/api/eqd2", [("s", "27/3"), ("ab", "1.5")]).headers["cache-control"] == "no-store"
    # not a write interface
    assert CLIENT.post("/api/eqd2", data={"s": "27/3"}).status_code == 405


PARAM_NAMES = ["s", "ab", "plan", "ref", "target_eqd2", "target_bed", "fractions",
               "dose_per_fraction", "model", "transition_dose_gy", "usc_alpha", "usc_d0_gy",
               "usc_dq_gy", "ab_min", "ab_max"]
VALUE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["27/3", "0/1", "1e308/1", "5x0", "1x1000", "1000x10", "lq", "lql",
                     "usc", "1.5", "0", "-1", "1e-300", "1e300", "nan", "inf", "1_0", "",
                     "{}", '{"name":"a","fractions":1,"levels":[{"name":"l",'
                     '"total_dose_gy":1e-300}]}', "sbrt-27-3", "0.01", "100", "1000"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/api/eqd2", "/api/compare", "/api/curve", "/api/equivalent",
                          "/api/presets"]),
    params=st.lists(st.tuples(st.sampled_from(PARAM_NAMES), VALUE), max_size=8),
)
def test_fuzz_never_a_server_error(path, params):
    resp = api(path, params)
    assert resp.status_code in (200, 422), (resp.status_code, resp.text[:500])
    body = resp.json()
    if resp.status_code == 422:
        assert body["errors"] and all(isinstance(e["message"], str) for e in body["errors"])


SPECIAL = ["27/3", "0/1", "1e308/1", "5x0", "1x1000", "1000x10", "1000x100", "10000/1000",
           "lq", "lql", "usc", "1.5", "0", "0.01", "-1", "1e-300", "1e300", "nan", "inf",
           "", " ", "{}", "[]", "null", '{"name":"a","fractions":1,"levels":[{"name":"l",'
           '"total_dose_gy":1e-300}]}', "sbrt-27-3", "100", "1000", "10000", "\x00", "é"]


@pytest.mark.parametrize("path", ["/api/eqd2", "/api/compare", "/api/curve",
                                  "/api/equivalent"])
def test_special_values_in_every_parameter_never_a_server_error(path):
    base = {
        "/api/eqd2": [("s", "27/3"), ("ab", "1.5")],
        "/api/compare": [("plan", "27/3"), ("ab", "1.5")],
        "/api/curve": [("plan", "27/3"), ("plan", "sbrt-37.5-5")],
        "/api/equivalent": [("ref", "37.5/5"), ("fractions", "3"), ("ab", "1.5")],
    }[path]
    for name in PARAM_NAMES:
        for value in SPECIAL:
            params = [(k, v) for k, v in base if k != name] + [(name, value)]
            resp = api(path, params)
            assert resp.status_code in (200, 422), (params, resp.status_code, resp.text[:300])
            if resp.status_code == 200:  # what is computed is finite, as JSON allows
                assert "null" not in resp.text, resp.text[:300]


def test_cli_compare_zero_dose_is_a_one_line_error(capsys):
    assert main(["compare", "0/1"]) == 2
    err = capsys.readouterr().err
    assert "greater than 0" in err and len(err.strip().splitlines()) == 1


# -- rtplan serve ----------------------------------------------------------------------------
def test_serve_without_the_extra_exits_2(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rtplan[web]'" in err and len(err.strip().splitlines()) == 1


def test_serve_warns_when_not_on_localhost(capsys, monkeypatch):
    import rtplan.web

    calls = []
    monkeypatch.setattr(rtplan.web, "serve", lambda host, port: calls.append((host, port)))
    assert main(["serve", "--host", "0.0.0.0", "--port", "9999"]) == 0
    assert calls == [("0.0.0.0", 9999)]
    assert "reachable from other machines" in capsys.readouterr().err
    assert main(["serve", "--port", "9999"]) == 0
    assert calls[-1] == ("127.0.0.1", 9999)
    assert "warning" not in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rtplan_serve_answers_on_localhost(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtplan.cli.main", "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}/api/eqd2?s=27/3&ab=1.5"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    data = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "rtplan serve did not answer in 30 s"
                time.sleep(0.2)
        assert math.isclose(data[0]["eqd2_gy"], 81.0, abs_tol=1e-9)
        assert f"on http://127.0.0.1:{port}/" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
