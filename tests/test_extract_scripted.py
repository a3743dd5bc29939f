"""Extraction replayed from the scripted server's cassettes: the seeds, and every fault."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException

import structx
from structx._chunking import split_into_chunks
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import (
    FAULT_ARTICLE,
    RECORDING_API_KEY,
    fabricated_answer,
    fault_scenarios,
    scripted_config,
    seed_answer,
    seed_article,
    seed_paths,
)
from tests.conftest import Reliability

Replay = Callable[[str], AbstractContextManager[Cassette]]
SEED_STEMS = [path.stem for path in seed_paths()]


def _bodies(cassette: Cassette) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in cassette.requests]


def test_each_seed_yields_its_records(replay: Replay) -> None:
    with replay("scripted/seeds.yaml") as cassette, structx.Client(scripted_config()) as client:
        for stem in SEED_STEMS:
            result = client.extract(seed_article(stem))
            assert result.value == seed_answer(stem)
            assert (result.attempts, result.requests) == (1, 1)
            assert result.usage == structx.Usage(prompt_tokens=100, completion_tokens=50)
            assert result.model == "scripted-model"
            assert result.mode == "json_schema"
        assert cassette.play_count == len(SEED_STEMS)
        assert cassette.all_played


def test_the_request_carries_the_schema_and_fences_the_article(replay: Replay) -> None:
    stem = SEED_STEMS[0]
    article = seed_article(stem)
    with replay("scripted/seeds.yaml") as cassette:
        structx.extract(article, config=scripted_config())
        body = _bodies(cassette)[0]
    assert body["model"] == "scripted-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == ArticleExtraction.model_json_schema()
    system, user = body["messages"]
    assert system["role"] == "system" and article.text[:200] not in system["content"]
    assert user["role"] == "user" and article.text in user["content"]


def test_async_extraction_replays_the_same_exchange(replay: Replay) -> None:
    stem = SEED_STEMS[1]

    async def run() -> structx.Result[ArticleExtraction]:
        async with structx.Client(scripted_config()) as client:
            return await client.aextract(seed_article(stem))

    with replay("scripted/seeds.yaml") as cassette:
        result = asyncio.run(run())
        assert cassette.play_count == 1
    assert result.value == seed_answer(stem)


def test_replay_is_in_force_a_request_missing_from_the_cassette_fails(replay: Replay) -> None:
    with replay("scripted/seeds.yaml") as cassette, pytest.raises(structx.EndpointUnreachable) as caught:
        structx.extract("An article that was never recorded.", config=scripted_config(max_retries=0))
    chain = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(type(error))
        error = error.__cause__
    assert CannotOverwriteExistingCassetteException in chain
    assert cassette.play_count == 0


# -- faults -----------------------------------------------------------------------

# scenario -> (error type or None for success, HTTP requests, model calls)
EXPECTED: dict[str, tuple[type[structx.StructxError] | None, int, int]] = {
    "429_retry_after_ms_then_ok": (None, 2, 1),
    "429_retry_after_then_ok": (None, 2, 1),
    "429_retry_after_beyond_ceiling": (structx.RateLimited, 1, 0),
    "429_insufficient_quota": (structx.QuotaExceeded, 1, 0),
    "500_repeated": (structx.ServerError, 3, 0),  # 1 + max_retries, not a product of two layers
    "502_repeated": (structx.ServerError, 3, 0),
    "503_repeated": (structx.ServerError, 3, 0),
    "502_then_503_then_ok": (None, 3, 1),
    "408_then_ok": (None, 2, 1),
    "400": (structx.RequestRejected, 1, 0),
    "401": (structx.AuthenticationFailed, 1, 0),
    "403": (structx.AuthenticationFailed, 1, 0),
    "404": (structx.RequestRejected, 1, 0),
    "422": (structx.RequestRejected, 1, 0),
    "truncated": (structx.TruncatedOutput, 1, 1),
    "refusal": (structx.Refusal, 1, 1),
    "content_filter": (structx.Refusal, 1, 1),
    "invalid_json_then_valid": (None, 2, 2),
    "wrong_shape_then_valid": (None, 2, 2),
    "never_valid": (structx.ValidationFailed, 3, 3),  # 1 + max_reasks
    "empty_choices": (structx.InvalidResponse, 1, 1),
    # Not an answer from the model, so not re-asked.
    "200_html_page": (structx.InvalidResponse, 1, 0),
    "200_body_not_json": (structx.InvalidResponse, 1, 0),
    "200_empty_body": (structx.InvalidResponse, 1, 0),
    "200_body_not_utf8": (structx.InvalidResponse, 1, 0),
}


def test_every_recorded_fault_has_an_expectation() -> None:
    assert {scenario.name for scenario in fault_scenarios()} == set(EXPECTED)


@pytest.mark.parametrize("scenario", fault_scenarios(), ids=lambda s: s.name)
def test_fault_outcome_and_request_count(replay: Replay, scenario: Any, reliability: Reliability) -> None:
    expected_error, expected_requests, expected_attempts = EXPECTED[scenario.name]
    error: structx.ExtractionError | None = None
    with replay(scenario.cassette) as cassette:
        try:
            result = structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
            value, requests, attempts, usage = result.value, result.requests, result.attempts, result.usage
        except structx.ExtractionError as exc:
            error, value, requests, attempts, usage = exc, None, exc.requests, exc.attempts, exc.usage
        played, all_played = cassette.play_count, cassette.all_played
    # Recorded before the checks, so that a failing row shows what was seen.
    reliability(
        "extraction",
        scenario.name,
        expected=f"{expected_error.__name__ if expected_error else 'ok'}, {expected_requests} request(s)",
        observed=f"{type(error).__name__ if error else 'ok'}, {played} request(s), {attempts} model answer(s)",
        requests=played,
    )
    assert type(error) is (expected_error or type(None))
    assert value == (seed_answer(FAULT_ARTICLE) if expected_error is None else None)
    assert played == requests == expected_requests and all_played
    assert attempts == expected_attempts
    # Usage is summed over every completion received, failed attempts included
    # (the empty-choices reply carries no usage at all).
    with_usage = 0 if scenario.name == "empty_choices" else attempts
    assert usage == structx.Usage(prompt_tokens=100 * with_usage, completion_tokens=50 * with_usage)


def test_validation_error_goes_back_to_the_model(replay: Replay) -> None:
    with replay("scripted/fault_wrong_shape_then_valid.yaml") as cassette:
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
        first, second = _bodies(cassette)
    assert len(second["messages"]) == len(first["messages"]) + 2
    answer, feedback = second["messages"][-2:]
    assert answer["role"] == "assistant" and "Esmail Qaani" in answer["content"]
    assert feedback["role"] == "user" and "evidence" in feedback["content"]


def test_api_errors_never_go_back_to_the_model(replay: Replay) -> None:
    with replay("scripted/fault_502_then_503_then_ok.yaml") as cassette:
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
        bodies = _bodies(cassette)
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]


def test_errors_carry_the_last_raw_completion(replay: Replay) -> None:
    with replay("scripted/fault_truncated.yaml"), pytest.raises(structx.TruncatedOutput) as caught:
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
    assert caught.value.last_completion == '{"title": "IRGC Quds Force commander'
    assert "max_tokens=2048" in str(caught.value)


def test_authentication_error_says_what_is_wrong_without_the_key(replay: Replay) -> None:
    with replay("scripted/fault_401.yaml"), pytest.raises(structx.AuthenticationFailed) as caught:
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
    message = str(caught.value)
    assert "API key is missing or wrong" in message and "401" in message
    assert RECORDING_API_KEY not in message and RECORDING_API_KEY not in repr(caught.value.__dict__)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between transport retries, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def test_retry_after_ms_is_honoured(replay: Replay, sleeps: list[float]) -> None:
    with replay("scripted/fault_429_retry_after_ms_then_ok.yaml"):
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
    assert sleeps == [pytest.approx(0.02)]


def test_retry_after_seconds_is_honoured(replay: Replay, sleeps: list[float]) -> None:
    with replay("scripted/fault_429_retry_after_then_ok.yaml"):
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
    assert sleeps == [0.0]


def test_server_errors_back_off_exponentially_with_jitter(replay: Replay, sleeps: list[float]) -> None:
    with replay("scripted/fault_502_then_503_then_ok.yaml"):
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config(retry_initial_wait=0.01))
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02


def test_a_retry_after_beyond_the_ceiling_fails_fast(replay: Replay, sleeps: list[float]) -> None:
    with replay("scripted/fault_429_retry_after_beyond_ceiling.yaml"), pytest.raises(structx.RateLimited):
        structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
    assert sleeps == []


# -- faults below HTTP: live loopback, nothing to record ------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_then_reported(sleeps: list[float], reliability: Reliability) -> None:
    config = scripted_config(base_url=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=2)
    with pytest.raises(structx.EndpointUnreachable) as caught:
        structx.extract("text", config=config)
    reliability(
        "extraction",
        "connection refused",
        expected="EndpointUnreachable after 1 + 2 attempts",
        observed=f"{type(caught.value).__name__} after {caught.value.requests} attempts, {len(sleeps)} backoff waits",
        requests=caught.value.requests,
    )
    assert caught.value.requests == 3 and len(sleeps) == 2
    assert "cannot connect to http://127.0.0.1:" in str(caught.value)


def test_a_server_that_does_not_answer_in_time_is_retried_then_reported(reliability: Reliability) -> None:
    slow = Reply.answer(seed_answer(FAULT_ARTICLE))
    slow = Reply(slow.status_code, slow.body, delay=1.0)
    with ScriptedServer([slow, slow]) as server:
        config = scripted_config(base_url=server.base_url, timeout=0.2, max_retries=1)
        with pytest.raises(structx.EndpointTimeout) as caught:
            structx.extract("text", config=config)
        received = len(server.requests)
    reliability(
        "extraction",
        "read timeout (answer 1 s late, timeout 0.2 s)",
        expected="EndpointTimeout after 1 + 1 requests",
        observed=f"{type(caught.value).__name__} after {received} requests",
        requests=received,
    )
    assert caught.value.requests == received == 2


def _open_sockets() -> set[str]:
    """This process's open sockets, as the kernel names them ("socket:[inode]")."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # the fd of the listing itself is gone by now
            if (target := str(fd.readlink())).startswith("socket:"):
                found.add(target)
    return found


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _new_client_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    """Threads started since ``before``, once the scripted server's connection handlers have ended."""
    new = _threads() - before
    for thread in new:
        if "process_request_thread" in thread.name:  # the server's side: it closes its socket on exit
            thread.join(timeout=5)
    return {thread for thread in new if thread.is_alive()}


