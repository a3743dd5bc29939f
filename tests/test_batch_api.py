"""The Batch API route as a user runs it: structx batch submit, status, collect and write, against the fake.

The fake (``structx.testing.BatchServer``) is the scripted server plus the
Files and Batches APIs; it answers each seed with its gold answer (by the
article in the request) unless a test scripts a fault. Every test counts the
lines written: each article ends with exactly one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from structx._cli import app
from structx.testing import BatchEnd, BatchServer, Reply
from tests.cassettes import ROOT, SCRIPTED_MODEL, seed_answer, seed_paths
from tests.conftest import Reliability
from tests.routes import comparable, completion_requests, gold_by_article, message_text, read_lines, seed_texts

SEEDS = str(ROOT / "seeds")
STEMS = [path.stem for path in seed_paths()]
KEY_ENV = {"STRUCTX_TEST_KEY": "sk-structx-test-key-0123456789"}
INVALID = '{"title": "unterminated'


def _cli(*args: object) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args], env=KEY_ENV, catch_exceptions=False)


def _endpoint(server: BatchServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", SCRIPTED_MODEL, "--structured-output", "json_schema",
            "--api-key-env", "STRUCTX_TEST_KEY", "--max-retries", "0"]  # fmt: skip


def _key() -> list[str]:
    return ["--api-key-env", "STRUCTX_TEST_KEY", "--max-retries", "0"]


def _submit(server: BatchServer, run: Path, *extra: object) -> Any:
    result = _cli("batch", "submit", SEEDS, "--run", run, *_endpoint(server), *extra)
    assert result.exit_code == 0, result.output
    return result


def _collect(run: Path, *extra: object) -> Any:
    return _cli("batch", "collect", "--run", run, *_key(), *extra)


def _first_ask_of(stem: str, reply: Reply) -> Callable[[str], Reply | None]:
    """A fault for ``stem``'s first request only: its re-ask (which quotes the answer) gets the gold."""
    opening = seed_texts()[stem][:200]
    answered: set[str] = set()

    def fault(text: str) -> Reply | None:
        if opening in text and INVALID not in text and "first" not in answered:
            answered.add("first")
            return reply
        return None

    return fault


# -- the seeds through the route ------------------------------------------------------------


def test_the_batch_route_sends_the_online_requests_and_writes_the_online_lines(tmp_path: Path) -> None:
    with BatchServer(respond=gold_by_article()) as server:
        online_out = tmp_path / "online" / "results.jsonl"
        online_out.parent.mkdir()
        extracted = _cli("extract", SEEDS, "--out", online_out, *_endpoint(server))
        assert extracted.exit_code == 0, extracted.output
        online_bodies = [r.body for r in completion_requests(server)]
        submitted = _submit(server, tmp_path / "run")
        status = _cli("batch", "status", "--run", tmp_path / "run", *_key())
        collected = _collect(tmp_path / "run")
        batch_bodies = [line["body"] for line in server.batch_lines["batch_0001"]]
    assert "requests-0001.jsonl: 5 requests" in submitted.stdout and "batch batch_0001" in submitted.stdout
    assert status.exit_code == 0 and "batch batch_0001 completed 5 of 5 done" in status.stdout
    assert "articles: 0 done, 5 waiting" in status.stdout
    assert collected.exit_code == 0, collected.output
    # The request file holds the very bodies the online route sent, one line per article.
    assert sorted(json.dumps(b, sort_keys=True) for b in batch_bodies) == sorted(
        json.dumps(b, sort_keys=True) for b in online_bodies
    )
    online = {line["id"]: comparable(line) for line in read_lines(online_out)}
    batch = read_lines(tmp_path / "run" / "results.jsonl")
    assert [line["id"] for line in batch] == STEMS  # in the order submitted
    assert {line["id"]: comparable(line) for line in batch} == online
    assert "5 articles: 5 ok, 0 failed" in collected.stderr


