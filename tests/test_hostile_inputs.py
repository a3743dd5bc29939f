"""Hostile and broken input through ``structx extract``: each gets its own line, none stops the batch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from structx._cli import app
from structx.testing import Reply, ScriptedServer
from tests.cassettes import FAULT_ARTICLE, SCRIPTED_MODEL, seed_answer, seed_article
from tests.conftest import Reliability

TEXT = seed_article(FAULT_ARTICLE).text


def _extract(server: ScriptedServer, sources: list[Path], out: Path, *extra: str) -> Any:
    args = ["extract", *map(str, sources), "--out", str(out), "--base-url", server.base_url, "--model", SCRIPTED_MODEL,
            "--structured-output", "json_schema", "--max-reasks", "0", "--no-cache", *extra]  # fmt: skip
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# name -> (content, expected error type or "ok", words the error must contain)
HOSTILE: dict[str, tuple[bytes | None, str, str]] = {
    "empty.txt": (b"", "InputError", "empty file"),
    "blank.txt": (b"  \n\t \r\n ", "InputError", "empty file"),
    "binary.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "InputError", "binary file"),
    "latin1.txt": ("Qaani a visité Bagdad".encode("latin-1"), "InputError", "not UTF-8 text (invalid byte at offset"),
    "nul.txt": (b"Qaani visited\x00 Baghdad", "InputError", "binary file (contains NUL bytes)"),
    "huge.txt": (None, "InputError", "bytes; the limit is 2,000,000"),  # 20 MB, written below
    "a story with spaces.txt": (TEXT.encode(), "ok", ""),
    'it\'s "quoted".txt': (TEXT.encode(), "ok", ""),
    "خبر عاجل.txt": (TEXT.encode(), "ok", ""),
    "ünïcödé-名前.txt": (TEXT.encode(), "ok", ""),
}


@pytest.mark.timeout(120)
def test_every_hostile_input_gets_one_clear_line_and_no_request(tmp_path: Path, reliability: Reliability) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, (content, _, _) in HOSTILE.items():
        (inputs / name).write_bytes(content if content is not None else b"x" * 20_000_000)
    # A name that is not UTF-8 at all, a symlink loop, a broken link, a link back up the tree.
    with open(os.fsencode(inputs) + b"/bad\xffname.txt", "wb") as handle:  # noqa: PTH123 - a bytes path
        handle.write(TEXT.encode())
    with open(os.fsencode(inputs) + b"/bad\xffname.jsonl", "wb") as handle:  # noqa: PTH123 - a bytes path
        handle.write(json.dumps({"id": "from-bad-name", "text": TEXT}).encode() + b"\nnot json\n")
    (inputs / "loop.txt").symlink_to("loop.txt")
    (inputs / "broken.txt").symlink_to("nowhere.txt")
    (inputs / "sub").mkdir()
    (inputs / "sub" / "up").symlink_to("..")
    # An article far above any small model's context: split into chunks.
    (inputs / "long.txt").write_text("\n\n".join([TEXT] * 60), encoding="utf-8")
    # JSONL: a line that is not JSON, a record without text, an array, a good record.
    (inputs / "batch.jsonl").write_text(
        '{"id": "broken", "text": \n{"id": "notext", "title": "no text"}\n[1, 2]\n'
        + json.dumps({"id": "jsonl-good", "text": TEXT})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    with ScriptedServer(default=Reply.answer(seed_answer(FAULT_ARTICLE))) as server:
        result = _extract(server, [inputs], out, "--concurrency", "2")
        posts = [r for r in server.requests if r.method == "POST"]
    assert result.exit_code == 1, result.output
    lines = {line["id"]: line for line in _lines(out)}
    expected_errors = {Path(name).stem: (kind, words) for name, (_, kind, words) in HOSTILE.items() if kind != "ok"} | {
        "loop": ("InputError", "Too many levels of symbolic links"),
        "broken": ("InputError", "broken symbolic link"),
        "sub/up": ("InputError", "symbolic link to a directory"),
        "batch:1": ("InputError", "line 1 is not JSON"),
        "batch:2": ("InputError", 'line 2 has no article text (a non-empty "text" field)'),
        "batch:3": ("InputError", "line 3 is not a JSON object"),
        "bad\\xffname:2": ("InputError", "line 2 is not JSON"),
    }
    ok = [Path(name).stem for name, (_, kind, _) in HOSTILE.items() if kind == "ok"]
    ok += ["bad\\xffname", "from-bad-name", "long", "jsonl-good"]
    tried = len(expected_errors) + len(ok)
    errors = {key: line.get("error", {}) for key, line in lines.items()}
    as_expected = sum(
        errors[key].get("type") == kind and words in errors[key].get("message", "")
        for key, (kind, words) in expected_errors.items()
        if key in lines
    ) + sum(lines[key]["status"] == "ok" for key in ok if key in lines)
    reliability(
        "input",
        f"{tried} hostile or odd inputs in one directory",
        expected="one line each: an InputError naming the file and the problem, or ok; no request for a bad one",
        observed=f"{len(lines)} lines, {as_expected} as expected, {len(posts)} requests "
        f"({len(ok) - 1} articles and {lines.get('long', {}).get('chunks', 0)} chunks of the long one)",
        requests=len(posts),
        items=[f"{key}: {lines[key].get('error', {}).get('type', 'ok')}" for key in sorted(lines)],
        tried=tried,
        lost=len(set(expected_errors) | set(ok)) - len(set(lines) & (set(expected_errors) | set(ok))),
    )
    assert sorted(lines) == sorted([*expected_errors, *ok])  # one line each, none skipped, none doubled
    for article_id, (kind, words) in expected_errors.items():
        line = lines[article_id]
        assert (line["status"], line["error"]["type"]) == ("error", kind), article_id
        assert words in line["error"]["message"], (article_id, line["error"]["message"])
    for article_id in ok:
        assert lines[article_id]["status"] == "ok", lines[article_id]
    assert lines["bad\\xffname:2"]["source"].endswith("/bad\\xffname.jsonl:2")  # the bad byte shown, not lost
    assert lines["long"]["chunks"] > 1
    # Only readable articles reached the endpoint: one request each, one per chunk of the long one.
    assert len(posts) == len(ok) - 1 + lines["long"]["chunks"]


@pytest.mark.timeout(240)
def test_a_directory_of_ten_thousand_tiny_files(tmp_path: Path, reliability: Reliability) -> None:
    inputs = tmp_path / "many"
    inputs.mkdir()
    for n in range(10_000):
        (inputs / f"{n:05d}.txt").write_text(f"Esmail Qaani visited Baghdad, report {n}.", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    answer = {"visits": [{"visitor": "Esmail Qaani", "city": "Baghdad", "evidence": ["Esmail Qaani visited Baghdad"]}]}
    with ScriptedServer(default=Reply.answer(answer)) as server:
        result = _extract(server, [inputs], out, "--concurrency", "8", "-q")
        posts = sum(r.method == "POST" for r in server.requests)
    ids = [line["id"] for line in _lines(out)]
    ok = sum(line["status"] == "ok" for line in _lines(out))
    reliability(
        "input",
        "a directory of 10,000 tiny files",
        expected="10,000 lines, all ok",
        observed=f"{len(ids)} lines, {len(set(ids))} distinct ids, {ok} ok, {posts} requests",
        requests=posts,
        items=["10,000 files of one sentence each"],
        tried=10_000,
        lost=10_000 - len(set(ids)),
    )
    assert result.exit_code == 0, result.output
    assert len(ids) == len(set(ids)) == ok == posts == 10_000
