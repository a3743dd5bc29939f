"""Runs that survive: resume after a kill, no repeated requests, nothing overwritten by accident."""

from __future__ import annotations

import dataclasses
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
from structx._backend import Endpoint
from structx._cli import app
from structx._store import ENDPOINT_FIELDS, INPUT_FIELDS, KEY_FIELDS, REAPPLIED_FIELDS, TRANSPORT_FIELDS, result_key
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, fabricated_answer, seed_answer, seed_article
from tests.conftest import Reliability

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


# -- a resumed run gives the line today's options give --------------------------------------

FABRICATED = Reply.answer(fabricated_answer())


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def _comparable(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key != "latency_s"}


@pytest.mark.parametrize("policy", ["drop", "fail"])
def test_a_stricter_grounding_policy_is_applied_to_the_stored_answer_without_a_request(
    tmp_path: Path, policy: str, reliability: Reliability
) -> None:
    batch, out, fresh = _batch(tmp_path, 1), tmp_path / "out.jsonl", tmp_path / "fresh.jsonl"
    with ScriptedServer(default=FABRICATED) as server:
        first = _invoke(_args(server, batch, out, "--grounding", "keep"))
        kept = _lines(out)
        rerun = _invoke(_args(server, batch, out, "--grounding", policy))
        sent_by_rerun = _posts(server) - 1
        # What a run with today's options gives, from scratch.
        new = _invoke(_args(server, batch, fresh, "--grounding", policy))
    (line,), (expected,) = _lines(out), _lines(fresh)
    dropped = sum(record["dropped"] for record in (line.get("grounding") or {}).get("records", []))
    reliability(
        "runs",
        f"an answer kept with 2 ungrounded records, resumed with --grounding {policy}",
        expected="no request; the line a fresh run with the new policy writes",
        observed=f"{sent_by_rerun} requests; status {line['status']}, {dropped} records dropped, "
        f"{'the same line' if _comparable(line) == _comparable(expected) else 'a different line'} as a fresh run; "
        f"exit {rerun.exit_code}",
        requests=sent_by_rerun,
    )
    assert first.exit_code == 0 and not kept[0]["grounding"]["grounded"]
    assert sent_by_rerun == 0
    assert "1 from an earlier run" in rerun.stderr
    assert _comparable(line) == _comparable(expected)
    if policy == "drop":
        assert rerun.exit_code == new.exit_code == 0 and dropped == 2
        assert line["records"] != kept[0]["records"]
    else:
        assert rerun.exit_code == new.exit_code == 1 and line["error"]["type"] == "GroundingFailed"


def test_records_an_earlier_policy_removed_or_refused_are_extracted_again(
    tmp_path: Path, reliability: Reliability
) -> None:
    batch, dropped_out, failed_out = _batch(tmp_path, 1), tmp_path / "dropped.jsonl", tmp_path / "failed.jsonl"
    with ScriptedServer(default=FABRICATED) as server:
        assert _invoke(_args(server, batch, dropped_out, "--grounding", "drop")).exit_code == 0
        kept = _invoke(_args(server, batch, dropped_out, "--grounding", "keep"))
        after_drop = _posts(server)  # the kept answer came from the response cache
        assert _invoke(_args(server, batch, failed_out, "--grounding", "fail")).exit_code == 1
        kept_after_fail = _invoke(_args(server, batch, failed_out, "--grounding", "keep"))
        after_fail = _posts(server) - after_drop - 1  # a refused answer is not cached: asked again
    (from_drop,), (from_fail,) = _lines(dropped_out), _lines(failed_out)
    whole = [line.get("records") == fabricated_answer().model_dump(mode="json") for line in (from_drop, from_fail)]
    reliability(
        "runs",
        "answers stored under --grounding drop (2 records removed) and fail, resumed with keep",
        expected="extracted again: from the response cache after drop, 1 request after fail; every record kept",
        observed=f"{after_drop - 1} and {after_fail} requests; statuses {from_drop['status']} and "
        f"{from_fail['status']}; every record kept: {whole[0]} and {whole[1]}",
        requests=after_drop - 1 + after_fail,
    )
    assert kept.exit_code == kept_after_fail.exit_code == 0
    assert "from an earlier run" not in kept.stderr + kept_after_fail.stderr
    assert after_drop == 1 and from_drop["cached"] == 1
    assert after_fail == 1
    for line in (from_drop, from_fail):
        assert line["status"] == "ok" and line["records"] == fabricated_answer().model_dump(mode="json")
        assert not any(record["dropped"] for record in line["grounding"]["records"])


