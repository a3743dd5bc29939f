"""Grounding: excerpts located in the original text, names and quotes checked."""

from __future__ import annotations

import pytest

import structx
from structx import AlignmentStatus as Status
from structx_schemas import ArticleExtraction, MilitiaStance, QuotedSource
from tests.cassettes import ROOT, seed_answer, seed_paths

ARTICLE = (
    "Islamic Revolutionary Guard Corps Quds Force commander Esmail Qaani met Kata’ib Hezbollah’s leaders in "
    "Baghdad.\u00a0He  carried a “special message”   from Ali Khamenei — observers said.\n"
    "Qaani met them again. Qaani met them again.\n"
    "قال مسؤول عراقي رفيع إن قاآني زار بغداد"
)


def _align(excerpt: str, article: str = ARTICLE) -> structx.EvidenceSpan:
    return structx.Aligner(article).align(excerpt)


def test_an_exact_excerpt_gets_its_span() -> None:
    span = _align("met Kata’ib Hezbollah’s leaders")
    assert span.status is Status.EXACT and span.score == 100
    assert span.start is not None and span.end is not None
    assert ARTICLE[span.start : span.end] == "met Kata’ib Hezbollah’s leaders"


@pytest.mark.parametrize(
    ("excerpt", "expected"),
    [
        ('He carried a "special message" from Ali Khamenei', "He  carried a “special message”   from Ali Khamenei"),
        ("He carried a 'special message' from Ali Khamenei", "He  carried a “special message”   from Ali Khamenei"),
        ("He carried a ‘special message’ from Ali Khamenei", "He  carried a “special message”   from Ali Khamenei"),
        ("He carried a «special message» from Ali Khamenei", "He  carried a “special message”   from Ali Khamenei"),
        ('met Kata"ib Hezbollah‛s leaders', "met Kata’ib Hezbollah’s leaders"),
        ("in baghdad. he carried", "in \nBaghdad.\u00a0He  carried"),
        ("Khamenei - observers said", "Khamenei — observers said"),
        ("KATA'IB HEZBOLLAH'S", "Kata’ib Hezbollah’s"),
        ("Esmail Qaani", "Esmail Qaani"),
    ],
)
def test_harmless_differences_are_normalized_and_the_span_slices_the_original(excerpt: str, expected: str) -> None:
    article = ARTICLE.replace("leaders in Baghdad", "leaders in \nBaghdad")
    span = _align(excerpt, article)
    assert span.status in (Status.EXACT, Status.NORMALIZED)
    assert span.start is not None and span.end is not None
    assert article[span.start : span.end] == expected


def test_diacritics_and_arabic_script() -> None:
    article = "Le général Qāʾānī a visité Bagdad. " + ARTICLE
    span = _align("le general qaani a visite bagdad", article)
    assert span.status is Status.NORMALIZED
    assert article[span.start : span.end] == "Le général Qāʾānī a visité Bagdad"  # type: ignore[misc]
    arabic = _align("مسؤول عراقي رفيع")
    assert arabic.status is Status.EXACT
    assert ARTICLE[arabic.start : arabic.end] == "مسؤول عراقي رفيع"  # type: ignore[misc]


def test_an_altered_excerpt_is_fuzzy_with_its_score_and_a_missing_one_not_found() -> None:
    altered = _align("Esmail Qaani met Kata’ib Hezbollah’s leaders in Tehran")
    assert altered.status is Status.FUZZY and 80 <= altered.score < 100
    assert not altered.supports
    assert altered.start is not None and "Qaani met Kata’ib" in ARTICLE[altered.start : altered.end]
    missing = _align("The Pentagon announced a new deployment to the region")
    assert (missing.status, missing.start, missing.end, missing.supports) == (Status.NOT_FOUND, None, None, False)


def test_repeated_excerpts_map_to_successive_occurrences() -> None:
    aligner = structx.Aligner(ARTICLE)
    first, second, third = (aligner.align("Qaani met them again") for _ in range(3))
    assert first.start is not None and second.start is not None
    assert second.start > first.start
    assert third.start == first.start  # more repeats than occurrences: the first is reused
    assert ARTICLE[first.start : first.end] == ARTICLE[second.start : second.end] == "Qaani met them again"


@pytest.mark.parametrize(
    "name",
    ["Qani", "Ismail Qaani", "Kataib Hizbullah", "Kata'ib Hezbollah", "General Qaani", "a senior Iraqi official"],
)
def test_transliteration_variants_of_names_are_found(name: str) -> None:
    article = "General Ismail Qaani met Kataib Hezbollah. A senior Iraqi official confirmed it."
    assert structx.Aligner(article).contains_name(name, evidence=[])


@pytest.mark.parametrize("name", ["Soleimani", "Asaib Ahl al-Haq", "Qaani (Badr Organization)"])
def test_names_that_are_not_in_the_article_are_not_found(name: str) -> None:
    article = "General Ismail Qaani met Kataib Hezbollah. A senior Iraqi official confirmed it."
    assert not structx.Aligner(article).contains_name(name, evidence=[])


def _stance(**changes: object) -> MilitiaStance:
    values = {
        "militia": "Kataib Hezbollah",
        "topic": "us_forces_presence",
        "position": "opposes",
        "summary": "s",
        "evidence": ["Esmail Qaani met Kata’ib Hezbollah’s leaders"],
    }
    return MilitiaStance.model_validate({**values, **changes})