def test_a_connection_reset_mid_body_is_retried_then_reported(reliability: Reliability) -> None:
    good = Reply.answer(seed_answer(FAULT_ARTICLE))
    cut = Reply(good.status_code, good.body, cut_after=100)
    with ScriptedServer([cut, cut, cut]) as server:
        threads, sockets = _threads(), _open_sockets()
        config = scripted_config(base_url=server.base_url, retry_initial_wait=0.01)
        with pytest.raises(structx.EndpointUnreachable) as caught:
            structx.extract(seed_article(FAULT_ARTICLE), config=config)
        received = len(server.requests)
        # Nothing structx opened is left behind: no thread, no socket.
        left = (_new_client_threads(threads), _open_sockets() - sockets)
    reliability(
        "extraction",
        "connection reset (RST) after 100 bytes of the body",
        expected="EndpointUnreachable after 1 + 2 requests; nothing left open",
        observed=f"{type(caught.value).__name__} after {received} requests; "
        f"{len(left[0])} thread(s) and {len(left[1])} socket(s) of the client left open",
        requests=received,
    )
    assert caught.value.requests == received == 3
    assert left == (set(), set())
    assert "connection lost with http://127.0.0.1:" in str(caught.value)
    assert "Connection reset by peer" in str(caught.value)


def test_a_reset_then_an_answer_succeeds() -> None:
    good = Reply.answer(seed_answer(FAULT_ARTICLE))
    with ScriptedServer([Reply(good.status_code, good.body, cut_after=0), good]) as server:
        config = scripted_config(base_url=server.base_url, retry_initial_wait=0.01)
        result = structx.extract(seed_article(FAULT_ARTICLE), config=config)
    assert result.requests == 2 and result.value == seed_answer(FAULT_ARTICLE)