@pytest.mark.parametrize(
    "option",
    [["--max-tokens", "1000"], ["--chunk-chars", "1000"], ["--structured-output", "json_object_schema"]],
    ids=lambda option: option[0],
)
def test_an_option_that_changes_the_request_is_not_answered_by_the_stored_line(
    tmp_path: Path, option: list[str], reliability: Reliability
) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    with ScriptedServer(default=ANSWER) as server:
        assert _invoke(_args(server, batch, out)).exit_code == 0
        before = _posts(server)
        changed = _invoke(_args(server, batch, out, *option))
        sent = _posts(server) - before
        (line,) = _lines(out)
    reliability(
        "runs",
        f"a finished article run again with {' '.join(option)}",
        expected="extracted again with the new option",
        observed=f"{sent} requests, exit {changed.exit_code}, "
        + ("resumed" if "from an earlier run" in changed.stderr else "extracted again")
        + f", {line['chunks']} chunk(s), mode {line['mode']}",
        requests=sent,
    )
    assert changed.exit_code == 0 and "from an earlier run" not in changed.stderr
    assert sent == line["chunks"] >= 1
    given = dict([option])
    assert [r.body["max_tokens"] for r in server.requests[-sent:]] == [int(given.get("--max-tokens", 2048))] * sent
    assert line["mode"] == given.get("--structured-output", "json_schema")


def test_more_reasks_ask_again_instead_of_resuming_the_ungrounded_answer(
    tmp_path: Path, reliability: Reliability
) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    with ScriptedServer([FABRICATED, ANSWER]) as server:
        assert _invoke(_args(server, batch, out)).exit_code == 0  # --max-reasks 0: kept ungrounded
        again = _invoke([*_args(server, batch, out), "--max-reasks", "1"])
        sent = _posts(server) - 1
    (line,) = _lines(out)
    reliability(
        "runs",
        "an ungrounded answer stored with --max-reasks 0, run again with --max-reasks 1",
        expected="the first answer from the response cache, then 1 re-ask sent; grounded",
        observed=f"{sent} request(s), {line['attempts']} model answers, grounded: {line['grounding']['grounded']}",
        requests=sent,
    )
    assert again.exit_code == 0 and sent == 1
    assert (line["attempts"], line["cached"], line["grounding"]["grounded"]) == (2, 1, True)


def test_every_config_field_is_in_the_resume_key_or_said_not_to_be() -> None:
    groups = [KEY_FIELDS, ENDPOINT_FIELDS, REAPPLIED_FIELDS, INPUT_FIELDS, TRANSPORT_FIELDS]
    placed = [name for group in groups for name in group]
    assert sorted(placed) == sorted({f.name for f in dataclasses.fields(structx.Config)}), (
        "place each Config field in exactly one group of structx._store"
    )


def test_the_key_changes_with_each_key_field_and_the_endpoint_and_not_with_the_rest() -> None:
    article = seed_article(FAULT_ARTICLE)
    config = structx.Config(base_url="http://127.0.0.1:1/v1", model="m", structured_output="json_schema")
    endpoint = Endpoint(config.resolved_base_url(), "m", structx.StructuredOutput.JSON_SCHEMA, "", "")

    def key(config: structx.Config = config, endpoint: Endpoint = endpoint) -> str:
        return result_key(article, ArticleExtraction, endpoint, config)

    changed = {"max_reasks": 5, "max_tokens": 99, "temperature": 0.5, "frequency_penalty": 0.3,
               "chunk_chars": 5_000, "chunk_overlap": 10, "extraction_format": "cited"}  # fmt: skip
    assert set(changed) == set(KEY_FIELDS)
    for name, value in changed.items():
        assert key(dataclasses.replace(config, **{name: value})) != key(), name
    assert key(endpoint=dataclasses.replace(endpoint, model="other")) != key()
    assert key(endpoint=dataclasses.replace(endpoint, mode=structx.StructuredOutput.TOOLS)) != key()
    same = {"grounding": "fail", "base_url": "http://127.0.0.1:2/v1", "timeout": 5.0, "max_retries": 0,
            "temperature": 0}  # fmt: skip
    for name, value in same.items():
        assert key(dataclasses.replace(config, **{name: value})) == key(), name


# -- one run at a time on one output -----------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_second_run_on_the_same_output_is_refused_and_sends_nothing(tmp_path: Path, reliability: Reliability) -> None:
    count = 4
    batch, out = _batch(tmp_path, count), tmp_path / "conc.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STRUCTX_"))}
    # The first run's first answer comes late: it holds the output while the second starts.
    late = Reply(ANSWER.status_code, ANSWER.body, delay=30)
    with ScriptedServer([late], default=ANSWER) as server:
        # Structured output "auto": a run starts with GET /models.
        command = [sys.executable, "-m", "structx", "extract", str(batch), "--out", str(out),
                   "--base-url", server.base_url, "--max-reasks", "0", "--concurrency", "1"]  # fmt: skip
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while _posts(server) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = list(server.requests)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        sent_by_second = len(server.requests) - len(before)
        first.kill()  # kill -9: the lock goes with the process
        _, first_stderr = first.communicate(timeout=10)
        third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        posts = _posts(server)
    lines = _lines(out) if out.exists() else []
    lost = count - len({line["id"] for line in lines})
    reliability(
        "runs",
        f"two runs on one --out ({count} articles), the first holding it; then the first killed (-9) and run again",
        expected="the second exits 2 naming the first's pid and sends nothing; the run after the kill finishes",
        observed=f"second exited {second.returncode} after {sent_by_second} requests; "
        f"after the kill: exit {third.returncode}, {len(lines)} lines, {lost} lost; {posts} requests in all",
        requests=posts,
        lost=lost,
    )
    assert [(r.method, r.path) for r in before] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    assert second.returncode == 2 and sent_by_second == 0
    assert f"{out} is in use by another structx process (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr + first_stderr + third.stderr
    assert third.returncode == 0, third.stderr
    assert lost == 0 and len(lines) == count and not (tmp_path / ".conc.jsonl.partial").exists()
    assert posts == 1 + count  # the killed run's article was asked again, nothing else twice


