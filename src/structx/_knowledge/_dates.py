"""Dates on the calendar: a record's ``When`` text becomes an interval of days with a precision.

An analyst orders events in time and asks whether two reports can be the same
event, so each date expression becomes an interval of days (both ends
inclusive) and a :class:`DatePrecision` saying how wide the words are. When the
words do not fix the interval, the interval stays empty and ``reason`` says
why: nothing is guessed, because a wrong date merges two different visits or
splits one.

Why each rule is what it is:

- **Absolute dates** ("Jan 27, 2022", "27 January 2022", "2022-01-27",
  "January 2022", "2021", "Nov. 19, 2020") are read as written. A numeric date
  whose day and month could be swapped ("03/05/2021") stays unresolved: the
  article's convention is unknown.
- **No year written** ("mid-September", "the 10th of October", "15-17th
  January", "in August", "summer"): news writes of the recent past, so the year
  is that of the latest such period that starts on or before publication. It is
  an inference, so the interval's ``assumption`` says so. Without a publication
  date there is nothing to infer from, and the interval is empty.
- **Parts of a month**: early, mid and late are days 1-10, 11-20 and 21 to the
  month's end (also "the beginning / middle / end of"): three parts that cover
  the month without overlap, so "mid-September" never overlaps "late September".
- **Parts of a year** ("late 2020", "early last year") are thirds (January-April,
  May-August, September-December); halves and quarters are read as written.
  Their precision is ``SEASON``: a span of months inside one year, like a season.
- **Seasons** are meteorological, northern hemisphere (the region the bundled
  schema is about): spring March-May, summer June-August, autumn September-
  November, winter December-February. "Winter 2020" stays unresolved because
  writers mean both the winter that begins and the one that ends in 2020;
  "winter 2020-21" is clear.
- **Relative to publication**: "today", "yesterday", "this/last/next
  week|month|year", "earlier this month", "X days/weeks/months/years ago",
  "the past N days". Weeks run Monday to Sunday (ISO 8601). "Last June" is the
  latest June that ended before publication (in June 2021 it is June 2020);
  "this June" is June of the publication year; a bare weekday ("on Tuesday",
  "ended on Tuesday") is the latest such day on or before publication, because
  news reports what has happened; "last Tuesday" is strictly before it. A
  weekend (Saturday and Sunday) has precision ``WEEK``, the nearest there is.
- **Relative to the previous event**: "the next day", "the following week", "the
  day before", "two days later", "the same day" count from ``previous``, the
  interval of the event the article dated just before, because that is what the
  reader counts from. Without it they stay unresolved. When ``previous`` is
  wider than the unit, the whole interval moves ("the next day" after
  mid-September is 12-21 September), so the answer still holds the true day.
- **Ranges** ("between 3 and 5 May 2021", "15-17 January", "from March to May
  2020", "2019-2021") run from the first date's start to the second's end with
  precision ``RANGE``; a missing year or month is taken from the other end.
  "Since 2005" runs from 2005 to publication; "before", "after", "until" and
  "by" give one side only, and stay unresolved.
- **Not dates**: durations ("six months"), vague words ("recently", "these
  days", "at the time") and events named instead of dates ("Before this new
  session with the US") stay unresolved with a reason saying which.
- Text is searched for its date expression, so "On a hot summer day last June"
  resolves through "last June". Words that are dates only sometimes ("may",
  "march", "fall", a bare number like 2000) count only beside a word that
  makes them dates ("in May", "since 2005", "in the fall") or alone. When the
  text holds several dates, the narrowest one inside all the others wins; dates
  that disagree leave the interval empty.

dateparser (1.5.0, measured offline) is not used, even as a fallback for
absolute dates: it returns nothing for most of the expressions above and, worse,
turns what it half-reads into wrong days (a day copied from the base date into
"January 2022" and "2021", 2017-01-15 for "15-17th January"), which this module
must never do. It would also add three packages (pytz, tzlocal, python-dateutil),
and it spent a second detecting the language of the first phrase it could not
parse ("mid-September"). The absolute forms news uses are few and are read here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from structx._text import normalize

__all__ = ["DateInterval", "DatePrecision", "publication_date", "resolve_date"]


class DatePrecision(StrEnum):
    """How wide the words of a date are (not how wide the interval ended up)."""

    DAY = "day"
    WEEK = "week"
    PART_OF_MONTH = "part_of_month"
    MONTH = "month"
    SEASON = "season"
    YEAR = "year"
    #: Two explicit dates, or "since" a date up to publication.
    RANGE = "range"


@dataclass(frozen=True, slots=True)
class DateInterval:
    """An interval of days, both ends inclusive, or an empty one with the reason it is empty.

    ``assumption`` says what the interval took from outside the words, when it
    did (the year of "mid-September" taken from the publication date); it is
    None when the words fix the interval alone.
    """

    start: dt.date | None
    end: dt.date | None
    precision: DatePrecision | None
    reason: str | None = None
    assumption: str | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"interval ends ({self.end}) before it starts ({self.start})")

    @property
    def resolved(self) -> bool:
        """Both ends are known."""
        return self.start is not None and self.end is not None

    def overlaps(self, other: DateInterval) -> bool | None:
        """Whether the two intervals share a day; None when either is unresolved."""
        if self.start is None or self.end is None or other.start is None or other.end is None:
            return None
        return self.start <= other.end and other.start <= self.end


def _unresolved(reason: str) -> DateInterval:
    return DateInterval(None, None, None, reason)


# --- calendar arithmetic -------------------------------------------------------------------------


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _week_of(day: dt.date) -> tuple[dt.date, dt.date]:
    monday = day - dt.timedelta(days=day.weekday())
    return monday, monday + dt.timedelta(days=6)


_PART_DAYS = {"early": (1, 10), "mid": (11, 20), "late": (21, 31)}
_PART_MONTHS = {"early": (1, 4), "mid": (5, 8), "late": (9, 12)}
_SEASON_MONTHS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month; each lasts 3


def _part_of_month(year: int, month: int, part: str) -> tuple[dt.date, dt.date]:
    first, last = _PART_DAYS[part]
    return dt.date(year, month, first), dt.date(year, month, min(last, _month_end(year, month).day))


def _season(year: int, name: str) -> tuple[dt.date, dt.date]:
    first = _SEASON_MONTHS[name]
    end_year, end_month = _add_months(year, first, 2)
    return dt.date(year, first, 1), _month_end(end_year, end_month)


# --- reading the text ----------------------------------------------------------------------------

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_FULL_MONTHS = frozenset(list(_MONTHS)[:12])
# Month words that are ordinary words too ("Iran may use", "a march on Baghdad").
_AMBIGUOUS_MONTHS = frozenset({"may", "march", "mar", "jan", "jun", "sep", "oct", "dec", "aug"})
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "eighteen": 18,
    "twenty": 20,
    "thirty": 30,
}
_PART_WORDS = {
    "early": "early",
    "the beginning of": "early",
    "beginning of": "early",
    "the start of": "early",
    "start of": "early",
    "mid": "mid",
    "the middle of": "mid",
    "middle of": "mid",
    "late": "late",
    "the end of": "late",
    "end of": "late",
}

_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_ALT = "|".join(_WEEKDAYS)
_NUMBER_ALT = r"\d{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True))
_PART_ALT = "|".join(sorted(_PART_WORDS, key=len, reverse=True))
_SEASON_ALT = "spring|summer|autumn|fall|winter"
_UNIT = r"(?P<unit>day|week|month|year)s?"


def _m(name: str) -> str:
    return rf"\b(?P<{name}>{_MONTH_ALT})\b"


def _d(name: str) -> str:
    return rf"\b(?P<{name}>3[01]|[12]\d|0?[1-9])(?![\d:])"


def _y(name: str) -> str:
    # Not part of a longer number ("20222", "2,0001").
    return rf"\b(?P<{name}>1[89]\d\d|2[01]\d\d)(?!\d|,\d)"


# A weekday written before a date ("Thursday, January 27, 2022") belongs to it.
_WD = rf"(?:\b(?:{_WEEKDAY_ALT}|mon|tues|tue|wed|thurs|thur|thu|fri|sat|sun),? )?"
_CONN = r"\s*(?:-|to|through|thru|until|till|and)\s*"
_OPEN = r"(?:\b(?:between|from) )?"
_TWO_DIGIT_END = r"(?P<yy>\d\d)(?!\d)"


def _clean(text: str) -> str:
    """Lower case, one space, folded dashes and quotes; no ordinal suffixes or abbreviation dots."""
    text = normalize(text)
    text = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", text)  # 17th -> 17
    text = re.sub(r"\b([a-z]{3,5})\.", r"\1", text)  # Nov. -> nov
    text = re.sub(r"(?<=[a-z])-(?=[a-z\d])", " ", text)  # mid-September, mid-2020
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,;:!?'()")


class _Unresolvable(Exception):
    """Raised by a reader's handler when its words need an anchor the article lacks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Shift:
    """A move from an anchor by ``amount`` days, or onto the calendar week, month or year ``amount`` away."""

    amount: int
    unit: str  # day, week, month, year
    words: str
    explicit_anchor: bool  # "two days after X", "the day before X": the anchor is the date that follows


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    value: DateInterval | _Shift