def test_request_files_are_split_at_the_request_and_byte_limits(tmp_path: Path) -> None:
    with BatchServer(respond=gold_by_article()) as server:
        by_count = _submit(server, tmp_path / "count", "--max-requests-per-file", 2)
        line_bytes = [
            len(line) + 1
            for n in (1, 2, 3)
            for line in (tmp_path / "count" / f"requests-000{n}.jsonl").read_bytes().splitlines()
        ]
        by_size = _submit(server, tmp_path / "size", "--max-file-bytes", max(line_bytes) + 10)
        collected = [_collect(tmp_path / name) for name in ("count", "size")]
        uploads = [r.body for r in server.requests if r.path == "/v1/files"]
    assert [len(read_lines(tmp_path / "count" / f"requests-000{n}.jsonl")) for n in (1, 2, 3)] == [2, 2, 1]
    assert "in 3 file(s)" in by_count.stdout
    assert "in 5 file(s)" in by_size.stdout
    for n in range(1, 6):
        assert (tmp_path / "size" / f"requests-000{n}.jsonl").stat().st_size <= max(line_bytes) + 10
    assert all(upload["purpose"] == "batch" for upload in uploads) and len(uploads) == 8
    assert all(batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"
               for batch in server.batches.values())  # fmt: skip
    for result, name in zip(collected, ("count", "size"), strict=True):
        assert result.exit_code == 0, result.output
        assert [line["status"] for line in read_lines(tmp_path / name / "results.jsonl")] == ["ok"] * 5


# -- fault rows --------------------------------------------------------------------------


def _record(reliability: Reliability, case: str, expected: str, lines: list[dict[str, Any]], **more: Any) -> None:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(_count(lines).items()))
    reliability("batch", f"Batch API: {case}", expected=expected, observed=f"{len(lines)} lines ({statuses})",
                lost=len(STEMS) - len({line["id"] for line in lines}), **more)  # fmt: skip


def _count(lines: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        what = line["status"] if line["status"] == "ok" else line["error"]["type"]
        counts[what] = counts.get(what, 0) + 1
    return counts


def test_answers_that_fail_validation_are_re_asked_online(tmp_path: Path, reliability: Reliability) -> None:
    fault = _first_ask_of(STEMS[0], Reply.completion(INVALID))
    with BatchServer(respond=gold_by_article(fault)) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "an answer in the batch fails validation (re-asked online, the default)",
            "5 ok; the re-ask carries the validation error, 1 online request", lines, requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [line["status"] for line in lines] == ["ok"] * 5
    first = lines[0]
    assert (first["attempts"], first["requests"]) == (2, 2)  # the batch line, then the re-ask online
    assert first["records"] == seed_answer(STEMS[0]).model_dump(mode="json")
    assert len(online) == 1 and INVALID in message_text(online[0].body)


def test_answers_that_fail_validation_go_into_a_follow_up_batch(tmp_path: Path, reliability: Reliability) -> None:
    fault = _first_ask_of(STEMS[0], Reply.completion(INVALID))
    with BatchServer(respond=gold_by_article(fault)) as server:
        _submit(server, tmp_path)
        first = _collect(tmp_path, "--resubmit", "batch")
        written_after_first = (tmp_path / "results.jsonl").exists()
        second = _collect(tmp_path, "--resubmit", "batch")
        online = completion_requests(server)
        follow_up = server.batch_lines["batch_0002"]
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "an answer in the batch fails validation (--resubmit batch)",
            "a follow-up batch of 1 re-ask; exit 3 and nothing written until it is collected; then 5 ok",
            lines, requests=len(follow_up))  # fmt: skip
    assert first.exit_code == 3 and not written_after_first
    assert "1 request(s) queued into batch_0002" in first.stderr
    assert len(follow_up) == 1 and INVALID in message_text(follow_up[0]["body"])
    assert second.exit_code == 0, second.output
    assert online == [] and [line["status"] for line in lines] == ["ok"] * 5
    assert (lines[0]["attempts"], lines[0]["requests"]) == (2, 2)


def test_an_expired_batch_loses_nothing(tmp_path: Path, reliability: Reliability) -> None:
    with BatchServer(respond=gold_by_article(), batches=[BatchEnd("expired", answered=2)]) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the batch expires after answering 2 of 5 (batch_expired lines in the error file)",
            "the 3 expired requests sent online; 5 ok", lines, requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 error line(s)" in result.stderr
    assert len(online) == 3 and [line["status"] for line in lines] == ["ok"] * 5


