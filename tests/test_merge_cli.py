"""``structx merge`` and the entity-resolution figures of ``structx eval``, as a user sees them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import structx
from structx._cli import app
from tests.cassettes import GOLD, SEEDS, seed_answer, seed_article, seed_paths

STEMS = [path.stem for path in seed_paths()]
TABLES = ["entities", "mentions", "visits", "meetings", "meeting_participants", "stances", "sources", "quotes",
          "undecided_pairs"]  # fmt: skip


def _results(tmp_path: Path) -> Path:
    """The gold answers as result lines of a run (with grounding), plus one failed article."""
    lines: list[dict[str, Any]] = []
    for stem in STEMS:
        answer = seed_answer(stem)
        grounding = structx.ground(answer, seed_article(stem).text).to_dict()
        lines.append(
            {"id": stem, "source": str(SEEDS / f"{stem}.txt"), "status": "ok",
             "records": answer.model_dump(mode="json"), "grounding": grounding}
        )  # fmt: skip
    lines.append({"id": "broken", "status": "error", "error": {"type": "TruncatedOutput", "message": "cut"}})
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _merge(*args: str) -> Any:
    return CliRunner().invoke(app, ["merge", *args])


def test_merge_writes_the_dataset_and_prints_one_summary_line(tmp_path: Path) -> None:
    results, out = _results(tmp_path), tmp_path / "dataset"
    result = _merge(str(results), "--out", str(out))
    assert result.exit_code == 0, result.output
    expected = structx.build_dataset([results])
    assert result.stdout.splitlines() == [expected.summary()]
    by_type = expected.entities_by_type()
    assert (
        f"{len(expected.entities)} entities ({by_type['person']} person, {by_type['organisation']} organisation, "
        f"{by_type['place']} place, {by_type['anonymous']} anonymous); {expected.merges} merges; "
        f"{len(expected.undecided_pairs)} undecided pairs; {expected.corroborated_events()} events corroborated"
    ) in result.stdout
    assert "5 articles" in result.stdout and "skipped 1 line with an error status" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(["dataset.sqlite", *(f"{t}.parquet" for t in TABLES)])
    db = sqlite3.connect(out / "dataset.sqlite")
    for table in TABLES:
        rows = len(getattr(expected, table))
        assert db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == rows, table
        assert pq.read_table(out / f"{table}.parquet").num_rows == rows, table
    # Every mention carries its article and, the text being at hand, a span that is the name (or the part of
    # "Iran-backed Shiite militias (Fatah Alliance)" the article writes).
    texts = {stem: seed_article(stem).text for stem in STEMS}
    spans = db.execute("SELECT article_id, surface, start, end FROM mentions WHERE start IS NOT NULL").fetchall()
    assert len(spans) >= 100
    assert all(texts[a][s:e].casefold() in surface.casefold() for a, surface, s, e in spans)
    db.close()


def test_the_qaani_visits_come_out_as_one_timeline(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    assert _merge(str(_results(tmp_path)), "--out", str(out)).exit_code == 0
    db = sqlite3.connect(out / "dataset.sqlite")
    rows = db.execute(
        """SELECT v.visitor_entity_id, v.start, v.end, v.article_ids FROM visits v
           JOIN entities e ON e.entity_id = v.visitor_entity_id
           WHERE e.aliases LIKE '%Qaani%' ORDER BY v.start IS NULL, v.start"""
    ).fetchall()
    db.close()
    gold_visits = sum(
        "Qaani" in visit["visitor"]
        for stem in STEMS
        for visit in json.loads((GOLD / f"{stem}.json").read_text(encoding="utf-8"))["visits"]
    )
    assert len(rows) == gold_visits and len({row[0] for row in rows}) == 1
    dated = [row[1:3] for row in rows if row[1] is not None]
    assert {("2022-01-15", "2022-01-17"), ("2022-01-27", "2022-01-27")} <= set(dated) and dated == sorted(dated)
    assert {article for row in rows for article in json.loads(row[3])} == set(STEMS)


def test_merge_reads_a_folder_of_gold_answers_with_their_articles(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    result = _merge(str(GOLD), "--articles", str(SEEDS), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("5 articles: ")
    db = sqlite3.connect(out / "dataset.sqlite")
    assert db.execute("SELECT count(*) FROM mentions WHERE start IS NOT NULL").fetchone()[0] > 100
    db.close()


def test_an_existing_dataset_is_replaced_only_with_force(tmp_path: Path) -> None:
    results, out = _results(tmp_path), tmp_path / "dataset"
    assert _merge(str(results), "--out", str(out)).exit_code == 0
    again = _merge(str(results), "--out", str(out))
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        f"structx: error: --out {out} exists and is not empty; pass --force to replace the dataset in it"
    ]
    assert _merge(str(results), "--out", str(out), "--force").exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("this is not json\n", "line 1 is not JSON (Expecting value)"),
        ('{"title": "an article, not a result"}\n', "line 1 is not a structx result line (needs id and status)"),
        ('{"id": "a", "status": "ok", "records": []}\n', "result line 1 has status ok but no records object"),
        ("", "no result lines in the file"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    result = _merge(str(_results(tmp_path)), str(bad), "--out", str(tmp_path / "dataset"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"structx: error: {bad}: {message}"]
    assert not (tmp_path / "dataset").exists()


def test_a_folder_without_answers_and_an_out_that_is_a_file_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _merge(str(empty), "--out", str(tmp_path / "dataset"))
    assert (
        result.exit_code == 2
        and result.stderr.strip() == f"structx: error: {empty}: no answers (*.json) in the directory"
    )
    taken = tmp_path / "taken"
    taken.write_text("x")
    result = _merge(str(_results(tmp_path)), "--out", str(taken))
    assert result.exit_code == 2 and "exists and is not a directory" in result.stderr


def test_merge_help_loads_neither_the_model_client_nor_pyarrow() -> None:
    script = (
        "import sys\nsys.argv = ['structx', 'merge', '--help']\nfrom structx._cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('loaded:', sorted(m for m in ('openai', 'instructor', 'pyarrow') if m in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert "Usage:" in completed.stdout and completed.stdout.splitlines()[-1] == "loaded: []", completed.stderr


# -- structx eval: entity resolution -----------------------------------------------------------------------


def test_eval_prints_entity_resolution_figures_against_the_alias_gold(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", str(_results(tmp_path)), "--gold", str(GOLD), "--json", str(report)])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("entity resolution")]
    assert f"entity resolution against {GOLD.parent / 'entities.json'}" in line
    assert "pairwise P 1.00" in line and "B-cubed P 1.00" in line
    entities = json.loads(report.read_text())["entities"]
    assert entities["pairwise"]["precision"] == 1.0 and entities["pairwise"]["recall"] >= 0.95
    assert entities["mentions_scored"] > 100 and entities["mentions_not_in_gold"] == 0


def test_eval_scores_a_folder_of_answers_and_shows_false_merges(tmp_path: Path) -> None:
    # An alias gold that (wrongly) keeps Esmail and Ismail Qaani apart: the merge shows up as a false one.
    alias = json.loads((GOLD.parent / "entities.json").read_text(encoding="utf-8"))
    for cluster in alias["clusters"]:
        if cluster["entity"] == "Esmail Qaani":
            cluster["forms"].remove("Ismail Qaani")
    alias["clusters"].append({"entity": "Ismail", "type": "person", "forms": ["Ismail Qaani"]})
    path = tmp_path / "aliases.json"
    path.write_text(json.dumps(alias), encoding="utf-8")
    args = ["eval", str(GOLD), "--gold", str(GOLD), "--articles", str(SEEDS), "--entities", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pairwise P 1.00" not in result.stdout
    assert any("joined but different:" in line and "Qaani" in line for line in result.stdout.splitlines())


def test_eval_with_a_missing_alias_gold_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = CliRunner().invoke(app, ["eval", str(_results(tmp_path)), "--gold", str(GOLD), "--entities", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"structx: error: --entities {missing}: no such file"]
