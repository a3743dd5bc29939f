"""The report in a real browser: Debian's chromium, driven through its chromedriver by selenium.

The report is opened from disk (file://) as a person would open it, and the
tests assert what that person sees: the index's figures are the results
file's, every located evidence span is highlighted, clicking a record's card
marks its spans, clicking a highlight names its records, the ungrounded
section lists the ungrounded records, and a hostile article runs nothing.

selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium
explicitly, so Selenium Manager (which would download a driver) is never
run; a guard makes sure of it. Without chromium the tests are skipped with
the reason; CI installs it (.ci/run). Screenshots of the index and one
article page go to test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import structx
from tests.report_run import (
    DROPPED_STEM,
    HOSTILE_ID,
    HOSTILE_TEXT,
    NO_TEXT_ID,
    STEMS,
    UNGROUNDED_STEM,
    located_spans,
    read_run,
    write_run,
)

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

HAVE_CHROMIUM = CHROMIUM.is_file() and CHROMEDRIVER.is_file()
NO_CHROMIUM = (
    "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
    "apt-get install chromium chromium-driver"
)
if not HAVE_CHROMIUM and os.environ.get("CI") == "true":
    # .ci/run installs them: in CI a skip would hide a broken install.
    pytest.fail(f"the browser tests cannot run: {NO_CHROMIUM}", pytrace=False)
pytestmark = pytest.mark.skipif(not HAVE_CHROMIUM, reason=NO_CHROMIUM)

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.selenium_manager import SeleniumManager  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Selenium Manager downloads drivers and browsers: with the driver's path given it must never run.
    with mock.patch.object(SeleniumManager, "binary_paths", side_effect=AssertionError("Selenium Manager ran")):
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("browser")
    results = write_run(folder)
    structx.write_report([results], folder / "report", dataset=structx.build_dataset([results]))
    return {"out": folder / "report", "lines": read_run(results)}


def _open(browser: WebDriver, page: Path) -> None:
    browser.get(page.resolve().as_uri())
    browser.get_log("browser")  # what the previous page logged is not this page's


def _page(report: dict[str, Any], article_id: str) -> Path:
    return Path(report["out"]) / "articles" / f"{article_id}.html"


def _errors(browser: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def _no_alert(browser: WebDriver) -> bool:
    try:
        browser.switch_to.alert.dismiss()
    except NoAlertPresentException:
        return True
    return False


def _screenshot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / name))
    assert (ARTIFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_index_shows_the_results_files_figures(browser: WebDriver, report: dict[str, Any]) -> None:
    lines = report["lines"]
    _open(browser, report["out"] / "index.html")
    _screenshot(browser, "report-index.png")

    def figure(name: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f'[data-count="{name}"]').text

    ok = [line for line in lines if line["status"] == "ok"]
    kept = [r for line in ok for r in line["grounding"]["records"] if not r["dropped"]]
    assert figure("articles") == str(len(lines))
    assert figure("ok") == str(len(ok))
    assert figure("failed") == str(len(lines) - len(ok))
    assert figure("error:TruncatedOutput") == "1" and figure("error:GroundingFailed") == "1"
    assert figure("records") == str(len(kept))
    assert figure("ungrounded") == str(sum(not r["grounded"] for r in kept))
    assert figure("dropped") == str(sum(r["dropped"] for line in ok for r in line["grounding"]["records"]))
    for kind in ("visits", "meetings", "militia_stances", "quoted_sources"):
        assert figure(f"type:{kind}") == str(sum(len(line["records"].get(kind, [])) for line in ok))
    tokens = sum(line["usage"]["total_tokens"] for line in lines if "usage" in line)
    assert figure("total-tokens") == f"{tokens:,}"
    rows = browser.find_elements(By.CSS_SELECTOR, "#articles tbody tr")
    assert [row.get_attribute("data-id") for row in rows] == [line["id"] for line in lines]
    assert browser.find_element(By.ID, "shown").text == f"{len(lines)} of {len(lines)} articles shown"
    assert _errors(browser) == []


def test_the_index_filters_by_record_type_and_by_problems(browser: WebDriver, report: dict[str, Any]) -> None:
    lines = report["lines"]
    _open(browser, report["out"] / "index.html")
    assert browser.find_element(By.ID, "filters").is_displayed()  # the script shows them

    def shown() -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#articles tbody tr")
        return [row.get_attribute("data-id") or "" for row in rows if row.is_displayed()]

    browser.find_element(By.CSS_SELECTOR, '#filter-type option[value="meetings"]').click()
    assert shown() == [line["id"] for line in lines if line["status"] == "ok" and line["records"].get("meetings")]
    browser.find_element(By.CSS_SELECTOR, '#filter-type option[value=""]').click()
    browser.find_element(By.ID, "filter-problems").click()
    problems = [line["id"] for line in lines if line["status"] != "ok"
                or any(not r["grounded"] or r["dropped"] for r in line["grounding"]["records"])]  # fmt: skip
    assert shown() == problems
    assert browser.find_element(By.ID, "shown").text == f"{len(problems)} of {len(lines)} articles shown"


def test_every_located_evidence_span_is_highlighted(browser: WebDriver, report: dict[str, Any]) -> None:
    for line in report["lines"]:
        _open(browser, _page(report, line["id"]))
        marks = browser.find_elements(By.CSS_SELECTOR, "#article-text mark.hl")
        spans = {mark.get_attribute("data-span") for mark in marks}
        expected = 0 if line["id"] in (NO_TEXT_ID, "truncated") else located_spans(line)
        assert len(spans) == expected, line["id"]
        assert all(mark.is_displayed() for mark in marks)
        if line["status"] == "ok" and expected:
            assert browser.find_element(By.ID, "highlight-count").text == f"{expected} evidence spans highlighted"
        assert _errors(browser) == [], line["id"]


def test_clicking_a_card_marks_its_spans_and_only_its(browser: WebDriver, report: dict[str, Any]) -> None:
    # Seed 000's meeting shares its sentences with the visit: only the meeting's marks may light up.
    line = next(line for line in report["lines"] if line["id"] == STEMS[0])
    (meeting,) = [r for r in line["grounding"]["records"] if r["path"] == "meetings[0]"]
    _open(browser, _page(report, STEMS[0]))
    assert browser.find_elements(By.CSS_SELECTOR, "mark.hl.active") == []
    card = browser.find_element(By.ID, "rec-meetings-0")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
    card.find_element(By.CSS_SELECTOR, "header strong").click()
    active = browser.find_elements(By.CSS_SELECTOR, "mark.hl.active")
    assert {mark.get_attribute("data-record") for mark in active} == {"rec-meetings-0"}
    assert len({mark.get_attribute("data-span") for mark in active}) == len(meeting["evidence"])
    assert "selected" in (card.get_attribute("class") or "")
    # The text scrolled to the first of them, and the record says how many it marked.
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", active[0])
    assert 0 <= top <= browser.execute_script("return window.innerHeight")
    status = browser.find_element(By.ID, "selection")
    assert status.is_displayed() and f"{len(meeting['evidence'])} evidence spans marked" in status.text
    _screenshot(browser, "report-article.png")
    # Another card moves the marks to its own spans.
    browser.find_element(By.CSS_SELECTOR, "#rec-visits-0 header strong").click()
    assert {m.get_attribute("data-record") for m in browser.find_elements(By.CSS_SELECTOR, "mark.hl.active")} == {
        "rec-visits-0"
    }
    assert _errors(browser) == []


def test_clicking_a_highlight_shows_its_records(browser: WebDriver, report: dict[str, Any]) -> None:
    _open(browser, _page(report, STEMS[0]))
    # The innermost mark of a sentence several records cite.
    inner = browser.execute_script(
        "return Array.from(document.querySelectorAll('#article-text mark.hl'))"
        ".find(m => m.parentElement.closest('mark.hl') && !m.querySelector('mark.hl'))"
    )
    records = browser.execute_script(
        "const out = []; for (let m = arguments[0]; m; m = m.parentElement.closest('mark.hl'))"
        " out.push(m.dataset.record); return out",
        inner,
    )
    assert len(set(records)) >= 2
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", inner)
    inner.click()
    status = browser.find_element(By.ID, "selection")
    assert status.is_displayed() and status.text.startswith("This passage is evidence for:")
    named = [link.get_attribute("data-record") for link in status.find_elements(By.TAG_NAME, "a")]
    assert named == list(dict.fromkeys(records))
    for anchor in named:
        card = browser.find_element(By.ID, anchor or "")
        assert "selected" in (card.get_attribute("class") or "") and card.get_attribute("data-label") in status.text
    assert _errors(browser) == []


def test_the_ungrounded_section_lists_the_ungrounded_records(browser: WebDriver, report: dict[str, Any]) -> None:
    for stem in (UNGROUNDED_STEM, DROPPED_STEM):
        line = next(line for line in report["lines"] if line["id"] == stem)
        flagged = [r for r in line["grounding"]["records"] if not r["grounded"]]
        _open(browser, _page(report, stem))
        section = browser.find_element(By.ID, "ungrounded")
        browser.execute_script("arguments[0].scrollIntoView()", section)
        assert section.is_displayed()
        assert section.find_element(By.TAG_NAME, "h2").text == f"Ungrounded records ({len(flagged)})"
        items = section.find_elements(By.CSS_SELECTOR, "ul.ungrounded-list > li")
        assert [item.find_element(By.CSS_SELECTOR, "code.path").text for item in items] == [r["path"] for r in flagged]
        for item, record in zip(items, flagged, strict=True):
            assert [p.text for p in item.find_elements(By.CSS_SELECTOR, "ul.problems > li")] == record["problems"]


def test_a_hostile_article_runs_nothing_and_shows_its_text(browser: WebDriver, report: dict[str, Any]) -> None:
    pages = [_page(report, HOSTILE_ID), report["out"] / "index.html", report["out"] / "stances.html",
             report["out"] / "entities.html", report["out"] / "sources.html"]  # fmt: skip
    for page in pages:
        _open(browser, page)
        # Point at and focus every element, as a curious reader would: a planted handler would fire.
        browser.execute_script(
            "for (const e of document.querySelectorAll('main *')) {"
            " for (const t of ['mouseover', 'mouseenter', 'mousemove', 'focus'])"
            " e.dispatchEvent(new Event(t, {bubbles: true})); }"
        )
        assert _no_alert(browser), page
        assert browser.execute_script("return window.__pwned") is None, page
        assert browser.execute_script("return document.scripts.length") == 1, page
        planted = "main img, main iframe, main textarea, a[href^='javascript']"
        assert browser.find_elements(By.CSS_SELECTOR, planted) == [], page
        assert _errors(browser) == [], page
    _open(browser, _page(report, HOSTILE_ID))
    text = browser.find_element(By.ID, "article-text")
    for line in HOSTILE_TEXT.splitlines():
        assert line in text.text
    for mark in browser.find_elements(By.CSS_SELECTOR, "#article-text mark.hl"):
        if mark.is_displayed():
            mark.click()
    assert _no_alert(browser) and browser.execute_script("return window.__pwned") is None
    assert "<script>window.__pwned = 6</script>Hostile <i>title</i>" in browser.find_element(By.TAG_NAME, "h1").text
    assert _errors(browser) == []


def test_a_link_from_the_dataset_lands_on_the_record_and_marks_it(browser: WebDriver, report: dict[str, Any]) -> None:
    _open(browser, report["out"] / "stances.html")
    entry = browser.find_element(By.CSS_SELECTOR, "#stance-matrix a.entry")
    href = entry.get_attribute("href") or ""
    entry.click()
    anchor = href.split("#")[1]
    assert browser.current_url == href
    active = browser.find_elements(By.CSS_SELECTOR, "mark.hl.active")
    assert active and {m.get_attribute("data-record") for m in active} == {anchor}
    assert _errors(browser) == []


def test_the_pages_read_without_javascript(tmp_path: Path, report: dict[str, Any]) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--blink-settings=scriptEnabled=false"):  # fmt: skip
        options.add_argument(argument)
    with mock.patch.object(SeleniumManager, "binary_paths", side_effect=AssertionError("Selenium Manager ran")):
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        line = next(line for line in report["lines"] if line["id"] == STEMS[0])
        driver.get(_page(report, STEMS[0]).resolve().as_uri())
        assert driver.find_element(By.ID, "article-text").text.startswith(Path(line["source"]).read_text()[:40])
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        assert len(cards) == len(line["grounding"]["records"]) and all(c.is_displayed() for c in cards)
        marks = driver.find_elements(By.CSS_SELECTOR, "mark.hl")
        assert len({m.get_attribute("data-span") for m in marks}) == located_spans(line)
        driver.get((report["out"] / "index.html").resolve().as_uri())
        assert not driver.find_element(By.ID, "filters").is_displayed()
        assert len([r for r in driver.find_elements(By.CSS_SELECTOR, "#articles tbody tr") if r.is_displayed()]) == len(
            report["lines"]
        )
    finally:
        driver.quit()
