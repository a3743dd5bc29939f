"""``structx extract`` options a user sets from the command line, and what ``--dry-run`` shows of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from structx._cli import app
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, seed_answer, seed_article

ANSWER = Reply.answer(seed_answer(FAULT_ARTICLE))


def _jsonl(path: Path, articles: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in articles.items()), encoding="utf-8")
    return path


def _args(server: ScriptedServer, *extra: str) -> list[str]:
    return ["--base-url", server.base_url, "--model", "m", "--structured-output", "json_schema",
            "--max-reasks", "0", *extra]  # fmt: skip


def _posts(server: ScriptedServer) -> list[Any]:
    return [r.body for r in server.requests if r.method == "POST"]


def _dry_run_body(stdout: str) -> dict[str, Any]:
    """The request body ``--dry-run`` printed: the JSON after its heading line."""
    _, _, body = stdout.partition("The body of the first request for ")
    return json.loads(body.split("\n", 1)[1])  # type: ignore[no-any-return]


def test_dry_run_prints_the_body_the_run_sends(tmp_path: Path) -> None:
    text = seed_article(FAULT_ARTICLE).text
    batch = _jsonl(tmp_path / "batch.jsonl", {"a0": text, "a1": text + "\nMore."})
    options = ["--max-tokens", "777", "--temperature", "0.3"]
    with ScriptedServer([ANSWER]) as server:
        dry = CliRunner().invoke(app, ["extract", str(batch), "--dry-run", *_args(server, *options)])
        assert dry.exit_code == 0, dry.output
        assert server.requests == []
        run = CliRunner().invoke(app, ["extract", str(batch), "--limit", "1", *_args(server, *options)])
        assert run.exit_code == 0, run.output
        (sent,) = _posts(server)
    shown = _dry_run_body(dry.stdout)
    assert shown == sent
    assert (shown["max_tokens"], shown["temperature"]) == (777, 0.3)
    assert shown["response_format"]["type"] == "json_schema"


def test_dry_run_counts_the_instructions_and_schema_once_per_chunk(tmp_path: Path) -> None:
    text = seed_article(FAULT_ARTICLE).text
    filler = "\n\n".join(f"Paragraph {n} of background that names nobody and reports nothing new." for n in range(400))
    long_text = text + "\n\n" + filler
    batch = _jsonl(tmp_path / "long.jsonl", {"long": long_text})
    with ScriptedServer(default=ANSWER) as server:
        dry = CliRunner().invoke(app, ["extract", str(batch), "--dry-run", *_args(server, "--chunk-chars", "12000")])
        run = CliRunner().invoke(app, ["extract", str(batch), *_args(server, "--chunk-chars", "12000")])
        assert run.exit_code == 0, run.output
        sent = len(_posts(server))
    assert dry.exit_code == 0, dry.output
    (line,) = [entry for entry in dry.stdout.splitlines() if entry.startswith("long: ")]
    requests = int(line.split(", ")[1].split()[0])
    estimate = int(line.split("about ")[1].split()[0].replace(",", ""))
    assert requests == sent > 1  # one request per chunk, as the run made
    schema_tokens = len(json.dumps(ArticleExtraction.model_json_schema())) // 4
    # Each chunk carries the schema (in the prompt and in response_format) and the instructions.
    assert estimate > len(long_text) // 4 + 2 * requests * schema_tokens


def test_dry_run_and_the_run_count_one_article_named_twice_once(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    text = seed_article(FAULT_ARTICLE).text
    for name in ("a.htm", "a.html"):
        (folder / name).write_text(f"<html><body><p>{text}</p></body></html>", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with ScriptedServer(default=ANSWER) as server:
        dry = CliRunner().invoke(app, ["extract", str(folder), "--dry-run", *_args(server)])
        run = CliRunner().invoke(app, ["extract", str(folder), "--out", str(out), *_args(server)])
    assert dry.exit_code == run.exit_code == 0, run.output
    listed = [entry.split(":")[0] for entry in dry.stdout.splitlines() if ": " in entry and "characters" in entry]
    written = [json.loads(entry)["id"] for entry in out.read_text(encoding="utf-8").splitlines()]
    assert listed == written == ["a"]
    assert dry.stdout.count("1 articles, 1 requests") == 1


KEY = "sk-proj-OPTIONS0123456789abcdefOPTIONS"


def test_temperature_headers_and_the_key_reach_the_endpoint_and_the_log_scrubs_the_key(tmp_path: Path) -> None:
    text = seed_article(FAULT_ARTICLE).text
    batch = _jsonl(tmp_path / "batch.jsonl", {"a0": text})
    out, log = tmp_path / "out.jsonl", tmp_path / "requests.jsonl"
    # The endpoint echoes the key, so that the log has something to scrub in the bodies too.
    echo = Reply.status(500, f"upstream said: Bearer {KEY}")
    with ScriptedServer([echo, ANSWER]) as server:
        result = CliRunner().invoke(
            app,
            ["extract", str(batch), "--out", str(out), "-v", "--api-key", KEY, "--temperature", "0.7",
             "--header", "X-Team=news desk", "--header", "X-Api-Key=gateway-secret", "--log-requests", str(log),
             *_args(server)],
        )  # fmt: skip
        posts = [r for r in server.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert len(posts) == 2
    for request in posts:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert (request.headers["x-team"], request.headers["x-api-key"]) == ("news desk", "gateway-secret")
        assert request.body["temperature"] == 0.7
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    sent = [e for e in entries if e["event"] == "request" and e["method"] == "POST"]
    answers = [e for e in entries if e["event"] == "response" and e["method"] == "POST"]
    assert [e["body"] for e in sent] == [r.body for r in posts]  # exactly what the endpoint received
    assert [e["status"] for e in answers] == [500, 200]
    assert answers[0]["body"]["error"]["message"] == "upstream said: Bearer ***"
    assert {e["exchange"] for e in sent} == {e["exchange"] for e in answers}
    assert all(e["headers"]["authorization"] == e["headers"]["x-api-key"] == "***" for e in sent)
    assert all(e["headers"]["x-team"] == "news desk" for e in sent)
    everything = result.output + log.read_text(encoding="utf-8") + out.read_text(encoding="utf-8")
    everything += (tmp_path / "out.jsonl.structx.sqlite").read_bytes().decode("utf-8", "replace")
    assert KEY not in everything and "gateway-secret" not in log.read_text(encoding="utf-8")


def test_a_request_without_an_answer_is_logged_as_such(tmp_path: Path) -> None:
    batch = _jsonl(tmp_path / "batch.jsonl", {"a0": seed_article(FAULT_ARTICLE).text})
    log = tmp_path / "requests.jsonl"
    late = Reply(ANSWER.status_code, ANSWER.body, delay=2)
    with ScriptedServer([late]) as server:
        result = CliRunner().invoke(
            app,
            ["extract", str(batch), "--timeout", "0.5", "--max-retries", "0", "--log-requests", str(log),
             *_args(server)],
        )  # fmt: skip
    assert result.exit_code == 1
    events = [(e["event"], e["method"]) for e in map(json.loads, log.read_text(encoding="utf-8").splitlines())]
    assert events == [("request", "POST"), ("no response", "POST")]


def test_the_key_can_come_from_a_named_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _jsonl(tmp_path / "batch.jsonl", {"a0": seed_article(FAULT_ARTICLE).text})
    monkeypatch.setenv("NEWSROOM_KEY", KEY)
    with ScriptedServer([ANSWER]) as server:
        result = CliRunner().invoke(app, ["extract", str(batch), "--api-key-env", "NEWSROOM_KEY", *_args(server)])
        (post,) = [r for r in server.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert post.headers["authorization"] == f"Bearer {KEY}" and KEY not in result.output
    missing = CliRunner().invoke(app, ["extract", str(batch), "--api-key-env", "NO_SUCH_KEY_VARIABLE"])
    assert missing.exit_code == 2
    assert "the environment variable NO_SUCH_KEY_VARIABLE, named for the API key, is not set" in missing.stderr


def test_max_retries_bounds_the_transport_retries(tmp_path: Path) -> None:
    batch = _jsonl(tmp_path / "batch.jsonl", {"a0": seed_article(FAULT_ARTICLE).text})
    with ScriptedServer(default=Reply.status(503)) as server:
        result = CliRunner().invoke(app, ["extract", str(batch), "--max-retries", "1", *_args(server)])
        posts = len(_posts(server))
    assert result.exit_code == 1
    assert posts == 2  # the first request and one retry


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (f"Authorization: Bearer {KEY}", "--header number 1 is not NAME=VALUE"),
        (f"=Bearer {KEY}", "--header number 1 is not NAME=VALUE"),
        (f"X Key={KEY}", "header name 'X Key' is not a valid HTTP header name"),
    ],
)
def test_a_malformed_header_is_a_usage_error_that_does_not_echo_its_value(header: str, message: str) -> None:
    result = CliRunner().invoke(app, ["extract", "whatever.txt", "--header", header])
    assert result.exit_code == 2
    assert message in result.stderr and KEY not in result.output


def test_help_does_not_show_a_key_or_header_pinned_in_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "structx.toml").write_text(f'api-key = "{KEY}"\nheader = ["Authorization=Bearer {KEY}"]\n')
    result = CliRunner().invoke(app, ["extract", "--help"])
    assert result.exit_code == 0 and "--header" in result.output
    assert KEY not in result.output