_Handler = Callable[["_Reader", "re.Match[str]"], "DateInterval | _Shift | None"]


class _Reader:
    """One reading of one text: finds its date expressions and resolves them."""

    def __init__(self, text: str, published: dt.date | None) -> None:
        self.text = text
        self.published = published

    # -- context helpers --

    def words_before(self, index: int, count: int = 1) -> list[str]:
        return re.findall(r"[a-z']+|\d+", self.text[:index])[-count:]

    def alone(self, match: re.Match[str]) -> bool:
        """The match is the whole text, give or take a leading preposition or article."""
        before = self.text[: match.start()].strip()
        return re.fullmatch(r"(?:(?:on|in|at|during|the|of)\s*)*", before) is not None and not self.text[
            match.end() :
        ].strip(" ,.;")

    def publication(self, words: str) -> dt.date:
        if self.published is None:
            raise _Unresolvable(f"'{words}' counts from the publication date, and the article has none")
        return self.published

    def infer_year(
        self, words: str, occurrence: Callable[[int], tuple[dt.date, dt.date] | None], precision: DatePrecision
    ) -> DateInterval:
        """The latest occurrence starting on or before publication, for words that write no year."""
        if self.published is None:
            return _unresolved(f"'{words}' has no year, and there is no publication date to take it from")
        for year in range(self.published.year + 1, self.published.year - 5, -1):
            span = occurrence(year)
            if span is not None and span[0] <= self.published:
                return DateInterval(
                    span[0],
                    span[1],
                    precision,
                    assumption=f"no year written: the latest '{words}' on or before publication "
                    f"({self.published.isoformat()})",
                )
        return _unresolved(f"'{words}' names no day that exists")

    def relative_occurrence(
        self,
        words: str,
        rel: str,
        occurrence: Callable[[int], tuple[dt.date, dt.date] | None],
        precision: DatePrecision,
    ) -> DateInterval:
        """'last', 'this', 'next' June (or summer): counted from the publication date."""
        pub = self.publication(words)
        spans = [span for year in range(pub.year - 2, pub.year + 3) if (span := occurrence(year)) is not None]
        chosen: tuple[dt.date, dt.date] | None
        if rel in ("last", "past"):
            chosen = max((s for s in spans if s[1] < pub), default=None)
        elif rel in ("next", "coming"):
            chosen = min((s for s in spans if s[0] > pub), default=None)
        else:  # this: the one under way, else the one of the publication year
            chosen = next((s for s in spans if s[0] <= pub <= s[1]), None) or next(
                (s for s in spans if s[0].year == pub.year), None
            )
        if chosen is None:
            return _unresolved(f"'{words}' names no day that exists")
        return DateInterval(chosen[0], chosen[1], precision)

    # -- handlers: absolute dates --

    def day(self, year: int, month: int, day: int, words: str) -> DateInterval:
        try:
            date = dt.date(year, month, day)
        except ValueError:
            return _unresolved(f"'{words}' is not a day of the calendar")
        return DateInterval(date, date, DatePrecision.DAY)

    def iso(self, match: re.Match[str]) -> DateInterval:
        return self.day(int(match["y"]), int(match["mo"]), int(match["d"]), match[0])

    def numeric(self, match: re.Match[str]) -> DateInterval:
        first, second, year = int(match["a"]), int(match["b"]), int(match["y"])
        if first > 12 >= second:
            return self.day(year, second, first, match[0])
        if second > 12 >= first or first == second:
            return self.day(year, first, second, match[0])
        return _unresolved(f"'{match[0]}' could be day/month or month/day, and the article does not say which")

    def full_day(self, match: re.Match[str]) -> DateInterval:
        return self.day(int(match["y"]), _MONTHS[match["m"]], int(match["d"]), match[0])

    def day_without_year(self, match: re.Match[str]) -> DateInterval:
        month, day = _MONTHS[match["m"]], int(match["d"])

        def occurrence(year: int) -> tuple[dt.date, dt.date] | None:
            try:
                date = dt.date(year, month, day)
            except ValueError:
                return None
            return date, date

        return self.infer_year(match[0], occurrence, DatePrecision.DAY)

    def month_year(self, match: re.Match[str]) -> DateInterval:
        year, month = int(match["y"]), _MONTHS[match["m"]]
        return DateInterval(dt.date(year, month, 1), _month_end(year, month), DatePrecision.MONTH)

    def month_only(self, match: re.Match[str]) -> DateInterval | None:
        word = match["m"]
        context = self.words_before(match.start())
        in_context = bool(context) and context[0] in {
            "in",
            "during",
            "since",
            "from",
            "until",
            "till",
            "by",
            "of",
            "throughout",
            "before",
            "after",
        }
        if not self.alone(match) and (not in_context or word not in _FULL_MONTHS):
            return None
        if (
            word in _AMBIGUOUS_MONTHS
            and not self.alone(match)
            and re.match(r" (?:be|have|not|use|also)\b", self.text[match.end() :])
        ):
            return None
        month = _MONTHS[word]
        return self.infer_year(
            match[0], lambda year: (dt.date(year, month, 1), _month_end(year, month)), DatePrecision.MONTH
        )

    def year_only(self, match: re.Match[str]) -> DateInterval | None:
        context = self.words_before(match.start())
        after = self.text[match.end() :]
        in_context = bool(context) and context[0] in {
            "in",
            "during",
            "since",
            "from",
            "until",
            "till",
            "by",
            "of",
            "the",
            "year",
            "before",
            "after",
            "throughout",
            "around",
            "circa",
        }
        if not (self.alone(match) or in_context or re.match(r"\s*(?:[,.;)]|$)", after)):
            return None
        year = int(match["y"])
        return DateInterval(dt.date(year, 1, 1), dt.date(year, 12, 31), DatePrecision.YEAR)

    def decade(self, match: re.Match[str]) -> DateInterval:
        first = int(match["dec"])
        return DateInterval(dt.date(first, 1, 1), dt.date(first + 9, 12, 31), DatePrecision.YEAR)

    # -- parts and seasons --

    def part_of_month(self, match: re.Match[str]) -> DateInterval:
        part, month = _PART_WORDS[match["part"]], _MONTHS[match["m"]]
        if match["y"]:
            start, end = _part_of_month(int(match["y"]), month, part)
            return DateInterval(start, end, DatePrecision.PART_OF_MONTH)
        return self.infer_year(match[0], lambda year: _part_of_month(year, month, part), DatePrecision.PART_OF_MONTH)

    def part_of_year(self, match: re.Match[str]) -> DateInterval:
        year, (first, last) = int(match["y"]), _PART_MONTHS[_PART_WORDS[match["part"]]]
        return DateInterval(dt.date(year, first, 1), _month_end(year, last), DatePrecision.SEASON)

    def half_or_quarter(self, match: re.Match[str]) -> DateInterval:
        year, word = int(match["y"]), match["ord"].removeprefix("q")
        ordinal = {"first": 1, "second": 2, "third": 3, "fourth": 4}.get(word) or int(word)
        size = 6 if match.groupdict().get("unit") == "half" else 3
        if ordinal * size > 12:
            return _unresolved(f"'{match[0]}' is not part of a year")
        first = (ordinal - 1) * size + 1
        return DateInterval(dt.date(year, first, 1), _month_end(year, first + size - 1), DatePrecision.SEASON)

    def part_relative(self, match: re.Match[str]) -> DateInterval:
        pub = self.publication(match[0])
        part, step = _PART_WORDS[match["part"]], {"last": -1, "this": 0, "next": 1}[match["rel"]]
        if match["unit"] == "week":  # no thirds of a week: the whole week holds the day
            start, end = _week_of(pub + dt.timedelta(weeks=step))
            return DateInterval(start, end, DatePrecision.WEEK)
        if match["unit"] == "month":
            year, month = _add_months(pub.year, pub.month, step)
            start, end = _part_of_month(year, month, part)
            return DateInterval(start, end, DatePrecision.PART_OF_MONTH)
        year, (first, last) = pub.year + step, _PART_MONTHS[part]
        return DateInterval(dt.date(year, first, 1), _month_end(year, last), DatePrecision.SEASON)

    def season_year(self, match: re.Match[str]) -> DateInterval:
        name, year = match["season"], int(match["y"])
        second = int(match["y2"]) if match["y2"] else (year // 100 * 100 + int(match["yy"]) if match["yy"] else None)
        if name == "winter":
            if second is None:
                return _unresolved(f"'{match[0]}' may be the winter that begins or the one that ends in {year}")
            if second != year + 1:
                return _unresolved(f"'{match[0]}' spans years that are not consecutive")
        elif second is not None:
            return _unresolved(f"'{match[0]}' names two years for one {name}")
        start, end = _season(year, name)
        return DateInterval(start, end, DatePrecision.SEASON)

    def season_relative(self, match: re.Match[str]) -> DateInterval:
        name = match["season"]
        return self.relative_occurrence(match[0], match["rel"], lambda year: _season(year, name), DatePrecision.SEASON)

    def season_only(self, match: re.Match[str]) -> DateInterval | None:
        name, context = match["season"], self.words_before(match.start(), 2)
        after = self.text[match.end() :]
        introduced = bool(context) and (
            context[-1] in {"in", "during", "since", "until", "by", "throughout", "early", "late", "mid"}
            or (context[-1] == "the" and len(context) == 2 and context[0] in {"in", "during", "since", "until", "by"})
        )
        if not (self.alone(match) or introduced) or (name == "fall" and after.startswith(" of")):
            return None
        return self.infer_year(match[0], lambda year: _season(year, name), DatePrecision.SEASON)

    # -- ranges --

    def range_of(self, words: str, first: DateInterval, last: DateInterval) -> DateInterval:
        if not first.resolved:
            return first
        if not last.resolved:
            return last
        assert first.start is not None and last.end is not None
        if last.end < first.start:
            return _unresolved(f"'{words}' ends before it starts")
        return DateInterval(first.start, last.end, DatePrecision.RANGE, assumption=first.assumption or last.assumption)

    def day_range(self, match: re.Match[str]) -> DateInterval:
        groups = match.groupdict()
        month2 = _MONTHS[groups.get("m2") or groups["m"]]
        month1 = _MONTHS[groups["m1"]] if groups.get("m1") else month2
        day1, day2 = int(groups["d1"]), int(groups["d2"])
        year2 = groups.get("y2") or groups.get("y")
        year1 = groups.get("y1")
        if year2 is None and year1 is None:
            # No year: the latest such range that starts on or before publication.
            def occurrence(year: int) -> tuple[dt.date, dt.date] | None:
                start_year = year - 1 if month1 > month2 else year
                try:
                    return dt.date(start_year, month1, day1), dt.date(year, month2, day2)
                except ValueError:
                    return None

            if month1 == month2 and day2 < day1:
                return _unresolved(f"'{match[0]}' ends before it starts")
            return self.infer_year(match[0], occurrence, DatePrecision.RANGE)
        start_year, end_year = _range_years(year1, year2, month1 > month2)
        return self.range_of(
            match[0], self.day(start_year, month1, day1, match[0]), self.day(end_year, month2, day2, match[0])
        )

    def month_range(self, match: re.Match[str]) -> DateInterval:
        month1, month2 = _MONTHS[match["m1"]], _MONTHS[match["m2"]]
        year1, year2 = match["y1"], match["y2"]
        if year1 is None and year2 is None:

            def occurrence(year: int) -> tuple[dt.date, dt.date]:
                start_year = year - 1 if month1 > month2 else year
                return dt.date(start_year, month1, 1), _month_end(year, month2)

            return self.infer_year(match[0], occurrence, DatePrecision.RANGE)
        start_year, end_year = _range_years(year1, year2, month1 > month2)
        return self.range_of(
            match[0],
            DateInterval(dt.date(start_year, month1, 1), _month_end(start_year, month1), DatePrecision.MONTH),
            DateInterval(dt.date(end_year, month2, 1), _month_end(end_year, month2), DatePrecision.MONTH),
        )

    def year_range(self, match: re.Match[str]) -> DateInterval:
        first = int(match["y1"])
        last = int(match["y2"]) if match["y2"] else first // 100 * 100 + int(match["yy"])
        if last < first:
            return _unresolved(f"'{match[0]}' ends before it starts")
        return DateInterval(dt.date(first, 1, 1), dt.date(last, 12, 31), DatePrecision.RANGE)

    # -- relative to publication --

    def today(self, match: re.Match[str]) -> DateInterval:
        published = self.publication(match[0])
        offset = {"the day before yesterday": -2, "yesterday": -1, "tomorrow": 1, "the day after tomorrow": 2}.get(
            match["word"], 0
        )
        day = published + dt.timedelta(days=offset)
        return DateInterval(day, day, DatePrecision.DAY)

    def unit_relative(self, match: re.Match[str]) -> DateInterval:
        pub, unit, side = self.publication(match[0]), match["unit"], match["side"]
        step = {"last": -1, "past": -1, "this": 0, "next": 1, "coming": 1}[match["rel"]]
        if unit == "week":
            start, end = _week_of(pub + dt.timedelta(weeks=step))
            precision = DatePrecision.WEEK
        elif unit == "month":
            year, month = _add_months(pub.year, pub.month, step)
            start, end, precision = dt.date(year, month, 1), _month_end(year, month), DatePrecision.MONTH
        else:
            year = pub.year + step
            start, end, precision = dt.date(year, 1, 1), dt.date(year, 12, 31), DatePrecision.YEAR
        if side == "earlier" and step == 0:
            end = pub
        elif side == "later" and step == 0:
            start = pub
        return DateInterval(start, end, precision)

    def month_relative(self, match: re.Match[str]) -> DateInterval | None:
        word = match["m"]
        if match["rel"] == "this" and word in _AMBIGUOUS_MONTHS and re.match(r" [a-z]", self.text[match.end() :]):
            return None  # "this may be": a verb
        month = _MONTHS[word]
        return self.relative_occurrence(
            match[0], match["rel"], lambda year: (dt.date(year, month, 1), _month_end(year, month)), DatePrecision.MONTH
        )

    def weekday(self, match: re.Match[str]) -> DateInterval:
        pub, target, rel = self.publication(match[0]), _WEEKDAYS.index(match["wd"]), match["rel"]
        back = (pub.weekday() - target) % 7
        if rel in ("last", "past"):
            day = pub - dt.timedelta(days=back or 7)
        elif rel in ("next", "coming"):
            day = pub + dt.timedelta(days=(target - pub.weekday()) % 7 or 7)
        elif rel == "this":
            day = _week_of(pub)[0] + dt.timedelta(days=target)
        else:  # news reports what has happened: the latest such day on or before publication
            day = pub - dt.timedelta(days=back)
        return DateInterval(day, day, DatePrecision.DAY)

    def weekend(self, match: re.Match[str]) -> DateInterval:
        pub, rel = self.publication(match[0]), match["rel"]
        saturday = _week_of(pub)[0] + dt.timedelta(days=5)  # of the publication's week
        if rel in ("last", "past"):  # the latest weekend over before publication
            saturday -= dt.timedelta(weeks=0 if saturday + dt.timedelta(days=1) < pub else 1)
        elif rel in ("next", "coming"):
            saturday += dt.timedelta(weeks=0 if saturday > pub else 1)
        elif rel is None:  # "over the weekend": the latest one begun by publication
            saturday -= dt.timedelta(weeks=0 if saturday <= pub else 1)
        return DateInterval(saturday, saturday + dt.timedelta(days=1), DatePrecision.WEEK)

    def ago(self, match: re.Match[str]) -> DateInterval:
        published = self.publication(match[0])
        return _moved(DateInterval(published, published, DatePrecision.DAY), -_count(match["n"]), match["unit"])

    def past_span(self, match: re.Match[str]) -> DateInterval:
        pub = self.publication(match[0])
        count, unit = _count(match["n"]) if match["n"] else 1, match["unit"]
        if unit == "day":
            start = pub - dt.timedelta(days=count)
        elif unit == "week":
            start = pub - dt.timedelta(weeks=count)
        else:
            months = count if unit == "month" else 12 * count
            year, month = _add_months(pub.year, pub.month, -months)
            start = dt.date(year, month, min(pub.day, calendar.monthrange(year, month)[1]))
        return DateInterval(start, pub, DatePrecision.RANGE)

    # -- relative to another date --

    def following(self, match: re.Match[str]) -> _Shift:
        step = -1 if match["dir"] in ("previous", "preceding", "prior") else 1
        return _Shift(step, match.groupdict().get("unit") or "day", match[0], False)

    def day_before_after(self, match: re.Match[str]) -> _Shift:
        step = -1 if match["dir"] == "before" else 1
        # "the day before" alone counts from the previous event; "the day before 3 May" from 3 May.
        return _Shift(step, match["unit"], match[0], bool(self.text[match.end() :].strip()))

    def counted_shift(self, match: re.Match[str]) -> _Shift:
        step = _count(match["n"]) * (-1 if match["dir"] in ("earlier", "before", "prior") else 1)
        return _Shift(step, match["unit"], match[0], match["dir"] in ("after", "before"))

    def same(self, match: re.Match[str]) -> _Shift:
        return _Shift(0, match["unit"] or "day", match[0], False)


def _range_years(first: str | None, last: str | None, wraps: bool) -> tuple[int, int]:
    """The years of a range's two ends when one or both are written; ``wraps``: it crosses New Year."""
    if first is not None and last is not None:
        return int(first), int(last)
    if last is not None:
        return int(last) - wraps, int(last)
    assert first is not None
    return int(first), int(first) + wraps


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word]


