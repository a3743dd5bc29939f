"""Many articles at once: bounded concurrency, one outcome each, shared backoff on 429."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import structx
from structx._batch import _once_each
from structx._cli import app
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, fault_scenarios, scripted_config, seed_answer, seed_article, seed_paths
from tests.conftest import Reliability
from tests.test_extract_scripted import EXPECTED


def _slow(reply: Reply, delay: float) -> Reply:
    return Reply(reply.status_code, reply.body, reply.headers, delay=delay)


def test_concurrency_is_bounded_and_every_article_gets_one_outcome(tmp_path: Path) -> None:
    answer = Reply.answer(seed_answer(FAULT_ARTICLE))
    articles = [structx.Article(text=seed_article(FAULT_ARTICLE).text, id=f"copy-{n}") for n in range(9)]
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with (
        ScriptedServer([_slow(answer, 0.2)] * 9) as server,
        structx.Client(scripted_config(base_url=server.base_url)) as client,
    ):
        outcomes = list(structx.extract_many([*articles, tmp_path], client, ArticleExtraction, concurrency=3))
    assert sorted(o.id for o in outcomes) == sorted([*(a.id for a in articles), "empty"])
    assert [o.status for o in outcomes].count("ok") == 9
    assert next(o for o in outcomes if o.id == "empty").to_json()["error"]["type"] == "InputError"
    assert server.max_in_flight == 3
    assert len(server.requests) == 9


def _copies_through(server: ScriptedServer, count: int, *, concurrency: int) -> list[structx.ArticleOutcome]:
    """``count`` copies of the fault article (ids copy-0, copy-1, ...) through aextract_many against ``server``."""
    articles = [structx.Article(text=seed_article(FAULT_ARTICLE).text, id=f"copy-{n}") for n in range(count)]

    async def run() -> list[structx.ArticleOutcome]:
        async with structx.Client(scripted_config(base_url=server.base_url)) as client:
            outcomes = structx.aextract_many(articles, client, ArticleExtraction, concurrency=concurrency)
            return [outcome async for outcome in outcomes]

    return asyncio.run(run())


def test_a_429_slows_every_worker_not_just_the_one_that_got_it() -> None:
    answer = Reply.answer(seed_answer(FAULT_ARTICLE))
    limited = Reply.status(429, "slow down", headers={"retry-after-ms": "600"})
    # The first request is limited; the second, already in flight, is slow and succeeds.
    with ScriptedServer([limited, _slow(answer, 0.1), answer, answer, answer]) as server:
        outcomes = _copies_through(server, 4, concurrency=2)
    assert [o.status for o in outcomes] == ["ok"] * 4
    limited_at = server.requests[0].received_at
    later = [r.received_at - limited_at for r in server.requests[2:]]
    # Every request after the 429 waited for its Retry-After, whichever worker sent it.
    assert len(later) == 3 and min(later) >= 0.55


@pytest.mark.timeout(30)
def test_a_retry_after_beyond_the_ceiling_fails_one_article_and_holds_no_other() -> None:
    answer = Reply.answer(seed_answer(FAULT_ARTICLE))
    hour = Reply.status(429, "come back in an hour", headers={"Retry-After": "3600"})
    with ScriptedServer([hour, answer, answer]) as server:
        outcomes = _copies_through(server, 3, concurrency=1)
    assert [(o.id, o.status, type(o.error).__name__) for o in outcomes] == [
        ("copy-0", "error", "RateLimited"),
        ("copy-1", "ok", "NoneType"),
        ("copy-2", "ok", "NoneType"),
    ]
    # The others went on at once instead of waiting out the hour.
    assert server.requests[-1].received_at - server.requests[0].received_at < 5


def test_concurrency_must_be_positive() -> None:
    with structx.Client(scripted_config()) as client, pytest.raises(structx.ConfigError):
        list(structx.extract_many([seed_paths()[0]], client, ArticleExtraction, concurrency=0))


def test_an_article_named_twice_is_extracted_once(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text(seed_article(FAULT_ARTICLE).text, encoding="utf-8")
    with (
        ScriptedServer(default=Reply.answer(seed_answer(FAULT_ARTICLE))) as server,
        structx.Client(scripted_config(base_url=server.base_url)) as client,
    ):
        outcomes = list(structx.extract_many([tmp_path, tmp_path / "story.txt"], client, ArticleExtraction))
        assert [o.id for o in outcomes] == ["story"]
        assert len([r for r in server.requests if r.method == "POST"]) == 1


def test_two_texts_with_one_id_both_get_a_line_under_distinct_stable_ids(tmp_path: Path) -> None:
    for folder, suffix in [("a", ""), ("b", "\nA second edition.")]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "story.txt").write_text(seed_article(FAULT_ARTICLE).text + suffix, encoding="utf-8")
    files = [tmp_path / "a" / "story.txt", tmp_path / "b" / "story.txt"]
    second = structx.read_article(files[1])
    with (
        ScriptedServer(default=Reply.answer(seed_answer(FAULT_ARTICLE))) as server,
        structx.Client(scripted_config(base_url=server.base_url)) as client,
    ):
        runs = [list(structx.extract_many(files, client, ArticleExtraction, concurrency=1)) for _ in range(2)]
        assert len([r for r in server.requests if r.method == "POST"]) == 4
    for outcomes in runs:
        assert [(o.id, o.source, o.status) for o in outcomes] == [
            ("story", str(files[0]), "ok"),
            (f"story~{second.content_hash[:8]}", str(files[1]), "ok"),
        ]


@pytest.mark.timeout(120)
def test_every_fault_in_one_batch_costs_only_its_own_article(reliability: Reliability) -> None:
    """Each fault of the matrix hits one article of a batch; every article ends with exactly one outcome."""
    good = Reply.answer(seed_answer(FAULT_ARTICLE))
    late = Reply(good.status_code, good.body, delay=1.0)
    cut = Reply(good.status_code, good.body, cut_after=100)
    # Not those that every article would meet: they stop the batch (see the tests below).
    faults: list[tuple[str, tuple[Reply, ...], type[structx.StructxError] | None, int]] = [
        (s.name, s.replies, *EXPECTED[s.name][:2]) for s in fault_scenarios() if s.name not in FATAL_FAULTS
    ]
    faults += [
        ("connection reset mid-body", (cut, cut, cut), structx.EndpointUnreachable, 3),
        ("read timeout", (late, late, late), structx.EndpointTimeout, 3),
    ]
    text = seed_article(FAULT_ARTICLE).text
    articles, script = [], []
    for n, (name, replies, _, _) in enumerate(faults):
        articles += [structx.Article(text=text, id=name), structx.Article(text=text, id=f"ok-{n}")]
        script += [*replies, good]
    config = scripted_config(timeout=0.5)
    with ScriptedServer(script) as server, structx.Client(replace(config, base_url=server.base_url)) as client:
        outcomes = list(structx.extract_many(articles, client, ArticleExtraction, concurrency=1))
        posts = [r for r in server.requests if r.method == "POST"]
    by_id = {o.id: o for o in outcomes}
    lost, doubled = len(articles) - len(by_id), len(outcomes) - len(by_id)
    as_expected = sum(
        type(by_id[name].error) is (error or type(None)) and by_id[name].to_json()["requests"] == requests
        for name, _, error, requests in faults
        if name in by_id
    )
    good_ok = sum(by_id[f"ok-{n}"].status == "ok" for n in range(len(faults)) if f"ok-{n}" in by_id)
    reliability(
        "batch",
        f"{len(faults)} faults, each on one article, between {len(faults)} good articles",
        expected=f"{len(articles)} outcomes: each fault's as in the matrix, the {len(faults)} good articles ok",
        observed=f"{len(outcomes)} outcomes, {as_expected} faults as expected, {good_ok} good articles ok, "
        f"{len(posts)} requests, {lost} lost, {doubled} doubled",
        requests=len(posts),
        lost=lost,
    )
    assert lost == doubled == 0
    for n, (name, _, error, requests) in enumerate(faults):
        outcome = by_id[name]
        assert outcome.status == ("ok" if error is None else "error"), name
        assert type(outcome.error) is (error or type(None)), name
        assert outcome.to_json()["requests"] == requests, name
        assert by_id[f"ok-{n}"].status == "ok"
    assert len(posts) == sum(requests for *_, requests in faults) + len(faults)


#: Faults of the matrix that every article of a batch would meet: a bad key, no credit, no such model.
FATAL_FAULTS = {"401", "403", "404", "429_insufficient_quota"}

FATAL_REPLIES = {
    "401": (Reply.status(401, "Incorrect API key provided."), structx.AuthenticationFailed),
    "404 model_not_found": (
        Reply.status(404, "The model `nope` does not exist or you do not have access to it.", code="model_not_found"),
        structx.RequestRejected,
    ),
    "429 insufficient_quota": (
        Reply.status(429, "You exceeded your current quota.", code="insufficient_quota"),
        structx.QuotaExceeded,
    ),
}


def _jsonl(tmp_path: Path, count: int) -> Path:
    text = seed_article(FAULT_ARTICLE).text
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps({"id": f"a{n}", "text": f"{text}\nCopy {n}."}) + "\n" for n in range(count)))
    return path


@pytest.mark.parametrize("fault", FATAL_REPLIES)
def test_an_error_every_article_would_meet_stops_the_batch(
    tmp_path: Path, fault: str, reliability: Reliability
) -> None:
    count = 5
    reply, error = FATAL_REPLIES[fault]
    batch, out = _jsonl(tmp_path, count), tmp_path / "out.jsonl"
    with ScriptedServer(default=reply) as server:
        args = ["extract", str(batch), "--out", str(out), "--base-url", server.base_url, "--model", "nope",
                "--structured-output", "json_schema", "--concurrency", "1"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        sent = len(server.requests)
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        server.default = Reply.answer(seed_answer(FAULT_ARTICLE))  # fixed: the next run sends what was not sent
        again = CliRunner().invoke(app, args)
        sent_again = len(server.requests) - sent
    types = [line.get("error", {}).get("type", "ok") for line in lines]
    lost = count - len({line["id"] for line in lines})
    reliability(
        "batch",
        f"{fault} on every request, {count} articles, concurrency 1",
        expected=f"1 request; 1 {error.__name__} line and {count - 1} NotAttempted lines; one line says why; exit 1",
        observed=f"{sent} request(s); lines: {', '.join(f'{types.count(t)} {t}' for t in dict.fromkeys(types))}; "
        f"exit {result.exit_code}; {lost} lost",
        requests=sent,
        lost=lost,
    )
    assert result.exit_code == 1 and sent == 1
    assert lost == 0 and len(lines) == count
    assert types == [error.__name__] + ["NotAttempted"] * (count - 1)
    assert lines[1]["error"]["message"].startswith(f"not sent: the batch stopped after {error.__name__} on a0")
    assert lines[1]["requests"] == 0
    (why,) = [line for line in result.stderr.splitlines() if "stopped after" in line]
    assert f"stopped after {error.__name__} on a0" in why and f"{count - 1} article(s) were not sent" in why
    assert "NotAttempted:" not in result.stderr  # one line for all of them, not one each
    # Neither the error about the endpoint nor the articles not sent are stored: the next run sends them all.
    assert again.exit_code == 0 and sent_again == count
    assert "from an earlier run" not in again.stderr


def test_a_stopped_batch_still_gives_every_article_one_outcome_at_any_concurrency() -> None:
    articles = [structx.Article(text=seed_article(FAULT_ARTICLE).text, id=f"copy-{n}") for n in range(12)]
    with (
        ScriptedServer(default=FATAL_REPLIES["401"][0]) as server,
        structx.Client(scripted_config(base_url=server.base_url)) as client,
    ):
        outcomes = list(structx.extract_many(articles, client, ArticleExtraction, concurrency=3))
        sent = len(server.requests)
    assert sorted(o.id for o in outcomes) == sorted(a.id for a in articles)
    assert sent <= 3  # those already in flight when the first 401 came back
    errors = [type(o.error) for o in outcomes]
    assert errors.count(structx.AuthenticationFailed) == sent
    assert errors.count(structx.NotAttempted) == len(articles) - sent


def test_a_model_the_server_does_not_list_is_refused_before_any_article(tmp_path: Path) -> None:
    batch, out = _jsonl(tmp_path, 3), tmp_path / "out.jsonl"
    with ScriptedServer(default=Reply.answer(seed_answer(FAULT_ARTICLE))) as server:  # it lists scripted-model
        args = ["extract", str(batch), "--out", str(out), "--base-url", server.base_url, "--model", "nope"]
        result = CliRunner().invoke(app, args)
        requests = [(r.method, r.path) for r in server.requests]
    assert result.exit_code == 2
    assert f"model 'nope' is not served by {server.base_url}, which lists: scripted-model" in result.stderr
    assert requests == [("GET", "/v1/models")]
    assert not out.exists()


def test_the_errors_fatal_for_a_batch_are_a_bad_key_no_credit_and_no_such_model() -> None:
    def rejected(cls: type[structx.RequestRejected], status: int) -> structx.RequestRejected:
        return cls("x", status_code=status)

    assert structx.is_fatal_for_batch(rejected(structx.AuthenticationFailed, 401))
    assert structx.is_fatal_for_batch(rejected(structx.AuthenticationFailed, 403))
    assert structx.is_fatal_for_batch(rejected(structx.QuotaExceeded, 429))
    assert structx.is_fatal_for_batch(rejected(structx.RequestRejected, 404))
    for status in (400, 413, 422):  # these can be about one article (a context too long, say)
        assert not structx.is_fatal_for_batch(rejected(structx.RequestRejected, status))
    assert not structx.is_fatal_for_batch(structx.RateLimited("x", status_code=429))
    assert not structx.is_fatal_for_batch(structx.ServerError("x", status_code=500))


def test_ids_taken_by_unreadable_inputs_and_by_renames_are_not_reused() -> None:
    a, b = structx.Article(text="a", id="x"), structx.Article(text="b", id="x")
    clash = structx.Article(text="c", id=f"x~{b.content_hash[:8]}")  # already holds b's first choice
    items = list(_once_each([structx.InputError("empty file", path="x.txt"), clash, a, b]))
    ids = [item.article_id if isinstance(item, structx.InputError) else item.id for item in items]
    assert ids == ["x", clash.id, f"x~{a.content_hash[:8]}", f"x~{b.content_hash[:9]}"]
