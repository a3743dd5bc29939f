"""Ctrl-C and SIGTERM during ``structx extract``: prompt, nothing lost, the output written.

Each test runs the CLI in a process of its own against a loopback server that
holds its answers, and signals it with ``os.kill`` while requests are in flight.
"""

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

from structx.testing import Reply, ScriptedServer
from tests.cassettes import FAULT_ARTICLE, seed_answer, seed_article
from tests.conftest import Reliability

ANSWER = Reply.answer(seed_answer(FAULT_ARTICLE))
# Far longer than any test waits: a request that gets this answer is in flight until it is given up.
HANGING = Reply(ANSWER.status_code, ANSWER.body, delay=120)


def _batch(tmp_path: Path, count: int) -> Path:
    text = seed_article(FAULT_ARTICLE).text
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps({"id": f"a{n}", "text": f"{text}\nCopy {n}."}) + "\n" for n in range(count)))
    return path


class _Run:
    """``structx extract`` in a child process, its standard error read as it comes."""

    def __init__(self, server: ScriptedServer, batch: Path, out: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "structx", "extract", str(batch), "--out", str(out),
                   "--base-url", server.base_url, "--model", "m", "--structured-output", "json_schema",
                   "--max-reasks", "0", *extra]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STRUCTX_"))}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def wait_until(self, condition: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.process.kill()
                pytest.fail(f"never saw {what}; stderr: {''.join(self.stderr)}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(timeout=5)
        return code, "".join(self.stderr)


def _posts(server: ScriptedServer) -> int:
    return sum(r.method == "POST" for r in server.requests)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _stored(out: Path) -> int:
    with sqlite3.connect(out.with_name(out.name + ".structx.sqlite")) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


@pytest.mark.timeout(120)
def test_ctrl_c_sends_no_retry_and_ends_when_the_requests_in_flight_time_out(
    tmp_path: Path, reliability: Reliability
) -> None:
    batch, out = _batch(tmp_path, 4), tmp_path / "out.jsonl"
    with ScriptedServer(default=HANGING) as server:
        run = _Run(server, batch, out, "--concurrency", "2", "--timeout", "2", "--max-retries", "3")
        run.wait_until(lambda: _posts(server) == 2, "two requests in flight")
        run.signal(signal.SIGINT)
        code, stderr = run.finish()
        posts = _posts(server)
    lines = _lines(out)
    errors = [line["error"] for line in lines]
    reliability(
        "batch",
        "Ctrl-C with 2 requests in flight that time out (--timeout 2, --max-retries 3), 2 articles not started",
        expected="exit 130 once the requests time out, no retry, no new article; 2 Interrupted lines, none stored",
        observed=f"exit {code}, {posts} requests, {len(lines)} lines ({', '.join(e['type'] for e in errors)}), "
        f"{_stored(out)} stored",
        requests=posts,
        lost=2 - len(lines),
    )
    assert code == 130
    assert posts == 2  # neither a retry nor a new article after Ctrl-C
    assert sorted(line["id"] for line in lines) == ["a0", "a1"]
    for error in errors:
        assert error["type"] == "Interrupted"
        assert error["message"].startswith("stopped before retrying after EndpointTimeout: ")
    assert "Ctrl-C: stopping; no new articles or requests, those in flight may take up to 2 s" in stderr
    assert "interrupted: 0 articles finished and were kept, 2 interrupted; run the same command again" in stderr
    assert _stored(out) == 0 and "Traceback" not in stderr


@pytest.mark.timeout(120)
def test_a_second_ctrl_c_cancels_the_requests_in_flight_and_a_rerun_does_them(
    tmp_path: Path, reliability: Reliability
) -> None:
    batch, out = _batch(tmp_path, 3), tmp_path / "out.jsonl"
    with ScriptedServer(default=HANGING) as server:
        run = _Run(server, batch, out, "--concurrency", "2", "--timeout", "100")
        run.wait_until(lambda: _posts(server) == 2, "two requests in flight")
        run.signal(signal.SIGINT)
        run.wait_until(lambda: any("stopping" in line for line in run.stderr), "the first Ctrl-C acknowledged")
        run.signal(signal.SIGINT)
        code, stderr = run.finish(timeout=30)  # the requests would hang for 100 s
        posts = _posts(server)
        lines = _lines(out)
        stored = _stored(out)
        server.add(*[ANSWER] * 3)
        again = _Run(server, batch, out)
        again_code, _ = again.finish()
        again_posts = _posts(server) - posts
    reliability(
        "batch",
        "Ctrl-C twice with 2 requests hanging (--timeout 100), then the same command again",
        expected="exit 130 at the second Ctrl-C; 2 Interrupted lines, none stored; the rerun extracts all 3",
        observed=f"exit {code}, {posts} requests, {len(lines)} lines "
        f"({', '.join(line['error']['type'] for line in lines)}), {stored} stored; "
        f"rerun exit {again_code}, {again_posts} requests, {len(_lines(out))} lines ok",
        requests=posts + again_posts,
        lost=2 - len(lines),
    )
    assert code == 130
    assert posts == 2
    assert sorted(line["id"] for line in lines) == ["a0", "a1"]
    assert {line["error"]["type"] for line in lines} == {"Interrupted"}
    assert {line["error"]["message"] for line in lines} == {"cancelled while its request was in flight"}
    assert "Ctrl-C: cancelling the requests in flight" in stderr
    assert stored == 0
    assert again_code == 0 and again_posts == 3  # the interrupted ones are asked again, the third too
    assert sorted(line["id"] for line in _lines(out)) == ["a0", "a1", "a2"]


@pytest.mark.timeout(120)
def test_sigterm_lets_the_requests_in_flight_finish_and_writes_the_output(
    tmp_path: Path, reliability: Reliability
) -> None:
    batch, out = _batch(tmp_path, 4), tmp_path / "out.jsonl"
    slow = Reply(ANSWER.status_code, ANSWER.body, delay=1.5)
    with ScriptedServer(default=slow) as server:
        run = _Run(server, batch, out, "--concurrency", "2")
        run.wait_until(lambda: _posts(server) == 2, "two requests in flight")
        run.signal(signal.SIGTERM)
        code, stderr = run.finish()
        posts = _posts(server)
    lines = _lines(out)
    reliability(
        "batch",
        "SIGTERM with 2 requests in flight that answer after 1.5 s, 2 articles not started",
        expected="exit 143 after the 2 answers; both ok and stored; the output written; no new article",
        observed=f"exit {code}, {posts} requests, {len(lines)} lines ({sum(line['status'] == 'ok' for line in lines)} "
        f"ok), {_stored(out)} stored",
        requests=posts,
        lost=2 - len(lines),
    )
    assert code == 143
    assert posts == 2
    assert sorted(line["id"] for line in lines) == ["a0", "a1"]
    assert all(line["status"] == "ok" for line in lines)
    assert _stored(out) == 2 and not out.with_name(out.name + ".partial").exists()
    assert "SIGTERM: stopping; no new articles or requests" in stderr
    assert "interrupted: 2 articles finished and were kept; run the same command again to resume" in stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_endpoint_is_asked_ends_the_run_at_once_and_writes_nothing(
    tmp_path: Path, signum: int
) -> None:
    batch, out = _batch(tmp_path, 2), tmp_path / "out.jsonl"
    models = Reply(200, b'{"object": "list", "data": [{"id": "m", "object": "model"}]}', delay=120)
    with ScriptedServer(default=ANSWER, models_reply=models) as server:
        command = [sys.executable, "-m", "structx", "extract", str(batch), "--out", str(out),
                   "--base-url", server.base_url]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STRUCTX_"))}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not any(r.method == "GET" for r in server.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signum)
        try:
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        posts = _posts(server)
    assert process.returncode == 128 + signum
    assert posts == 0 and not out.exists() and "Traceback" not in stderr
    if signum == signal.SIGINT:
        assert "stopped before any article was sent" in stderr