def _moved(anchor: DateInterval, amount: int, unit: str) -> DateInterval:
    """``anchor`` moved by ``amount`` units.

    Days move exactly. Weeks, months and years land on whole calendar units
    ("the following week", "two weeks ago": the week that holds the day), since
    counts in those units are rough in news writing.
    """
    assert anchor.start is not None and anchor.end is not None
    start, end = anchor.start, anchor.end
    if unit == "day":
        start, end = start + dt.timedelta(days=amount), end + dt.timedelta(days=amount)
        return DateInterval(start, end, DatePrecision.DAY if start == end else anchor.precision)
    if unit == "week":
        first, last = _week_of(start + dt.timedelta(weeks=amount))[0], _week_of(end + dt.timedelta(weeks=amount))[1]
        single = first + dt.timedelta(days=6) == last
        return DateInterval(first, last, DatePrecision.WEEK if single else anchor.precision)
    if unit == "month":
        first_year, first_month = _add_months(start.year, start.month, amount)
        last_year, last_month = _add_months(end.year, end.month, amount)
        single = (first_year, first_month) == (last_year, last_month)
        return DateInterval(
            dt.date(first_year, first_month, 1),
            _month_end(last_year, last_month),
            DatePrecision.MONTH if single else anchor.precision,
        )
    first_year, last_year = start.year + amount, end.year + amount
    return DateInterval(
        dt.date(first_year, 1, 1),
        dt.date(last_year, 12, 31),
        DatePrecision.YEAR if first_year == last_year else anchor.precision,
    )