def test_a_server_that_accepts_and_never_answers_is_retried_then_reported(reliability: Reliability) -> None:
    # A bare socket: connections are accepted and requests read, never answered.
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = listener.accept()
                    accepted.append(connection)

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        threads, sockets = _threads(), _open_sockets()
        config = scripted_config(base_url=f"http://127.0.0.1:{port}/v1", timeout=0.3, max_retries=1)
        with pytest.raises(structx.EndpointTimeout) as caught:
            structx.extract("text", config=config)
        new_threads, new_sockets = _threads() - threads, _open_sockets() - sockets
        server_ends = {f"socket:[{os.fstat(c.fileno()).st_ino}]" for c in accepted}
        listener.shutdown(socket.SHUT_RDWR)
    acceptor.join(timeout=5)
    for connection in accepted:
        connection.close()
    client_sockets = new_sockets - server_ends
    reliability(
        "extraction",
        "server accepts and never answers",
        expected="EndpointTimeout after 1 + 1 requests; nothing left open",
        observed=f"{type(caught.value).__name__} after {len(accepted)} requests; "
        f"{len(new_threads)} thread(s) and {len(client_sockets)} socket(s) of the client left open",
        requests=len(accepted),
    )
    assert caught.value.requests == 2 and len(accepted) == 2
    assert "did not answer within 0.3 s" in str(caught.value)
    # The client closed both of its connections; only the server's two accepted ends remain open.
    assert new_threads == set()
    assert new_sockets == server_ends


