"""The knowledge layer: mentions, entities, events, stances and sources built from result lines."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import structx
from tests.cassettes import GOLD, SEEDS

ALIAS_GOLD = GOLD.parent / "entities.json"


# -- building result lines ------------------------------------------------------------------------


def _line(article_id: str, records: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": article_id, "status": "ok", "records": records, **extra}


def _visit(visitor: str, **fields: Any) -> dict[str, Any]:
    when = fields.pop("when", None)
    return {"visitor": visitor, "evidence": ["-"], **({"when": {"text": when}} if when else {}), **fields}


def _stance(militia: str, topic: str, position: str, **fields: Any) -> dict[str, Any]:
    return {"militia": militia, "topic": topic, "position": position, "summary": "-", "evidence": ["-"], **fields}


def _quote(name: str, quote: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "quote": quote, "evidence": [quote], **fields}


def _entity_of(dataset: structx.Dataset, surface: str, article_id: str | None = None) -> str:
    ids = {
        m.entity_id
        for m in dataset.mentions
        if m.surface == surface and (article_id is None or m.article_id == article_id)
    }
    assert len(ids) == 1, (surface, article_id, ids)
    return ids.pop()


def _names_in_two_articles(first: str, second: str, field: str = "visitor") -> structx.Dataset:
    """One mention of each name, each in its own article, in a field of the given kind."""
    if field == "militia":
        records = [{"militia_stances": [_stance(name, "other", "unclear")]} for name in (first, second)]
    elif field == "country":
        records = [{"visits": [_visit("Someone Unrelated", country=name)]} for name in (first, second)]
    else:
        records = [{"visits": [_visit(name)]} for name in (first, second)]
    return structx.build_dataset([_line("a", records[0]), _line("b", records[1])])


# -- entity resolution: what merges, what does not ------------------------------------------------------

SAME_ENTITY = [
    # transliterations of people, titles and honorifics set aside
    ("Esmail Qaani", "Ismail Qaani", "visitor"),
    ("Esmail Qaani", "Ismail Ghani", "visitor"),
    ("General Ismail Qaani", "Esmail Qaani", "visitor"),
    ("Qais al-Khazali", "Qais al-Khazaali", "visitor"),
    ("Hadi al-Ameri", "Hadi al-Amiri", "visitor"),
    ("Mohammed bin Salman", "Muhammad bin Salman", "visitor"),
    ("Hassan Rouhani", "Hasan Rowhani", "visitor"),
    ("Nouri al-Maliki", "Nuri al-Maliki", "visitor"),
    ("Moqtada al-Sadr", "Muqtada al-Sadr", "visitor"),
    ("General Qassem Soleimani", "Qasem Suleimani", "visitor"),
    ("Grand Ayatollah Ali al-Sistani", "Ali Sistani", "visitor"),
    ("Iraqi Prime Minister Mustafa al-Kadhimi", "Mustafa Kadhimi", "visitor"),
    ("Abu Mahdi al-Muhandis", "Abu Madi al-Muhandis", "visitor"),
    # organisations: transliterations, acronyms, glosses, word order, parent qualifiers
    ("Hezbollah", "Hizbullah", "militia"),
    ("Kata'ib Hezbollah", "Kataib Hizbullah", "militia"),
    ("Kataib Hezbollah", "Hezbollah Brigades", "militia"),
    ("Jaish al-Mahdi", "Mahdi Army", "militia"),
    ("Harakat Hezbollah al-Nujaba", "Harakat Hizbullah al-Nujaba", "militia"),
    ("Asaib Ahl al-Haq", "AAH", "militia"),
    ("Islamic State of Iraq and the Levant", "ISIL", "militia"),
    ("Popular Mobilization Forces", "Popular Mobilisation Force", "militia"),
    ("Islamic Revolutionary Guard Corps Quds Force", "Quds Force of Iran's Revolutionary Guards", "militia"),
    ("IRGC-Qods Force", "Revolutionary Guards' Quds Force", "militia"),
    ("the Hezbollah Brigades militia", "Kata'ib Hezbollah", "militia"),
    # places
    ("Basra", "Basrah", "country"),
]

DIFFERENT_ENTITIES = [
    # two given names under one surname are two people
    ("Hisham al-Hashemi", "Muhammad al-Hashemi", "visitor"),
    ("Muqtada al-Sadr", "Muhammad Muhammad Sadiq al-Sadr", "visitor"),
    ("Tariq al-Shammari", "Ihssan Shammari", "visitor"),
    ("Saddam Hussein", "Uday Hussein", "visitor"),
    ("Ahmad Jannati", "Ali Jannati", "visitor"),
    ("Hassan Nasrallah", "Hussein Nasrallah", "visitor"),
    ("Muhammad Abbas", "Mahmoud Abbas", "visitor"),
    # the longer name has a middle name the shorter does not: father and son
    ("George W. Bush", "George H. W. Bush", "visitor"),
    # a nisba is another name
    ("Jaafar Husseini", "Jaafar Hussein", "visitor"),
    # a body inside a longer name is another body; a part of a body is not the body
    ("Kataib Hezbollah", "Hezbollah", "militia"),
    ("Kata'ib Hezbollah", "Hizbullah", "militia"),
    ("IRGC", "IRGC Quds Force", "militia"),
    ("Islamic Revolutionary Guard Corps", "Islamic Revolutionary Guard Corps Quds Force", "militia"),
    ("Popular Mobilization Forces", "Popular Mobilization Forces Commission", "militia"),
    ("Government of Egypt", "Government of Jordan", "militia"),
    ("US Special Forces", "Iraqi Special Forces", "militia"),
    ("Lebanon's Hezbollah", "Iraq's Hezbollah", "militia"),
    ("Kataib Sayyid al-Shuhada", "Kataib Hezbollah", "militia"),
    # places
    ("Iraq", "Iran", "country"),
    ("Oman", "Amman", "country"),
    ("Baghdad", "Baghdad Airport", "country"),
]


@pytest.mark.parametrize(("first", "second", "field"), SAME_ENTITY)
def test_names_that_are_one_entity_resolve_to_one(first: str, second: str, field: str) -> None:
    dataset = _names_in_two_articles(first, second, field)
    assert _entity_of(dataset, first, "a") == _entity_of(dataset, second, "b")


@pytest.mark.parametrize(("first", "second", "field"), DIFFERENT_ENTITIES)
def test_names_that_are_two_entities_stay_apart(first: str, second: str, field: str) -> None:
    dataset = _names_in_two_articles(first, second, field)
    assert _entity_of(dataset, first, "a") != _entity_of(dataset, second, "b")


def test_a_person_and_an_organisation_with_the_same_name_stay_apart() -> None:
    lines = [
        _line("a", {"visits": [_visit("Hamas")]}),
        _line("b", {"militia_stances": [_stance("Hamas", "other", "unclear")]}),
    ]
    dataset = structx.build_dataset(lines)
    person, body = _entity_of(dataset, "Hamas", "a"), _entity_of(dataset, "Hamas", "b")
    assert person != body
    assert {dataset.entity(person).type, dataset.entity(body).type} == {"person", "organisation"}  # type: ignore[union-attr]


def test_anonymous_sources_never_merge_across_articles_but_do_within_one() -> None:
    said = {"quoted_sources": [_quote("a senior Iraqi official", "one"), _quote("a senior Iraqi official", "two")]}
    dataset = structx.build_dataset([_line("a", said), _line("b", said)])
    in_a, in_b = (
        _entity_of(dataset, "a senior Iraqi official", "a"),
        _entity_of(dataset, "a senior Iraqi official", "b"),
    )
    assert in_a != in_b
    assert dataset.entity(in_a).type == "anonymous" and dataset.entity(in_a).article_id == "a"  # type: ignore[union-attr]
    assert dataset.entity(in_a).mention_count == 2  # type: ignore[union-attr]


def test_a_source_the_record_marks_anonymous_is_one_even_when_it_looks_like_a_name() -> None:
    said = {"quoted_sources": [_quote("Iraqi Security Sources", "x", anonymous=True)]}
    dataset = structx.build_dataset([_line("a", said), _line("b", said)])
    assert _entity_of(dataset, "Iraqi Security Sources", "a") != _entity_of(dataset, "Iraqi Security Sources", "b")


def _article(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_surname_alone_takes_the_full_form_its_own_article_gives(tmp_path: Path) -> None:
    # Shammari is Tariq in one article and Ihssan in the other; Maliki is named in full only in the text.
    first = _article(tmp_path, "a", "Political analyst Tariq al-Shammari said it. Later al-Shammari added more.")
    second = _article(tmp_path, "b", "Analyst Ihssan Shammari spoke. Former premier Nouri al-Maliki too.")
    lines = [
        _line(
            "a", {"quoted_sources": [_quote("Tariq al-Shammari", "it"), _quote("al-Shammari", "more")]}, source=first
        ),
        _line("b", {"quoted_sources": [_quote("Shammari", "x"), _quote("Maliki", "y")]}, source=second),
        _line("c", {"visits": [_visit("Nuri al-Maliki")]}),
    ]
    dataset = structx.build_dataset(lines)
    tariq, ihssan = _entity_of(dataset, "Tariq al-Shammari"), _entity_of(dataset, "Shammari", "b")
    assert _entity_of(dataset, "al-Shammari", "a") == tariq != ihssan
    assert dataset.entity(ihssan).canonical_name == "Ihssan Shammari"  # type: ignore[union-attr]
    assert _entity_of(dataset, "Maliki", "b") == _entity_of(dataset, "Nuri al-Maliki", "c")


def test_a_surname_alone_in_an_article_with_two_people_of_that_name_joins_neither(tmp_path: Path) -> None:
    text = "Muqtada al-Sadr visited the grave of Muhammad Muhammad Sadiq al-Sadr. Sadr said nothing."
    lines = [
        _line(
            "a",
            {
                "quoted_sources": [
                    _quote("Sadr", "nothing"),
                    _quote("Muqtada al-Sadr", "a"),
                    _quote("Muhammad Muhammad Sadiq al-Sadr", "b"),
                ]
            },
            source=_article(tmp_path, "a", text),
        )
    ]
    dataset = structx.build_dataset(lines)
    sadr = _entity_of(dataset, "Sadr")
    assert sadr not in {_entity_of(dataset, "Muqtada al-Sadr"), _entity_of(dataset, "Muhammad Muhammad Sadiq al-Sadr")}
    undecided = {(p.name_a, p.name_b) for p in dataset.undecided_pairs} | {
        (p.name_b, p.name_a) for p in dataset.undecided_pairs
    }
    assert ("Sadr", "Muqtada al-Sadr") in undecided


def test_a_surname_alone_across_articles_with_no_full_form_is_undecided_not_merged() -> None:
    dataset = structx.build_dataset(
        [_line("a", {"visits": [_visit("Qaani")]}), _line("b", {"visits": [_visit("Qaani")]})]
    )
    assert _entity_of(dataset, "Qaani", "a") != _entity_of(dataset, "Qaani", "b")
    assert [p.reason for p in dataset.undecided_pairs] == ["a surname alone, with no full form in its article"]


def test_acronyms_glosses_and_aliases_the_article_defines_join_their_names(tmp_path: Path) -> None:
    text = (
        "Fighters of the Popular Mobilization Units (PMU) and of Saraya Awliya al-Dam (the Guardians of the Blood "
        "Brigades) gathered. Jamal Jaafar al-Ibrahimi, known as Abu Mahdi al-Muhandis, led them."
    )
    source = _article(tmp_path, "a", text)
    stances = [
        _stance(name, "other", "unclear")
        for name in ("PMU", "Popular Mobilization Units", "Guardians of the Blood Brigades", "Saraya Awliya al-Dam")
    ]
    people = [_visit("Abu Mahdi al-Muhandis"), _visit("Jamal Jaafar al-Ibrahimi")]
    dataset = structx.build_dataset([_line("a", {"militia_stances": stances, "visits": people}, source=source)])
    assert _entity_of(dataset, "PMU") == _entity_of(dataset, "Popular Mobilization Units")
    assert _entity_of(dataset, "Guardians of the Blood Brigades") == _entity_of(dataset, "Saraya Awliya al-Dam")
    assert _entity_of(dataset, "Abu Mahdi al-Muhandis") == _entity_of(dataset, "Jamal Jaafar al-Ibrahimi")
    # Without the article's definition the gloss is not guessed.
    bare = structx.build_dataset(
        [_line("a", {"militia_stances": stances[2:]})]  # no source: the definition is not known
    )
    assert _entity_of(bare, "Guardians of the Blood Brigades") != _entity_of(bare, "Saraya Awliya al-Dam")


def test_an_acronym_defined_in_one_article_serves_the_others(tmp_path: Path) -> None:
    source = _article(tmp_path, "a", "The Kurdistan Democratic Party (KDP) won.")
    lines = [
        _line("a", {"militia_stances": [_stance("Kurdistan Democratic Party", "other", "unclear")]}, source=source),
        _line("b", {"militia_stances": [_stance("KDP", "other", "unclear")]}),
    ]
    dataset = structx.build_dataset(lines)
    assert _entity_of(dataset, "KDP") == _entity_of(dataset, "Kurdistan Democratic Party")


def test_no_transitive_over_merge_a_name_between_two_people_joins_neither() -> None:
    # "Muhammad al-Sadr" could be either; the two full names exclude each other.
    names = ["Muhammad Baqir al-Sadr", "Muhammad al-Sadr", "Muhammad Sadiq al-Sadr"]
    lines = [_line(f"a{i}", {"visits": [_visit(name)]}) for i, name in enumerate(names)]
    dataset = structx.build_dataset(lines)
    baqir, short, sadiq = (_entity_of(dataset, name) for name in names)
    assert len({baqir, short, sadiq}) == 3
    assert {frozenset((p.name_a, p.name_b)) for p in dataset.undecided_pairs} >= {
        frozenset(("Muhammad al-Sadr", "Muhammad Baqir al-Sadr")),
        frozenset(("Muhammad al-Sadr", "Muhammad Sadiq al-Sadr")),
    }


def test_no_transitive_over_merge_a_chain_of_bodies_stops_at_the_conflict() -> None:
    # "Quds Force" is any force of that name; the US and Iraqi special forces exclude each other.
    names = ["US Special Forces", "Special Forces", "Iraqi Special Forces"]
    lines = [_line(f"a{i}", {"militia_stances": [_stance(name, "other", "unclear")]}) for i, name in enumerate(names)]
    dataset = structx.build_dataset(lines)
    assert _entity_of(dataset, "US Special Forces") != _entity_of(dataset, "Iraqi Special Forces")
    assert _entity_of(dataset, "Special Forces") not in {
        _entity_of(dataset, "US Special Forces"),
        _entity_of(dataset, "Iraqi Special Forces"),
    }


def test_a_decider_settles_undecided_pairs_and_still_cannot_join_what_differs() -> None:
    lines = [
        _line("a", {"visits": [_visit("Hassan Nasrallah")]}),
        _line("b", {"visits": [_visit("Hussein Nasrallah")]}),
    ]
    alone = structx.build_dataset(lines)
    assert _entity_of(alone, "Hassan Nasrallah") != _entity_of(alone, "Hussein Nasrallah")
    assert [(p.name_a, p.name_b) for p in alone.undecided_pairs] == [("Hassan Nasrallah", "Hussein Nasrallah")]
    asked: list[tuple[str, str, str]] = []

    def decide(a: str, b: str, reason: str) -> bool:
        asked.append((a, b, reason))
        return True

    joined = structx.build_dataset(lines, decide=decide)
    assert _entity_of(joined, "Hassan Nasrallah") == _entity_of(joined, "Hussein Nasrallah")
    assert asked == [("Hassan Nasrallah", "Hussein Nasrallah", "close names the rules cannot tell apart")]
    assert joined.undecided_pairs == [] and joined.merges == 1


def test_entity_ids_and_canonical_names_do_not_depend_on_input_order() -> None:
    lines = [
        _line("a", {"visits": [_visit("Qaani")], "militia_stances": [_stance("AAH", "other", "unclear")]}),
        _line("b", {"visits": [_visit("General Esmail Qaani")]}),
        _line(
            "c", {"visits": [_visit("Ismail Qaani")], "militia_stances": [_stance("Asaib Ahl al-Haq", "other", "x")]}
        ),
    ]
    forward, backward = structx.build_dataset(lines), structx.build_dataset(list(reversed(lines)))
    assert {(e.entity_id, e.canonical_name) for e in forward.entities} == {
        (e.entity_id, e.canonical_name) for e in backward.entities
    }
    qaani = forward.entity(_entity_of(forward, "Ismail Qaani"))
    assert qaani is not None and qaani.canonical_name in ("Esmail Qaani", "Ismail Qaani")  # no title, most tokens
    assert set(qaani.aliases) == {"General Esmail Qaani", "Ismail Qaani"}


# -- mentions: provenance and spans ----------------------------------------------------------------


def test_mentions_carry_article_record_path_field_and_the_span_of_the_name(tmp_path: Path) -> None:
    text = "Qaani met Hadi al-Ameri and Qais al-Khazali in Baghdad. Nobody else was named."
    source = _article(tmp_path, "a", text)
    visit = _visit("Qaani", city="Baghdad", met_with=["Hadi al-Ameri", "Qais al-Khazali", "Ali Unseen"])
    dataset = structx.build_dataset([_line("a", {"visits": [visit]}, source=source)])
    rows = {(m.record_path, m.field): m for m in dataset.mentions}
    khazali = rows[("visits[0].met_with[1]", "met_with")]
    assert (khazali.article_id, khazali.surface, khazali.type) == ("a", "Qais al-Khazali", "person")
    assert khazali.start is not None and text[khazali.start : khazali.end] == "Qais al-Khazali"
    assert text[rows[("visits[0]", "city")].start : rows[("visits[0]", "city")].end] == "Baghdad"  # type: ignore[misc]
    unseen = rows[("visits[0].met_with[2]", "met_with")]
    assert (unseen.start, unseen.end) == (None, None)


def test_a_mention_span_prefers_the_occurrence_inside_the_records_evidence(tmp_path: Path) -> None:
    text = "Qaani was in Tehran. Months later, Qaani went to Baghdad."
    source = _article(tmp_path, "a", text)
    record = {"visitor": "Qaani", "city": "Baghdad", "evidence": ["Months later, Qaani went to Baghdad."]}
    dataset = structx.build_dataset([_line("a", {"visits": [record]}, source=source)])
    visitor = next(m for m in dataset.mentions if m.field == "visitor")
    assert visitor.start == text.index("Qaani went")


def test_the_article_of_a_jsonl_input_line_gives_spans(tmp_path: Path) -> None:
    articles = tmp_path / "articles.jsonl"
    text = "Hadi al-Ameri spoke in Najaf."
    articles.write_text(json.dumps({"id": "x", "text": "other"}) + "\n" + json.dumps({"id": "n", "text": text}) + "\n")
    line = _line("n", {"visits": [_visit("Hadi al-Ameri", city="Najaf")]}, source=f"{articles}:2")
    dataset = structx.build_dataset([line])
    assert {text[m.start : m.end] for m in dataset.mentions if m.start is not None} == {"Hadi al-Ameri", "Najaf"}


def test_error_lines_are_skipped_and_counted() -> None:
    lines = [
        _line("a", {"visits": [_visit("Qaani")]}),
        {"id": "b", "status": "error", "error": {"type": "TruncatedOutput", "message": "cut"}},
    ]
    dataset = structx.build_dataset(lines)
    assert (dataset.articles, dataset.error_lines) == (1, 1)
    assert "skipped 1 line with an error status" in dataset.summary()


# -- events ----------------------------------------------------------------------------------------


def test_one_visit_reported_by_two_articles_is_one_event_with_both_places_kept() -> None:
    lines = [
        _line("a", {"visits": [_visit("Hossein Salami", city="Baghdad", country="Iraq", when="January 15, 2022")]}),
        _line("b", {"visits": [_visit("Hussein Salami", city="Najaf", country="Iraq", when="2022-01-15")]}),
        # the same visitor a month later, and on the same day in another country: other visits
        _line("c", {"visits": [_visit("Hossein Salami", country="Iraq", when="February 20, 2022")]}),
        _line("d", {"visits": [_visit("Hossein Salami", country="Syria", when="January 15, 2022")]}),
    ]
    dataset = structx.build_dataset(lines)
    merged = [v for v in dataset.visits if v.corroboration == 2]
    assert len(dataset.visits) == 3 and len(merged) == 1
    (visit,) = merged
    assert visit.article_ids == ("a", "b")
    assert set(visit.cities) == {"Baghdad", "Najaf"} and visit.countries == ("Iraq",)
    assert (visit.start, visit.end) == (dt.date(2022, 1, 15), dt.date(2022, 1, 15))
    assert {(r.article_id, r.record_path) for r in visit.supporting_records} == {("a", "visits[0]"), ("b", "visits[0]")}
    assert dataset.corroborated_events() == 1
    assert "1 events corroborated by 2+ articles" in dataset.summary()


def test_visits_without_a_date_are_never_merged_and_come_last_in_the_timeline() -> None:
    lines = [
        _line("a", {"visits": [_visit("Esmail Qaani", country="Iraq", when="mid-September")]}),
        _line("b", {"visits": [_visit("Ismail Qaani", country="Iraq", when="mid-September")]}),
        _line("c", {"visits": [_visit("Esmail Qaani", country="Iraq", when="March 3, 2021")]}),
    ]
    dataset = structx.build_dataset(lines)
    timeline = dataset.timeline(_entity_of(dataset, "Esmail Qaani", "a"))
    assert [v.article_ids for v in timeline] == [("c",), ("a",), ("b",)]
    assert [v.intervals for v in timeline] == [("2021-03-03/2021-03-03",), ("?",), ("?",)]


def test_a_visit_uses_the_iso_dates_its_record_gives_when_the_text_does_not_resolve() -> None:
    record = _visit("Esmail Qaani", country="Iraq")
    record["when"] = {"text": "15-17th January", "start": "2022-01-15", "end": "2022-01-17"}
    dataset = structx.build_dataset([_line("a", {"visits": [record]})])
    (visit,) = dataset.visits
    assert (visit.start, visit.end, visit.precision) == (dt.date(2022, 1, 15), dt.date(2022, 1, 17), "range")


def _meeting(names: list[str], when: str, place: str | None = None) -> dict[str, Any]:
    return {
        "participants": [{"name": name} for name in names],
        "when": {"text": when},
        "place": place,
        "topics": ["t"],
        "evidence": ["-"],
    }


def test_meetings_whose_participants_overlap_at_the_same_time_are_one_event() -> None:
    lines = [
        _line("a", {"meetings": [_meeting(["Esmail Qaani", "Hadi al-Ameri", "Qais al-Khazali"], "May 2, 2021")]}),
        _line("b", {"meetings": [_meeting(["Ismail Qaani", "Hadi al-Amiri"], "2021-05-02", place="Baghdad")]}),
        # the same two people with a stranger each (unnamed parties never count as shared), and another day
        _line("c", {"meetings": [_meeting(["Esmail Qaani", "militia leaders"], "May 2, 2021")]}),
        _line("d", {"meetings": [_meeting(["Esmail Qaani", "Hadi al-Ameri"], "June 9, 2021")]}),
    ]
    dataset = structx.build_dataset(lines)
    merged = [m for m in dataset.meetings if m.corroboration == 2]
    assert len(dataset.meetings) == 3 and len(merged) == 1
    (meeting,) = merged
    assert meeting.article_ids == ("a", "b") and meeting.places == ("Baghdad",)
    people = {p.name: p for p in dataset.meeting_participants if p.meeting_id == meeting.meeting_id}
    assert set(people) == {"Esmail Qaani", "Hadi al-Ameri", "Qais al-Khazali"}
    assert people["Hadi al-Ameri"].surfaces == ("Hadi al-Ameri", "Hadi al-Amiri")
    assert [(r.article_id, r.record_path) for r in people["Hadi al-Ameri"].supporting_records] == [
        ("a", "meetings[0].participants[1]"),
        ("b", "meetings[0].participants[1]"),
    ]


def test_the_stance_matrix_shows_a_change_of_position_over_time() -> None:
    older = [
        _stance("Kata'ib Hezbollah", "us_forces_presence", "conditional"),
        _stance("Kata'ib Hezbollah", "elections_and_government_formation", "supports"),
    ]
    lines = [
        _line("new", {"militia_stances": [_stance("Kataib Hizbullah", "us_forces_presence", "opposes")]},
              meta={"published": "2022-03-01"}),
        _line("old", {"militia_stances": older}, meta={"published": "2020-06-01"}),
        _line("undated", {"militia_stances": [_stance("Kataib Hezbollah", "us_forces_presence", "opposes")]}),
        _line("other", {"militia_stances": [_stance("Hezbollah", "us_forces_presence", "supports")]}),
    ]  # fmt: skip
    dataset = structx.build_dataset(lines)
    kh = _entity_of(dataset, "Kataib Hizbullah")
    matrix = dataset.stance_matrix()
    cell = matrix[(kh, "us_forces_presence")]
    assert [(r.article_id, r.position, r.date) for r in cell] == [
        ("old", "conditional", dt.date(2020, 6, 1)),
        ("new", "opposes", dt.date(2022, 3, 1)),
        ("undated", "opposes", None),
    ]
    assert [(r.previous_position, r.changed) for r in cell] == [(None, False), ("conditional", True), (None, False)]
    assert [r.position for r in matrix[(kh, "elections_and_government_formation")]] == ["supports"]
    assert [r.article_id for r in matrix[(_entity_of(dataset, "Hezbollah"), "us_forces_presence")]] == ["other"]


def test_the_source_index_lists_the_outlets_that_quoted_each_source_and_what_it_said() -> None:
    lines = [
        _line("a", {"outlet": "Al-Fassel", "quoted_sources": [_quote("Tariq al-Shammari", "one"),
                                                              _quote("a senior Iraqi official", "two")]}),
        _line("b", {"outlet": "The Arab Weekly", "quoted_sources": [_quote("Tariq al-Shamari", "three",
                                                                           outlet="Rudaw"),
                                                                    _quote("a senior Iraqi official", "four")]}),
    ]  # fmt: skip
    dataset = structx.build_dataset(lines)
    by_name = {(s.name, s.article_id): s for s in dataset.sources}
    tariq = by_name[("Tariq al-Shammari", None)]
    assert (tariq.quote_count, tariq.outlets, tariq.article_ids) == (2, ("Al-Fassel", "Rudaw"), ("a", "b"))
    anonymous = [s for s in dataset.sources if s.anonymous]
    assert sorted((s.article_id, s.outlets) for s in anonymous) == [("a", ("Al-Fassel",)), ("b", ("The Arab Weekly",))]
    assert sorted(q.quote for q in dataset.quotes if q.source_entity_id == tariq.entity_id) == ["one", "three"]


# -- the dataset: pandas, SQLite, Parquet -----------------------------------------------------------


def _small_dataset() -> structx.Dataset:
    return structx.build_dataset(
        [
            _line(
                "a",
                {"visits": [_visit("Esmail Qaani", country="Iraq", when="May 2, 2021", met_with=["Hadi al-Ameri"])]},
            ),
            _line("b", {"quoted_sources": [_quote("a senior Iraqi official", "x")]}),
        ]
    )


def test_to_pandas_gives_one_frame_per_table() -> None:
    pd = pytest.importorskip("pandas")
    dataset = _small_dataset()
    frames = dataset.to_pandas()
    assert set(frames) == set(dataset.tables())
    for name, rows in dataset.tables().items():
        assert isinstance(frames[name], pd.DataFrame) and len(frames[name]) == len(rows)
    assert list(frames["visits"]["countries"][0]) == ["Iraq"]


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(structx.UsageError, match="needs pandas: pip install pandas"):
        _small_dataset().to_pandas()


def test_write_puts_sqlite_and_parquet_tables_inside_the_folder(tmp_path: Path) -> None:
    dataset = _small_dataset()
    out = tmp_path / "dataset"
    written = dataset.write(out)
    assert sorted(p.name for p in written) == sorted(["dataset.sqlite", *(f"{t}.parquet" for t in dataset.tables())])
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no temporary file left
    db = sqlite3.connect(out / "dataset.sqlite")
    for name, rows in dataset.tables().items():
        assert db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == len(rows)
        assert pq.read_table(out / f"{name}.parquet").num_rows == len(rows)
    visit = db.execute("SELECT visitor, start, countries, supporting_records FROM visits").fetchone()
    assert visit[:3] == ("Esmail Qaani", "2021-05-02", '["Iraq"]')
    assert json.loads(visit[3]) == [{"article_id": "a", "record_path": "visits[0]"}]
    db.close()
    table = pq.read_table(out / "visits.parquet").to_pylist()
    assert table[0]["start"] == dt.date(2021, 5, 2) and table[0]["supporting_records"][0]["record_path"] == "visits[0]"


def test_write_refuses_a_folder_that_is_not_empty_unless_forced_and_touches_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(structx.UsageError, match="not empty; pass --force"):
        _small_dataset().write(out)
    _small_dataset().write(out, force=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "dataset.sqlite").is_file()


def test_write_never_follows_a_planted_link_outside_the_folder(tmp_path: Path) -> None:
    out, outside = tmp_path / "dataset", tmp_path / "outside.sqlite"
    out.mkdir()
    outside.write_text("keep")
    (out / "dataset.sqlite").symlink_to(outside)
    with pytest.raises(structx.UsageError, match="would be written outside"):
        _small_dataset().write(out, force=True)
    assert outside.read_text() == "keep"


# -- on the seeds' gold --------------------------------------------------------------------------------


def test_on_the_gold_the_qaani_visits_are_one_timeline_with_resolved_intervals() -> None:
    dataset = structx.build_dataset([GOLD], articles=SEEDS)
    gold_visits = [
        (stem.stem, index)
        for stem in sorted(GOLD.glob("*.json"))
        for index, visit in enumerate(json.loads(stem.read_text(encoding="utf-8"))["visits"])
        if "Qaani" in visit["visitor"]
    ]
    qaani = _entity_of(dataset, "Esmail Qaani")
    timeline = dataset.timeline(qaani)
    assert sorted((r.article_id, r.record_path) for v in timeline for r in v.supporting_records) == sorted(
        (stem, f"visits[{index}]") for stem, index in gold_visits
    )
    assert {m.entity_id for m in dataset.mentions if "Qaani" in m.surface} == {qaani}
    dated = [(v.start, v.end) for v in timeline if v.start is not None]
    # The visits the gold dates (004: "15-17th January", "Jan 27, 2022") are on the calendar, in time order.
    assert {(dt.date(2022, 1, 15), dt.date(2022, 1, 17)), (dt.date(2022, 1, 27), dt.date(2022, 1, 27))} <= set(dated)
    assert dated == sorted(dated)
    assert all(v.start is None for v in timeline[len(dated) :])


def test_on_the_gold_entity_resolution_meets_the_target() -> None:
    dataset = structx.build_dataset([GOLD], articles=SEEDS)
    scores = structx.evaluate_entities(dataset.mentions, structx.load_alias_gold(ALIAS_GOLD))
    assert scores.mentions_not_in_gold == 0  # every name the gold writes is in the alias gold
    assert scores.pairwise.precision == 1.0 and scores.pairwise.recall >= 0.95
    assert scores.apart_violated == []


def test_on_the_gold_with_surnames_alone_each_takes_its_own_articles_full_form() -> None:
    # The gold's people written by surname alone, as articles often do after the first mention.
    lines = structx.load_answers(GOLD, articles=SEEDS)
    for line in lines:
        for visit in line["records"]["visits"]:
            visit["visitor"] = visit["visitor"].split()[-1]
        for source in line["records"]["quoted_sources"]:
            if not source["anonymous"]:
                source["name"] = source["name"].split()[-1]
    dataset = structx.build_dataset(lines)
    qaani = {m.entity_id for m in dataset.mentions if m.field == "visitor" and "Qaani" in m.surface}
    assert len(qaani) == 1
    assert dataset.entity(qaani.pop()).canonical_name in ("Esmail Qaani", "Ismail Qaani")  # type: ignore[union-attr]
    tariq = _entity_of(dataset, "al-Shammari", "000_57f720f08a0b9acd")
    ihssan = _entity_of(dataset, "Shammari", "002_d04feccafa46ccf3")
    assert tariq != ihssan
    assert [dataset.entity(e).canonical_name for e in (tariq, ihssan)] == ["Tariq al-Shammari", "Ihssan Shammari"]  # type: ignore[union-attr]
    scores = structx.evaluate_entities(dataset.mentions, structx.load_alias_gold(ALIAS_GOLD))
    assert scores.pairwise.precision == 1.0


# -- scoring against an alias gold ------------------------------------------------------------------


def test_pairwise_and_bcubed_scores_count_false_and_missed_merges(tmp_path: Path) -> None:
    gold = tmp_path / "entities.json"
    gold.write_text(
        json.dumps(
            {
                "clusters": [
                    {"entity": "A", "type": "person", "forms": ["Ali Alpha", "Alpha"]},
                    {"entity": "B", "type": "person", "forms": ["Bob Beta"]},
                    {"entity": "anon", "type": "anonymous", "forms": ["a source"]},
                ],
                "apart": [["Ali Alpha", "Bob Beta"]],
            }
        )
    )
    alias = structx.load_alias_gold(gold)

    def row(surface: str, entity: str, article: str = "a") -> structx.MentionRow:
        return structx.MentionRow(
            f"m{surface}{article}", entity, "person", surface, article, "p", "f", True, None, None
        )

    perfect = [row("Ali Alpha", "1"), row("Alpha", "1"), row("Bob Beta", "2"), row("a source", "3"),
               row("a source", "4", "b"), row("Unknown", "5")]  # fmt: skip
    scores = structx.evaluate_entities(perfect, alias)
    assert (scores.pairwise.precision, scores.pairwise.recall, scores.mentions_not_in_gold) == (1.0, 1.0, 1)
    # Everything named in one entity: of 3 pairs made, 1 is right; the anonymous sources of two articles joined too.
    lumped = [
        row("Ali Alpha", "1"),
        row("Alpha", "1"),
        row("Bob Beta", "1"),
        row("a source", "3"),
        row("a source", "3", "b"),
    ]
    scores = structx.evaluate_entities(lumped, alias)
    assert (scores.pairs_true, scores.pairs_false, scores.pairs_missed) == (1, 3, 0)
    assert scores.pairwise.precision == pytest.approx(1 / 4) and scores.pairwise.recall == 1.0
    assert scores.bcubed.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert scores.apart_violated == [("Ali Alpha", "Bob Beta")]
    # Split: the one pair the gold has is missed.
    split = [row("Ali Alpha", "1"), row("Alpha", "2"), row("Bob Beta", "3")]
    scores = structx.evaluate_entities(split, alias)
    assert (scores.pairwise.precision, scores.pairwise.recall) == (1.0, 0.0)
    assert scores.missed_merges == [("Ali Alpha", "Alpha")]


def test_an_alias_gold_that_puts_one_form_in_two_clusters_is_refused_naming_the_file(tmp_path: Path) -> None:
    gold = tmp_path / "entities.json"
    gold.write_text(json.dumps({"clusters": [{"forms": ["Sadr"]}, {"forms": ["Sadr", "Muqtada al-Sadr"]}]}))
    with pytest.raises(structx.InputError, match=r"entities.json: 'Sadr' is in two clusters"):
        structx.load_alias_gold(gold)


def test_records_holding_the_wrong_types_are_read_as_far_as_they_go(tmp_path: Path) -> None:
    # A model (or a hand-made file) may put anything anywhere; the dataset is still built and written.
    records = {
        "outlet": 5,
        "visits": [
            {"visitor": "Esmail Qaani", "met_with": "Hadi al-Ameri", "purpose": 7, "when": "yesterday", "city": ["x"]},
            "not a record",
            {"visitor": None},
        ],
        "meetings": [{"participants": "Qaani and Ameri", "topics": "rifts", "when": {"text": 5}, "message": 3}],
        "militia_stances": [{"militia": "AAH", "topic": 3, "position": "opposes"}],
        "quoted_sources": [{"name": "Tariq Aziz", "quote": 4}, {"name": "Tariq Aziz", "quote": "x", "role": 3}],
    }
    dataset = structx.build_dataset([_line("x", records)])
    # Every name written in a name field is a mention, wherever the record put it.
    assert [(m.record_path, m.field, m.surface) for m in dataset.mentions] == [
        ("visits[0]", "visitor", "Esmail Qaani"),
        ("visits[0]", "met_with", "Hadi al-Ameri"),
        ("visits[0].city[0]", "city", "x"),
        ("militia_stances[0]", "militia", "AAH"),
        ("quoted_sources[0]", "name", "Tariq Aziz"),
        ("quoted_sources[1]", "name", "Tariq Aziz"),
    ]
    (visit,) = dataset.visits
    assert (visit.visitor, visit.purposes, visit.met_with) == ("Esmail Qaani", (), ())
    assert [q.quote for q in dataset.quotes] == ["x"] and dataset.stances == []
    dataset.write(tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "quotes.parquet").num_rows == 1