def _apply(shift: _Shift, anchor: DateInterval) -> DateInterval:
    if shift.amount == 0 and shift.unit == "day":
        return replace(anchor, reason=None)
    moved = _moved(anchor, shift.amount, shift.unit)
    return replace(moved, assumption=anchor.assumption)


# Patterns in the order they claim text: longer, more specific forms first, so that
# "15-17 January" is one range and not a day, and "last June" is not a bare June.
_PATTERNS: list[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(rf"{_y('y')}-(?P<mo>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12]\d|3[01])(?!\d)"), _Reader.iso),
    (re.compile(rf"{_y('y')}/(?P<mo>0?[1-9]|1[0-2])/(?P<d>0?[1-9]|[12]\d|3[01])(?!\d)"), _Reader.iso),
    (re.compile(r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4})(?!\d)"), _Reader.numeric),
    # Ranges of days across months, then within a month.
    (
        re.compile(
            rf"{_OPEN}{_WD}{_d('d1')} (?:of )?{_m('m1')}(?:,? {_y('y1')})?{_CONN}{_WD}{_d('d2')} (?:of )?{_m('m2')}"
            rf"(?:,? {_y('y2')})?"
        ),
        _Reader.day_range,
    ),
    (
        re.compile(
            rf"{_OPEN}{_WD}{_m('m1')} {_d('d1')}(?:,? {_y('y1')})?{_CONN}{_WD}{_m('m2')} {_d('d2')}(?:,? {_y('y2')})?"
        ),
        _Reader.day_range,
    ),
    (re.compile(rf"{_OPEN}{_d('d1')}{_CONN}{_d('d2')} (?:of )?{_m('m')}(?:,? {_y('y')})?"), _Reader.day_range),
    (re.compile(rf"{_OPEN}{_m('m')} {_d('d1')}{_CONN}{_d('d2')}(?:,? {_y('y')})?"), _Reader.day_range),
    # Seasons with a year come before year ranges: "winter 2020-21" is one winter.
    (
        re.compile(
            rf"(?:\b(?:early|mid|late) )?\b(?:the )?(?P<season>{_SEASON_ALT}) (?:of )?{_y('y')}"
            rf"(?:[-/](?:{_y('y2')}|{_TWO_DIGIT_END}))?"
        ),
        _Reader.season_year,
    ),
    (
        re.compile(rf"{_OPEN}{_m('m1')}(?:,? {_y('y1')})?{_CONN}{_m('m2')}(?:,? {_y('y2')})?"),
        _Reader.month_range,
    ),
    (re.compile(rf"{_OPEN}{_y('y1')}{_CONN}(?:{_y('y2')}|{_TWO_DIGIT_END})"), _Reader.year_range),
    # Parts of months and years.
    (
        re.compile(rf"\b(?P<part>{_PART_ALT}) (?:the month of )?{_m('m')}(?:,? (?:of )?{_y('y')})?"),
        _Reader.part_of_month,
    ),
    (re.compile(rf"\b(?P<part>{_PART_ALT}) (?:the year )?{_y('y')}"), _Reader.part_of_year),
    (
        re.compile(rf"\b(?:the )?(?P<ord>first|second|third|fourth|[1-4]) (?P<unit>half|quarter) (?:of )?{_y('y')}"),
        _Reader.half_or_quarter,
    ),
    (re.compile(rf"\b(?P<ord>q[1-4]) {_y('y')}"), _Reader.half_or_quarter),
    (
        re.compile(rf"\b(?P<part>{_PART_ALT}) (?P<rel>last|this|next) (?P<unit>week|month|year)\b"),
        _Reader.part_relative,
    ),
    # Whole days, months, decades.
    (re.compile(rf"{_WD}{_m('m')} {_d('d')},? {_y('y')}"), _Reader.full_day),
    (re.compile(rf"{_WD}(?:\bthe )?{_d('d')} (?:of )?{_m('m')},? {_y('y')}"), _Reader.full_day),
    (re.compile(rf"{_m('m')},? (?:of )?{_y('y')}"), _Reader.month_year),
    (re.compile(rf"{_WD}{_m('m')} {_d('d')}"), _Reader.day_without_year),
    (re.compile(rf"{_WD}(?:\bthe )?{_d('d')} (?:of )?{_m('m')}"), _Reader.day_without_year),
    (re.compile(r"\b(?:the )?(?P<dec>1[89]\d0|20\d0)'?s\b"), _Reader.decade),
    # Counted from another date: the previous event, or the date that follows ("the day after 3 May").
    (
        re.compile(rf"\b(?P<n>{_NUMBER_ALT}) {_UNIT} (?P<dir>later|earlier|afterwards|after|before|prior)\b"),
        _Reader.counted_shift,
    ),
    (
        # "the next month" counts from the previous event; "next month" (no article) from publication.
        re.compile(r"\bthe (?P<dir>next|following|previous|preceding|prior) (?P<unit>day|week|month|year)\b"),
        _Reader.following,
    ),
    (re.compile(r"\bthe (?P<dir>next|following) (?:morning|evening|night)\b"), _Reader.following),
    # Counted from publication.
    (
        re.compile(
            r"\b(?:earlier |later )?(?P<word>the day before yesterday|the day after tomorrow|yesterday|tomorrow"
            r"|today|tonight|this morning|this afternoon|this evening)\b"
        ),
        _Reader.today,
    ),
    (
        re.compile(r"\bthe (?P<unit>day|week|month|year) (?P<dir>before|after)\b"),
        _Reader.day_before_after,
    ),
    (
        re.compile(
            r"\b(?:later )?(?:on )?(?:the same|that same|that) (?:(?P<unit>day|week|month|year)|night|morning)\b"
        ),
        _Reader.same,
    ),
    (
        re.compile(rf"\b(?:in |over |during )?the (?:past|last) (?:(?P<n>{_NUMBER_ALT}) )?{_UNIT}"),
        _Reader.past_span,
    ),
    (re.compile(rf"\b(?P<n>{_NUMBER_ALT}) {_UNIT} ago\b"), _Reader.ago),
    (
        re.compile(r"\b(?:(?P<side>earlier|later) )?(?P<rel>this|last|next|past|coming) (?P<unit>week|month|year)\b"),
        _Reader.unit_relative,
    ),
    (re.compile(rf"\b(?P<rel>last|this|next|past|coming) {_m('m')}"), _Reader.month_relative),
    (re.compile(rf"\b(?P<rel>last|this|next|past|coming) (?P<season>{_SEASON_ALT})\b"), _Reader.season_relative),
    (re.compile(rf"\b(?:(?P<rel>last|this|next|past|coming) )?(?P<wd>{_WEEKDAY_ALT})\b"), _Reader.weekday),
    (
        re.compile(r"\b(?:(?P<rel>last|this|next|past|coming) |(?:over |during |at |on )?the )weekend\b"),
        _Reader.weekend,
    ),
    # Words that are dates only in context.
    (re.compile(rf"\b(?:(?:early|mid|late) )?(?P<season>{_SEASON_ALT})\b"), _Reader.season_only),
    (re.compile(_m("m")), _Reader.month_only),
    (re.compile(_y("y")), _Reader.year_only),
]

