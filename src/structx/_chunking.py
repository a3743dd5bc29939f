"""Long articles: overlapping chunks on sentence boundaries, and merging their answers."""

from __future__ import annotations

import bisect
import re
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel

from structx._grounding import NAME, marked_values
from structx._text import normalize

__all__ = ["merge_answers", "split_into_chunks"]

ModelT = TypeVar("ModelT", bound=BaseModel)

# A sentence ends at . ! ? (Latin or Arabic) plus closing quotes or brackets,
# followed by whitespace; a blank line ends a paragraph.
_BOUNDARY = re.compile(r"(?<=[.!?؟])[\"'”’»)\]]*\s+|\n\s*\n")


def split_into_chunks(text: str, size: int | None, overlap: int) -> list[tuple[int, str]]:
    """Split ``text`` into ``(offset, chunk)`` pairs of at most ``size`` characters.

    Chunks end on sentence boundaries where one lies within reach, and each
    chunk after the first starts at a sentence boundary at most ``overlap``
    characters before the previous chunk's end, so that a record near a cut
    is seen whole by at least one chunk. ``text[offset:offset + len(chunk)]``
    is always ``chunk``.
    """
    if size is None or len(text) <= size:
        return [(0, text)]
    bounds = sorted({0, len(text), *(m.end() for m in _BOUNDARY.finditer(text))})
    chunks: list[tuple[int, str]] = []
    start = 0
    while True:
        limit = start + size
        if limit >= len(text):
            chunks.append((start, text[start:]))
            return chunks
        at = bisect.bisect_right(bounds, limit) - 1
        end = bounds[at]
        if end <= start:  # one sentence longer than a chunk: cut at a space, or anywhere
            space = text.rfind(" ", start + 1, limit)
            end = space if space > start else limit
        chunks.append((start, text[start:end]))
        at = bisect.bisect_left(bounds, end - overlap)
        next_start = bounds[at] if at < len(bounds) else end
        start = next_start if start < next_start < end else end


def merge_answers(answers: list[ModelT], schema: type[ModelT]) -> ModelT:
    """One answer from the answers of each chunk.

    List fields are concatenated, dropping records that two chunks both
    extracted (same type, evidence, names and closed choices, or identical
    content); any other field takes the first chunk's value that is set.
    """
    if len(answers) == 1:
        return answers[0]
    merged: dict[str, Any] = {}
    for name in schema.model_fields:
        values = [getattr(answer, name) for answer in answers]
        if all(isinstance(value, list) for value in values):
            seen: set[Any] = set()
            items: list[Any] = []
            for value in values:
                for item in value:
                    key = _identity(item)
                    if key not in seen:
                        seen.add(key)
                        items.append(item)
            merged[name] = items
        else:
            merged[name] = next((v for v in values if v not in (None, "", [])), values[0])
    return schema.model_validate(
        {k: [_dump(i) for i in v] if isinstance(v, list) else _dump(v) for k, v in merged.items()}
    )


def _dump(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def _identity(item: Any) -> Any:
    """Two chunks' records are one when they have the same type, evidence and names.

    Content beyond that may differ between two readings of the same passage;
    two records that share evidence but name different people, or differ in a
    closed choice such as a stance's topic, stay apart.
    """
    if isinstance(item, BaseModel):
        evidence = getattr(item, "evidence", None)
        if isinstance(evidence, list) and evidence:
            names = frozenset(normalize(value) for _, kind, value in marked_values(item) if kind == NAME)
            # Closed choices (a stance's topic, say) tell apart records that share a passage.
            choices = tuple((key, value) for key, value in item if isinstance(value, Enum))
            return type(item).__name__, frozenset(normalize(e) for e in evidence), names, choices
        return type(item).__name__, item.model_dump_json()
    return repr(item)
