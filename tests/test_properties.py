"""Property-based tests: arbitrary text and arbitrary JSON never crash structx's core."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import structx
from structx._engine import _checked_schema
from structx._grounding import Aligner, addressed_to_model, ground
from structx._text import NormalizedText, _fold, normalize
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, seed_answer

# Every Unicode character but lone surrogates (no decoded file can hold one),
# with the characters normalization treats specially made more likely.
SPECIAL = "  \t\n\u00a0\u2009\u200b\u200d\u00ad\u0640'\"`‘’“”«»-‐–—−́̈ßİıﬁ½²ـﷺ"
# Single and double quote marks, straight and typographic: all one mark to grounding.
QUOTE_MARKS = "'\"`´‘’‚‛“”„‟«»‹›′″ʼ＂＇"
characters = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(SPECIAL))
texts = st.text(characters, max_size=300)
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _normalized_char_by_char(text: str) -> tuple[str, list[int]]:
    """The definition of normalization, one character at a time (NormalizedText takes shortcuts)."""
    chars: list[str] = []
    sources: list[int] = []
    pending_space = False
    for index, char in enumerate(text):
        folded = _fold(char)
        if folded == " ":
            pending_space = bool(chars)
            continue
        if not folded:
            continue
        if pending_space:
            chars.append(" ")
            sources.append(index - 1)
            pending_space = False
        chars.append(folded)
        sources.extend([index] * len(folded))
    return "".join(chars), sources


@PROFILE
@given(texts)
def test_normalized_text_is_the_char_by_char_definition_and_maps_back_in_order(text: str) -> None:
    normalized = NormalizedText(text)
    assert (normalized.text, normalized.sources) == _normalized_char_by_char(text)
    assert all(0 <= index < len(text) for index in normalized.sources)
    assert normalized.sources == sorted(normalized.sources)


@PROFILE
@given(texts, st.data())
def test_any_quote_mark_for_any_other_normalizes_the_same(text: str, data: st.DataObject) -> None:
    marks = [index for index, char in enumerate(text) if char in QUOTE_MARKS]
    swapped = list(text)
    for index in marks:
        swapped[index] = data.draw(st.sampled_from(QUOTE_MARKS))
    normalized, other = NormalizedText(text), NormalizedText("".join(swapped))
    assert (other.text, other.sources) == (normalized.text, normalized.sources)


@PROFILE
@given(texts, st.data())
def test_an_excerpt_with_its_quote_marks_restyled_is_found_at_the_same_place(article: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(article)))
    end = data.draw(st.integers(start, len(article)))
    excerpt = article[start:end]
    restyled = "".join(data.draw(st.sampled_from(QUOTE_MARKS)) if c in QUOTE_MARKS else c for c in excerpt)
    original, changed = Aligner(article).align(excerpt), Aligner(article).align(restyled)
    if original.supports:  # found exactly or up to normalization, never fuzzy: nothing to re-ask
        assert changed.supports and (changed.start, changed.end) == (original.start, original.end)


@PROFILE
@given(texts, st.data())
def test_aligned_spans_always_slice_the_original(article: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(article)))
    end = data.draw(st.integers(start, len(article)))
    excerpts = [article[start:end], data.draw(texts), article[start:end].upper()]
    aligner = Aligner(article)
    for excerpt in excerpts:
        span = aligner.align(excerpt)
        if span.start is None:
            assert span.end is None and span.status is structx.AlignmentStatus.NOT_FOUND
            continue
        assert span.end is not None and 0 <= span.start < span.end <= len(article)
        if span.status is structx.AlignmentStatus.EXACT:
            assert article[span.start : span.end] == excerpt.strip()
        if span.status is structx.AlignmentStatus.NORMALIZED:
            assert normalize(article[span.start : span.end]).strip() == normalize(excerpt.strip()).strip()
    for begin, stop in addressed_to_model(article):
        assert 0 <= begin <= stop <= len(article)


SYSTEM_PROMPT = structx.build_messages(structx.Article(text="x"), ArticleExtraction, include_schema=True)[0]


@PROFILE
@given(texts.filter(str.strip))
def test_the_prompt_builder_fences_any_article_and_keeps_it_out_of_the_system_prompt(text: str) -> None:
    article = structx.Article(text=text)
    system, user = structx.build_messages(article, ArticleExtraction, include_schema=True)
    assert system == SYSTEM_PROMPT  # the same whatever the article says
    assert user["content"].endswith(f"\n{text}\n</article-{article.content_hash[:12]}>")


# -- arbitrary JSON against the schema ------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
GOLD = seed_answer(FAULT_ARTICLE).model_dump(mode="json")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


GOLD_PATHS = _paths(GOLD)


@st.composite
def schema_shaped(draw: st.DrawFn) -> Any:
    """A gold answer with one part replaced by arbitrary JSON: mostly right, wrong in one place."""
    answer = json.loads(json.dumps(GOLD))
    path = draw(st.sampled_from(GOLD_PATHS))
    replacement = draw(json_values)
    if not path:
        return replacement
    parent = answer
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return answer


@PROFILE
@given(st.one_of(json_values, schema_shaped()))
def test_any_json_validates_or_raises_a_validation_error(data: Any) -> None:
    checked = _checked_schema(ArticleExtraction)
    try:
        value = checked.model_validate_json(json.dumps(data))
    except ValidationError:
        return
    # What validates can be grounded against any article without error.
    report = ground(value, "Esmail Qaani visited Baghdad.")
    assert all(record.path for record in report.records)
