"""No API key in anything structx writes, at any verbosity, whatever goes wrong; cassettes load safely."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import vcr
import yaml
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx.testing import Reply, ScriptedServer
from tests.cassettes import FAULT_ARTICLE, SCRIPTED_MODEL, scripted_config, seed_answer, seed_article
from tests.conftest import Reliability

# What a real key looks like; this one exists only in these tests.
CANARY = "sk-proj-CANARY0123456789abcdefCANARY"
# The whole key, and its first part: a message cut through the key must not keep that part either.
NEEDLES = (CANARY, CANARY[:10])


def _echoing_replies() -> list[Reply]:
    """Replies that put the key in front of structx: an endpoint that echoes what it was sent."""
    good = Reply.answer(seed_answer(FAULT_ARTICLE))
    echo = f"Incorrect API key provided: {CANARY}. Authorization: Bearer {CANARY}"
    return [
        Reply.status(500, echo), Reply.status(503, echo), Reply.status(502, echo),  # article 1: retried, fails
        Reply(200, f"<html>Bearer {CANARY}</html>".encode()),  # article 2: not JSON
        Reply.completion("not json"), Reply.completion("[]"), Reply.completion('{"visits": 5}'),  # article 3: invalid
        Reply.completion(None, refusal=f"I will not repeat {CANARY}"),  # article 4: refusal
        Reply.status(400, "x" * 290 + CANARY),  # article 5: the key across the message's cut
        good,  # article 6: ok
        Reply.status(401, echo),  # article 7: no retry; in a batch, no article is sent after it
    ]  # fmt: skip


def _written(directory: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.timeout(120)
def test_no_key_in_output_logs_or_run_database_with_debug_logging(tmp_path: Path, reliability: Reliability) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(7):
        (inputs / f"a{n}.txt").write_text(seed_article(FAULT_ARTICLE).text + f"\n{n}", encoding="utf-8")
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    # The openai client's own debug logging on (OPENAI_LOG), structx at its most verbose.
    env = {**os.environ, "OPENAI_API_KEY": CANARY, "OPENAI_LOG": "debug", "PYTHONIOENCODING": "utf-8"}
    with ScriptedServer(_echoing_replies()) as server:
        command = [sys.executable, "-m", "structx", "extract", str(inputs), "--out", str(out), "-v",
                   "--base-url", server.base_url, "--model", SCRIPTED_MODEL, "--structured-output", "json_schema",
                   "--concurrency", "1", "--max-reasks", "2",
                   "--log-requests", str(out.parent / "requests.jsonl")]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=100, check=False)
        received = [r for r in server.requests if r.method == "POST"]
    # The key did reach the endpoint (so there was something to leak) ...
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in received)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["error"]["type"] if "error" in line else "ok" for line in lines) == sorted(
        [
            "InvalidResponse",  # more retries than in the library test: the 5xx are retried into the HTML page
            "ValidationFailed",
            "Refusal",
            "RequestRejected",
            "ok",
            "AuthenticationFailed",
            "NotAttempted",  # after the 401, which says it in its message
        ]
    )
    assert "DEBUG" in done.stderr or "Request options" in done.stderr  # the debug logging was on
    # ... and appears nowhere structx wrote: stdout, stderr, the output, the run database.
    written = _written(out.parent)
    assert {Path(name).name for name in written} >= {"results.jsonl", "results.jsonl.structx.sqlite", "requests.jsonl"}
    assert "Bearer ***" in written[str(out.parent / "requests.jsonl")].decode()  # the echoes were logged, scrubbed
    places = {"stdout": done.stdout.encode(), "stderr": done.stderr.encode(), **written}
    leaks = [place for place, content in places.items() if any(n.encode() in content for n in NEEDLES)]
    assert leaks == []
    reliability(
        "secrets",
        "API key echoed back by the endpoint in 401, 5xx and HTML bodies and a refusal; debug logging on",
        expected="the key in no log line, error, output line or run database",
        observed=f"{len(places)} places scanned (stdout, stderr with debug logging, output, run database, "
        "--log-requests file), "
        f"key found in {len(leaks)}",
    )


def test_no_key_in_library_errors_or_debug_log_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    replies = _echoing_replies()
    seen: list[str] = []
    with ScriptedServer(replies) as server:
        config = scripted_config(base_url=server.base_url, api_key=CANARY)
        with structx.Client(config) as client:
            errors = 0
            for _ in range(7):  # six failures and one result, as the replies come
                try:
                    result = client.extract(seed_article(FAULT_ARTICLE))
                except structx.ExtractionError as error:
                    errors += 1
                    seen += [str(error), repr(error), repr(vars(error)), json.dumps(error.usage.to_dict())]
                else:
                    seen.append(repr(result))
            assert errors == 6
    assert caplog.records, "debug logging captured nothing"
    seen += [record.getMessage() for record in caplog.records]
    assert [text for text in seen if any(needle in text for needle in NEEDLES)] == []


def test_a_cassette_with_python_tags_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil.yaml").write_text(
        f'interactions: !!python/object/apply:os.system ["touch {marker}"]\nversion: 1\n', encoding="utf-8"
    )
    recorder = vcr.VCR(cassette_library_dir=str(tmp_path), record_mode="none")
    with pytest.raises(ValueError, match="problem loading the cassette") as caught, recorder.use_cassette("evil.yaml"):
        pass
    assert isinstance(caught.value.__cause__ or caught.value.__context__, yaml.constructor.ConstructorError)
    assert not marker.exists()


@pytest.mark.parametrize("planted", [".structx.sqlite", ".structx.sqlite-wal", ".structx.sqlite-shm"])
def test_a_run_database_link_planted_beside_the_output_is_refused(
    tmp_path: Path, planted: str, reliability: Reliability
) -> None:
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    outside = tmp_path / "elsewhere.sqlite"
    outside.write_bytes(b"precious")
    (out.parent / f"results.jsonl{planted}").symlink_to(outside)
    article = tmp_path / "a.txt"
    article.write_text(seed_article(FAULT_ARTICLE).text, encoding="utf-8")
    args = ["extract", str(article), "--out", str(out), "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "is a symbolic link; structx does not write through links" in result.stderr
    assert outside.read_bytes() == b"precious" and not out.exists()
    reliability(
        "paths",
        f"a symbolic link planted as the run database ({planted}) pointing outside",
        expected="refused before anything is written (exit 2)",
        observed=f"exit {result.exit_code}, the file outside unchanged",
    )
