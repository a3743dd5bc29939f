"""Replays of real exchanges with llama.cpp's native server (xllamacpp) running the embedded default model.

The expected outcome of each seed is read from the recorded responses
themselves, so the tests check the whole path (request format, usage
accounting, finish reasons, validation) against what the real server sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from vcr.cassette import Cassette

import structx
from tests.cassettes import CASSETTES, llama_cassette, llama_config, seed_article

# The seeds recorded from the real server (cassettes/README.md says when and how).
RECORDED = sorted(path.stem for path in (CASSETTES / "llama_cpp").glob("*.yaml"))

Replay = Callable[[str], AbstractContextManager[Cassette]]


def _recorded(stem: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((CASSETTES / llama_cassette(stem)).read_text(encoding="utf-8"))
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


@pytest.mark.parametrize("stem", RECORDED)
def test_seed_replays_as_the_real_server_answered(replay: Replay, stem: str) -> None:
    recorded = _recorded(stem)
    responses = [json.loads(i["response"]["body"]["string"]) for i in recorded]
    expected_usage = structx.Usage(
        prompt_tokens=sum(r["usage"]["prompt_tokens"] for r in responses),
        completion_tokens=sum(r["usage"]["completion_tokens"] for r in responses),
    )
    article = seed_article(stem)

    with replay(llama_cassette(stem)) as cassette:
        try:
            outcome: structx.Result[Any] | structx.ExtractionError = structx.extract(article, config=llama_config())
        except structx.ExtractionError as exc:
            outcome = exc
        assert cassette.play_count == len(recorded)

    assert (outcome.requests, outcome.attempts, outcome.usage) == (len(recorded), len(recorded), expected_usage)
    if not isinstance(outcome, structx.Result):
        # A list cut off by the token limit before one record was complete: nothing to salvage.
        last = responses[-1]["choices"][0]
        assert isinstance(outcome, structx.TruncatedOutput) and last["finish_reason"] == "length"
        assert outcome.last_completion == last["message"]["content"]
        return
    result = outcome
    assert result.model == structx.EMBEDDED_MODEL_NAME and result.mode == "json_object_schema"
    # Evidence is cited by sentence number and turned back into the sentences: exact by construction.
    for record in result.grounding.records:
        for span in record.evidence:
            assert span.status is structx.AlignmentStatus.EXACT
            assert article.text[span.start : span.end] == span.text


@pytest.mark.parametrize("stem", RECORDED)
def test_each_call_asks_for_one_record_type_in_llama_cpps_json_object_schema_format(stem: str) -> None:
    first_asks = structx.Client(config=llama_config()).request_bodies(seed_article(stem))
    asked = [json.loads(interaction["request"]["body"]) for interaction in _recorded(stem)]
    # Each call's first request is sent as request_bodies builds it; re-asks repeat it with the feedback added.
    firsts = [body for body in asked if len(body["messages"]) == 2]
    assert firsts == first_asks
    for body in asked:
        assert body["model"] == structx.EMBEDDED_MODEL_NAME
        assert body["response_format"]["type"] == "json_object"
        assert body["response_format"] in [ask["response_format"] for ask in first_asks]


@pytest.mark.parametrize("stem", RECORDED)
def test_the_recordings_are_llama_cpp_native_server_answers(stem: str) -> None:
    """What structx reads from llama.cpp's server, as it really sent it: the alias, usage and timings."""
    config = llama_config()
    for interaction in _recorded(stem):
        request = json.loads(interaction["request"]["body"])
        # The server's own defaults are temperature 0.8 and no token limit: structx always sends both.
        assert request["temperature"] == config.temperature
        assert config.max_tokens is not None and 0 < request["max_tokens"] <= config.max_tokens
        assert "frequency_penalty" not in request
        response = json.loads(interaction["response"]["body"]["string"])
        assert response["model"] == structx.EMBEDDED_MODEL_NAME  # the alias the embedded server is given
        usage, timings = response["usage"], response["timings"]
        # The prompt counts every token; the server evaluated prompt_n of them and reused cache_n.
        assert usage["prompt_tokens"] == timings["prompt_n"] + timings["cache_n"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == timings["cache_n"]
        assert usage["completion_tokens"] == timings["predicted_n"]
