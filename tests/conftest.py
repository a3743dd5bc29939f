from __future__ import annotations

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
