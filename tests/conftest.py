from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from vcr.cassette import Cassette

from tests.cassettes import cassette_vcr


@pytest.fixture
def replay() -> Callable[[str], AbstractContextManager[Cassette]]:
    """Replay a cassette; a request that is not in it fails (record mode ``none``)."""

    def use(name: str) -> AbstractContextManager[Cassette]:
        return cassette_vcr("none").use_cassette(name)  # type: ignore[no-any-return]

    return use


@pytest.fixture(autouse=True)
def _no_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Tests decide their endpoint themselves; a developer's key must never be sent.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRUCTX_MODEL"):
        monkeypatch.delenv(name, raising=False)
    yield


Reliability = Callable[..., None]


@pytest.fixture
def reliability(record_property: Callable[[str, object], None]) -> Reliability:
    """Record one row of RELIABILITY.md: what was tried, what was expected, what was seen.

    ``python -m tests.reliability_report`` runs the suite and builds the
    report from these rows, so the report says what the tests saw.
    """

    def record(
        section: str,
        case: str,
        *,
        expected: str,
        observed: str,
        requests: int | None = None,
        items: list[str] | None = None,
        tried: int | None = None,
        lost: int | None = None,
    ) -> None:
        """``items`` names what was tried, ``tried`` counts it, ``lost`` counts articles left without a line.

        Call it before the test's assertions, so that a failing test still reports what it saw.
        """
        row = {"section": section, "case": case, "expected": expected, "observed": observed,
               "requests": requests, "items": items or [], "tried": tried, "lost": lost}  # fmt: skip
        record_property("reliability", json.dumps(row))

    return record