_OPEN_ENDED = re.compile(r"\b(?P<word>since|before|after|until|till|by|prior to|no later than)\s+(?:the\s+)?$")
_VAGUE = re.compile(
    r"\b(?:recently|recent|these days|nowadays|currently|lately|at the time|soon|in the past|previously|once"
    r"|some time|sometime|earlier|later|a (?:few|couple of) \w+|several \w+|many \w+)\b"
)
_DURATION = re.compile(rf"\b(?:{_NUMBER_ALT}|several|many|few) (?:more )?(?:hour|day|week|month|year|decade)s?\b")
_EVENT_ANCHOR = re.compile(r"\b(?:before|after|since|until|during|following|ahead of|prior to)\b")


def _find(text: str, published: dt.date | None) -> list[_Found]:
    """Every date expression in the cleaned ``text``, left to right, each span claimed once."""
    reader = _Reader(text, published)
    claimed: list[tuple[int, int]] = []
    found: list[_Found] = []
    for pattern, handler in _PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in claimed):
                continue
            try:
                value = handler(reader, match)
            except _Unresolvable as error:
                value = _unresolved(error.reason)
            if value is None:
                continue
            claimed.append(match.span())
            found.append(_Found(match.start(), match.end(), value))
    return sorted(found, key=lambda item: item.start)


