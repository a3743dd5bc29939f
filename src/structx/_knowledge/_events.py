"""Events merged across articles, the stance matrix, and the source index.

* **Dates.** Each visit's and meeting's ``when`` is placed on the calendar
  with ``resolve_date``, anchored on the article's publication date and on
  the interval of the event the article dated just before (records taken in
  the order their dates appear in the article). When the rules leave it
  unresolved, the ISO dates the record itself gives are used; otherwise it
  stays unresolved: nothing is guessed.
* **Visits** are one event when they have the same visitor entity, places
  that do not contradict each other (the same country or one unknown; two
  different cities with no country at all do contradict), and intervals that
  overlap. An unresolved interval overlaps nothing, so undated visits stay
  apart. Every pair in a merged visit must agree, as for entities. The event's
  interval is the one all its reports share; each report's own interval,
  city and country stay listed side by side.
* **Meetings** are one event when their participants overlap substantially
  (Jaccard >= 0.5 over participant entities; unnamed participants are never
  shared across articles, so they count against the overlap), at places
  that do not contradict and at overlapping intervals.
* **Stances** form a matrix militia entity x topic -> positions, each dated
  by its article's publication date and ordered in time, with the position
  held before, so a change shows.
* **Sources**: each quoted person or body (an anonymous source: per article)
  with the outlets that quoted it (the one the article names as the
  interviewer, else the article's own outlet) and every quote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from structx._knowledge._articles import Article
from structx._knowledge._dates import DateInterval, DatePrecision, resolve_date
from structx._knowledge._entities import Entity
from structx._knowledge._mentions import EntityType
from structx._knowledge._rows import (
    MeetingParticipantRow,
    MeetingRow,
    QuoteRow,
    RecordRef,
    SourceRow,
    StanceRow,
    VisitRow,
)

__all__ = ["Events", "build_events"]

MEETING_JACCARD = 0.5


class MentionIndex:
    """The entity of each (article, record path, field)."""

    def __init__(self, entity_at: Mapping[tuple[str, str, str], str], entities: Mapping[str, Entity]) -> None:
        self._at = entity_at
        self.entities = entities

    def entity(self, article_id: str, path: str, field: str) -> Entity | None:
        entity_id = self._at.get((article_id, path, field))
        return self.entities.get(entity_id) if entity_id else None

    def name(self, article_id: str, path: str, field: str, fallback: Any) -> str | None:
        entity = self.entity(article_id, path, field)
        if entity is not None:
            return entity.canonical_name
        return _text(fallback)


@dataclass(slots=True)
class Events:
    visits: list[VisitRow]
    meetings: list[MeetingRow]
    meeting_participants: list[MeetingParticipantRow]
    stances: list[StanceRow]
    sources: list[SourceRow]
    quotes: list[QuoteRow]


@dataclass(slots=True)
class _Report:
    """One visit or meeting record, placed on the calendar."""

    article: Article
    path: str
    record: Mapping[str, Any]
    interval: DateInterval

    @property
    def ref(self) -> RecordRef:
        return RecordRef(self.article.id, self.path)


def build_events(articles: Sequence[Article], index: MentionIndex) -> Events:
    """Visits, meetings, stances and sources from the articles' records."""
    reports = {article.id: _dated_reports(article) for article in articles}
    visits = _visits(articles, reports, index)
    meetings, participants = _meetings(articles, reports, index)
    stances = _stances(articles, index)
    sources, quotes = _sources(articles, index)
    return Events(visits, meetings, participants, stances, sources, quotes)


