"""What a user sees when a command cannot do what was asked: one line naming the path, exit 2, text as written."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from structx._cli import app
from structx.testing import Reply, ScriptedServer
from tests.cassettes import FAULT_ARTICLE, GOLD, seed_answer, seed_paths

ARTICLE = str(seed_paths()[0])


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def _error_line(result: Any) -> str:
    """The one line a usage error prints, after checking the exit code and that nothing else was said."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("structx: error: ")
    return str(line)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in which no file can be created."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # Permission bits do not bind root; sysfs refuses new files even to root.
    folder = Path("/sys/kernel")
    try:
        (folder / "structx-probe").open("x").close()
    except OSError:
        yield folder
        return
    (folder / "structx-probe").unlink()
    pytest.skip("no directory is read-only for root here")


def _predictions(tmp_path: Path, records: dict[str, Any]) -> Path:
    path = tmp_path / "people.jsonl"
    path.write_text(json.dumps({"id": seed_paths()[0].stem, "status": "ok", "records": records}) + "\n", "utf-8")
    return path


# -- structx eval --------------------------------------------------------------------


def test_eval_of_predictions_made_with_another_schema_is_one_line(tmp_path: Path) -> None:
    predictions = _predictions(tmp_path, {"name": "Esmail Qaani", "age": 66})
    line = _error_line(_run(["eval", str(predictions), "--gold", str(GOLD)]))
    assert str(predictions) in line
    assert "is not an ArticleExtraction (name: Extra inputs are not permitted)" in line
    assert "structx eval scores the bundled pack (structx_schemas.iran_militias:ArticleExtraction) only" in line


def test_eval_says_plainly_that_only_the_bundled_schema_pack_can_be_scored(tmp_path: Path) -> None:
    predictions = _predictions(tmp_path, {})
    refused = _run(["eval", str(predictions), "--gold", str(GOLD), "--schema", "structx_schemas.iran_militias:Visit"])
    line = _error_line(refused)
    assert "structx eval scores the bundled schema pack only (structx_schemas.iran_militias:ArticleExtraction" in line
    assert "structx_schemas.iran_militias:Visit has no match rules" in line
    accepted = _run(
        ["eval", str(predictions), "--gold", str(GOLD), "--schema", "structx_schemas.iran_militias:ArticleExtraction"]
    )
    assert accepted.exit_code == 0, accepted.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/r.json", "--json {target}: the directory {folder} does not exist"),
        ("", "--json {target} is a directory; give a file name"),
    ],
)
def test_an_eval_report_that_cannot_be_written_is_said_before_any_scoring(
    tmp_path: Path, target: str, message: str
) -> None:
    json_out = tmp_path / target if target else tmp_path
    result = _run(["eval", str(_predictions(tmp_path, {})), "--gold", str(GOLD), "--json", str(json_out)])
    assert message.format(target=json_out, folder=json_out.parent) in _error_line(result)
    assert result.stdout == ""  # no table printed before the error


def test_an_eval_report_in_a_read_only_directory_is_said_before_any_scoring(
    tmp_path: Path, read_only_dir: Path
) -> None:
    json_out = read_only_dir / "r.json"
    result = _run(["eval", str(_predictions(tmp_path, {})), "--gold", str(GOLD), "--json", str(json_out)])
    assert f"--json {json_out}: the directory {read_only_dir} is not writable" in _error_line(result)
    assert result.stdout == ""


# -- structx export --------------------------------------------------------------------


def test_export_into_an_existing_file_is_refused_and_leaves_it_alone(tmp_path: Path) -> None:
    precious = tmp_path / "precious.jsonl"
    precious.write_text("keep me\n", encoding="utf-8")
    result = _run(["export", str(_predictions(tmp_path, {})), "--out-dir", str(precious)])
    assert f"{precious} exists and is not a directory" in _error_line(result)
    assert precious.read_text(encoding="utf-8") == "keep me\n"


def test_export_into_a_read_only_directory_is_one_line(tmp_path: Path, read_only_dir: Path) -> None:
    result = _run(["export", str(_predictions(tmp_path, {})), "--out-dir", str(read_only_dir)])
    assert f"the directory {read_only_dir} is not writable" in _error_line(result)


def test_export_of_a_directory_instead_of_a_results_file_is_one_line(tmp_path: Path) -> None:
    result = _run(["export", str(tmp_path), "--out-dir", str(tmp_path / "tables")])
    assert f"{tmp_path}: cannot read it" in _error_line(result)


# -- structx extract --out --------------------------------------------------------------------


def test_an_output_in_a_missing_directory_is_named_as_such_before_any_request(tmp_path: Path) -> None:
    out = tmp_path / "nodir" / "r.jsonl"
    with ScriptedServer([]) as server:
        result = _run(["extract", ARTICLE, "--out", str(out), "--base-url", server.base_url, "--model", "m"])
    line = _error_line(result)
    assert f"--out {out}: the directory {out.parent} does not exist" in line
    assert "run database" not in line
    assert server.requests == []


def test_an_output_in_a_read_only_directory_is_named_as_such_before_any_request(read_only_dir: Path) -> None:
    out = read_only_dir / "r.jsonl"
    with ScriptedServer([]) as server:
        result = _run(["extract", ARTICLE, "--out", str(out), "--base-url", server.base_url, "--model", "m"])
    assert f"--out {out}: the directory {read_only_dir} is not writable" in _error_line(result)
    assert server.requests == []


# -- square brackets are text, not markup ------------------------------------------------------


def test_square_brackets_in_an_output_path_are_shown(tmp_path: Path) -> None:
    out = tmp_path / "out[red]x" / "r.jsonl"
    result = _run(["extract", ARTICLE, "--out", str(out), "--base-url", "http://127.0.0.1:9/v1"])
    assert f"the directory {tmp_path}/out[red]x does not exist" in _error_line(result)


def test_square_brackets_in_a_message_are_shown(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('"fake" = [1]\n', encoding="utf-8")
    result = _run(["extract", ARTICLE, "--prices", str(prices), "--base-url", "http://127.0.0.1:9/v1"])
    assert "price of 'fake' must be [prompt, completion] dollars per million tokens" in _error_line(result)


def test_the_install_hint_keeps_its_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_find_spec = importlib.util.find_spec
    missing = {"xllamacpp"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real_find_spec(name, *a)
    )
    result = _run(["extract", ARTICLE, "--out", str(tmp_path / "o.jsonl"), "--quiet"])
    assert "pip install 'structx[local]'" in _error_line(result)


# -- schemas ---------------------------------------------------------------------------------------


def test_a_schema_with_an_unresolvable_forward_reference_fails_before_any_request(tmp_path: Path) -> None:
    schema = tmp_path / "person.py"
    schema.write_text(
        "from __future__ import annotations\n"
        "from pydantic import BaseModel\n\n"
        "class Person(BaseModel):\n"
        "    name: str\n"
        "    address: Adress | None = None\n",
        encoding="utf-8",
    )
    with ScriptedServer([Reply.answer(seed_answer(FAULT_ARTICLE))]) as server:
        result = _run(
            ["extract", ARTICLE, "--schema", f"{schema}:Person", "--base-url", server.base_url, "--model", "m"]
        )
    assert "schema Person cannot be built: name 'Adress' is not defined" in _error_line(result)
    assert server.requests == []