def test_a_cancelled_batch_loses_nothing(tmp_path: Path, reliability: Reliability) -> None:
    with BatchServer(respond=gold_by_article(), batches=[BatchEnd("cancelled", answered=1)]) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the batch is cancelled after answering 1 of 5 (no line for the rest)",
            "the 4 unanswered requests sent online; 5 ok", lines, requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 request(s) the batch never answered" in result.stderr
    assert len(online) == 4 and [line["status"] for line in lines] == ["ok"] * 5


def test_a_failed_batch_is_sent_online(tmp_path: Path, reliability: Reliability) -> None:
    with BatchServer(respond=gold_by_article(), batches=[BatchEnd("failed")]) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the batch fails (no output, no error file)", "all 5 requests sent online; 5 ok", lines,
            requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(online) == 5 and [line["status"] for line in lines] == ["ok"] * 5


def test_error_file_lines_are_sent_again_online(tmp_path: Path, reliability: Reliability) -> None:
    fault = _first_ask_of(STEMS[1], Reply.status(500, "the batch worker crashed"))
    with BatchServer(respond=gold_by_article(fault)) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
        error_files = [f for f in server.files.values() if f["filename"].endswith("_error.jsonl")]
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the error file holds a 500 for one request", "that request sent online; 5 ok", lines,
            requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(error_files) == 1 and (tmp_path / "requests-0001.errors.jsonl").exists()
    assert len(online) == 1 and [line["status"] for line in lines] == ["ok"] * 5


def test_an_error_line_the_follow_up_batches_keep_failing_fails_its_article(
    tmp_path: Path, reliability: Reliability
) -> None:
    opening = seed_texts()[STEMS[1]][:200]

    def rejected(text: str) -> Reply | None:
        return Reply.status(400, "Invalid value for 'messages'.") if opening in text else None

    with BatchServer(respond=gold_by_article(rejected)) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path, "--resubmit", "batch")  # --max-retries 0: no second batch for it
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the error file holds a 400 for one request (--resubmit batch, --max-retries 0)",
            "that article fails with RequestRejected naming the 400; 4 ok", lines, requests=len(online))  # fmt: skip
    assert result.exit_code == 1, result.output
    failed = lines[1]
    assert failed["error"]["type"] == "RequestRejected" and "400" in failed["error"]["message"]
    assert "Invalid value for 'messages'" in failed["error"]["message"]
    assert online == [] and _count(lines) == {"ok": 4, "RequestRejected": 1}


def test_a_line_for_an_unknown_id_is_ignored(tmp_path: Path, reliability: Reliability) -> None:
    ends = [BatchEnd(unknown_ids=("sx-0000-not-sent-by-this-run",))]
    with BatchServer(respond=gold_by_article(), batches=ends) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path)
        online = completion_requests(server)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "the output file has a line for an id the run never sent",
            "the line is counted and ignored; 5 ok", lines, requests=len(online))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 line(s) for ids this run never sent, ignored" in result.stderr
    assert online == [] and [line["status"] for line in lines] == ["ok"] * 5


def test_collect_waits_for_a_running_batch_and_writes_nothing(tmp_path: Path, reliability: Reliability) -> None:
    with BatchServer(respond=gold_by_article(), batches=[BatchEnd(polls=1)]) as server:
        _submit(server, tmp_path)
        early = _collect(tmp_path)
        written_early = (tmp_path / "results.jsonl").exists()
        late = _collect(tmp_path)
    lines = read_lines(tmp_path / "results.jsonl")
    _record(reliability, "collect while the batch is still in progress",
            "exit 3, nothing written; the next collect writes 5 ok", lines)  # fmt: skip
    assert early.exit_code == 3 and not written_early
    assert "5 article(s) wait for answers from batch_0001 (in_progress)" in early.stderr
    assert late.exit_code == 0 and [line["status"] for line in lines] == ["ok"] * 5


