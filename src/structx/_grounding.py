"""Grounding: locating every evidence excerpt in the article and checking key values.

A *record* is any pydantic model in the answer that has an ``evidence`` list
of strings. Each excerpt is aligned to a character span ``[start, end)`` of
the original article with a status:

* ``exact``: found as written;
* ``normalized``: found once whitespace, quote marks, dashes, letter case and
  diacritics are set aside;
* ``fuzzy``: only a close, altered passage was found (its score says how close);
* ``not_found``.

Only ``exact`` and ``normalized`` excerpts support a record. Fields marked in
the schema with ``Annotated[str, "grounding:name"]`` must name something that
occurs in the article or in the record's evidence (transliteration variants
allowed); fields marked ``"grounding:verbatim"`` must occur verbatim up to
normalization. An excerpt that lies in text addressed to the model rather
than reporting (an "ignore previous instructions" line, chat-template markup,
a fake article fence, a JSON answer with evidence pasted into the article)
supports nothing, though it is found. A record that passes every check is ``grounded``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar, get_args

from pydantic import BaseModel
from rapidfuzz import fuzz

from structx._config import GroundingPolicy
from structx._errors import GroundingFailed
from structx._models import AlignmentStatus, EvidenceSpan, GroundingReport, RecordGrounding
from structx._text import NormalizedText, is_word_continuation, name_tokens, normalize

__all__ = [
    "NAME",
    "VERBATIM",
    "Aligner",
    "addressed_to_model",
    "apply_grounding_policy",
    "drop_ungrounded",
    "ground",
    "iter_records",
    "marked_values",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

NAME = "grounding:name"
VERBATIM = "grounding:verbatim"

#: A fuzzy match scores at least this (rapidfuzz partial ratio, 0-100) to be reported as ``fuzzy``.
FUZZY_MIN_SCORE = 80.0
#: Excerpts shorter than this (normalized) are found exactly or not at all.
FUZZY_MIN_LENGTH = 10
_NAME_PARTS = re.compile(r"[()/;,]")
#: Names may have up to this many tokens between their parts ("Ismail" in "General Ismail Qaani").
_NAME_GAP = 2


class Aligner:
    """Aligns excerpts to one article; repeated excerpts take successive occurrences."""

    def __init__(self, article: str) -> None:
        self.article = article
        self._normalized: NormalizedText | None = None
        # Per excerpt (normalized), where in the original text the next search starts.
        self._resume: dict[str, int] = {}

    @property
    def normalized(self) -> NormalizedText:
        if self._normalized is None:
            self._normalized = _normalized_article(self.article)
        return self._normalized

    def align(self, excerpt: str) -> EvidenceSpan:
        needle = excerpt.strip()
        needle_norm = normalize(needle)
        if not needle_norm:
            return EvidenceSpan(excerpt, None, None, AlignmentStatus.NOT_FOUND, 0.0)
        resume = self._resume.get(needle_norm, 0)
        # The next occurrence, as written or normalized; only when there is
        # none left does a repeated excerpt fall back to the first one.
        found = self._find(needle, needle_norm, resume)
        if found is None and resume > 0:
            found = self._find(needle, needle_norm, 0)
        if found is not None:
            begin, end, status = found
            self._resume[needle_norm] = end
            return EvidenceSpan(excerpt, begin, end, status, 100.0)
        if len(needle_norm) < FUZZY_MIN_LENGTH:  # too short to say what it is close to
            return EvidenceSpan(excerpt, None, None, AlignmentStatus.NOT_FOUND, 0.0)
        normalized = self.normalized
        match = fuzz.partial_ratio_alignment(needle_norm, normalized.text, score_cutoff=FUZZY_MIN_SCORE)
        if match is not None and match.dest_end > match.dest_start:
            begin, end = self._whole_words(*normalized.original_span(match.dest_start, match.dest_end))
            return EvidenceSpan(excerpt, begin, end, AlignmentStatus.FUZZY, float(match.score))
        return EvidenceSpan(excerpt, None, None, AlignmentStatus.NOT_FOUND, 0.0)

    def _find(self, needle: str, needle_norm: str, resume: int) -> tuple[int, int, AlignmentStatus] | None:
        """The first whole-word occurrence at or after original index ``resume``: exact, else normalized."""
        exact = _find_whole_words(self.article, needle, resume)
        normalized = self.normalized
        at = _find_whole_words(normalized.text, needle_norm, normalized.normalized_index(resume))
        if at is not None:
            begin, end = self._with_ignorable_edges(*normalized.original_span(at, at + len(needle_norm)), needle)
            if exact is None or begin < exact:
                return begin, end, _status(self.article[begin:end], needle)
        if exact is not None:
            return exact, exact + len(needle), AlignmentStatus.EXACT
        return None

    def _with_ignorable_edges(self, begin: int, end: int, needle: str) -> tuple[int, int]:
        """Widen a normalized match over the characters normalization drops (a soft hyphen, say)
        that the excerpt itself has at its edges, so the span is the one an exact match gives."""
        text = self.article
        for char in reversed(needle):
            if normalize(char) or end >= len(text) or normalize(text[end]) or text[end] != char:
                break
            end += 1
        for char in needle:
            if normalize(char) or begin <= 0 or normalize(text[begin - 1]) or text[begin - 1] != char:
                break
            begin -= 1
        return begin, end

    def _whole_words(self, begin: int, end: int) -> tuple[int, int]:
        """Widen a span so that it neither starts nor ends inside a word."""
        text = self.article
        while begin > 0 and _continues_word(text[begin - 1]) and _continues_word(text[begin]):
            begin -= 1
        while end < len(text) and _continues_word(text[end]) and _continues_word(text[end - 1]):
            end += 1
        return begin, end

    def contains_verbatim(self, value: str) -> bool:
        needle = value.strip()
        return bool(needle) and (needle in self.article or normalize(needle) in self.normalized.text)

    def contains_name(self, name: str, evidence: list[str]) -> bool:
        """True when every part of ``name`` ("A (B)", "A / B" have two) occurs in the article or evidence."""
        parts = [part for part in _NAME_PARTS.split(name) if part.strip()]
        return bool(parts) and all(self._contains_name_part(part, evidence) for part in parts)

    def _contains_name_part(self, name: str, evidence: list[str]) -> bool:
        as_written = normalize(name).strip()
        if as_written and _find_whole_words(self.normalized.text, as_written, 0) is not None:
            return True  # the usual case, without building the article's name tokens
        wanted = name_tokens(name)
        if not wanted:
            return normalize(name).strip() in self.normalized.text
        return _tokens_in_order(wanted, self._article_tokens) or any(
            _tokens_in_order(wanted, name_tokens(excerpt)) for excerpt in evidence
        )

    @property
    def _article_tokens(self) -> list[str]:
        return _article_name_tokens(self.article)


# One article is grounded several times (each re-ask, then the final answer):
# its normalized copy and name tokens are made once. Both are read-only.
@lru_cache(maxsize=16)
def _normalized_article(article: str) -> NormalizedText:
    return NormalizedText(article)


@lru_cache(maxsize=16)
def _article_name_tokens(article: str) -> list[str]:
    return name_tokens(article)


def _status(found: str, needle: str) -> AlignmentStatus:
    return AlignmentStatus.EXACT if found == needle else AlignmentStatus.NORMALIZED


def _find_whole_words(haystack: str, needle: str, start: int) -> int | None:
    """The first occurrence from ``start`` that neither begins nor ends inside a word.

    "x" is in almost any article, but not as a word of its own.
    """
    while (found := haystack.find(needle, start)) >= 0:
        end = found + len(needle)
        cuts_before = found > 0 and haystack[found - 1].isalnum() and needle[0].isalnum()
        cuts_after = end < len(haystack) and needle[-1].isalnum() and _continues_word(haystack[end])
        if not cuts_before and not cuts_after:
            return found
        start = found + 1
    return None


def _continues_word(char: str) -> bool:
    return char.isalnum() or is_word_continuation(char)


def _tokens_in_order(wanted: list[str], tokens: list[str]) -> bool:
    """True when ``wanted`` occurs in ``tokens`` in order, with small gaps allowed."""
    first = wanted[0]
    for i, token in enumerate(tokens):
        if token != first:
            continue
        position, ok = i, True
        for part in wanted[1:]:
            window = tokens[position + 1 : position + 2 + _NAME_GAP]
            if part not in window:
                ok = False
                break
            position = position + 1 + window.index(part)
        if ok:
            return True
    return False


# Text that speaks to a language model instead of reporting news. Narrow on
# purpose: reporting about rules, systems or instructions must not match.
# An instruction or a pasted JSON answer marks its line; chat-template markup
# or a fake article fence marks the block it opens, up to the next blank line
# and at most _BLOCK_REACH characters past the markup.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|preceding)\s+(?:instructions?|prompts?)\b",
    re.IGNORECASE,
)
# A JSON object with an "evidence" key: the shape of an answer structx accepts.
_JSON_ANSWER = re.compile(r'\{[^\n]{0,400}?"evidence"\s*:')
_MARKUP = re.compile(
    r"<\|[a-z_]{2,24}\|>"  # <|im_start|>, <|system|>
    r"|\[/?INST\]|<</?SYS>>"  # Llama chat markup
    r"|</?(?:system|assistant)>"
    r"|</?article-[0-9a-f]{12}>"  # structx's own fence
)
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_BLOCK_REACH = 400


@lru_cache(maxsize=16)
def addressed_to_model(article: str) -> tuple[tuple[int, int], ...]:
    """The parts of ``article`` that address a model (prompt injection), as sorted ``[start, end)`` spans."""
    found: list[tuple[int, int]] = []

    def line_end(position: int) -> int:
        end = article.find("\n", position)
        return len(article) if end < 0 else end

    for pattern in (_INSTRUCTION, _JSON_ANSWER):
        for match in pattern.finditer(article):
            found.append((article.rfind("\n", 0, match.start()) + 1, line_end(match.end())))
    for match in _MARKUP.finditer(article):
        blank = _BLANK_LINE.search(article, match.end())
        end = min(blank.start() if blank else len(article), line_end(match.end() + _BLOCK_REACH))
        found.append((article.rfind("\n", 0, match.start()) + 1, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _overlaps(span: EvidenceSpan, regions: tuple[tuple[int, int], ...]) -> bool:
    if span.start is None or span.end is None:
        return False
    return any(span.start < end and start < span.end for start, end in regions)


def ground(value: BaseModel, article: str) -> GroundingReport:
    """Align the evidence of every record in ``value`` and check its marked fields."""
    aligner = Aligner(article)
    injected = addressed_to_model(article)
    report = GroundingReport()
    for path, record in iter_records(value):
        evidence = list(getattr(record, "evidence", []))
        spans = [aligner.align(excerpt) for excerpt in evidence]
        result = RecordGrounding(path, spans)
        for number, span in enumerate(spans, start=1):
            if span.status is AlignmentStatus.FUZZY:
                assert span.start is not None and span.end is not None
                result.problems.append(
                    f"evidence {number} {_quote(span.text)} differs from the article, which says "
                    f"{_quote(article[span.start : span.end])}"
                )
            elif span.status is AlignmentStatus.NOT_FOUND:
                result.problems.append(f"evidence {number} {_quote(span.text)} is not in the article")
            elif _overlaps(span, injected):
                result.problems.append(
                    f"evidence {number} {_quote(span.text)} lies in text addressed to the model, not in the reporting"
                )
        for field_path, kind, text in marked_values(record):
            if kind == NAME and not aligner.contains_name(text, evidence):
                result.problems.append(f"{field_path} {_quote(text)} does not occur in the article")
            elif kind == VERBATIM and not aligner.contains_verbatim(text):
                result.problems.append(f"{field_path} {_quote(text)} is not verbatim in the article")
        report.records.append(result)
    return report


def _quote(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def iter_records(
    value: Any, path: str = "", *, is_record: Callable[[BaseModel], bool] | None = None
) -> Iterator[tuple[str, BaseModel]]:
    """Every record inside ``value``, with its path.

    A record is a model with an ``evidence`` list, unless ``is_record`` says otherwise.
    """
    if isinstance(value, BaseModel):
        if (is_record or _is_record)(value):
            yield path or type(value).__name__, value
        for name in type(value).model_fields:
            yield from iter_records(getattr(value, name), f"{path}.{name}" if path else name, is_record=is_record)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_records(item, f"{path}[{index}]", is_record=is_record)


def _is_record(model: BaseModel) -> bool:
    evidence = getattr(model, "evidence", None)
    return "evidence" in type(model).model_fields and isinstance(evidence, list)


def marked_values(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, marker, value) for every marked string in a record, nested models included.

    Nested records are grounded on their own and skipped here.
    """
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        marker = _marker(info.metadata, info.annotation)
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]" if isinstance(value, list) else path
            if marker is not None and isinstance(item, str) and item.strip():
                yield item_path, marker, item
            elif isinstance(item, BaseModel) and not _is_record(item):
                yield from marked_values(item, f"{item_path}.")