def test_a_retry_after_that_is_not_a_number_falls_back_to_backoff(sleeps: list[float]) -> None:
    good = Reply.answer(seed_answer(FAULT_ARTICLE))
    with ScriptedServer([Reply.status(503, headers={"retry-after-ms": "nan", "Retry-After": "soon"}), good]) as server:
        result = structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config(base_url=server.base_url))
    assert result.requests == 2
    assert len(sleeps) == 1 and 0.005 <= sleeps[0] <= 0.01


def test_the_retry_budget_spans_the_whole_extraction() -> None:
    # Each 503 asks for 0.3 s; with a 0.5 s budget the second wait would end past it.
    busy = Reply.status(503, headers={"retry-after-ms": "300"})
    with ScriptedServer([busy, busy, Reply.answer(seed_answer(FAULT_ARTICLE))]) as server:
        config = scripted_config(base_url=server.base_url, retry_budget=0.5, max_retries=5)
        with pytest.raises(structx.ServerError) as caught:
            structx.extract("text", config=config)
    assert caught.value.requests == 2


# -- grounding through the re-ask loop -----------------------------------------------


def test_an_ungrounded_answer_is_sent_back_with_what_is_wrong(replay: Replay) -> None:
    with replay("scripted/fault_ungrounded_then_grounded.yaml") as cassette:
        result = structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
        second = _bodies(cassette)[1]
    assert result.value == seed_answer(FAULT_ARTICLE)
    assert (result.attempts, result.requests) == (2, 2)
    assert result.grounding.grounded
    feedback = second["messages"][-1]["content"]
    assert "visits[0]: evidence 1 " in feedback and "differs from the article, which says" in feedback
    assert "militia_stances[0]: militia 'Saraya Awliya al-Dam' does not occur in the article" in feedback


def _never_grounded(policy: str) -> structx.Result[ArticleExtraction]:
    return structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config(grounding=policy))


def test_when_reasks_are_spent_ungrounded_records_are_kept_and_flagged(replay: Replay) -> None:
    with replay("scripted/fault_never_grounded.yaml"):
        result = _never_grounded("keep")
    # Re-asked once; the model repeats its answer word for word, so that answer is final.
    assert result.attempts == 2
    assert result.value == fabricated_answer()
    flagged = {r.path: r for r in result.grounding.records if not r.grounded}
    assert set(flagged) == {"visits[0]", "militia_stances[0]"}
    visit_span = flagged["visits[0]"].evidence[0]
    assert visit_span.status is structx.AlignmentStatus.FUZZY and 80 <= visit_span.score < 100
    assert flagged["militia_stances[0]"].problems == ["militia 'Saraya Awliya al-Dam' does not occur in the article"]
    assert not any(r.dropped for r in result.grounding.records)


def test_the_drop_policy_removes_them_and_says_so(replay: Replay) -> None:
    with replay("scripted/fault_never_grounded.yaml"):
        result = _never_grounded("drop")
    fabricated = fabricated_answer()
    assert result.value.visits == []
    assert result.value.militia_stances == fabricated.militia_stances[1:]
    assert result.value.meetings == fabricated.meetings
    dropped = [r.path for r in result.grounding.records if r.dropped]
    assert sorted(dropped) == ["militia_stances[0]", "visits[0]"]
    # The records that remain are reported at their new places.
    kept = [r for r in result.grounding.records if not r.dropped]
    assert all(r.grounded for r in kept)
    assert {r.path for r in kept} == {path for path, _ in structx._grounding.iter_records(result.value)}