def _not_a_date(text: str) -> DateInterval:
    if vague := _VAGUE.search(text):
        return _unresolved(f"'{vague[0]}' is vague: it names no calendar period")
    if duration := _DURATION.search(text):
        return _unresolved(f"'{duration[0]}' is a duration, not a date")
    if _EVENT_ANCHOR.search(text):
        return _unresolved(f"'{text}' is placed against an event, not a date")
    return _unresolved(f"no date expression in '{text}'")


def resolve_date(text: str, published: dt.date | None, *, previous: DateInterval | None = None) -> DateInterval:
    """Place a date expression on the calendar.

    ``published`` anchors words relative to the article ("last June", "on
    Tuesday", "this month") and supplies the year of dates that write none;
    ``previous`` is the interval of the event the article dated just before,
    the anchor of "the next day" and "the following week". The answer is an
    interval of days (inclusive) with its precision, or an empty interval whose
    ``reason`` says why the words do not fix one.

    >>> interval = resolve_date("mid-September", dt.date(2023, 10, 2))
    >>> interval.start, interval.end, interval.precision
    (datetime.date(2023, 9, 11), datetime.date(2023, 9, 20), <DatePrecision.PART_OF_MONTH: 'part_of_month'>)
    >>> resolve_date("the next day", dt.date(2023, 10, 2)).reason
    "'the next day' counts from the event dated before it, and there is none"
    """
    cleaned = _clean(text or "")
    if not cleaned:
        return _unresolved("no date expression: the text is empty")
    try:
        interval = _resolve(cleaned, published, previous)
    except (ValueError, OverflowError):  # counting past year 1 or 9999
        return _unresolved(f"'{' '.join(text.split())}' falls outside the calendar")
    return replace(
        interval,
        reason=interval.reason and _as_written(interval.reason, text),
        assumption=interval.assumption and _as_written(interval.assumption, text),
    )