def test_a_record_is_grounded_only_when_evidence_names_and_quotes_all_check_out() -> None:
    answer = ArticleExtraction(
        militia_stances=[
            _stance(),
            _stance(militia="Asaib Ahl al-Haq"),
            _stance(evidence=["Qaani met Asaib leaders in Najaf"], quote="special message"),
        ],
        quoted_sources=[
            QuotedSource(name="observers", anonymous=True, quote="a special message from Khamenei", evidence=["x"])
        ],
    )
    report = structx.ground(answer, ARTICLE)
    by_path = {record.path: record for record in report.records}
    assert set(by_path) == {"militia_stances[0]", "militia_stances[1]", "militia_stances[2]", "quoted_sources[0]"}
    assert by_path["militia_stances[0]"].grounded and by_path["militia_stances[0]"].problems == []
    assert by_path["militia_stances[1]"].problems == ["militia 'Asaib Ahl al-Haq' does not occur in the article"]
    assert by_path["militia_stances[2]"].problems == [
        "evidence 1 'Qaani met Asaib leaders in Najaf' is not in the article"
    ]
    assert by_path["quoted_sources[0]"].problems == [
        "evidence 1 'x' is not in the article",
        "quote 'a special message from Khamenei' is not verbatim in the article",
    ]
    assert not report.grounded
    assert report.excerpt_counts() == {"exact": 2, "normalized": 0, "fuzzy": 0, "not_found": 2}
    feedback = report.feedback()
    assert "militia_stances[1]: militia 'Asaib Ahl al-Haq' does not occur in the article" in feedback


@pytest.mark.parametrize("stem", [path.stem for path in seed_paths()])
def test_every_gold_record_is_grounded_with_exact_spans(stem: str) -> None:
    text = (ROOT / "seeds" / f"{stem}.txt").read_text(encoding="utf-8")
    report = structx.ground(seed_answer(stem), text)
    assert report.records and report.grounded, report.feedback()
    for record in report.records:
        for span in record.evidence:
            assert span.status is Status.EXACT
            assert text[span.start : span.end] == span.text.strip()  # type: ignore[misc]


def test_excerpts_must_be_whole_words_and_long_enough_to_place() -> None:
    assert _align("x").status is Status.NOT_FOUND  # a letter occurs everywhere, as a word nowhere
    partial = _align("aani met Kata’ib Hezbollah’s lead")
    assert partial.status is Status.FUZZY and not partial.supports
    assert _align("Qaani").status is Status.EXACT


def test_repeats_take_the_next_occurrence_whether_exact_or_normalized() -> None:
    article = "Qaani arrived in Baghdad. Later, QAANI ARRIVED in Baghdad."
    aligner = structx.Aligner(article)
    first, second, third = (aligner.align("Qaani arrived in Baghdad") for _ in range(3))
    assert (first.status, article[first.start : first.end]) == (Status.EXACT, "Qaani arrived in Baghdad")  # type: ignore[misc]
    assert (second.status, article[second.start : second.end]) == (Status.NORMALIZED, "QAANI ARRIVED in Baghdad")  # type: ignore[misc]
    assert third.start == first.start


def test_numbers_are_not_folded_into_other_numbers() -> None:
    span = _align("The strike destroyed 11", "The strike destroyed 1½ tonnes")
    assert not span.supports


def test_spans_keep_combining_marks_and_backticks_count_as_quotes() -> None:
    article = "Jose\u0301 met Kata'ib Hezbollah. كتبَ الرسالة"
    jose = _align("Jose", article)
    assert (jose.status, article[jose.start : jose.end]) == (Status.NORMALIZED, "Jose\u0301")  # type: ignore[misc]
    arabic = _align("كتب", article)
    assert article[arabic.start : arabic.end] == "كتبَ"  # type: ignore[misc]
    assert _align("Kata`ib Hezbollah", article).status is Status.NORMALIZED


def test_a_possessive_does_not_hide_a_name() -> None:
    assert structx.Aligner("Muqtada al-Sadr's movement won.").contains_name("Muqtada al-Sadr", evidence=[])


def test_single_and_double_quote_marks_are_one_mark_for_excerpts_names_and_quotes() -> None:
    article = 'He reportedly carried a "special message" from Ali Khamenei, said Harakat „al-Nujaba“.'
    aligner = structx.Aligner(article)
    span = aligner.align("He reportedly carried a 'special message' from Ali Khamenei")
    assert (span.status, span.score) == (Status.NORMALIZED, 100)
    assert article[span.start : span.end] == 'He reportedly carried a "special message" from Ali Khamenei'  # type: ignore[misc]
    assert aligner.contains_verbatim("a ‘special message’ from Ali Khamenei")
    assert aligner.contains_verbatim("a «special message» from Ali Khamenei")
    assert aligner.contains_name("Harakat 'al-Nujaba'", evidence=[])
    # Set aside, quote marks still have to be there: a quote mark is not a letter, nor is it nothing.
    assert not aligner.contains_verbatim("a special message from Ali Khamenei")
    assert _align("He reportedly carried a 'special massage' from Ali Khamenei", article).status is Status.FUZZY
