"""The ``structx`` command, as a user runs it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from vcr.cassette import Cassette

from structx._cli import app
from structx.testing import Reply, ScriptedServer
from tests.cassettes import ROOT, SCRIPTED_BASE_URL, SCRIPTED_MODEL, seed_answer, seed_paths

Replay = Callable[[str], AbstractContextManager[Cassette]]
SCRIPTED = ["--base-url", SCRIPTED_BASE_URL, "--model", SCRIPTED_MODEL, "--structured-output", "json_schema"]


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_extract_writes_one_line_per_seed(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    with replay("scripted/seeds.yaml") as cassette:
        result = _run(["extract", str(ROOT / "seeds"), "--out", str(out), *SCRIPTED])
        assert cassette.play_count == 5
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    # Lines come as articles finish, so in any order: one per seed.
    assert sorted(line["id"] for line in lines) == [path.stem for path in seed_paths()]
    for line in lines:
        assert line["status"] == "ok"
        assert line["records"] == seed_answer(line["id"]).model_dump(mode="json")
        assert line["usage"] == {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        assert (line["attempts"], line["requests"]) == (1, 1)
        # Every record's evidence located in the article, by character span.
        article = (ROOT / "seeds" / f"{line['id']}.txt").read_text(encoding="utf-8")
        grounding = line["grounding"]
        assert grounding["grounded"] and grounding["excerpts"]["exact"] > 0
        for record in grounding["records"]:
            assert record["grounded"] and record["problems"] == []
            for span in record["evidence"]:
                assert span["status"] == "exact" and article[span["start"] : span["end"]]
    records = sum(len(line["grounding"]["records"]) for line in lines)
    assert f"5 articles: 5 ok, 0 failed; {records} records, 0 ungrounded" in result.stderr


def test_a_bad_file_gets_its_own_error_line_and_the_rest_go_on(replay: Replay, tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    good = seed_paths()[0]
    (articles / good.name).write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    (articles / "empty.txt").write_text("  \n", encoding="utf-8")
    (articles / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (articles / "latin1.txt").write_bytes("Qaani a visité Bagdad".encode("latin-1"))
    missing = tmp_path / "missing.txt"
    out = tmp_path / "out.jsonl"

    with replay("scripted/seeds.yaml"):
        result = _run(["extract", str(articles), str(missing), "--out", str(out), *SCRIPTED])

    assert result.exit_code == 1
    by_id = {line["id"]: line for line in _lines(out)}
    assert by_id[good.stem]["status"] == "ok"
    expected_errors = {
        "empty": "empty file: no article text",
        "image": "binary file (contains NUL bytes), not article text",
        "latin1": "not UTF-8 text (invalid byte at offset 13); convert it to UTF-8 first",
        "missing": "no such file",
    }
    for article_id, message in expected_errors.items():
        assert by_id[article_id]["status"] == "error"
        assert by_id[article_id]["error"] == {"type": "InputError", "message": message}
    assert len(by_id) == 5
    assert "Traceback" not in result.output
    for article_id in expected_errors:
        assert sum(f"{article_id}." in line and "InputError" in line for line in result.stderr.splitlines()) == 1
    assert "5 articles: 1 ok, 4 failed (4 InputError)" in result.stderr.replace("\n", " ")


def test_an_unreachable_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out.jsonl"
    result = _run(["extract", str(ROOT / "seeds"), "--out", str(out), "--base-url", f"http://127.0.0.1:{port}/v1"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"structx: error: cannot connect to http://127.0.0.1:{port}/v1")
    assert "Traceback" not in result.output
    # Every article still gets its line, so the output accounts for each one.
    lines = _lines(out)
    assert [entry["id"] for entry in lines] == [path.stem for path in seed_paths()]
    assert {entry["error"]["type"] for entry in lines} == {"EndpointUnreachable"}


def test_a_rejected_key_is_reported_as_such_not_as_a_missing_model(tmp_path: Path) -> None:
    with ScriptedServer(models_reply=Reply.status(401, "Incorrect API key provided.")) as server:
        result = _run(
            ["extract", str(seed_paths()[0]), "--out", str(tmp_path / "o.jsonl"), "--base-url", server.base_url]
        )
    assert result.exit_code == 1
    assert "answered 401: the API key is missing or wrong" in result.stderr


def test_verbose_shows_the_structured_output_mode(replay: Replay, tmp_path: Path) -> None:
    with replay("scripted/seeds.yaml"):
        result = _run(["extract", str(seed_paths()[0]), "-o", str(tmp_path / "o.jsonl"), "-v", *SCRIPTED])
    assert result.exit_code == 0
    assert (
        f"endpoint {SCRIPTED_BASE_URL} (openai-compatible), model scripted-model, "
        "structured output json_schema (set in the configuration)"
    ) in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", "no_such_module:Model"], "cannot import schema module 'no_such_module'"),
        (["--schema", "structx_schemas.iran_militias"], "must name a class"),
        (["--base-url", "ftp://example"], "is not an http(s) URL"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = _run(["extract", str(seed_paths()[0]), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_no_articles_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(["extract", str(tmp_path)])
    assert result.exit_code == 2
    assert f"no article files found in {tmp_path}" in result.stderr


def test_python_dash_m_and_help_work() -> None:
    for command in (
        [sys.executable, "-m", "structx", "--help"],
        [sys.executable, "-m", "structx", "extract", "--help"],
    ):
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, completed.stderr
        assert "Usage:" in completed.stdout
