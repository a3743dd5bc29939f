"""The scorer: gold against itself is perfect, and each change moves exactly the figures it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx_schemas import ArticleExtraction, QuotedSource
from tests.cassettes import GOLD, seed_article, seed_paths

STEMS = [path.stem for path in seed_paths()]


def _line(stem: str, answer: ArticleExtraction) -> dict[str, Any]:
    grounding = structx.ground(answer, seed_article(stem).text).to_dict()
    return {"id": stem, "status": "ok", "records": answer.model_dump(mode="json"), "grounding": grounding}


def _gold() -> dict[str, ArticleExtraction]:
    return structx.load_gold(GOLD)


def _score(changes: dict[str, ArticleExtraction] | None = None) -> structx.EvaluationReport:
    gold = _gold()
    answers = {**gold, **(changes or {})}
    return structx.evaluate([_line(stem, answers[stem]) for stem in STEMS], gold)


def _totals(gold: dict[str, ArticleExtraction], name: str) -> int:
    return sum(len(getattr(answer, name)) for answer in gold.values())


TYPES = ("visits", "meetings", "militia_stances", "quoted_sources")
GOLD_RECORDS = sum(_totals(structx.load_gold(GOLD), name) for name in TYPES)


def test_gold_scored_against_itself_is_perfect_everywhere() -> None:
    report = _score()
    assert report.articles_scored == 5
    for name, target in report.targets.items():
        assert (target.records.precision, target.records.recall, target.records.f1) == (1.0, 1.0, 1.0), name
        assert target.records.tp == _totals(_gold(), name)
        for key, score in target.fields.items():
            assert (score.precision, score.recall) == (1.0, 1.0), (name, key)
    assert report.overall.f1 == 1.0
    assert report.grounding_rates()["exact"] == 1.0
    assert report.records_grounded == report.records_checked == GOLD_RECORDS == 50


def test_a_removed_record_lowers_recall_of_its_type_only() -> None:
    gold = _gold()
    stem = "002_d04feccafa46ccf3"
    changed = gold[stem].model_copy(update={"visits": gold[stem].visits[1:]})
    report = _score({stem: changed})
    n = _totals(gold, "visits")
    visits = report.targets["visits"]
    assert (visits.records.tp, visits.records.fp, visits.records.fn) == (n - 1, 0, 1)
    assert visits.records.recall == pytest.approx((n - 1) / n) and visits.records.precision == 1.0
    assert visits.fields["who"].recall == pytest.approx((n - 1) / n)
    for name in ("meetings", "militia_stances", "quoted_sources"):
        assert report.targets[name].records.f1 == 1.0


def test_a_changed_field_lowers_that_field_only() -> None:
    gold = _gold()
    stem = "000_57f720f08a0b9acd"
    stance = gold[stem].militia_stances[0]
    flipped = "supports" if stance.position.value != "supports" else "opposes"
    changed_stance = stance.model_copy(update={"position": structx_position(flipped)})
    changed = gold[stem].model_copy(update={"militia_stances": [changed_stance, *gold[stem].militia_stances[1:]]})
    report = _score({stem: changed})
    stances = report.targets["militia_stances"]
    n = _totals(gold, "militia_stances")
    assert stances.records.f1 == 1.0  # still paired: the match rule is militia and topic
    assert (stances.fields["position"].tp, stances.fields["position"].fp, stances.fields["position"].fn) == (
        n - 1,
        1,
        1,
    )
    assert stances.fields["position"].precision == pytest.approx((n - 1) / n)
    for key in ("militia", "topic", "speaker"):
        assert stances.fields[key].f1 == 1.0


def structx_position(value: str) -> Any:
    from structx_schemas import Position

    return Position(value)


def test_a_fabricated_record_lowers_precision_of_its_type_only() -> None:
    gold = _gold()
    stem = "003_9beb4a1d95a1dd03"
    invented = QuotedSource(
        name="Hamid al-Rubaie", role="analyst", quote="The militias will leave Iraq by spring.", evidence=["x"]
    )
    changed = gold[stem].model_copy(update={"quoted_sources": [*gold[stem].quoted_sources, invented]})
    report = _score({stem: changed})
    sources = report.targets["quoted_sources"]
    n = _totals(gold, "quoted_sources")
    assert (sources.records.tp, sources.records.fp, sources.records.fn) == (n, 1, 0)
    assert sources.records.precision == pytest.approx(n / (n + 1)) and sources.records.recall == 1.0
    assert report.excerpts["not_found"] == 1
    assert report.records_grounded == GOLD_RECORDS and report.records_checked == GOLD_RECORDS + 1


def test_transliterations_and_partial_names_still_pair() -> None:
    gold = _gold()
    stem = "000_57f720f08a0b9acd"
    visit = gold[stem].visits[0]
    renamed = visit.model_copy(update={"visitor": visit.visitor.replace("Qaani", "Qani")})
    report = _score({stem: gold[stem].model_copy(update={"visits": [renamed]})})
    assert report.targets["visits"].records.f1 == 1.0


def test_failed_and_missing_articles_count_as_missed() -> None:
    gold = _gold()
    lines = [_line(stem, gold[stem]) for stem in STEMS[2:]]
    lines.append({"id": STEMS[1], "status": "error", "error": {"type": "TruncatedOutput", "message": "..."}})
    lines.append({"id": "not-in-gold", "status": "ok", "records": {}})
    report = structx.evaluate(lines, gold)
    assert report.articles_failed == [STEMS[1]] and report.articles_missing == [STEMS[0]]
    assert report.predictions_without_gold == ["not-in-gold"]
    missed = sum(
        len(getattr(gold[s], name))
        for s in STEMS[:2]
        for name in ("visits", "meetings", "militia_stances", "quoted_sources")
    )
    assert report.overall.fn == missed and report.overall.fp == 0


def test_the_eval_command_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("\n".join(json.dumps(_line(s, _gold()[s])) for s in STEMS) + "\n", encoding="utf-8")
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", str(predictions), "--gold", str(GOLD), "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    for label in ("visits", "meetings", "militia_stances", "quoted_sources", "who", "where", "when", "topic"):
        assert label in result.stdout
    excerpts = sum(len(r.evidence) for s in STEMS for _, r in structx._grounding.iter_records(_gold()[s]))
    assert f"grounding: exact {excerpts} (100.0%)" in result.stdout.replace("\n", " ")
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert data["overall"] == {"tp": GOLD_RECORDS, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert data["rules"]["text_threshold"] == structx._evaluation.TEXT_THRESHOLD


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json\n", "line 1 is not JSON"), ('{"a": 1}\n', "line 1 is not a structx result line")],
)
def test_bad_prediction_files_are_usage_errors(tmp_path: Path, content: str, message: str) -> None:
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(predictions), "--gold", str(GOLD)])
    assert result.exit_code == 2 and message in result.stderr


def test_a_duplicated_prediction_line_is_scored_once() -> None:
    gold = _gold()
    lines = [_line(stem, gold[stem]) for stem in STEMS]
    report = structx.evaluate([*lines, lines[0]], gold)
    assert report.duplicate_predictions == [STEMS[0]]
    assert report.overall.to_dict()["tp"] == GOLD_RECORDS and report.overall.fp == 0


def test_pairing_finds_the_most_pairs() -> None:
    from structx._evaluation import TARGETS, _pair
    from structx_schemas import Visit

    def visit(name: str) -> Visit:
        return Visit(visitor=name, evidence=["x"])

    # "Qaani" could pair with either gold visit; a greedy choice of the first would strand "Esmail Qaani".
    predicted = [visit("Qaani"), visit("Ismail Qaani")]
    gold = [visit("Ismail Qaani"), visit("Qaani Jr")]
    assert len(_pair(predicted, gold, TARGETS["visits"])) == 2


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("The militias will disarm.", "The militias will not disarm after the elections.", False),
        ("disarm", "The militias will not disarm after the elections.", False),
        ("We will not take orders from Qaani.", "We will not take orders from Qaani", True),
        # predicted first, gold second: a prediction may hold more than the gold quote
        ("We will not take orders from Qaani. The parade goes ahead.", "We will not take orders from Qaani", True),
        ("He told us: “We will not take orders from ‘Qaani’”", '"We will not take orders from Qaani."', True),
        ("We will never take orders from Qaani.", "We will not take orders from Qaani", True),  # a word changed
        ("The militias will not disarm after the elections.", "The militias will disarm.", False),
        (
            "The militias will not take part in the elections.",
            "The militias will not disarm after the elections",
            False,
        ),
        ("We will not take orders", "We will not take orders from Qaani or from anyone in Tehran", False),
    ],
)
def test_free_text_matching(a: str, b: str, same: bool) -> None:
    assert structx._evaluation.texts_match(a, b) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Hisham al-Hashemi", "Muhammad al-Hashemi", False),  # different people, one surname
        ("Tariq al-Shammari", "Ihssan Shammari", False),
        ("Tariq al-Shammari", "political analyst Ihsan al-Shammari", False),
        ("Esmail Qaani", "General Ismail Qani", True),  # transliterated given name, a title
        ("Ihssan Shammari", "Ihssan al-Shammari", True),
        ("al-Hashemi", "Hisham al-Hashemi", True),  # a surname alone may be anyone of that name
        ("Hashemi", "Muhammad al-Hashemi", True),
        ("Kata'ib Hezbollah", "Kataib Hizbullah", True),
        ("Asaib Ahl al-Haq", "Kataib Hezbollah", False),
    ],
)
def test_name_matching_needs_given_names_to_agree(a: str, b: str, same: bool) -> None:
    assert structx._evaluation.names_match(a, b) is same
    assert structx._evaluation.names_match(b, a) is same


def test_a_namesake_with_another_given_name_does_not_pair() -> None:
    from structx_schemas import Visit

    stem = "001_c222d2c9a2cf11cb"
    gold = {stem: ArticleExtraction(visits=[Visit(visitor="Muhammad al-Hashemi", country="Iran", evidence=["x"])])}
    predicted = ArticleExtraction(visits=[Visit(visitor="Hisham al-Hashemi", country="Iran", evidence=["x"])])
    report = structx.evaluate([_line(stem, predicted)], gold)
    visits = report.targets["visits"]
    assert (visits.records.tp, visits.records.fp, visits.records.fn) == (0, 1, 1)
    assert (visits.fields["who"].tp, visits.fields["who"].fp, visits.fields["who"].fn) == (0, 1, 1)


def _with_quote(gold: dict[str, ArticleExtraction], stem: str, index: int, quote: str) -> ArticleExtraction:
    sources = list(gold[stem].quoted_sources)
    sources[index] = sources[index].model_copy(update={"quote": quote})
    return gold[stem].model_copy(update={"quoted_sources": sources})


def test_a_quote_with_the_next_sentence_still_pairs_and_an_unrelated_one_does_not() -> None:
    gold = _gold()
    stem = "000_57f720f08a0b9acd"
    text = seed_article(stem).text
    index = next(i for i, s in enumerate(gold[stem].quoted_sources) if s.name == "Tariq al-Shammari")
    quote = gold[stem].quoted_sources[index].quote
    after = text[text.index(quote) + len(quote) :]
    next_sentence = after[: after.index("\n", after.index("\n") + 1)]  # '," he said.' and the sentence after
    longer = quote + next_sentence
    assert next_sentence.count(".") >= 2 and longer in text
    report = _score({stem: _with_quote(gold, stem, index, longer)})
    sources = report.targets["quoted_sources"]
    assert (sources.records.fp, sources.records.fn) == (0, 0)
    assert sources.fields["quote"].f1 == 1.0
    # Another sentence of the same article, by the same speaker, sharing words with the gold quote.
    other = "The Iranian regime's ability to save its axis from sliding into the abyss"
    words = structx._evaluation._words
    assert other in text and set(words(other)) & set(words(quote)) == {"the", "iranian"}
    report = _score({stem: _with_quote(gold, stem, index, other)})
    sources = report.targets["quoted_sources"]
    assert (sources.records.fp, sources.records.fn) == (1, 1)
    # A fragment of the gold quote is not the quote.
    report = _score({stem: _with_quote(gold, stem, index, " ".join(quote.split()[:8]))})
    assert (report.targets["quoted_sources"].records.fp, report.targets["quoted_sources"].records.fn) == (1, 1)


def test_dates_without_iso_form_must_be_written_the_same() -> None:
    from structx_schemas import When

    assert not structx._evaluation.dates_match(When(text="June 2022"), When(text="June 2021"))
    assert structx._evaluation.dates_match(When(text="mid-September"), When(text="Mid-September"))


def test_gold_in_subfolders_answers_articles_with_those_ids(tmp_path: Path) -> None:
    source = next(GOLD.glob("*.json"))
    (tmp_path / "iraq").mkdir()
    (tmp_path / "iraq" / "story.json").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "story.json").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "story.json").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    assert sorted(structx.load_gold(tmp_path)) == ["iraq/story", "story"]  # hidden folders skipped
