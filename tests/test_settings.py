"""Project settings: found from the current folder up to the project root, and every error names the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from structx._cli import app
from structx.testing import Reply, ScriptedServer
from tests.cassettes import FAULT_ARTICLE, seed_answer, seed_article, seed_paths

ANSWER = Reply.answer(seed_answer(FAULT_ARTICLE))


def _project(tmp_path: Path) -> Path:
    """A project root (it holds .git) with a folder two levels down."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "notes" / "drafts").mkdir(parents=True)
    return root


def _article(tmp_path: Path) -> Path:
    path = tmp_path / "article.txt"
    path.write_text(seed_article(FAULT_ARTICLE).text, encoding="utf-8")
    return path


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def test_settings_at_the_project_root_apply_in_its_subfolders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    article = _article(tmp_path)
    with ScriptedServer([ANSWER]) as server:
        (root / "structx.toml").write_text(
            f'base-url = "{server.base_url}"\nmodel = "pinned"\nstructured-output = "json_schema"\n'
            'max-reasks = 0\nout = "results.jsonl"\n',
            encoding="utf-8",
        )
        monkeypatch.chdir(root / "notes" / "drafts")
        result = _run(["extract", str(article)])
        assert result.exit_code == 0, result.output
        assert [r.body["model"] for r in server.requests if r.method == "POST"] == ["pinned"]
    # A relative path in the file is relative to the file's folder, wherever structx runs.
    (line,) = (root / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["status"] == "ok"


def test_the_nearest_settings_file_wins_and_a_pyproject_without_structx_settings_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    (root / "structx.toml").write_text("concurrency = 0\n", encoding="utf-8")
    (root / "notes" / "structx.toml").write_text('grounding = "dorp"\n', encoding="utf-8")
    (root / "notes" / "drafts" / "pyproject.toml").write_text("[tool.other]\nx = 1\n", encoding="utf-8")
    monkeypatch.chdir(root / "notes" / "drafts")
    result = _run(["extract", str(seed_paths()[0]), "--dry-run"])
    assert result.exit_code == 2
    assert f'{root / "notes" / "structx.toml"}: grounding = "dorp": must be one of "keep", "drop", "fail"' in (
        result.stderr
    )


def test_the_search_stops_at_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    (tmp_path / "structx.toml").write_text("modle = 1\n", encoding="utf-8")  # outside the project
    monkeypatch.chdir(root / "notes")
    result = _run(["extract", str(seed_paths()[0]), "--dry-run"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('concurrency = "eight"', 'concurrency = "eight": must be a whole number'),
        ("concurrency = 2.5", "concurrency = 2.5: must be a whole number"),
        ("concurrency = 0", "concurrency = 0: must be at least 1"),
        ("timeout = 0.01", "timeout = 0.01: must be at least 0.1"),
        ('max-tokens = "2048"', 'max-tokens = "2048": must be a whole number'),
        ("quiet = 1", "quiet = 1: must be true or false"),
        ('structured-output = "xml"', 'structured-output = "xml": must be one of "auto", '),
        ('schema = ["a:B"]', 'schema = ["a:B"]: must be a string'),
        ("concurrency = ", "not valid TOML: Invalid value (at line 1, column 15)"),
    ],
)
def test_every_settings_error_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    root = _project(tmp_path)
    (root / "structx.toml").write_text(content + "\n", encoding="utf-8")
    for folder, shown in ((root, "structx.toml"), (root / "notes", str(root / "structx.toml"))):
        monkeypatch.chdir(folder)
        result = _run(["extract", str(seed_paths()[0]), "--dry-run"])
        assert result.exit_code == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"structx: error: {shown}: {message}"), line


def test_a_settings_error_in_pyproject_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    (root / "pyproject.toml").write_text('[tool.structx]\nconcurrency = "eight"\n', encoding="utf-8")
    monkeypatch.chdir(root)
    result = _run(["extract", str(seed_paths()[0]), "--dry-run"])
    assert result.exit_code == 2
    assert 'pyproject.toml: concurrency = "eight": must be a whole number' in result.stderr


def test_extract_settings_do_not_stop_the_other_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    (root / "structx.toml").write_text("concurrency = \n", encoding="utf-8")
    results = root / "results.jsonl"
    results.write_text(json.dumps({"id": "a", "status": "ok", "records": {"title": "T"}}) + "\n", encoding="utf-8")
    monkeypatch.chdir(root)
    result = _run(["export", str(results), "--out-dir", str(root / "tables")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("temperature = 5", "structx.toml: temperature = 5: temperature must be from 0 to 2"),
        ("chunk-chars = 100", "structx.toml: chunk-chars = 100: chunk_chars must be at least 200"),
        ('base-url = "ftp://example.org/v1"', 'structx.toml: base-url = "ftp://example.org/v1": base URL'),
        ('api-key-env = "STRUCTX_TEST_UNSET_VARIABLE"', "the environment variable STRUCTX_TEST_UNSET_VARIABLE"),
        ('ctx = "x"', "structx.toml: unknown setting 'ctx'"),
    ],
)
def test_a_value_the_config_refuses_is_reported_with_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, said: str
) -> None:
    root = _project(tmp_path)
    (root / "structx.toml").write_text(setting + "\n", encoding="utf-8")
    monkeypatch.chdir(root)
    result = _run(["extract", str(_article(tmp_path)), "--dry-run"])
    assert result.exit_code == 2
    assert said in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "setting", ['api-key = ["sk-supersecret"]', 'header = "X-Token=supersecret"', 'header = ["X-Token=supersécret"]']
)
def test_a_secret_in_a_bad_setting_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    root = _project(tmp_path)
    (root / "structx.toml").write_text(setting + "\n", encoding="utf-8")
    monkeypatch.chdir(root)
    result = _run(["extract", str(_article(tmp_path)), "--dry-run"])
    assert result.exit_code == 2 and "structx.toml:" in result.output
    assert "supersecret" not in result.output and "supersécret" not in result.output
