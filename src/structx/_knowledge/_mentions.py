"""Mentions: every person, organisation and place a record names, with where it came from.

A mention is one name in one field of one record: the article id, the record
path (``visits[0]``, ``visits[0].met_with[1]``, ``meetings[0].participants[2]``;
``""`` for the article's own fields such as ``outlet``), the field, the
surface text as written, and its character span in the article when the
article text is at hand (inside the record's evidence first, else its first
occurrence). Fields are recognised by name, so any schema that uses the same
field names is read the same way:

* people: ``visitor``, ``met_with``, ``speaker``, and ``name`` (a meeting's
  participant, a quoted source);
* organisations: ``visitor_organisation``, ``organisation`` /
  ``organization``, ``militia``, ``affiliation``, ``outlet``;
* places: ``city``, ``country``, ``place``, ``location``.

A name in a people field is an *anonymous source* when its record says
``anonymous: true`` or when it describes instead of naming ("a senior Iraqi
official", "militia leaders in Iraq", "the Egyptian foreign minister"); it is
an organisation when it is an acronym ("the US") or names a kind of body
("Government of Egypt"): meetings have states and delegations for parties.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from structx._knowledge._articles import Article
from structx._knowledge._names import descriptive_tail, is_description, split_parenthetical, tokens
from structx._text import normalize

__all__ = ["EntityType", "Mention", "extract_mentions"]


class EntityType(StrEnum):
    """What a mention names."""

    PERSON = "person"
    ORGANISATION = "organisation"
    PLACE = "place"
    ANONYMOUS = "anonymous"  # an anonymous source or an unnamed party: "a senior Iraqi official"


PERSON_FIELDS = frozenset({"visitor", "met_with", "speaker", "name"})
ORGANISATION_FIELDS = frozenset(
    {"visitor_organisation", "organisation", "organization", "militia", "affiliation", "outlet"}
)
PLACE_FIELDS = frozenset({"city", "country", "place", "location"})
_NAME_FIELDS = PERSON_FIELDS | ORGANISATION_FIELDS | PLACE_FIELDS
# Words that make a name in a people field the name of a body.
_BODY_WORDS_WORDS = """\
government ministry force army militia organization organisation brigade party movement council delegation
embassy police agency office committee commission institute company news media group parliament cabinet
coalition alliance front administration
"""
_BODY_WORDS = frozenset(_BODY_WORDS_WORDS.split())


@dataclass(frozen=True, slots=True)
class Mention:
    """One name in one field of one record (see the module docstring)."""

    article_id: str
    record_path: str
    field: str
    surface: str
    type: EntityType
    named: bool  # False for descriptions ("a senior Iraqi official", "pro-Iranian militias")
    start: int | None
    end: int | None

    @property
    def mention_id(self) -> str:
        key = f"{self.article_id}\x1f{self.record_path}\x1f{self.field}\x1f{self.surface}"
        return "m_" + hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def names(self) -> list[str]:
        """The names this surface gives: "A (B)" gives both, "the X militia" gives "X"."""
        parts = split_parenthetical(self.surface)
        names = [descriptive_tail(part) if not is_description(part) else part for part in parts]
        named = [name for name in names if not is_description(name)]
        return named or [self.surface]


def _type_of(field: str, surface: str, record: Mapping[str, Any]) -> tuple[EntityType, bool] | None:
    named = any(not is_description(part) for part in split_parenthetical(surface))
    if field in PLACE_FIELDS:
        return EntityType.PLACE, named
    if field in ORGANISATION_FIELDS:
        return EntityType.ORGANISATION, named
    if field in PERSON_FIELDS:
        if record.get("anonymous") is True or not named:
            return EntityType.ANONYMOUS, False
        if _names_a_body(surface):
            return EntityType.ORGANISATION, True
        return EntityType.PERSON, True
    return None


def _names_a_body(surface: str) -> bool:
    words = [w for w in surface.replace("-", " ").split() if w.lower() != "the"]
    if words and all(w.strip(".,()").isupper() and len(w.strip(".,()")) >= 2 for w in words):
        return True
    return any(token.text in _BODY_WORDS for token in tokens(surface))


def extract_mentions(article: Article) -> list[Mention]:
    """Every name the article's records hold, in record order."""
    mentions = []
    for path, field, surface, record in _walk(article.records, ""):
        typed = _type_of(field, surface, record)
        if typed is None:
            continue
        kind, named = typed
        span = None
        if article.text is not None:
            top = _record_of(path)
            within = article.evidence_spans(top, _record_at(article.records, top))
            for candidate in dict.fromkeys([surface, *split_parenthetical(surface)]):
                span = article.find(candidate, within)
                if span:
                    break
        mentions.append(
            Mention(article.id, path, field, surface, kind, named, span[0] if span else None, span[1] if span else None)
        )
    return mentions


def _record_of(path: str) -> str:
    """The record a path lies in: ``visits[0].met_with[1]`` -> ``visits[0]``."""
    head, _, _ = path.partition(".")
    return head


def _record_at(records: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The record at ``name[index]`` (the answer itself for ``""``)."""
    name, _, index = path.partition("[")
    if not index:
        return records
    items = records.get(name)
    position = int(index.rstrip("]"))
    if isinstance(items, list) and position < len(items) and isinstance(items[position], Mapping):
        return items[position]  # type: ignore[no-any-return]
    return {}


def _walk(value: Mapping[str, Any], path: str) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(record path, field, surface, record) for every non-blank string in a named field."""
    for key, item in value.items():
        if key == "evidence":
            continue
        if isinstance(item, str):
            if key in _NAME_FIELDS and normalize(item).strip():
                yield path, key, item.strip(), value
        elif isinstance(item, Mapping):
            yield from _walk(item, f"{path}.{key}" if path else key)
        elif isinstance(item, list):
            for index, element in enumerate(item):
                where = f"{path}.{key}[{index}]" if path else f"{key}[{index}]"
                if isinstance(element, Mapping):
                    yield from _walk(element, where)
                elif isinstance(element, str) and key in _NAME_FIELDS and normalize(element).strip():
                    yield where, key, element.strip(), value
