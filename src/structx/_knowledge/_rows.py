"""The dataset's rows: one frozen dataclass per table, every row traceable to the articles behind it.

Fields that hold several values (the forms an entity is written in, the
places a merged visit was reported at, the records that support an event)
are tuples; SQLite stores them as JSON text, Parquet as lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from structx._knowledge._entities import Entity, UndecidedPair

__all__ = [
    "Entity",
    "MeetingParticipantRow",
    "MeetingRow",
    "MentionRow",
    "QuoteRow",
    "RecordRef",
    "SourceRow",
    "StanceRow",
    "UndecidedPair",
    "VisitRow",
]


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One record of one article: ``visits[0]`` of ``004_75ce37bffc8d8123``."""

    article_id: str
    record_path: str


@dataclass(frozen=True, slots=True)
class MentionRow:
    """A name written in a record, the entity it resolved to, and where it stands in the article."""

    mention_id: str
    entity_id: str
    type: str
    surface: str
    article_id: str
    record_path: str
    field: str
    named: bool
    start: int | None  # article[start:end] is the name, when the article text was at hand and holds it
    end: int | None


@dataclass(frozen=True, slots=True)
class VisitRow:
    """A visit, merged across the records (and articles) that report it.

    ``start``/``end`` is the interval every report agrees on; ``intervals``
    keeps each report's own (``YYYY-MM-DD/YYYY-MM-DD``, or ``?`` when
    unresolved), and ``cities``/``countries`` every place reported, side by side.
    """

    visit_id: str
    visitor_entity_id: str
    visitor: str
    start: dt.date | None
    end: dt.date | None
    precision: str | None
    when_texts: tuple[str, ...]
    intervals: tuple[str, ...]
    cities: tuple[str, ...]
    countries: tuple[str, ...]
    organisations: tuple[str, ...]
    disclosures: tuple[str, ...]
    purposes: tuple[str, ...]
    met_with: tuple[str, ...]
    met_with_entity_ids: tuple[str, ...]
    corroboration: int  # distinct articles
    article_ids: tuple[str, ...]
    supporting_records: tuple[RecordRef, ...]


@dataclass(frozen=True, slots=True)
class MeetingRow:
    """A meeting, merged across the records that report it (participants in ``meeting_participants``)."""

    meeting_id: str
    start: dt.date | None
    end: dt.date | None
    precision: str | None
    when_texts: tuple[str, ...]
    intervals: tuple[str, ...]
    places: tuple[str, ...]
    participants: tuple[str, ...]
    participant_entity_ids: tuple[str, ...]
    topics: tuple[str, ...]
    messages: tuple[str, ...]
    outcomes: tuple[str, ...]
    corroboration: int
    article_ids: tuple[str, ...]
    supporting_records: tuple[RecordRef, ...]


@dataclass(frozen=True, slots=True)
class MeetingParticipantRow:
    """One entity taking part in one merged meeting, as each report describes it."""

    meeting_id: str
    entity_id: str
    name: str
    type: str
    surfaces: tuple[str, ...]
    organisations: tuple[str, ...]
    roles: tuple[str, ...]
    article_ids: tuple[str, ...]
    supporting_records: tuple[RecordRef, ...]


@dataclass(frozen=True, slots=True)
class StanceRow:
    """One cell entry of the stance matrix: a militia's position on a topic, dated by its article.

    ``previous_position`` is the position of the militia's previous dated
    entry on the same topic, so a change over time shows as ``changed``.
    """

    stance_id: str
    militia_entity_id: str
    militia: str
    topic: str
    position: str
    date: dt.date | None
    previous_position: str | None
    changed: bool
    speaker_entity_id: str | None
    speaker: str | None
    summary: str | None
    quote: str | None
    article_id: str
    record_path: str
    quote_start: int | None
    quote_end: int | None


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A quoted source (an entity; an anonymous one per article), the outlets that quoted it, how often."""

    entity_id: str
    name: str
    type: str
    anonymous: bool
    article_id: str | None
    roles: tuple[str, ...]
    affiliations: tuple[str, ...]
    outlets: tuple[str, ...]
    quote_count: int
    article_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuoteRow:
    """What a source said, in which article and outlet, and where the words stand in the article."""

    quote_id: str
    source_entity_id: str
    source: str
    quote: str
    topic: str | None
    outlet: str | None
    role: str | None
    affiliation: str | None
    published: dt.date | None
    article_id: str
    record_path: str
    start: int | None
    end: int | None
