"""RELIABILITY.md is generated from the tests; these checks catch a report left behind by the tests."""

from __future__ import annotations

import re

from tests.cassettes import ROOT, fault_scenarios, injection_scenarios
from tests.reliability_report import Case, render
from tests.test_extract_scripted import EXPECTED


def _rows(section_title: str) -> dict[str, list[str]]:
    text = (ROOT / "RELIABILITY.md").read_text(encoding="utf-8")
    section = text.split(f"## {section_title}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] not in ("case", "---"):
            rows[cells[0]] = cells
    return rows


def test_the_report_holds_every_fault_with_its_expected_outcome_and_requests() -> None:
    rows = _rows("Fault matrix: one extraction")
    for scenario in fault_scenarios():
        error, requests, _ = EXPECTED[scenario.name]
        case, expected, _, counted, _, passed = rows[scenario.name]
        assert expected == f"{error.__name__ if error else 'ok'}, {requests} request(s)", case
        assert (counted, passed) == (str(requests), "yes"), case
    assert len(injection_scenarios()) == len(_rows("Prompt injection"))


def test_a_failed_test_shows_in_the_totals_and_its_row() -> None:
    row = {"section": "extraction", "case": "500_repeated", "expected": "ServerError, 3 request(s)",
           "observed": "ServerError, 4 request(s)", "requests": 4, "items": [], "lost": 0}  # fmt: skip
    text = render([Case("test_extract_scripted::test_x", passed=False, rows=[row])])
    assert "faults survived: **0 of 1**" in text
    assert "| 500_repeated | ServerError, 3 request(s) | ServerError, 4 request(s) | 4 |" in text
    assert text.count("**NO**") == 1 and "failed: 1 (test_extract_scripted::test_x)" in text