def _records(article: Article, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    items = article.records.get(kind)
    if not isinstance(items, list):
        return []
    return [(f"{kind}[{i}]", item) for i, item in enumerate(items) if isinstance(item, Mapping)]


def _text(value: Any) -> str | None:
    """A record's free-text field: its text, or None (a model may put anything anywhere)."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _when_text(record: Mapping[str, Any]) -> str | None:
    when = record.get("when")
    return _text(when.get("text")) if isinstance(when, Mapping) else None


def _iso(value: Any) -> dt.date | None:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _dated_reports(article: Article) -> dict[str, _Report]:
    """Every visit and meeting of the article, resolved in the order the article dates them."""
    items = _records(article, "visits") + _records(article, "meetings")

    def position(item: tuple[int, tuple[str, Mapping[str, Any]]]) -> tuple[int, int]:
        order, (path, record) = item
        spans = article.evidence_spans(path, record) if article.text else []
        text = _when_text(record)
        found = article.find(text, spans) if text and article.text else None
        start = found[0] if found else (min(s for s, _ in spans) if spans else 10**12)
        return start, order

    reports: dict[str, _Report] = {}
    previous: DateInterval | None = None
    for _, (path, record) in sorted(enumerate(items), key=position):
        text = _when_text(record)
        if text is None:
            interval = DateInterval(None, None, None, reason="no date given")
        else:
            interval = resolve_date(text, article.published, previous=previous)
        when = record.get("when")
        if not interval.resolved and isinstance(when, Mapping) and _iso(when.get("start")):
            start = _iso(when.get("start"))
            end = _iso(when.get("end")) or start
            assert start is not None and end is not None
            precision = DatePrecision.DAY if start == end else DatePrecision.RANGE
            interval = DateInterval(start, end, precision)
        if text is not None:
            previous = interval
        reports[path] = _Report(article, path, record, interval)
    return reports


def _interval_text(interval: DateInterval) -> str:
    if not interval.resolved:
        return "?"
    return f"{interval.start}/{interval.end}"


def _shared(intervals: Sequence[DateInterval]) -> tuple[dt.date | None, dt.date | None, str | None]:
    """The interval every report allows (pairwise overlapping intervals share one), and its precision."""
    resolved = [i for i in intervals if i.resolved]
    if not resolved:
        return None, None, None
    start = max(i.start for i in resolved if i.start is not None)
    end = min(i.end for i in resolved if i.end is not None)
    narrowest = min(resolved, key=lambda i: (i.end - i.start) if i.end and i.start else dt.timedelta.max)
    return start, end, narrowest.precision.value if narrowest.precision else None


def _event_id(prefix: str, refs: Sequence[RecordRef]) -> str:
    key = "\x1f".join(sorted(f"{r.article_id}\x1e{r.record_path}" for r in refs))
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:12]


def _distinct(values: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _cluster(items: Sequence[_Report], compatible: Callable[[_Report, _Report], bool]) -> list[list[_Report]]:
    """Reports in time order, each joining the first cluster whose every member it is compatible with.

    Compatibility requires overlapping intervals, so an undated report is a cluster of its own, and a
    report is checked only against clusters whose shared interval it overlaps (intervals that overlap
    pairwise share one, and the reports come by start date, so a cluster ending earlier is done with).
    """
    clusters: list[list[_Report]] = []
    open_clusters: list[tuple[list[_Report], dt.date, dt.date]] = []  # members, shared start, shared end
    ordered = sorted(
        items,
        key=lambda r: (r.interval.start is None, r.interval.start or dt.date.min, r.article.order, r.path),
    )
    for report in ordered:
        start, end = report.interval.start, report.interval.end
        if start is None or end is None:
            clusters.append([report])
            continue
        open_clusters = [entry for entry in open_clusters if entry[2] >= start]
        for index, (members, low, high) in enumerate(open_clusters):
            if low <= end and all(compatible(report, member) for member in members):
                members.append(report)
                open_clusters[index] = (members, max(low, start), min(high, end))
                break
        else:
            clusters.append([report])
            open_clusters.append((clusters[-1], start, end))
    return clusters


def _timeline_key(start: dt.date | None, name: str, first: RecordRef) -> tuple[bool, dt.date, str, str, str]:
    return (start is None, start or dt.date.min, name, first.article_id, first.record_path)


# -- visits --------------------------------------------------------------------------------------


def _visits(
    articles: Sequence[Article], reports: Mapping[str, Mapping[str, _Report]], index: MentionIndex
) -> list[VisitRow]:
    by_visitor: dict[str, list[_Report]] = defaultdict(list)
    for article in articles:
        for path, _ in _records(article, "visits"):
            visitor = index.entity(article.id, path, "visitor")
            if visitor is not None:
                by_visitor[visitor.entity_id].append(reports[article.id][path])

    def place(report: _Report, field: str) -> str | None:
        entity = index.entity(report.article.id, report.path, field)
        return entity.entity_id if entity else None

    def compatible(a: _Report, b: _Report) -> bool:
        if a.interval.overlaps(b.interval) is not True:
            return False
        country_a, country_b = place(a, "country"), place(b, "country")
        if country_a and country_b and country_a != country_b:
            return False
        city_a, city_b = place(a, "city"), place(b, "city")
        return not (not country_a and not country_b and city_a and city_b and city_a != city_b)

    rows = []
    for visitor_id, items in by_visitor.items():
        visitor = index.entities[visitor_id]
        for cluster in _cluster(items, compatible):
            refs = [r.ref for r in cluster]
            start, end, precision = _shared([r.interval for r in cluster])
            met = [
                (index.entity(r.article.id, f"{r.path}.met_with[{i}]", "met_with"), name)
                for r in cluster
                for i, name in enumerate(_list(r.record.get("met_with")))
            ]
            rows.append(
                VisitRow(
                    visit_id=_event_id("v_", refs),
                    visitor_entity_id=visitor_id,
                    visitor=visitor.canonical_name,
                    start=start,
                    end=end,
                    precision=precision,
                    when_texts=_distinct([_when_text(r.record) for r in cluster]),
                    intervals=tuple(_interval_text(r.interval) for r in cluster),
                    cities=_distinct([index.name(r.article.id, r.path, "city", r.record.get("city")) for r in cluster]),
                    countries=_distinct(
                        [index.name(r.article.id, r.path, "country", r.record.get("country")) for r in cluster]
                    ),
                    organisations=_distinct(
                        [
                            index.name(
                                r.article.id, r.path, "visitor_organisation", r.record.get("visitor_organisation")
                            )
                            for r in cluster
                        ]
                    ),
                    disclosures=_distinct([_text(r.record.get("disclosure")) for r in cluster]),
                    purposes=_distinct([_text(r.record.get("purpose")) for r in cluster]),
                    met_with=_distinct([e.canonical_name if e else _text(name) for e, name in met]),
                    met_with_entity_ids=_distinct([e.entity_id if e else None for e, _ in met]),
                    corroboration=len({r.article.id for r in cluster}),
                    article_ids=_distinct([r.article.id for r in cluster]),
                    supporting_records=tuple(refs),
                )
            )
    rows.sort(key=lambda v: _timeline_key(v.start, v.visitor, v.supporting_records[0]))
    return rows


# -- meetings ------------------------------------------------------------------------------------


def _participants(report: _Report, index: MentionIndex) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """entity id -> (participant path, participant) for the meeting's participants."""
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for i, person in enumerate(_list(report.record.get("participants"))):
        if not isinstance(person, Mapping):
            continue
        path = f"{report.path}.participants[{i}]"
        entity = index.entity(report.article.id, path, "name")
        if entity is not None:
            found.setdefault(entity.entity_id, (path, person))
    return found


def _meetings(
    articles: Sequence[Article], reports: Mapping[str, Mapping[str, _Report]], index: MentionIndex
) -> tuple[list[MeetingRow], list[MeetingParticipantRow]]:
    items = [reports[article.id][path] for article in articles for path, _ in _records(article, "meetings")]
    people = {id(r): _participants(r, index) for r in items}

    def place(report: _Report) -> str | None:
        entity = index.entity(report.article.id, report.path, "place")
        return entity.entity_id if entity else None

    def compatible(a: _Report, b: _Report) -> bool:
        if a.interval.overlaps(b.interval) is not True:
            return False
        place_a, place_b = place(a), place(b)
        if place_a and place_b and place_a != place_b:
            return False
        ours, theirs = set(people[id(a)]), set(people[id(b)])
        union = ours | theirs
        return bool(union) and len(ours & theirs) / len(union) >= MEETING_JACCARD

    rows: list[MeetingRow] = []
    participant_rows: list[MeetingParticipantRow] = []
    for cluster in _cluster(items, compatible):
        refs = [r.ref for r in cluster]
        meeting_id = _event_id("g_", refs)
        start, end, precision = _shared([r.interval for r in cluster])
        taking_part: dict[str, list[tuple[_Report, str, Mapping[str, Any]]]] = defaultdict(list)
        for report in cluster:
            for entity_id, (path, person) in people[id(report)].items():
                taking_part[entity_id].append((report, path, person))
        for entity_id, appearances in taking_part.items():
            entity = index.entities[entity_id]
            participant_rows.append(
                MeetingParticipantRow(
                    meeting_id=meeting_id,
                    entity_id=entity_id,
                    name=entity.canonical_name,
                    type=entity.type.value,
                    surfaces=_distinct([_text(p.get("name")) for _, _, p in appearances]),
                    organisations=_distinct(
                        [
                            index.name(r.article.id, path, "organisation", p.get("organisation"))
                            for r, path, p in appearances
                        ]
                    ),
                    roles=_distinct([_text(p.get("role")) for _, _, p in appearances]),
                    article_ids=_distinct([r.article.id for r, _, _ in appearances]),
                    supporting_records=tuple(RecordRef(r.article.id, path) for r, path, _ in appearances),
                )
            )
        topics = [_text(t) for r in cluster for t in _list(r.record.get("topics"))]
        rows.append(
            MeetingRow(
                meeting_id=meeting_id,
                start=start,
                end=end,
                precision=precision,
                when_texts=_distinct([_when_text(r.record) for r in cluster]),
                intervals=tuple(_interval_text(r.interval) for r in cluster),
                places=_distinct([index.name(r.article.id, r.path, "place", r.record.get("place")) for r in cluster]),
                participants=tuple(index.entities[e].canonical_name for e in taking_part),
                participant_entity_ids=tuple(taking_part),
                topics=_distinct(topics),
                messages=_distinct([_text(r.record.get("message")) for r in cluster]),
                outcomes=_distinct([_text(r.record.get("outcome")) for r in cluster]),
                corroboration=len({r.article.id for r in cluster}),
                article_ids=_distinct([r.article.id for r in cluster]),
                supporting_records=tuple(refs),
            )
        )
    rows.sort(key=lambda m: _timeline_key(m.start, ", ".join(m.participants), m.supporting_records[0]))
    return rows, participant_rows


# -- stances -------------------------------------------------------------------------------------


def _stances(articles: Sequence[Article], index: MentionIndex) -> list[StanceRow]:
    entries = []
    for article in articles:
        for path, record in _records(article, "militia_stances"):
            militia = index.entity(article.id, path, "militia")
            topic, position = record.get("topic"), record.get("position")
            if militia is None or not isinstance(topic, str) or not isinstance(position, str):
                continue
            entries.append((militia, topic, position, article, path, record))
    entries.sort(
        key=lambda e: (
            e[0].canonical_name,
            e[1],
            e[3].published is None,
            e[3].published or dt.date.min,
            e[3].order,
            e[4],
        )
    )
    rows = []
    held: dict[tuple[str, str], str] = {}
    for militia, topic, position, article, path, record in entries:
        previous = held.get((militia.entity_id, topic))
        if article.published is not None:
            held[(militia.entity_id, topic)] = position
        speaker = index.entity(article.id, path, "speaker")
        quote = _text(record.get("quote"))
        span = article.find(quote, article.evidence_spans(path, record)) if quote and article.text else None
        rows.append(
            StanceRow(
                stance_id=_event_id("s_", [RecordRef(article.id, path)]),
                militia_entity_id=militia.entity_id,
                militia=militia.canonical_name,
                topic=topic,
                position=position,
                date=article.published,
                previous_position=previous if article.published is not None else None,
                changed=article.published is not None and previous is not None and previous != position,
                speaker_entity_id=speaker.entity_id if speaker else None,
                speaker=index.name(article.id, path, "speaker", record.get("speaker")),
                summary=_text(record.get("summary")),
                quote=quote,
                article_id=article.id,
                record_path=path,
                quote_start=span[0] if span else None,
                quote_end=span[1] if span else None,
            )
        )
    return rows


# -- sources ------------------------------------------------------------------------------------


def _sources(articles: Sequence[Article], index: MentionIndex) -> tuple[list[SourceRow], list[QuoteRow]]:
    quotes: list[QuoteRow] = []
    for article in articles:
        article_outlet = index.name(article.id, "", "outlet", article.outlet)
        for path, record in _records(article, "quoted_sources"):
            source = index.entity(article.id, path, "name")
            said = _text(record.get("quote"))
            if source is None or said is None:
                continue
            span = article.find(said, article.evidence_spans(path, record)) if article.text else None
            outlet = index.name(article.id, path, "outlet", record.get("outlet")) or article_outlet
            quotes.append(
                QuoteRow(
                    quote_id=_event_id("q_", [RecordRef(article.id, path)]),
                    source_entity_id=source.entity_id,
                    source=source.canonical_name,
                    quote=said,
                    topic=_text(record.get("topic")),
                    outlet=outlet,
                    role=_text(record.get("role")),
                    affiliation=index.name(article.id, path, "affiliation", record.get("affiliation")),
                    published=article.published,
                    article_id=article.id,
                    record_path=path,
                    start=span[0] if span else None,
                    end=span[1] if span else None,
                )
            )
    by_source: dict[str, list[QuoteRow]] = defaultdict(list)
    for quote in quotes:
        by_source[quote.source_entity_id].append(quote)
    sources = []
    for entity_id, quoted in by_source.items():
        entity = index.entities[entity_id]
        sources.append(
            SourceRow(
                entity_id=entity_id,
                name=entity.canonical_name,
                type=entity.type.value,
                anonymous=entity.type is EntityType.ANONYMOUS,
                article_id=entity.article_id,
                roles=_distinct([q.role for q in quoted]),
                affiliations=_distinct([q.affiliation for q in quoted]),
                outlets=_distinct([q.outlet for q in quoted]),
                quote_count=len(quoted),
                article_ids=_distinct([q.article_id for q in quoted]),
            )
        )
    sources.sort(key=lambda s: (-s.quote_count, s.name, s.entity_id))
    return sources, quotes