def test_the_fail_policy_fails_the_article(replay: Replay) -> None:
    with replay("scripted/fault_never_grounded.yaml"), pytest.raises(structx.GroundingFailed) as caught:
        _never_grounded("fail")
    assert (caught.value.attempts, caught.value.requests) == (2, 2)
    assert caught.value.grounding is not None and not caught.value.grounding.grounded
    assert "does not occur in the article" in str(caught.value)


# -- long articles ------------------------------------------------------------------------


def _records_within(answer: ArticleExtraction, text: str, **scalars: object) -> ArticleExtraction:
    """The records of ``answer`` whose evidence and quotes all lie in ``text``."""

    def inside(record: Any) -> bool:
        quotes = [q for q in (getattr(record, "quote", None),) if q]
        return all(part in text for part in [*record.evidence, *quotes])

    lists = {
        name: [r for r in getattr(answer, name) if inside(r)]
        for name in ("visits", "meetings", "militia_stances", "quoted_sources")
    }
    return answer.model_copy(update={**lists, **scalars})


def test_a_long_article_is_extracted_in_chunks_and_merged() -> None:
    article = seed_article("002_d04feccafa46ccf3")
    gold = seed_answer("002_d04feccafa46ccf3")
    (offset_1, chunk_1), (offset_2, chunk_2) = split_into_chunks(article.text, 4000, 800)
    assert offset_1 == 0 and 0 < offset_2 < len(chunk_1)  # the chunks overlap
    first = _records_within(gold, chunk_1)
    second = _records_within(gold, chunk_2, title="a title only the second chunk gives")
    shared = [r for r in first.quoted_sources if r in second.quoted_sources]
    assert shared, "the overlap should hold at least one record both chunks return"
    with ScriptedServer([Reply.answer(first), Reply.answer(second)]) as server:
        config = scripted_config(base_url=server.base_url, chunk_chars=4000, chunk_overlap=800)
        result = structx.extract(article, config=config)
        sent = [request.body["messages"][1]["content"] for request in server.requests]
    assert (result.chunks, result.requests, result.attempts) == (2, 2, 2)
    assert chunk_1 in sent[0] and chunk_2 in sent[1]
    # Records from both chunks, each once; scalar fields from the first chunk that sets them.
    for name in ("visits", "meetings", "militia_stances", "quoted_sources"):
        expected = getattr(first, name) + [r for r in getattr(second, name) if r not in getattr(first, name)]
        assert getattr(result.value, name) == expected
    assert result.value.title == "a title only the second chunk gives"
    # Offsets index the whole article, not the chunk.
    assert result.grounding.grounded
    for record in result.grounding.records:
        for span in record.evidence:
            assert article.text[span.start : span.end] == span.text.strip()  # type: ignore[misc]


def test_an_answer_that_writes_single_quotes_for_double_is_grounded_with_no_reask() -> None:
    # The article has "special message", "rooted", ...; the model writes 'special message', ‘rooted’.
    stem = "000_57f720f08a0b9acd"
    gold = seed_answer(stem)
    marks = iter(["'", "‘", "’", "«", "»"] * 100)

    def restyle(value: Any) -> Any:
        if isinstance(value, str):
            return "".join(next(marks) if char == '"' else char for char in value)
        if isinstance(value, list):
            return [restyle(item) for item in value]
        if isinstance(value, dict):
            return {key: restyle(item) for key, item in value.items()}
        return value

    restyled = restyle(gold.model_dump(mode="json"))
    assert restyled != gold.model_dump(mode="json")
    with ScriptedServer([Reply.answer(restyled)]) as server:
        result = structx.extract(seed_article(stem), config=scripted_config(base_url=server.base_url))
        sent = len(server.requests)
    assert (sent, result.requests, result.attempts) == (1, 1, 1)
    counts = result.grounding.excerpt_counts()
    assert counts["normalized"] > 0 and counts["fuzzy"] == counts["not_found"] == 0
    assert result.grounding.grounded and all(record.problems == [] for record in result.grounding.records)
    assert result.value.model_dump(mode="json") == restyled  # kept as the model wrote it
