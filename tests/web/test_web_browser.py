"""The calculator page in a real headless Chromium (Debian's ``chromium`` + Playwright).

Runs ``rtplan serve`` in a subprocess on a free localhost port. Skips when Chromium or
Playwright is missing, but fails under ``RTPLAN_CI=1`` (CI installs both).
Reference values are closed-form LQ: EQD2 = D (d + a/b) / (2 + a/b).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _missing(reason: str) -> None:
    if os.environ.get("RTPLAN_CI") == "1":
        pytest.fail(f"{reason} (required under RTPLAN_CI=1)")
    pytest.skip(reason)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    _missing("Debian's chromium is not installed: apt-get install chromium")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    if os.environ.get("RTPLAN_CI") != "1":
        pytest.importorskip("starlette", reason="the web extra is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtplan.cli.main", "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/api/presets", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "rtplan serve did not start in 30 s"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # a 422 answer is expected when a test types bad input; anything else is a problem
    pg.on("console", lambda m: problems.append(m.text)
          if m.type == "error" and "status of 422" not in m.text else None)
    pg.goto(base_url + "/")
    pg.wait_for_selector("body[data-ready='1']")
    pg.wait_for_selector("button.preset")  # presets loaded from /api/presets
    yield pg
    ctx.close()
    assert not problems, problems


def test_type_a_schedule_see_eqd2_and_the_plot(page, tmp_path):
    page.fill(".plan-input >> nth=0", "27/3")
    page.fill("#ab", "1.5")
    page.click("#calculate")
    cell = page.wait_for_selector('td.eqd2[data-plan="27/3"][data-ab="1.5"]')
    # 27 Gy in 9 Gy fractions at a/b 1.5: 27 * 10.5 / 3.5 = 81 Gy; BED 27 * 7 = 189 Gy
    assert cell.inner_text() == "81.00"
    bed = page.query_selector('td.bed[data-plan="27/3"][data-ab="1.5"]')
    assert bed is not None and bed.inner_text() == "189.00"
    assert "EQD2 (Gy)" in page.inner_text("#result-table")
    assert "<10" in page.inner_text("#result-table")  # fraction-count category
    page.wait_for_selector("#eqd2-plot polyline.curve")
    assert page.locator("#eqd2-plot polyline.curve").count() == 1
    assert page.locator("#eqd2-plot line.chosen-ab").count() == 1  # a/b 1.5 marked
    assert "s=27%2F3" in page.url and "ab=1.5" in page.url  # state in the URL
    shot = tmp_path / "calculator.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def expect(locator):
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def test_bad_input_is_shown_next_to_the_field(page):
    page.fill(".plan-input >> nth=0", "27/0")
    page.fill("#ab", "1.5, abc")
    page.click("#calculate")
    row_error = page.locator(".plan-row >> nth=0").locator(".field-error")
    expect(row_error).to_contain_text("fractions must be >= 1")
    assert "invalid" in (page.get_attribute(".plan-input >> nth=0", "class") or "")
    assert "expected a number" in page.inner_text("#ab-error")
    assert page.is_hidden("#result-table")
    # the LQ-L model without its transition dose: the error sits by that field
    page.fill(".plan-input >> nth=0", "27/3")
    page.fill("#ab", "3")
    page.select_option("#model", "lql")
    page.click("#calculate")
    expect(page.locator("#transition_dose_gy-error")).to_contain_text("transition dose")


def test_presets_one_click_and_the_ranking_flip(page):
    page.fill("#ab", "1.5, 10")
    page.click("button.preset[data-key='sbrt-37.5-5']")
    page.wait_for_selector('td.eqd2[data-plan="sbrt-37.5-5"]')
    page.click("button.preset[data-key='eni-51-34-sib-61.2']")
    page.wait_for_selector('td.eqd2[data-plan="eni-51-34-sib-61.2"][data-level="elective_nodes"]')
    page.wait_for_selector("#eqd2-plot circle.flip")
    # 37.5 (7.5 + x) = 61.2 (1.8 + x)  ->  x = 7.22 Gy
    assert "at alpha/beta 7.22 Gy" in page.inner_text("#plot-caption")
    ranking = page.inner_text("#ranking")
    assert "alpha/beta 1.5 Gy: sbrt-37.5-5 > eni-51-34-sib-61.2" in ranking
    assert "alpha/beta 10 Gy: eni-51-34-sib-61.2 > sbrt-37.5-5" in ranking
    # SIB levels each from their own dose per fraction: 51 Gy in 1.5 Gy at a/b 1.5
    # -> 51 * 3 / 3.5 = 43.71 Gy
    nodes = page.inner_text('td.eqd2[data-plan="eni-51-34-sib-61.2"]'
                            '[data-level="elective_nodes"][data-ab="1.5"]')
    assert nodes == "43.71"


def test_shared_url_restores_the_result_and_the_solver(page, base_url):
    page.goto(base_url + "/?s=37.5/5&ab=1.5&eq_ref=37.5/5&eq_fractions=3&eq_ab=1.5")
    cell = page.wait_for_selector('td.eqd2[data-plan="37.5/5"][data-ab="1.5"]')
    # 37.5 * 9 / 3.5 = 96.43 Gy
    assert cell.inner_text() == "96.43"
    expect(page.locator("#eq-result")).to_contain_text("equivalent:")
    # same BED 225 Gy in 3 fractions: d^2/1.5 + d = 75 -> d = 0.75 (sqrt(201) - 1)
    d = 0.75 * (201 ** 0.5 - 1)
    assert f"3 x {d:.4f} Gy" in page.inner_text("#eq-result")


def test_solver_error_next_to_its_field(page):
    page.fill("#eq-ref", "37.5/5")
    page.fill("#eq-ab", "1.5")
    page.click("#solve")
    expect(page.locator("#eq-fractions-error")).to_contain_text("number of fractions")



def test_model_warning_and_sib_builder(page):
    # LQ-L, d_T 6 Gy, one fraction of 20 Gy at a/b 3: BED = 6 (1 + 6/3) + 14 (1 + 12/3)
    # = 88 Gy, EQD2 = 88 / (1 + 2/3) = 52.8 Gy
    page.fill(".plan-input >> nth=0", "1x20")
    page.fill("#ab", "3")
    page.select_option("#model", "lql")
    page.fill("#transition_dose_gy", "6")
    page.click("#calculate")
    cell = page.wait_for_selector('td.eqd2[data-plan="20/1"][data-ab="3"]')  # labelled TOTAL/N
    assert cell.inner_text() == "52.80"
    # plain LQ at 20 Gy per fraction: the CLI's warning is shown
    page.select_option("#model", "lq")
    page.click("#calculate")
    expect(page.locator("#warnings")).to_contain_text("LQ model used at 20 Gy per fraction")
    # an SIB plan from the builder: 34 fx, lesion 61.2 Gy, nodes 51 Gy, a/b 3:
    # nodes 51 * 4.5 / 5 = 45.9 Gy, lesion 61.2 * 4.8 / 5 = 58.752 Gy
    page.click("#sib-builder summary")
    page.fill("#sib-name", "my-sib")
    page.click("#add-sib")
    page.click("#calculate")
    nodes = page.wait_for_selector(
        'td.eqd2[data-plan="my-sib"][data-level="elective_nodes"][data-ab="3"]')
    assert nodes.inner_text() == "45.90"
    lesion = page.query_selector('td.eqd2[data-plan="my-sib"][data-level="lesion"][data-ab="3"]')
    assert lesion is not None and lesion.inner_text() == "58.75"