def _as_written(message: str, text: str) -> str:
    """``message`` quoting the words it read as ``text`` writes them ("mid-September", not "mid september")."""
    tokens = [match.span() for match in re.finditer(r"\S+", text)][:40]
    for size in range(len(tokens), 0, -1):  # longest first: the whole text before a part of it
        for first in range(len(tokens) - size + 1):
            written = text[tokens[first][0] : tokens[first + size - 1][1]].strip(" .,;:!?()")
            read = f"'{_clean(written)}'"
            if read != "''" and read in message:
                return message.replace(read, f"'{' '.join(written.split())}'")
    return message


def _resolve(cleaned: str, published: dt.date | None, previous: DateInterval | None) -> DateInterval:
    found = _find(cleaned, published)
    if not found:
        return _not_a_date(cleaned)
    intervals: list[DateInterval] = []
    index = 0
    while index < len(found):
        item, index = found[index], index + 1
        value = item.value
        if isinstance(value, _Shift):
            following = found[index] if index < len(found) else None
            gap = cleaned[item.end : following.start].strip() if following is not None else None
            if (
                value.explicit_anchor
                and following is not None
                and gap in ("", "the")
                and (isinstance(following.value, DateInterval))
            ):
                anchor, index = following.value, index + 1
                intervals.append(_apply(value, anchor) if anchor.resolved else anchor)
                continue
            if value.explicit_anchor and cleaned[item.end :].strip():
                intervals.append(_unresolved(f"'{cleaned}' is counted from an event, not from a date"))
                continue
            if previous is None:
                intervals.append(
                    _unresolved(f"'{value.words}' counts from the event dated before it, and there is none")
                )
            elif not previous.resolved:
                intervals.append(
                    _unresolved(f"'{value.words}' counts from the event dated before it, which is unresolved")
                )
            else:
                intervals.append(_apply(value, previous))
            continue
        opening = _OPEN_ENDED.search(cleaned[: item.start])
        if opening is not None and value.resolved:
            words = cleaned[opening.start() : item.end]
            if opening["word"] != "since":
                value = _unresolved(f"'{words}' gives only one end of an interval")
            elif published is None:
                value = _unresolved(f"'{words}' runs to the publication date, and the article has none")
            elif value.start is not None and value.start <= published:
                value = DateInterval(value.start, published, DatePrecision.RANGE, assumption=value.assumption)
            else:
                value = _unresolved(f"'{words}' starts after the publication date")
        intervals.append(value)
    for interval in intervals:
        if not interval.resolved:
            return interval
    return _narrowest(cleaned, intervals)