def test_collect_wait_polls_until_the_batch_has_finished(tmp_path: Path) -> None:
    with BatchServer(respond=gold_by_article(), batches=[BatchEnd(polls=2)]) as server:
        _submit(server, tmp_path)
        result = _collect(tmp_path, "--wait", "--poll-seconds", 0)
        polls = [r for r in server.requests if r.path == "/v1/batches/batch_0001"]
    assert result.exit_code == 0, result.output
    assert len(polls) == 3 and "wait for answers from batch_0001 (in_progress)" in result.stderr
    assert [line["status"] for line in read_lines(tmp_path / "results.jsonl")] == ["ok"] * 5


# -- resuming across routes ----------------------------------------------------------------


def test_articles_finished_online_are_not_sent_in_the_batch_and_back(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with BatchServer(respond=gold_by_article()) as server:
        two = [str(path) for path in seed_paths()[:2]]
        assert _cli("extract", *two, "--out", run / "results.jsonl", *_endpoint(server)).exit_code == 0
        submitted = _submit(server, run)
        sent = len(server.batch_lines["batch_0001"])
        assert _collect(run).exit_code == 0
        before = len(completion_requests(server))
        again = _cli("extract", SEEDS, "--out", run / "results.jsonl", *_endpoint(server))
        after = len(completion_requests(server))
    assert "2 finished before or already in this run" in submitted.stdout
    assert sent == 3
    lines = read_lines(run / "results.jsonl")
    assert sorted(line["id"] for line in lines) == STEMS and {line["status"] for line in lines} == {"ok"}
    # The batch's articles are finished for the online route too: nothing is sent.
    assert again.exit_code == 0 and after == before


def test_a_second_submit_into_the_run_sends_nothing_new(tmp_path: Path) -> None:
    with BatchServer(respond=gold_by_article()) as server:
        _submit(server, tmp_path)
        again = _submit(server, tmp_path)
    assert "0 requests in 0 file(s), 5 finished before or already in this run" in again.stdout
    assert len(server.batches) == 1


# -- vllm run-batch: request files, results read back ---------------------------------------------


def _run_batch(requests: Path, results: Path, respond: Callable[[Any], Reply | None]) -> None:
    """What ``vllm run-batch -i requests -o results`` writes: one output line per request line."""
    out = []
    for number, line in enumerate(read_lines(requests)):
        reply = respond(line["body"]) or Reply.status(500)
        response = {"status_code": reply.status_code, "request_id": f"vllm-{number}", "body": json.loads(reply.body)}
        out.append({"id": f"vllm-{number}", "custom_id": line["custom_id"], "response": response, "error": None})
    results.write_text("".join(json.dumps(line) + "\n" for line in out), encoding="utf-8")


def test_write_and_collect_from_vllm_run_batch_results(tmp_path: Path) -> None:
    respond = gold_by_article(_first_ask_of(STEMS[0], Reply.completion(INVALID)))
    written = _cli("batch", "write", SEEDS, "--run", tmp_path, "--model", "Qwen/Qwen2.5-7B-Instruct")
    assert written.exit_code == 0, written.output
    assert f"vllm run-batch -i {tmp_path}/requests-0001.jsonl -o {tmp_path}/results-0001.jsonl" in written.stdout
    _run_batch(tmp_path / "requests-0001.jsonl", tmp_path / "results-0001.jsonl", respond)
    first = _cli("batch", "collect", "--run", tmp_path, "--from", tmp_path / "results-0001.jsonl")
    # A written run re-asks through the next request file (nothing is sent anywhere).
    assert first.exit_code == 3, first.output
    assert len(read_lines(tmp_path / "requests-0002.jsonl")) == 1
    _run_batch(tmp_path / "requests-0002.jsonl", tmp_path / "results-0002.jsonl", respond)
    second = _cli("batch", "collect", "--run", tmp_path, "--from", tmp_path / "results-0002.jsonl")
    assert second.exit_code == 0, second.output
    lines = read_lines(tmp_path / "results.jsonl")
    assert [line["id"] for line in lines] == STEMS and [line["status"] for line in lines] == ["ok"] * 5
    assert all(line["model"] == "Qwen/Qwen2.5-7B-Instruct" for line in lines)
    assert lines[0]["attempts"] == 2
    for line in lines:
        assert line["records"] == seed_answer(line["id"]).model_dump(mode="json")


def test_results_for_one_request_file_leave_the_others_waiting(tmp_path: Path) -> None:
    respond = gold_by_article(lambda text: None)
    written = _cli("batch", "write", SEEDS, "--run", tmp_path, "--model", "m", "--max-requests-per-file", "3")
    assert written.exit_code == 0, written.output
    assert [len(read_lines(tmp_path / f"requests-000{n}.jsonl")) for n in (1, 2)] == [3, 2]
    _run_batch(tmp_path / "requests-0001.jsonl", tmp_path / "results-0001.jsonl", respond)
    first = _cli("batch", "collect", "--run", tmp_path, "--from", tmp_path / "results-0001.jsonl")
    assert first.exit_code == 3, first.output  # requests-0002.jsonl has not been answered yet
    assert not (tmp_path / "requests-0003.jsonl").exists()  # nor is it sent again
    _run_batch(tmp_path / "requests-0002.jsonl", tmp_path / "results-0002.jsonl", respond)
    second = _cli("batch", "collect", "--run", tmp_path, "--from", tmp_path / "results-0002.jsonl")
    assert second.exit_code == 0, second.output
    assert [line["status"] for line in read_lines(tmp_path / "results.jsonl")] == ["ok"] * 5


def test_a_results_line_whose_response_is_not_an_object_is_asked_again(tmp_path: Path) -> None:
    respond = gold_by_article(lambda text: None)
    assert _cli("batch", "write", SEEDS, "--run", tmp_path, "--model", "m").exit_code == 0
    results = tmp_path / "results-0001.jsonl"
    _run_batch(tmp_path / "requests-0001.jsonl", results, respond)
    lines = read_lines(results)
    lines[0]["response"] = "oops"
    results.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    first = _cli("batch", "collect", "--run", tmp_path, "--from", results)
    assert first.exit_code == 3, first.output  # no traceback: that request goes into the next file
    assert [line["custom_id"] for line in read_lines(tmp_path / "requests-0002.jsonl")] == [lines[0]["custom_id"]]


# -- usage errors --------------------------------------------------------------------------


def test_collect_on_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _collect(tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"structx: error: --run {tmp_path} holds no batch run: start one with structx batch submit or "
        "structx batch write"
    )


def test_submit_without_an_api_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["batch", "submit", SEEDS, "--run", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "a batch run needs an API" in result.stderr
    assert not (tmp_path / "results.jsonl.structx.sqlite").exists()


def test_from_a_missing_results_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert _cli("batch", "write", SEEDS, "--run", tmp_path, "--model", "m").exit_code == 0
    result = _cli("batch", "collect", "--run", tmp_path, "--from", tmp_path / "nowhere.jsonl")
    assert (
        result.exit_code == 2
        and result.stderr.strip() == f"structx: error: --from {tmp_path}/nowhere.jsonl: no such file"
    )


# -- the recorded exchange -------------------------------------------------------------------


def test_the_recorded_batch_run_replays_with_the_same_requests(tmp_path: Path) -> None:
    """The cassette (python -m tests.record_cassettes batch): any change to a request fails the replay."""
    import structx
    from tests.cassettes import (
        BATCH_CASSETTE,
        BATCH_RUN_ANSWERED,
        RECORDING_API_KEY,
        batch_cassette_vcr,
        scripted_config,
    )

    with batch_cassette_vcr("none").use_cassette(BATCH_CASSETTE) as cassette, structx.BatchRun(tmp_path) as run:
        run.submit([str(path) for path in seed_paths()], scripted_config(), "structx_schemas:ArticleExtraction")
        with structx.Client(run.config(api_key=RECORDING_API_KEY), cache=run.store, probe=False) as client:
            run.status(client)
            report = run.collect(client)
            lines = list(run.lines(client, report.unsettled))
        assert cassette.all_played
    assert (report.answers, report.errors) == (BATCH_RUN_ANSWERED, len(STEMS) - BATCH_RUN_ANSWERED)
    assert [line["id"] for line in lines] == STEMS
    for line in lines:
        assert line["status"] == "ok" and line["records"] == seed_answer(line["id"]).model_dump(mode="json")
