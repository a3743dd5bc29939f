"""Runs that survive: resume after a kill, no repeated requests, nothing overwritten by accident."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, fabricated_answer, seed_answer, seed_article

ANSWER = Reply.answer(seed_answer(FAULT_ARTICLE))


def _batch(tmp_path: Path, count: int) -> Path:
    text = seed_article(FAULT_ARTICLE).text
    path = tmp_path / "batch.jsonl"
    lines = [json.dumps({"id": f"a{n}", "text": f"{text}\nCopy {n}."}) for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _args(server: ScriptedServer, batch: Path, out: Path, *extra: str) -> list[str]:
    return ["extract", str(batch), "--out", str(out), "--base-url", server.base_url, "--model", "m",
            "--structured-output", "json_schema", "--max-reasks", "0", *extra]  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _posts(server: ScriptedServer) -> int:
    return sum(r.method == "POST" for r in server.requests)


def test_a_second_run_resumes_and_makes_no_requests(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 5), tmp_path / "out.jsonl"
    with ScriptedServer([ANSWER] * 5) as server:
        first = CliRunner().invoke(app, _args(server, batch, out))
        assert first.exit_code == 0, first.output
        assert _posts(server) == 5
        second = CliRunner().invoke(app, _args(server, batch, out))
        assert second.exit_code == 0, second.output
        assert _posts(server) == 5  # nothing sent the second time
    assert "5 articles: 5 ok, 0 failed, 5 from an earlier run" in second.stderr
    assert "; 0 requests;" in second.stderr
    assert sorted(line["id"] for line in _lines(out)) == [f"a{n}" for n in range(5)]
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_force_redoes_everything_from_the_cache_and_no_cache_goes_to_the_endpoint(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 3), tmp_path / "out.jsonl"
    with ScriptedServer([ANSWER] * 6) as server:
        assert CliRunner().invoke(app, _args(server, batch, out)).exit_code == 0
        forced = CliRunner().invoke(app, _args(server, batch, out, "--force"))
        assert forced.exit_code == 0 and _posts(server) == 3  # answered from the response cache
        assert all(line["cached"] == 1 and line["requests"] == 0 for line in _lines(out))
        assert "; 0 requests; 3 answers from the cache;" in forced.stderr
        fresh = CliRunner().invoke(app, _args(server, batch, out, "--force", "--no-cache"))
        assert fresh.exit_code == 0 and _posts(server) == 6


def test_retry_failed_redoes_only_the_failures(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 3), tmp_path / "out.jsonl"
    # A failed answer is never cached: retrying must ask the model again.
    refused = Reply.completion('{"title": "cut', finish_reason="length")
    with ScriptedServer([ANSWER, refused, ANSWER]) as server:
        first = CliRunner().invoke(app, _args(server, batch, out, "--concurrency", "1"))
        assert first.exit_code == 1
        server.add(ANSWER)
        again = CliRunner().invoke(app, _args(server, batch, out, "--retry-failed"))
        assert again.exit_code == 0, again.output
        assert _posts(server) == 4
    assert [line["status"] for line in _lines(out)].count("ok") == 3


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.partial"])
def test_an_existing_output_from_elsewhere_is_not_overwritten(tmp_path: Path, name: str) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    (tmp_path / name).write_text("precious\n", encoding="utf-8")
    with ScriptedServer([ANSWER]) as server:
        result = CliRunner().invoke(app, _args(server, batch, out))
        assert result.exit_code == 2 and "pass --force to overwrite it" in result.stderr
        assert (tmp_path / name).read_text(encoding="utf-8") == "precious\n" and _posts(server) == 0
        forced = CliRunner().invoke(app, _args(server, batch, out, "--force"))
        assert forced.exit_code == 0 and len(_lines(out)) == 1


def test_dry_run_sends_nothing_and_shows_the_request(tmp_path: Path) -> None:
    batch = _batch(tmp_path, 3)
    with ScriptedServer() as server:
        result = CliRunner().invoke(app, [*_args(server, batch, tmp_path / "o.jsonl"), "--dry-run", "--limit", "2"])
        assert server.requests == []
    assert result.exit_code == 0
    assert "a0: " in result.stdout and "a1: " in result.stdout and "a2: " not in result.stdout
    assert "2 articles, 2 requests, about " in result.stdout and "; nothing was sent." in result.stdout
    assert '"role": "system"' in result.stdout and not (tmp_path / "o.jsonl").exists()


def test_out_dash_writes_the_lines_to_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _batch(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    with ScriptedServer([ANSWER] * 2) as server:
        result = CliRunner().invoke(app, _args(server, batch, Path("-")))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["id"] for line in lines) == ["a0", "a1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.jsonl"]  # no file named '-', no run database


def test_the_summary_counts_dropped_records(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    with ScriptedServer([Reply.answer(fabricated_answer())]) as server:
        result = CliRunner().invoke(app, _args(server, batch, out, "--grounding", "drop"))
    assert result.exit_code == 0, result.output
    (line,) = _lines(out)
    records = line["grounding"]["records"]
    dropped = sum(record["dropped"] for record in records)
    assert dropped > 0
    assert f"; {len(records) - dropped} records, 0 ungrounded, {dropped} dropped;" in result.stderr


def test_the_summary_estimates_cost_only_for_priced_models() -> None:
    usage = structx.Usage(prompt_tokens=1_000_000, completion_tokens=500_000)
    assert structx.estimate_cost("gpt-4o-mini", usage) == pytest.approx(0.15 + 0.30)
    assert structx.estimate_cost("SmolLM2-135M-Instruct", usage) is None


def test_a_killed_run_resumes_without_losing_or_doubling_articles(tmp_path: Path) -> None:
    count = 8
    batch, out = _batch(tmp_path, count), tmp_path / "out.jsonl"
    slow = Reply(ANSWER.status_code, ANSWER.body, delay=0.5)
    database = tmp_path / "out.jsonl.structx.sqlite"
    partial = tmp_path / "out.jsonl.partial"
    with ScriptedServer([slow] * count) as server:
        command = [sys.executable, "-m", "structx", *_args(server, batch, out, "--concurrency", "2", "-q")]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STRUCTX_"))}
        run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        shown = 0
        # Progress is visible while the run goes: a line per finished article.
        while shown < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            if partial.exists():
                shown = partial.read_text(encoding="utf-8").count("\n")
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        assert 3 <= shown < count
        with sqlite3.connect(database) as db:
            kept = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            stored = {row[0] for row in db.execute("SELECT article_id FROM results")}
        left = _lines(partial)  # whole lines only, each of an article the run database holds
        assert len(left) >= 3 and {line["id"] for line in left} <= stored
        sent_before = _posts(server)
        server.add(*[ANSWER] * count)
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert resumed.returncode == 0, resumed.stderr
        sent_after = _posts(server) - sent_before
    lines = _lines(out)
    assert len(lines) == count and len({line["id"] for line in lines}) == count
    assert all(line["status"] == "ok" for line in lines)
    assert sent_after == count - kept  # only what had not finished was asked again
    assert not partial.exists()


def test_a_project_can_pin_settings_and_the_command_line_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    monkeypatch.chdir(tmp_path)
    with ScriptedServer([ANSWER, ANSWER]) as server:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.structx]\nbase-url = "{server.base_url}"\nmodel = "pinned"\nstructured-output = "json_schema"\n'
            "max-reasks = 0\n",
            encoding="utf-8",
        )
        assert CliRunner().invoke(app, ["extract", str(batch), "--out", str(out)]).exit_code == 0
        assert (
            CliRunner().invoke(app, ["extract", str(batch), "--out", str(out), "--model", "mine", "--force"]).exit_code
            == 0
        )
        models = [r.body["model"] for r in server.requests if r.method == "POST"]
    assert models == ["pinned", "mine"]


def test_an_unknown_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "structx.toml").write_text('modle = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["extract", str(_batch(tmp_path, 1))])
    assert result.exit_code == 2 and "structx.toml: unknown setting 'modle'" in result.stderr


def test_two_articles_with_the_same_text_keep_their_own_lines(tmp_path: Path) -> None:
    text = seed_article(FAULT_ARTICLE).text
    batch, out = tmp_path / "same.jsonl", tmp_path / "out.jsonl"
    batch.write_text("\n".join(json.dumps({"id": i, "text": text}) for i in ("x", "y")) + "\n", encoding="utf-8")
    with ScriptedServer([ANSWER, ANSWER]) as server:
        assert CliRunner().invoke(app, _args(server, batch, out, "--concurrency", "1")).exit_code == 0
        assert _posts(server) == 1  # the second is answered from the response cache
        assert CliRunner().invoke(app, _args(server, batch, out)).exit_code == 0
    assert sorted(line["id"] for line in _lines(out)) == ["x", "y"]


def test_resumed_and_cached_answers_cost_nothing_and_prices_can_be_set(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 2), tmp_path / "out.jsonl"
    prices = tmp_path / "prices.toml"
    prices.write_text('"m" = [1000.0, 2000.0]\n', encoding="utf-8")
    with ScriptedServer([ANSWER, ANSWER]) as server:
        first = CliRunner().invoke(app, [*_args(server, batch, out), "--prices", str(prices)])
        again = CliRunner().invoke(app, [*_args(server, batch, out), "--prices", str(prices)])
    # 2 answers of 100 prompt + 50 completion tokens at $1000 / $2000 per million
    assert "200 prompt + 100 completion tokens (about $0.4000 at list prices)" in first.stderr
    assert "0 prompt + 0 completion tokens (about $0.0000 at list prices)" in again.stderr


def test_leaving_extract_many_early_stops_the_batch(tmp_path: Path) -> None:
    articles = [structx.Article(text=seed_article(FAULT_ARTICLE).text, id=f"n{n}") for n in range(20)]
    slow = Reply(ANSWER.status_code, ANSWER.body, delay=0.2)
    with (
        ScriptedServer(default=slow) as server,
        structx.Client(
            structx.Config(base_url=server.base_url, model="m", structured_output="json_schema", max_reasks=0)
        ) as client,
    ):
        for outcome in structx.extract_many(articles, client, ArticleExtraction, concurrency=2):
            assert outcome.status == "ok"
            break
        sent = _posts(server)
    assert sent <= 4  # the first two, and at most the two that had started when it stopped
    assert not [t for t in threading.enumerate() if t.name == "structx-extract-many"]