def _narrowest(text: str, intervals: list[DateInterval]) -> DateInterval:
    """The narrowest interval inside all the others ("summer ... last June" is June); else none."""
    ordered = sorted(intervals, key=lambda item: (item.end - item.start) if item.end and item.start else dt.timedelta())
    best = ordered[0]
    assert best.start is not None and best.end is not None
    for other in ordered[1:]:
        assert other.start is not None and other.end is not None
        if not (other.start <= best.start and best.end <= other.end):
            return _unresolved(f"'{text}' holds dates that disagree")
    return best


# --- publication dates ----------------------------------------------------------------------------

_TIME = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\b\.?)?"
    r"(?:\s*(?:[+-]\d{2}:?\d{2}|\(?\b(?:gmt|utc|ast|est|edt|cet|cest|bst|irst)\b\)?))?",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^(?:first |last )?(?:published|posted|updated|date|dated|modified|issued)(?: on| at)?$|^(?:on|at)$"
)
_CITY_DATELINE = re.compile(r"^\s*(?:[A-Z][A-Z.'’ -]+),\s*(?P<date>[^()\n–—]{6,40}?)\s*(?:\([^)\n]*\))?\s*[-–—:]")
_DATELINE_LINES = 15
_DATELINE_CHARS = 2000


def _day_of(value: object) -> dt.date | None:
    """A publication date from a metadata value: a date, or text naming one day with its year."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    interval = resolve_date(_TIME.sub(" ", value), None)
    if interval.precision is DatePrecision.DAY and interval.assumption is None:
        return interval.start
    return None


def _dateline(text: str) -> dt.date | None:
    lines = [line.strip() for line in text[:_DATELINE_CHARS].splitlines() if line.strip()][:_DATELINE_LINES]
    for line in lines:
        city = _CITY_DATELINE.match(line)
        if city is not None and (day := _day_of(city["date"])) is not None:
            return day
        if len(line) > 120:
            continue
        if _line_is_a_date(line) and (day := _day_of(line)) is not None:
            return day
    return None


def _line_is_a_date(line: str) -> bool:
    """A line that carries a date and nothing but labels, times, a byline, a city or an agency."""
    cleaned = _clean(_TIME.sub(" ", line))
    found = [item for item in _find(cleaned, None) if isinstance(item.value, DateInterval)]
    if len(found) != 1:
        return False
    rest = cleaned[: found[0].start] + " | " + cleaned[found[0].end :]
    rest = re.sub(r"\([^)]*\)", " ", rest)
    for segment in re.split(r"[|·•,:/]| - ", rest):
        segment = segment.strip(" -")
        if segment and not _LABEL.match(segment) and not segment.startswith("by "):
            return False
    return True


def publication_date(line: Mapping[str, Any], article_text: str | None = None) -> dt.date | None:
    """The day an article was published, from its result line or, failing that, its text.

    In order: the input's metadata (``meta["published"]`` of a result line, or
    ``published`` of an input line), the ``published`` field the extraction
    filled (free text such as "January 27, 2022"), then a dateline among the
    first lines of ``article_text`` (a line that is a date, possibly with a
    label, time or byline, or "BAGHDAD, Jan. 27, 2022 (Reuters) -"). Only a
    whole day with its year counts; None when nothing gives one.
    """
    meta = line.get("meta")
    records = line.get("records")
    candidates = [
        meta.get("published") if isinstance(meta, Mapping) else None,
        line.get("published"),
        records.get("published") if isinstance(records, Mapping) else None,
    ]
    for candidate in candidates:
        if (day := _day_of(candidate)) is not None:
            return day
    text = article_text if article_text is not None else line.get("text")
    return _dateline(text) if isinstance(text, str) else None