def test_a_run_database_opens_once_at_a_time(tmp_path: Path) -> None:
    database = tmp_path / "run.sqlite"
    with structx.RunStore(database), pytest.raises(structx.RunInUse, match=r"run\.sqlite is in use by this process"):
        structx.RunStore(database)
    with structx.RunStore(database) as store:  # released on close
        assert store.count() == 0


def test_an_error_about_the_key_is_not_kept_as_a_finished_article(tmp_path: Path) -> None:
    # A wrong key is about the run, not the article: the run with the right key sends every article.
    batch, out = _batch(tmp_path, 3), tmp_path / "out.jsonl"
    with ScriptedServer([Reply.status(401, "Incorrect API key provided.")]) as server:
        wrong = _invoke([*_args(server, batch, out, "--concurrency", "1"), "--api-key", "sk-wrong"])
    with ScriptedServer([ANSWER] * 3) as server:
        right = _invoke(_args(server, batch, out))
        sent = _posts(server)
    assert wrong.exit_code == 1 and right.exit_code == 0, right.output
    assert sent == 3 and [line["status"] for line in _lines(out)] == ["ok"] * 3


def test_a_resumed_line_carries_todays_metadata_and_source(tmp_path: Path) -> None:
    text = seed_article(FAULT_ARTICLE).text
    batch, out = tmp_path / "batch.jsonl", tmp_path / "out.jsonl"
    batch.write_text(json.dumps({"id": "x", "text": text, "title": "T1", "published": "2023-01-01"}) + "\n")
    with ScriptedServer([ANSWER, ANSWER]) as server:
        assert _invoke(_args(server, batch, out)).exit_code == 0
        batch.write_text(json.dumps({"id": "x", "text": text, "title": "T2", "published": "2024-02-02"}) + "\n")
        assert _invoke(_args(server, batch, out)).exit_code == 0
        # The date offered to the model changed, so the request did: it is sent again.
        sent = _posts(server)
        moved = tmp_path / "moved.jsonl"
        batch.rename(moved)
        assert _invoke(_args(server, moved, out)).exit_code == 0
        assert _posts(server) == sent
    (line,) = _lines(out)
    assert sent == 2
    assert line["meta"] == {"title": "T2", "published": "2024-02-02"}
    assert line["source"] == f"{moved}:1"


def test_a_run_refused_at_its_checks_leaves_the_output_free_for_the_next(tmp_path: Path) -> None:
    batch, out = _batch(tmp_path, 1), tmp_path / "out.jsonl"
    with ScriptedServer([ANSWER]) as server:
        # Both in this process, as a caller of the CLI (or a test) runs them.
        unwritable = _invoke([*_args(server, batch, out), "--log-requests", str(tmp_path / "missing" / "log.jsonl")])
        unknown = _invoke(["extract", str(batch), "--out", str(out), "--base-url", server.base_url, "--model", "nope"])
        again = _invoke(_args(server, batch, out))
    assert unwritable.exit_code == 2 and "--log-requests" in unwritable.output
    assert unknown.exit_code == 2 and "not served" in unknown.output
    assert again.exit_code == 0, again.output
    assert [line["status"] for line in _lines(out)] == ["ok"]


def test_the_cited_prompt_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from structx._formats import _cited

    article = seed_article(FAULT_ARTICLE)
    endpoint = structx.Endpoint(
        base_url="http://x/v1", model="m", mode=structx.StructuredOutput.JSON_SCHEMA, reason="set", server="vllm"
    )
    cited = structx.Config(base_url="http://x/v1", extraction_format="cited")  # type: ignore[arg-type]
    excerpts = structx.Config(base_url="http://x/v1")
    before = (
        result_key(article, ArticleExtraction, endpoint, cited),
        result_key(article, ArticleExtraction, endpoint, excerpts),
    )
    monkeypatch.setattr(_cited, "CITED_PROMPT_VERSION", "c-next")
    after = (
        result_key(article, ArticleExtraction, endpoint, cited),
        result_key(article, ArticleExtraction, endpoint, excerpts),
    )
    assert before[0] != after[0] and before[1] == after[1]
