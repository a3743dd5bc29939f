"""Text normalization that remembers where every character came from.

Two texts that differ only by whitespace, quote marks (single or double,
straight or typographic: all fold to one apostrophe), dashes, letter case
or diacritics normalize to the same string, and every character of the
normalized string maps back to the index of the original character that
produced it, so a match in normalized text becomes a span of the original.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import lru_cache

__all__ = ["NormalizedText", "is_word_continuation", "name_tokens", "normalize"]

# Single and double, straight and typographic quote marks (and the primes and
# accents typed for them) are one mark: 'special message' is "special message".
_QUOTES = dict.fromkeys("'‘’‚‛′`´ʼʹ\"“”„‟″«»‹›＂＇〝〞〟", "'")
_DASHES = dict.fromkeys("-‐‑‒–—―−﹘﹣－", "-")
# Zero-width characters, soft hyphen, Arabic tatweel, and the transliteration marks for ayn and hamza.
# A "plain" run is printable ASCII other than the backtick (which folds to an
# apostrophe), words joined by single spaces: it normalizes to itself lowercased,
# its double quotes folded to apostrophes.
_SEGMENTS = re.compile(r"(?P<plain>[!-_a-~]+(?: [!-_a-~]+)*)|(?P<other>.)", re.DOTALL)
_DROPPED = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u0640\u02be\u02bf")


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One character's normalized form: "" (dropped), " " (space) or folded text."""
    if char in _DROPPED:
        return ""
    if char.isspace():
        return " "
    mapped = _QUOTES.get(char) or _DASHES.get(char)
    if mapped:
        return mapped
    if unicodedata.category(char).startswith("N"):
        # Numbers keep their identity: NFKD would turn ½ into 1⁄2 and let "11" match "1½".
        return char
    decomposed = unicodedata.normalize("NFKD", char)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    # Compatibility forms that stand for whole words (ﷺ) are not letters to fold.
    return folded if len(folded) <= 3 else char.casefold()


class NormalizedText:
    """A normalized copy of ``original`` with a map back to original indices."""

    __slots__ = ("original", "sources", "text")

    def __init__(self, original: str) -> None:
        self.original = original
        chars: list[str] = []
        sources: list[int] = []
        pending_space = False
        # Plain ASCII runs are the bulk of most articles: they are lowercased
        # and mapped a run at a time, the rest char by char.
        for match in _SEGMENTS.finditer(original):
            start = match.start()
            if match.lastgroup == "plain":
                if pending_space:
                    chars.append(" ")
                    sources.append(start - 1)
                    pending_space = False
                chars.append(match.group().lower().replace('"', "'"))
                sources.extend(range(start, match.end()))
                continue
            char = match.group()
            folded = _fold(char)
            if folded == " ":
                pending_space = bool(chars)
                continue
            if not folded:
                continue
            if pending_space:
                chars.append(" ")
                sources.append(start - 1)
                pending_space = False
            chars.append(folded)
            sources.extend([start] * len(folded))
        self.text = "".join(chars)
        #: sources[k] is the index in ``original`` of the character behind text[k].
        self.sources = sources

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of ``original`` behind ``text[start:end]`` (end exclusive, non-empty).

        The span keeps the combining marks that belong to its last character.
        """
        begin, stop = self.sources[start], self.sources[end - 1] + 1
        while stop < len(self.original) and is_word_continuation(self.original[stop]):
            stop += 1
        return begin, stop

    def normalized_index(self, original_index: int) -> int:
        """The first position of ``text`` that comes from ``original_index`` or later."""
        return bisect.bisect_left(self.sources, original_index)


def is_word_continuation(char: str) -> bool:
    """Combining marks and joiners continue the word before them (José, كتبَ, می‌خواهد)."""
    return unicodedata.category(char).startswith("M") or char in "\u200c\u200d"


@lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    # Cached: an answer's excerpts and names are normalized again at each grounding pass.
    return NormalizedText(text).text


_TOKEN = re.compile(r"\w+")
_VOWELS = str.maketrans("", "", "aeiouy")
# Particles that transliterations keep, drop or attach differently.
_PARTICLES = frozenset({"al", "el", "ul", "bin", "ibn", "abu", "the", "of", "and", "a", "an"})


def _skeleton(token: str) -> str:
    """Consonants with doubles collapsed: Qaani/Qani -> qn, Hezbollah/Hizbullah -> hzblh."""
    stripped = token.translate(_VOWELS) or token
    return re.sub(r"(.)\1+", r"\1", stripped)


def name_tokens(text: str) -> list[str]:
    """The significant tokens of a name, in transliteration-tolerant form.

    Apostrophes inside words are removed (Kata'ib -> kataib), hyphens split
    (al-Ameri -> al ameri), particles are ignored, and Latin-script tokens are
    reduced to their consonant skeleton.
    """
    # A possessive is the same name ("al-Sadr's"); other apostrophes vanish (Kata'ib).
    folded = re.sub(r"'s\b", "", normalize(text)).replace("'", "")
    tokens = []
    for token in _TOKEN.findall(folded):
        if token in _PARTICLES:
            continue
        if token.isascii():
            # A plural is the same name for this purpose ("ministers" / "minister").
            tokens.append(_skeleton(token[:-1] if len(token) >= 6 and token.endswith("s") else token))
        else:
            tokens.append(token)
    return tokens
