"""Splitting long articles on sentence boundaries."""

from __future__ import annotations

import pytest

from structx._chunking import split_into_chunks
from tests.cassettes import seed_paths

SEED_TEXTS = [path.read_text(encoding="utf-8") for path in seed_paths()]


def test_a_short_article_is_one_chunk() -> None:
    assert split_into_chunks("One sentence. Two.", 100, 10) == [(0, "One sentence. Two.")]
    assert split_into_chunks("x" * 500, None, 10) == [(0, "x" * 500)]


@pytest.mark.parametrize("size", [1000, 2500])
@pytest.mark.parametrize("text", SEED_TEXTS, ids=[path.stem for path in seed_paths()])
def test_chunks_cover_the_article_overlap_and_end_on_sentences(text: str, size: int) -> None:
    chunks = split_into_chunks(text, size, 300)
    assert len(chunks) >= 2
    covered = 0
    for index, (offset, chunk) in enumerate(chunks):
        assert text[offset : offset + len(chunk)] == chunk
        assert len(chunk) <= size
        assert offset <= covered  # no gap between chunks
        if index > 0:
            assert covered - offset <= 300  # overlap stays within the bound
            assert text[offset - 1].isspace()  # starts after a sentence or paragraph break
        if index < len(chunks) - 1:
            assert chunk.rstrip()[-1] in ".!?\"'”’)]" or chunk.endswith("\n")
        covered = offset + len(chunk)
    assert covered == len(text)


def test_a_sentence_longer_than_a_chunk_is_cut_at_a_space() -> None:
    text = "word " * 100  # 500 characters, no sentence end
    chunks = split_into_chunks(text, 120, 20)
    assert len(chunks) > 1 and all(len(chunk) <= 120 for _, chunk in chunks)
    assert all(text[offset + len(chunk)] == " " for offset, chunk in chunks[:-1])  # cut where a space is
    assert all(text[offset : offset + len(chunk)] == chunk for offset, chunk in chunks)
    assert chunks[-1][0] + len(chunks[-1][1]) == len(text)


def test_arabic_question_marks_end_sentences() -> None:
    text = "هل زار قاآني بغداد؟ " * 30
    chunks = split_into_chunks(text, 100, 30)
    assert all(chunk.rstrip().endswith("؟") for _, chunk in chunks[:-1])


def test_merging_keeps_records_that_share_a_passage_but_differ() -> None:
    from structx._chunking import merge_answers
    from structx_schemas import ArticleExtraction, MilitiaStance

    def stance(topic: str) -> MilitiaStance:
        return MilitiaStance(
            militia="Kataib Hezbollah", topic=topic, position="opposes", summary="s", evidence=["They said no."]
        )

    first = ArticleExtraction(
        militia_stances=[stance("us_forces_presence"), stance("elections_and_government_formation")]
    )
    second = ArticleExtraction(militia_stances=[stance("elections_and_government_formation")])
    merged = merge_answers([first, second], ArticleExtraction)
    assert [s.topic.value for s in merged.militia_stances] == [
        "us_forces_presence",
        "elections_and_government_formation",
    ]
