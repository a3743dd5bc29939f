"""Exporting results to CSV and SQLite tables, safely."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import structx
from structx._cli import app
from tests.cassettes import seed_answer, seed_article, seed_paths
from tests.conftest import Reliability

STEMS = [path.stem for path in seed_paths()]


def _results(tmp_path: Path, extra: list[dict[str, Any]] | None = None) -> Path:
    lines = []
    for stem in STEMS:
        answer = seed_answer(stem)
        grounding = structx.ground(answer, seed_article(stem).text).to_dict()
        records = answer.model_dump(mode="json")
        usage = {"prompt_tokens": 10, "completion_tokens": 5}
        line = {"id": stem, "source": f"seeds/{stem}.txt", "status": "ok", "records": records}
        lines.append({**line, "grounding": grounding, "usage": usage})
    lines.append({"id": "broken", "status": "error", "error": {"type": "TruncatedOutput", "message": "cut"}})
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [*lines, *(extra or [])]) + "\n", encoding="utf-8")
    return path


def _count(name: str) -> int:
    return sum(len(getattr(seed_answer(stem), name)) for stem in STEMS)


def test_csv_and_sqlite_hold_one_row_per_record_and_per_article(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    result = CliRunner().invoke(app, ["export", str(_results(tmp_path)), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("visits", "meetings", "militia_stances", "quoted_sources"):
        with (out / f"{name}.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == _count(name)
        assert all(row["grounded"] == "True" for row in rows)
        assert json.loads(rows[0]["evidence"])  # lists kept as JSON
    with (out / "articles.csv").open(encoding="utf-8") as handle:
        articles = {row["article_id"]: row for row in csv.DictReader(handle)}
    assert len(articles) == 6 and articles["broken"]["error_type"] == "TruncatedOutput"
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute('SELECT COUNT(*) FROM "visits"').fetchone()[0] == _count("visits")
        assert db.execute("SELECT COUNT(*) FROM articles WHERE status = 'ok'").fetchone()[0] == 5
    assert not list(out.glob(".*.partial"))


def test_existing_tables_are_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    results = _results(tmp_path)
    assert CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out), "--format", "csv"]).exit_code == 0
    again = CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out), "--format", "csv"])
    assert again.exit_code == 2 and "pass --force to replace it" in again.stderr
    forced = CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out), "--format", "csv", "--force"])
    assert forced.exit_code == 0


def test_nothing_is_written_outside_the_output_directory(tmp_path: Path, reliability: Reliability) -> None:
    out = tmp_path / "tables"
    out.mkdir()
    outside = tmp_path / "outside.csv"
    (out / "visits.csv").symlink_to(outside)
    with pytest.raises(structx.UsageError, match="outside"):
        structx.export_tables(structx.load_predictions(_results(tmp_path)), out, formats=["csv"], force=True)
    assert not outside.exists()
    reliability(
        "paths",
        "an exported table that is a symbolic link pointing outside the output directory",
        expected="refused (UsageError)",
        observed="UsageError; nothing written outside",
    )
    for name in ["../../evil", str(tmp_path / "evil")]:
        evil = {"id": "x", "status": "ok", "records": {name: [{"a": 1}]}}
        with pytest.raises(structx.InputError, match="not a usable table name"):
            structx.export_tables(
                structx.load_predictions(_results(tmp_path, [evil])), tmp_path / "t2", formats=["csv"]
            )
        assert list(tmp_path.rglob("evil*")) == []
    reliability(
        "paths",
        "record types named '../../evil' and an absolute path, in a results file",
        expected="refused (InputError) before any table is written",
        observed="InputError; no file written",
    )


def test_a_planted_partial_symlink_is_not_followed_and_link_columns_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    out.mkdir()
    outside = tmp_path / "outside.csv"
    (out / ".articles.csv.partial").symlink_to(outside)
    clash = {"id": "A1", "status": "ok", "records": {"visits": [{"article_id": "X", "visitor": "Qaani"}]}}
    structx.export_tables([clash], out, formats=["csv"])
    assert not outside.exists()
    with (out / "visits.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["article_id"], row["record_article_id"]) == ("A1", "X")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_root_records_own_fields_are_columns_of_articles(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    assert CliRunner().invoke(app, ["export", str(_results(tmp_path)), "--out-dir", str(out)]).exit_code == 0
    articles = {row["article_id"]: row for row in _rows(out / "articles.csv")}
    with sqlite3.connect(out / "results.sqlite") as db:
        stored = dict(db.execute("SELECT article_id, title FROM articles").fetchall())
    for stem in STEMS:
        answer = seed_answer(stem)
        for field in ("title", "outlet", "byline", "published"):
            assert articles[stem][field] == (getattr(answer, field) or ""), (stem, field)
        assert stored[stem] == answer.title
    assert not any(name.startswith("record_") for name in articles[STEMS[0]])


def test_a_schema_that_is_a_single_record_is_exported_whole(tmp_path: Path) -> None:
    person = {
        "name": "Esmail Qaani",
        "age": 66,
        "status": "commander",
        "aliases": ["Qani"],
        "home": {"city": "Mashhad"},
    }
    results = tmp_path / "people.jsonl"
    results.write_text(
        json.dumps({"id": "p1", "status": "ok", "records": person}) + "\n"
        + json.dumps({"id": "p2", "status": "error", "error": {"type": "Refusal", "message": "no"}}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "tables"
    result = CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == ["articles.csv", "results.sqlite"]
    first, second = _rows(out / "articles.csv")
    assert (first["name"], first["age"], json.loads(first["aliases"]), json.loads(first["home"])) == (
        "Esmail Qaani", "66", ["Qani"], {"city": "Mashhad"}
    )  # fmt: skip
    # The line's status keeps its column; the record's field of that name is kept beside it.
    assert (first["status"], first["record_status"]) == ("ok", "commander")
    assert (second["status"], second["name"]) == ("error", "")


def test_an_empty_list_of_strings_stays_a_column_not_an_empty_table(tmp_path: Path) -> None:
    person = {"name": "Esmail Qaani", "aliases": [], "evidence": []}
    results = tmp_path / "people.jsonl"
    results.write_text(json.dumps({"id": "p1", "status": "ok", "records": person}) + "\n", encoding="utf-8")
    out = tmp_path / "tables"
    result = CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == ["articles.csv"]
    (row,) = _rows(out / "articles.csv")
    assert (row["name"], json.loads(row["aliases"]), json.loads(row["evidence"])) == ("Esmail Qaani", [], [])


def test_the_articles_metadata_is_exported_with_the_article(tmp_path: Path) -> None:
    meta = {"title": "Qaani in Baghdad", "url": "https://example.org/a", "published": "2021-06-01", "desk": "Iraq"}
    line = {"id": "a", "status": "ok", "records": {"title": "Qaani in Baghdad", "meta_url": "clash", "visits": []},
            "meta": meta}  # fmt: skip
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(line) + "\n" + json.dumps({"id": "b", "status": "ok", "records": {}}) + "\n", "utf-8")
    out = tmp_path / "tables"
    assert CliRunner().invoke(app, ["export", str(results), "--out-dir", str(out)]).exit_code == 0
    first, second = _rows(out / "articles.csv")
    assert {key: first[f"meta_{key}"] for key in ("title", "published", "desk")} == {
        "title": "Qaani in Baghdad", "published": "2021-06-01", "desk": "Iraq"
    }  # fmt: skip
    assert (first["meta_url"], first["meta_meta_url"]) == ("clash", "https://example.org/a")
    assert second["meta_title"] == ""
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT meta_desk FROM articles WHERE article_id = 'a'").fetchone() == ("Iraq",)


@pytest.mark.parametrize("formats", [["csv,sqlite"], ["csv", "sqlite"], [" sqlite , csv "]])
def test_formats_can_be_listed_with_commas_or_repeated(tmp_path: Path, formats: list[str]) -> None:
    out = tmp_path / "tables"
    args = ["export", str(_results(tmp_path)), "--out-dir", str(out)]
    result = CliRunner().invoke(app, [*args, *(arg for kind in formats for arg in ("--format", kind))])
    assert result.exit_code == 0, result.output
    assert (out / "results.sqlite").is_file() and (out / "articles.csv").is_file()


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    result = CliRunner().invoke(app, ["export", str(_results(tmp_path)), "--out-dir", str(out), "--format", "csv,xml"])
    assert result.exit_code == 2 and "unknown export format 'xml': use csv or sqlite" in result.stderr
    assert not out.exists()
