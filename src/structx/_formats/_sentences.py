"""Numbering an article's sentences for formats that cite evidence by number.

News text is split first into lines (a headline, a dateline, a byline or a
photo credit rarely ends with a full stop) and then, within a line, after
``.``, ``!``, ``?`` (Latin or Arabic) and any closing quotes or brackets when
the next word starts a sentence. A full stop after a known abbreviation
("Mr.", "Gen.", "Jan.") or a single letter ("U.S.", "J. Smith") does not end
a sentence, nor does one followed by a lower-case word or a digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Sentence", "number_sentences", "render_numbered"]


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: ``text == article[start:end]``, numbered from 1."""

    number: int
    start: int
    end: int
    text: str


# Candidate ends: terminal punctuation, closing quotes or brackets, then whitespace.
_END = re.compile(r"[.!?؟…]+[\"'”’»)\]]*(?=\s)")
_ABBREVIATION_WORDS = (
    "mr mrs ms dr prof gen lt col maj capt cpt sgt cmdr adm brig sen rep gov pres amb rev st jr sr "
    "inc co corp ltd bros no nos vs etc al approx dept est fig jan feb mar apr jun jul aug sep sept oct nov dec "
    "mon tue tues wed thu thur thurs fri sat sun"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_WORD_BEFORE = re.compile(r"([\w.]+)$")


def _ends_sentence(line: str, end_match: re.Match[str]) -> bool:
    punctuation = end_match.group()
    if punctuation[0] == ".":
        before = _WORD_BEFORE.search(line, 0, end_match.start())
        word = before.group(1).lower() if before else ""
        # "U.S." and "J." are initials; "Gen." and "Jan." abbreviations.
        if word and (len(word.rstrip(".")) == 1 or "." in word or word in _ABBREVIATIONS):
            return _starts_new_sentence(line, end_match.end(), strict=True)
    return _starts_new_sentence(line, end_match.end(), strict=False)


def _starts_new_sentence(line: str, position: int, *, strict: bool) -> bool:
    rest = line[position:].lstrip()
    if not rest:
        return True
    first = rest[0]
    if strict:
        # After an abbreviation only a quote opening a new sentence is a safe cut.
        return first in '"“‘«' and len(rest) > 1 and rest[1].isupper()
    return not (first.islower() or first.isdigit() or first in ",;:)]")


@lru_cache(maxsize=16)
def number_sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of ``text`` in order, numbered from 1; each slices ``text`` exactly.

    Blank stretches belong to no sentence; every other character belongs to exactly one.
    """
    spans: list[tuple[int, int]] = []
    line_start = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        cut = 0
        for match in _END.finditer(body):
            if _ends_sentence(body, match):
                spans.append((line_start + cut, line_start + match.end()))
                cut = match.end()
        spans.append((line_start + cut, line_start + len(body)))
        line_start += len(line)
    sentences: list[Sentence] = []
    for start, end in spans:
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        start += len(piece) - len(piece.lstrip())
        end = start + len(stripped)
        sentences.append(Sentence(len(sentences) + 1, start, end, text[start:end]))
    return tuple(sentences)


def render_numbered(sentences: tuple[Sentence, ...]) -> str:
    """The sentences as the model sees them: ``[n] text``, one a line."""
    return "\n".join(f"[{s.number}] {s.text}" for s in sentences)
