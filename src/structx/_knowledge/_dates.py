"""Dates on the calendar: a minimal stand-in with the shared interface (absolute dates only).

This file carries exactly the names the dates layer provides (``DatePrecision``,
``DateInterval``, ``resolve_date``, ``publication_date``) so that the rest of
the knowledge layer can place events in time. It resolves absolute dates only
(ISO ``2022-01-27``, ``January 27, 2022`` / ``Jan 27, 2022`` / ``27 January
2022``, ``January 2022``, a bare year); anything else stays unresolved with a
stated reason, because nothing is guessed. The full rule layer (relative
expressions, parts of months, seasons) replaces this file.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DateInterval", "DatePrecision", "publication_date", "resolve_date"]


class DatePrecision(StrEnum):
    """How precisely an interval places an event."""

    DAY = "day"
    WEEK = "week"
    PART_OF_MONTH = "part_of_month"
    MONTH = "month"
    SEASON = "season"
    YEAR = "year"
    RANGE = "range"  # two explicit dates


@dataclass(frozen=True, slots=True)
class DateInterval:
    """An inclusive interval of days, or an empty one with the reason it could not be resolved."""

    start: dt.date | None
    end: dt.date | None  # inclusive
    precision: DatePrecision | None
    reason: str | None = None

    @property
    def resolved(self) -> bool:
        return self.start is not None and self.end is not None

    def overlaps(self, other: DateInterval) -> bool | None:
        """Whether the two intervals share a day; None when either is unresolved."""
        if not (self.resolved and other.resolved):
            return None
        assert self.start is not None and self.end is not None and other.start is not None and other.end is not None
        return self.start <= other.end and other.start <= self.end


_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ISO = re.compile(r"\b(?P<year>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b")
_MONTH_DAY_YEAR = re.compile(_MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})\b", re.IGNORECASE)
_DAY_MONTH_YEAR = re.compile(
    r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<year>\d{4})\b", re.IGNORECASE
)
_MONTH_YEAR = re.compile(r"\b" + _MONTH + r",?\s+(?P<year>\d{4})\b", re.IGNORECASE)
_YEAR = re.compile(r"^\s*(?:in\s+)?(?P<year>(?:19|20)\d{2})\s*$", re.IGNORECASE)


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def resolve_date(text: str, published: dt.date | None, *, previous: DateInterval | None = None) -> DateInterval:
    """The interval ``text`` names; absolute dates only in this stand-in (``published`` and ``previous`` unused)."""
    del published, previous
    if match := _ISO.search(text):
        day = _day(int(match["year"]), int(match["m"]), int(match["d"]))
        if day is not None:
            return DateInterval(day, day, DatePrecision.DAY)
    for pattern in (_MONTH_DAY_YEAR, _DAY_MONTH_YEAR):
        if match := pattern.search(text):
            day = _day(int(match["year"]), _MONTHS[match["month"].lower()], int(match["day"]))
            if day is not None:
                return DateInterval(day, day, DatePrecision.DAY)
    if match := _MONTH_YEAR.search(text):
        year, month = int(match["year"]), _MONTHS[match["month"].lower()]
        last = calendar.monthrange(year, month)[1]
        return DateInterval(dt.date(year, month, 1), dt.date(year, month, last), DatePrecision.MONTH)
    if match := _YEAR.match(text):
        year = int(match["year"])
        return DateInterval(dt.date(year, 1, 1), dt.date(year, 12, 31), DatePrecision.YEAR)
    return DateInterval(None, None, None, reason="not an absolute date")


def publication_date(line: Mapping[str, Any], article_text: str | None = None) -> dt.date | None:
    """The line's ``meta["published"]``, else ``records["published"]``, else a dateline at the start of the text."""
    meta = line.get("meta")
    records = line.get("records")
    candidates = [
        meta.get("published") if isinstance(meta, Mapping) else None,
        records.get("published") if isinstance(records, Mapping) else None,
        article_text[:300] if article_text else None,
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            interval = resolve_date(candidate, None)
            if interval.precision is DatePrecision.DAY and interval.start is not None:
                return interval.start
    return None
