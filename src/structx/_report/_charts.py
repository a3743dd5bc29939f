"""Geometry of the drawings the report makes on the server: the visit timeline and the meetings graph.

Both are SVG written into the page (no script library, nothing fetched), so
they show without JavaScript and from disk. This module only computes
positions and labels; the templates write the elements, which escapes every
label. Layouts are deterministic: the same dataset draws the same picture.

* **Timeline.** One lane per visitor; a visit is a bar over the interval
  every report of it allows, drawn at its precision: a day is a solid
  block, a week or part of a month a lighter bar, a month, season or year a
  pale dashed one, so a vague date never looks like a precise one. Each
  report's own interval is a thin line under the bar. Visits that overlap
  within a lane go on separate rows. Undated visits cannot be placed and
  are listed under the drawing.
* **Meetings graph.** Bipartite: meetings (in time order) on the left, the
  entities that took part on the right, ordered by the mean position of
  their meetings so that lines cross little; a line joins a participant to
  each meeting it attended.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from structx._knowledge._dataset import Dataset
from structx._knowledge._rows import MeetingRow, RecordRef, VisitRow

__all__ = ["Graph", "Timeline", "meetings_graph", "visit_timeline"]

#: Link to a record of an article (its card on the article page), or None when the article is not in the report.
RecordLink = Callable[[RecordRef], str | None]

_LABEL_WIDTH = 190
_PLOT_WIDTH = 760
_ROW = 22
_LANE_GAP = 10
_AXIS = 34

#: How vague each precision is, for the drawing (0 = a day).
PRECISION_STYLE = {
    "day": "p-day",
    "week": "p-near",
    "part_of_month": "p-near",
    "range": "p-near",
    "month": "p-vague",
    "season": "p-vague",
    "year": "p-vague",
}


@dataclass(slots=True)
class Bar:
    x: float
    y: float
    width: float
    style: str
    title: str
    href: str | None
    reports: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, width of each report's own


@dataclass(slots=True)
class Lane:
    label: str
    href: str | None
    y: float
    height: float


@dataclass(slots=True)
class Tick:
    x: float
    label: str


@dataclass(slots=True)
class Timeline:
    width: int
    height: int
    plot_left: int
    axis_y: float
    lanes: list[Lane]
    bars: list[Bar]
    ticks: list[Tick]
    undated: list[VisitRow]
    dated: int


def _visit_title(visit: VisitRow) -> str:
    where = ", ".join([*visit.cities, *visit.countries]) or "place not given"
    when = "; ".join(visit.when_texts) or "no date in the text"
    interval = f"{visit.start} to {visit.end}" if visit.start and visit.end else "not on the calendar"
    return f"{visit.visitor} in {where}: {interval} ({visit.precision or 'no precision'}), written {when!r}"


def visit_timeline(dataset: Dataset, entity_link: Callable[[str], str | None], record_link: RecordLink) -> Timeline:
    dated = [v for v in dataset.visits if v.start is not None and v.end is not None]
    undated = [v for v in dataset.visits if v.start is None or v.end is None]
    if not dated:
        return Timeline(_LABEL_WIDTH + _PLOT_WIDTH + 20, _AXIS + 10, _LABEL_WIDTH, _AXIS - 6, [], [], [], undated, 0)
    first = min(v.start for v in dated if v.start is not None)
    last = max(v.end for v in dated if v.end is not None)
    first, last = first - dt.timedelta(days=3), last + dt.timedelta(days=4)
    days = max((last - first).days, 1)

    def x(day: dt.date) -> float:
        return _LABEL_WIDTH + _PLOT_WIDTH * (day - first).days / days

    lanes: list[Lane] = []
    bars: list[Bar] = []
    by_visitor: dict[str, list[VisitRow]] = defaultdict(list)
    for visit in dated:
        by_visitor[visit.visitor_entity_id].append(visit)
    y = float(_AXIS)
    order = sorted(by_visitor.items(), key=lambda item: (-len(item[1]), item[1][0].visitor.casefold()))
    for entity_id, visits in order:
        rows_end: list[float] = []  # right edge of the last bar on each row
        placed: list[tuple[VisitRow, int]] = []
        for visit in sorted(visits, key=lambda v: (v.start, v.end)):
            assert visit.start is not None and visit.end is not None
            left = x(visit.start)
            row = next((i for i, edge in enumerate(rows_end) if edge + 2 <= left), len(rows_end))
            right = max(x(visit.end + dt.timedelta(days=1)), left + 6)
            if row == len(rows_end):
                rows_end.append(right)
            else:
                rows_end[row] = right
            placed.append((visit, row))
        height = len(rows_end) * _ROW
        lanes.append(Lane(visits[0].visitor, entity_link(entity_id), y, height))
        for visit, row in placed:
            assert visit.start is not None and visit.end is not None
            left = x(visit.start)
            width = max(x(visit.end + dt.timedelta(days=1)) - left, 6.0)
            top = y + row * _ROW + 3
            link = next((record_link(ref) for ref in visit.supporting_records if record_link(ref)), None)
            bar = Bar(
                left, top, width, PRECISION_STYLE.get(visit.precision or "", "p-vague"), _visit_title(visit), link
            )
            for interval in visit.intervals:
                begin, _, end = interval.partition("/")
                try:
                    own_start, own_end = dt.date.fromisoformat(begin), dt.date.fromisoformat(end)
                except ValueError:
                    continue
                own_left = x(max(own_start, first))
                bar.reports.append((own_left, top + 15, max(x(min(own_end, last)) - own_left, 2.0)))
            bars.append(bar)
        y += height + _LANE_GAP
    return Timeline(
        _LABEL_WIDTH + _PLOT_WIDTH + 20, int(y) + 4, _LABEL_WIDTH, _AXIS - 6, lanes, bars, _ticks(first, last, x),
        undated, len(dated)
    )  # fmt: skip


def _ticks(first: dt.date, last: dt.date, x: Callable[[dt.date], float]) -> list[Tick]:
    """Month starts (every Nth, so labels do not crowd), or years for a long span."""
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    step = next(s for s in (1, 2, 3, 6, 12, 24, 60, 120, 10**9) if months / s <= 8)
    ticks = []
    year, month = first.year, first.month
    while True:
        day = dt.date(year, month, 1)
        if day > last:
            break
        index = year * 12 + month - 1
        if day >= first and index % step == 0:
            ticks.append(Tick(x(day), str(year) if step >= 12 else day.strftime("%b %Y")))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return ticks


@dataclass(slots=True)
class Node:
    x: float
    y: float
    label: str
    title: str
    href: str | None
    kind: str  # "meeting" or an entity type


@dataclass(slots=True)
class Graph:
    width: int
    height: int
    meetings: list[Node]
    participants: list[Node]
    edges: list[tuple[float, float, float, float]]


def _meeting_label(meeting: MeetingRow) -> str:
    when = (
        str(meeting.start)
        if meeting.start and meeting.start == meeting.end
        else (f"{meeting.start} to {meeting.end}" if meeting.start else "; ".join(meeting.when_texts) or "undated")
    )
    place = ", ".join(meeting.places)
    return f"{when}, {place}" if place else when


def _short(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def meetings_graph(dataset: Dataset, entity_link: Callable[[str], str | None], record_link: RecordLink) -> Graph:
    meetings = sorted(dataset.meetings, key=lambda m: (m.start is None, m.start or dt.date.min, m.meeting_id))
    position = {m.meeting_id: i for i, m in enumerate(meetings)}
    attended: dict[str, list[int]] = defaultdict(list)
    names: dict[str, tuple[str, str]] = {}
    for row in dataset.meeting_participants:
        if row.meeting_id in position:
            attended[row.entity_id].append(position[row.meeting_id])
            names[row.entity_id] = (row.name, row.type)
    people = sorted(attended, key=lambda e: (sum(attended[e]) / len(attended[e]), names[e][0].casefold()))
    rows = max(len(meetings), len(people), 1)
    height = rows * _ROW + 20
    left_x, right_x = 330.0, 610.0

    def ys(count: int) -> list[float]:
        return [10 + (i + 0.5) * (rows * _ROW) / count for i in range(count)]

    meeting_nodes = [
        Node(
            left_x,
            y,
            _short(_meeting_label(m)),
            f"{_meeting_label(m)}: {', '.join(m.participants)}; topics: {', '.join(m.topics) or 'none given'}",
            next((record_link(ref) for ref in m.supporting_records if record_link(ref)), None),
            "meeting",
        )
        for m, y in zip(meetings, ys(len(meetings)), strict=True)
    ]
    participant_nodes = [
        Node(right_x, y, _short(names[e][0]), f"{names[e][0]} ({names[e][1]}): {len(attended[e])} meeting(s)",
             entity_link(e), names[e][1])
        for e, y in zip(people, ys(len(people)), strict=True)
    ]  # fmt: skip
    at = {e: node.y for e, node in zip(people, participant_nodes, strict=True)}
    edges = [
        (left_x, meeting_nodes[position[row.meeting_id]].y, right_x, at[row.entity_id])
        for row in dataset.meeting_participants
        if row.meeting_id in position
    ]
    return Graph(940, height, meeting_nodes, participant_nodes, edges)


def dated_order(rows: Sequence[VisitRow]) -> list[VisitRow]:
    """Visits in time order, undated ones last."""
    return sorted(rows, key=lambda v: (v.start is None, v.start or dt.date.min, v.visit_id))