def _marker(metadata: list[Any], annotation: Any) -> str | None:
    """The grounding marker on a field, also inside ``X | None`` and ``list[X]``."""
    for item in metadata:
        if item in (NAME, VERBATIM):
            return str(item)
    for item in getattr(annotation, "__metadata__", ()):
        if item in (NAME, VERBATIM):
            return str(item)
    for arg in get_args(annotation):
        found = _marker([], arg)
        if found is not None:
            return found
    return None


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def drop_ungrounded(value: ModelT, report: GroundingReport, article: str) -> tuple[ModelT, GroundingReport]:
    """``value`` without its ungrounded records, and the grounding of what is left.

    The new report describes the records that remain, at their new paths, and
    then lists each dropped record with ``dropped`` set and the path it had in
    the model's answer. A record that is not an item of a list (the answer
    itself, or a required single field) cannot be removed; it stays, flagged.
    """
    data = value.model_dump()
    doomed = [r for r in report.records if not r.grounded and isinstance(_path_key(r.path)[-1], int)]
    # Deepest and last first, so that earlier indices stay valid.
    for record in sorted(doomed, key=lambda r: _path_key(r.path), reverse=True):
        parts = _path_key(record.path)
        container: Any = data
        for part in parts[:-1]:
            container = container[part]
        del container[parts[-1]]
        record.dropped = True
    kept = type(value).model_validate(data)
    remaining = ground(kept, article)
    remaining.records.extend(doomed)
    return kept, remaining


def apply_grounding_policy(value: ModelT, article: str, policy: GroundingPolicy) -> tuple[ModelT, GroundingReport]:
    """Ground ``value`` in ``article`` and apply ``policy`` to the records left ungrounded.

    ``KEEP`` keeps them flagged, ``DROP`` removes them (see :func:`drop_ungrounded`),
    ``FAIL`` raises :class:`GroundingFailed` carrying the report. The same
    answer and article always give the same outcome, which lets a resumed run
    re-apply a changed policy to a stored answer.
    """
    report = ground(value, article)
    if report.grounded or policy is GroundingPolicy.KEEP:
        return value, report
    if policy is GroundingPolicy.FAIL:
        failure = GroundingFailed(report.feedback())
        failure.grounding = report
        raise failure
    return drop_ungrounded(value, report, article)


def _path_key(path: str) -> tuple[Any, ...]:
    return tuple(name if name else int(index) for name, index in _PATH_PART.findall(path))
