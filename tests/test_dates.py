"""Dates on the calendar: the date table, the seeds' own expressions, the gold's ``When`` fields, publication dates.

Every expected interval below was worked out by hand from the rule it tests
(see the docstring of ``structx._knowledge._dates``) and, for the seeds, by
reading the article around the expression.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import structx
from structx import DateInterval, DatePrecision, publication_date, resolve_date

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLD = ROOT / "eval" / "gold"

DAY, WEEK, PART, MONTH = DatePrecision.DAY, DatePrecision.WEEK, DatePrecision.PART_OF_MONTH, DatePrecision.MONTH
SEASON, YEAR, RANGE = DatePrecision.SEASON, DatePrecision.YEAR, DatePrecision.RANGE
INFERRED = True  # the year is not written: taken from the publication date, and the interval says so

# expression, publication date, expected start, expected end, precision[, year inferred]
TABLE: list[tuple[Any, ...]] = [
    # Absolute dates, read as written; no publication date needed.
    ("Jan 27, 2022", None, "2022-01-27", "2022-01-27", DAY),
    ("January 27, 2022", None, "2022-01-27", "2022-01-27", DAY),
    ("27 January 2022", None, "2022-01-27", "2022-01-27", DAY),
    ("2022-01-27", None, "2022-01-27", "2022-01-27", DAY),
    ("2022/01/27", None, "2022-01-27", "2022-01-27", DAY),
    ("27/01/2022", None, "2022-01-27", "2022-01-27", DAY),
    ("Thursday, January 27, 2022", None, "2022-01-27", "2022-01-27", DAY),
    ("January 2022", None, "2022-01-01", "2022-01-31", MONTH),
    ("September 2023", None, "2023-09-01", "2023-09-30", MONTH),
    ("2021", None, "2021-01-01", "2021-12-31", YEAR),
    ("Nov. 19, 2020", None, "2020-11-19", "2020-11-19", DAY),
    ("In his Nov.\u00a019, 2020 interview", None, "2020-11-19", "2020-11-19", DAY),  # a no-break space, as in 003
    ("January 3, 2020", None, "2020-01-03", "2020-01-03", DAY),
    ("3 January 2020", None, "2020-01-03", "2020-01-03", DAY),
    ("January 2020", None, "2020-01-01", "2020-01-31", MONTH),
    ("in January 2020", None, "2020-01-01", "2020-01-31", MONTH),
    ("in 2014", None, "2014-01-01", "2014-12-31", YEAR),
    ("in 2020", None, "2020-01-01", "2020-12-31", YEAR),
    ("the 1990s", None, "1990-01-01", "1999-12-31", YEAR),
    # Parts of months and years, seasons.
    ("early October 2019", None, "2019-10-01", "2019-10-10", PART),
    ("mid-September 2023", None, "2023-09-11", "2023-09-20", PART),
    ("late February 2024", None, "2024-02-21", "2024-02-29", PART),
    ("late February 2023", None, "2023-02-21", "2023-02-28", PART),
    ("late 2020", None, "2020-09-01", "2020-12-31", SEASON),
    ("mid-2020", None, "2020-05-01", "2020-08-31", SEASON),
    ("the end of 2019", None, "2019-09-01", "2019-12-31", SEASON),
    ("the first half of 2021", None, "2021-01-01", "2021-06-30", SEASON),
    ("Q3 2020", None, "2020-07-01", "2020-09-30", SEASON),
    ("summer 2019", None, "2019-06-01", "2019-08-31", SEASON),
    ("winter 2020-21", None, "2020-12-01", "2021-02-28", SEASON),
    # Ranges.
    ("between 3 and 5 May 2021", None, "2021-05-03", "2021-05-05", RANGE),
    ("from March to May 2020", None, "2020-03-01", "2020-05-31", RANGE),
    ("January 15-17, 2022", None, "2022-01-15", "2022-01-17", RANGE),
    ("April 30 to May 2, 2021", None, "2021-04-30", "2021-05-02", RANGE),
    ("December 30, 2021 - January 2, 2022", None, "2021-12-30", "2022-01-02", RANGE),
    ("2019-2021", None, "2019-01-01", "2021-12-31", RANGE),
    ("December 30, 2021 - January 2", None, "2021-12-30", "2022-01-02", RANGE),  # the year written once, first
    ("from December 2020 to February", None, "2020-12-01", "2021-02-28", RANGE),
    ("since 2005", "2022-01-27", "2005-01-01", "2022-01-27", RANGE),
    # No year written: the latest such period that starts on or before publication.
    ("mid-September", "2023-10-02", "2023-09-11", "2023-09-20", PART, INFERRED),
    ("In mid-September", "2023-09-15", "2023-09-11", "2023-09-20", PART, INFERRED),  # under way at publication
    ("mid-September", "2023-09-05", "2022-09-11", "2022-09-20", PART, INFERRED),  # this year's has not begun
    ("early September", "2023-10-02", "2023-09-01", "2023-09-10", PART, INFERRED),
    ("late September", "2023-10-02", "2023-09-21", "2023-09-30", PART, INFERRED),
    ("the end of September", "2022-01-27", "2021-09-21", "2021-09-30", PART, INFERRED),
    ("early October", "2022-01-27", "2021-10-01", "2021-10-10", PART, INFERRED),
    ("in August", "2023-10-02", "2023-08-01", "2023-08-31", MONTH, INFERRED),
    ("In January", "2022-01-27", "2022-01-01", "2022-01-31", MONTH, INFERRED),
    ("15-17th January", "2022-01-27", "2022-01-15", "2022-01-17", RANGE, INFERRED),
    ("30 December - 2 January", "2022-01-27", "2021-12-30", "2022-01-02", RANGE, INFERRED),
    ("the 10th of October", "2022-01-27", "2021-10-10", "2021-10-10", DAY, INFERRED),
    ("February 29", "2022-01-27", "2020-02-29", "2020-02-29", DAY, INFERRED),  # the latest that exists
    ("in the summer", "2022-01-27", "2021-06-01", "2021-08-31", SEASON, INFERRED),
    # Counted from publication.
    ("today", "2022-01-27", "2022-01-27", "2022-01-27", DAY),
    ("yesterday", "2022-03-01", "2022-02-28", "2022-02-28", DAY),
    ("ended on Tuesday", "2022-01-27", "2022-01-25", "2022-01-25", DAY),  # published on a Thursday
    ("on Tuesday", "2022-01-25", "2022-01-25", "2022-01-25", DAY),  # published on that Tuesday
    ("last Tuesday", "2022-01-25", "2022-01-18", "2022-01-18", DAY),
    ("which began Wednesday", "2022-01-27", "2022-01-26", "2022-01-26", DAY),
    ("Wednesday", "2021-04-09", "2021-04-07", "2021-04-07", DAY),
    ("last June", "2021-07-15", "2021-06-01", "2021-06-30", MONTH),
    ("last June", "2021-06-15", "2020-06-01", "2020-06-30", MONTH),  # this June is not over: last June is a year back
    ("On a hot summer day last June", "2021-07-15", "2021-06-01", "2021-06-30", MONTH),
    ("last July", "2021-07-15", "2020-07-01", "2020-07-31", MONTH),
    ("this month", "2022-01-27", "2022-01-01", "2022-01-31", MONTH),
    ("earlier this month", "2022-01-27", "2022-01-01", "2022-01-27", MONTH),
    ("last month", "2022-01-27", "2021-12-01", "2021-12-31", MONTH),
    ("next month", "2022-01-27", "2022-02-01", "2022-02-28", MONTH),
    ("Last week", "2022-01-27", "2022-01-17", "2022-01-23", WEEK),
    ("last week", "2021-01-05", "2020-12-28", "2021-01-03", WEEK),  # across New Year
    ("At the beginning of last week", "2022-01-27", "2022-01-17", "2022-01-23", WEEK),
    ("the past week", "2022-01-27", "2022-01-20", "2022-01-27", RANGE),
    ("last year", "2022-01-27", "2021-01-01", "2021-12-31", YEAR),
    ("late last year", "2022-01-27", "2021-09-01", "2021-12-31", SEASON),
    ("early last month", "2022-01-27", "2021-12-01", "2021-12-10", PART),
    ("last summer", "2022-01-27", "2021-06-01", "2021-08-31", SEASON),
    ("this winter", "2022-01-27", "2021-12-01", "2022-02-28", SEASON),
    ("three days ago", "2022-01-27", "2022-01-24", "2022-01-24", DAY),
    ("over the weekend", "2022-01-24", "2022-01-22", "2022-01-23", WEEK),  # published on a Monday
    ("last weekend", "2022-01-23", "2022-01-15", "2022-01-16", WEEK),  # published on a Sunday: this one is not over
    ("two weeks ago", "2022-01-27", "2022-01-10", "2022-01-16", WEEK),
    ("18 months ago", "2022-01-27", "2020-07-01", "2020-07-31", MONTH),
]

# expression, publication date, why it stays empty (a fragment of the reason given)
UNRESOLVED: list[tuple[str, str | None, str]] = [
    ("mid-September", None, "has no year, and there is no publication date"),
    ("In August", None, "has no year, and there is no publication date"),
    ("15-17th January", None, "has no year, and there is no publication date"),
    ("last June", None, "counts from the publication date, and the article has none"),
    ("ended on Tuesday", None, "counts from the publication date, and the article has none"),
    ("Wednesday", None, "counts from the publication date, and the article has none"),
    ("Last week", None, "counts from the publication date, and the article has none"),
    ("today", None, "counts from the publication date, and the article has none"),
    ("18 months ago", None, "counts from the publication date, and the article has none"),
    ("since 2005", None, "runs to the publication date, and the article has none"),
    ("the next day", "2022-01-27", "counts from the event dated before it, and there is none"),
    ("the following week", "2022-01-27", "counts from the event dated before it, and there is none"),
    ("Before this new session with the US", "2022-01-27", "placed against an event, not a date"),
    ("since Soleimani's assassination", "2022-01-27", "placed against an event, not a date"),
    ("months after the killer's identity was revealed", "2022-01-27", "placed against an event, not a date"),
    ("two years after the toppling of Saddam Hussein's regime", "2022-01-27", "counted from an event"),
    ("the day after the attack", "2022-01-27", "counted from an event"),
    ("these days", "2022-01-27", "vague"),
    ("At the time", "2022-01-27", "vague"),
    ("a recent election", "2022-01-27", "vague"),
    ("a few days ago", "2022-01-27", "vague"),
    ("the six months", "2022-01-27", "a duration, not a date"),
    ("more than 15 years", "2022-01-27", "a duration, not a date"),
    ("winter 2020", "2022-01-27", "the winter that begins or the one that ends in 2020"),
    ("03/05/2021", None, "could be day/month or month/day"),
    ("February 30, 2021", None, "not a day of the calendar"),
    ("17-15 May 2021", None, "ends before it starts"),
    ("by the end of 2020", "2022-01-27", "gives only one end of an interval"),
    ("before March 2020", "2022-01-27", "gives only one end of an interval"),
    ("on Tuesday and met Sadr on Wednesday", "2022-01-27", "holds dates that disagree"),
    ("Iran may use escalation", "2022-01-27", "no date expression"),
    ("the march on Baghdad", "2022-01-27", "no date expression"),
    ("in the fall of Mosul", "2022-01-27", "no date expression"),
    ("2000 soldiers", "2022-01-27", "no date expression"),
    ("", "2022-01-27", "the text is empty"),
]

# expression, the previous event's interval (start, end, precision), expected start, end, precision
ANCHORED: list[tuple[str, tuple[str, str, DatePrecision], str, str, DatePrecision]] = [
    ("the next day", ("2020-11-19", "2020-11-19", DAY), "2020-11-20", "2020-11-20", DAY),
    ("the day before", ("2022-03-01", "2022-03-01", DAY), "2022-02-28", "2022-02-28", DAY),
    ("two days later", ("2021-05-03", "2021-05-03", DAY), "2021-05-05", "2021-05-05", DAY),
    ("the same day", ("2021-05-03", "2021-05-03", DAY), "2021-05-03", "2021-05-03", DAY),
    ("the following week", ("2022-01-27", "2022-01-27", DAY), "2022-01-31", "2022-02-06", WEEK),
    ("the following month", ("2020-12-15", "2020-12-15", DAY), "2021-01-01", "2021-01-31", MONTH),
    # An anchor wider than the unit moves whole: the true day is still inside.
    ("the next day", ("2023-09-11", "2023-09-20", PART), "2023-09-12", "2023-09-21", PART),
]


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _row_id(row: tuple[Any, ...]) -> str:
    return f"{row[0] or '<empty>'} @ {row[1] or 'undated'}"


@pytest.mark.parametrize("row", TABLE, ids=[_row_id(row) for row in TABLE])
def test_the_date_table(row: tuple[Any, ...]) -> None:
    text, published, start, end, precision, *inferred = row
    interval = resolve_date(text, _date(published))
    assert (interval.start, interval.end, interval.precision) == (_date(start), _date(end), precision)
    assert interval.resolved and interval.reason is None
    if inferred:
        assert interval.assumption is not None and "no year written" in interval.assumption
        assert published is not None and published in interval.assumption
    else:
        assert interval.assumption is None


@pytest.mark.parametrize("row", UNRESOLVED, ids=[_row_id(row) for row in UNRESOLVED])
def test_expressions_without_an_interval_say_why(row: tuple[str, str | None, str]) -> None:
    text, published, reason = row
    interval = resolve_date(text, _date(published))
    assert (interval.start, interval.end, interval.precision) == (None, None, None)
    assert not interval.resolved
    assert interval.reason is not None and reason in interval.reason


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) + len(UNRESOLVED) + len(ANCHORED) >= 60
    assert len(TABLE) >= 60


def test_a_reason_quotes_the_expression_as_the_article_wrote_it() -> None:
    assert resolve_date("In mid-September", None).reason == (
        "'mid-September' has no year, and there is no publication date to take it from"
    )
    assert resolve_date("On a hot summer day last June", None).reason == (
        "'last June' counts from the publication date, and the article has none"
    )
    inferred = resolve_date("mid-September", dt.date(2023, 10, 2))
    assert inferred.assumption == "no year written: the latest 'mid-September' on or before publication (2023-10-02)"


@pytest.mark.parametrize("row", ANCHORED, ids=[f"{row[0]} after {row[1][0]}" for row in ANCHORED])
def test_expressions_anchored_on_the_previous_event(
    row: tuple[str, tuple[str, str, DatePrecision], str, str, DatePrecision],
) -> None:
    text, (prev_start, prev_end, prev_precision), start, end, precision = row
    previous = DateInterval(_date(prev_start), _date(prev_end), prev_precision)
    interval = resolve_date(text, dt.date(2030, 1, 1), previous=previous)
    assert (interval.start, interval.end, interval.precision) == (_date(start), _date(end), precision)


def test_the_previous_event_anchors_only_words_that_count_from_it() -> None:
    previous = resolve_date("Nov. 19, 2020", None)
    published = dt.date(2022, 1, 27)
    # "next month" counts from publication, "the next month" from the previous event.
    assert resolve_date("next month", published, previous=previous).start == dt.date(2022, 2, 1)
    assert resolve_date("the next month", published, previous=previous).start == dt.date(2020, 12, 1)
    # An explicit date after "the day after" is the anchor, with or without a previous event.
    assert resolve_date("the day after January 3, 2020", None).start == dt.date(2020, 1, 4)
    assert resolve_date("2 days after 3 May 2021", None, previous=previous).start == dt.date(2021, 5, 5)
    unresolved = resolve_date("the mid-September", None)
    followed = resolve_date("the next day", published, previous=unresolved)
    assert not followed.resolved
    assert followed.reason == "'the next day' counts from the event dated before it, which is unresolved"


def test_intervals_overlap_only_when_both_are_resolved() -> None:
    september = resolve_date("September 2023", None)
    mid = resolve_date("mid-September 2023", None)
    october = resolve_date("October 2023", None)
    undated = resolve_date("mid-September", None)
    assert september.overlaps(mid) is True
    assert mid.overlaps(october) is False
    assert september.overlaps(undated) is None and undated.overlaps(september) is None
    with pytest.raises(ValueError, match="ends"):
        DateInterval(dt.date(2022, 1, 2), dt.date(2022, 1, 1), DAY)


# Pieces of date expressions, to be put together in any order.
_PIECES = (
    "january feb may march sept mid early late the end of beginning last this next week month year day days ago later"
    " earlier before after since until between and from to - / summer winter fall tuesday today yesterday following"
    " same that q1 first half quarter 2020 2021 1999 2024 2020-21 2020-02-30 31/12/2020 12/31/2020 13/13/2020 0 1 2"
    " 12 13 15 21 29 30 31 10th 17th , . in on a few two eighteen past"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(st.sampled_from(_PIECES.split()), max_size=8),
    published=st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    previous_precision=st.none() | st.sampled_from(list(DatePrecision)),
)
def test_any_text_gives_an_ordered_interval_or_a_reason(
    words: list[str], published: dt.date | None, previous_precision: DatePrecision | None
) -> None:
    previous = None
    if previous_precision is not None:
        previous = DateInterval(dt.date(2020, 2, 10), dt.date(2020, 3, 5), previous_precision)
    interval = resolve_date(" ".join(words), published, previous=previous)
    if interval.resolved:
        assert interval.start is not None and interval.end is not None and interval.start <= interval.end
        assert interval.precision is not None and interval.reason is None
    else:
        assert (interval.start, interval.end, interval.precision) == (None, None, None)
        assert interval.reason and "outside the calendar" not in interval.reason


# --- the seeds --------------------------------------------------------------------------------------

# Every date expression in the seed articles, as written (found by reading each article and
# grepping for month, weekday, season and unit words and for years).
SEED_EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "000_57f720f08a0b9acd": ("mid-September", "in August", "today"),
    "001_c222d2c9a2cf11cb": (
        "On a hot summer day last June",
        "last June",
        "more than 15 years",
        "in 2020",
        "the six months",
        "18 months ago",
        "At the beginning of last week",
        "last July",
        "months after the killer's identity was revealed",
        "January 3, 2020",
    ),
    "002_d04feccafa46ccf3": (
        "ended on Tuesday",
        "which began Wednesday",
        "in 2020",
        "Before this new session with the US",
        "Last week",
        "In January",
    ),
    "003_9beb4a1d95a1dd03": (
        "Nov.\u00a019, 2020",
        "In his Nov.\u00a019, 2020 interview",
        "At the time",
        "the next day",
    ),
    "004_75ce37bffc8d8123": (
        "Jan 27, 2022",
        "January 27, 2022",
        "these days",
        "this month",
        "a recent election",
        "the 10th of October",
        "since 2005",
        "two years after the toppling of Saddam Hussein’s regime",
        "in 2014",
        "early October 2019",
        "3 January 2020",
        "15-17th January",
        "January 2020",
        "since Soleimani’s assassination",
        "late 2020",
    ),
}


def _folded(text: str) -> str:
    """Case, apostrophes and spaces folded, to find an article's expression among the table's."""
    return " ".join(text.replace("’", "'").casefold().split())


def _tabled_expressions() -> set[str]:
    texts = [row[0] for row in TABLE] + [row[0] for row in UNRESOLVED] + [row[0] for row in ANCHORED]
    return {_folded(text) for text in texts}


def _whens(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Each ``When`` of a records dict, with its record path, in document order."""
    if isinstance(value, dict):
        if isinstance(value.get("when"), dict):
            yield path, value["when"]
        for key, item in value.items():
            if key != "when":
                yield from _whens(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _whens(item, f"{path}[{index}]")


def _gold(stem: str) -> dict[str, Any]:
    return json.loads((GOLD / f"{stem}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("stem", sorted(SEED_EXPRESSIONS))
def test_every_date_expression_of_the_seeds_is_in_the_table(stem: str) -> None:
    article = (SEEDS / f"{stem}.txt").read_text(encoding="utf-8")
    tabled = _tabled_expressions()
    for expression in SEED_EXPRESSIONS[stem]:
        assert expression in article, expression
        assert _folded(expression) in tabled, expression
    for path, when in _whens(_gold(stem)):
        assert when["text"] in article, path
        assert _folded(when["text"]) in tabled, (path, when["text"])


# Which seeds are dated, and what each gold When resolves to (verified by reading the article).
# Only 004 prints its date ("January 27, 2022", below the byline, and in its gold `published`);
# 000-003 print none, so their relative dates stay empty, each with its reason.
GOLD_WHENS: dict[str, tuple[dt.date | None, list[tuple[str, str, Any]]]] = {
    "004_75ce37bffc8d8123": (
        dt.date(2022, 1, 27),
        [
            # The photo caption: "visited Iraq on Jan 27, 2022".
            ("visits[0]", "Jan 27, 2022", ("2022-01-27", "2022-01-27", DAY)),
            # "Qaani's previous visit to Iraq this month (15-17th January)": January of 2022.
            ("visits[1]", "15-17th January", ("2022-01-15", "2022-01-17", RANGE)),
            # "greeted Qaani's visit to Iraq in late 2020 with rocket attacks": the last third of 2020.
            ("visits[2]", "late 2020", ("2020-09-01", "2020-12-31", SEASON)),
        ],
    ),
    "000_57f720f08a0b9acd": (
        None,
        [
            ("visits[0]", "mid-September", "has no year, and there is no publication date"),
            ("meetings[0]", "mid-September", "has no year, and there is no publication date"),
        ],
    ),
    "001_c222d2c9a2cf11cb": (
        None,
        [
            ("visits[0]", "last June", "counts from the publication date, and the article has none"),
            ("meetings[0]", "last June", "counts from the publication date, and the article has none"),
        ],
    ),
    "002_d04feccafa46ccf3": (
        None,
        [
            ("visits[0]", "ended on Tuesday", "counts from the publication date, and the article has none"),
            ("visits[1]", "Last week", "counts from the publication date, and the article has none"),
            ("visits[2]", "Before this new session with the US", "placed against an event, not a date"),
            ("visits[3]", "Before this new session with the US", "placed against an event, not a date"),
            ("visits[4]", "Before this new session with the US", "placed against an event, not a date"),
            ("meetings[2]", "Wednesday", "counts from the publication date, and the article has none"),
            ("meetings[3]", "Before this new session with the US", "placed against an event, not a date"),
        ],
    ),
    # "The attack prompted Qaani to travel to Iraq the next day": the gold dates no event before it.
    "003_9beb4a1d95a1dd03": (
        None,
        [("visits[0]", "the next day", "counts from the event dated before it, and there is none")],
    ),
}


def test_every_gold_file_is_listed() -> None:
    assert sorted(GOLD_WHENS) == sorted(path.stem for path in GOLD.glob("*.json"))


@pytest.mark.parametrize("stem", sorted(GOLD_WHENS))
def test_the_gold_whens_resolve_against_the_articles_publication_date(stem: str) -> None:
    gold = _gold(stem)
    article = (SEEDS / f"{stem}.txt").read_text(encoding="utf-8")
    published, expected = GOLD_WHENS[stem]
    assert publication_date({"id": stem, "records": gold}, article) == published
    whens = list(_whens(gold))
    assert [(path, when["text"]) for path, when in whens] == [(path, text) for path, text, _ in expected]
    previous: DateInterval | None = None
    for (path, when), (_, _, outcome) in zip(whens, expected, strict=True):
        interval = resolve_date(when["text"], published, previous=previous)
        if isinstance(outcome, str):
            assert not interval.resolved and interval.reason is not None and outcome in interval.reason, path
            continue
        start, end, precision = outcome
        assert (interval.start, interval.end, interval.precision) == (_date(start), _date(end), precision), path
        # Where the gold itself gives ISO dates, the resolved interval agrees with them.
        if when["start"] is not None:
            assert interval.start == _date(when["start"]), path
            assert interval.end == _date(when["end"] or when["start"]), path
        previous = interval


# --- publication dates ------------------------------------------------------------------------------

SEED_004 = (SEEDS / "004_75ce37bffc8d8123.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "published",
    [
        "2022-01-27",
        "2022-01-27T10:15:00Z",
        "2022-01-27T10:15:00+03:00",
        "Thu, 27 Jan 2022 10:15:00 +0000",
        "January 27, 2022 10:15 AM",
        "27 January 2022",
        "27.01.2022",
    ],
)
def test_publication_date_from_the_input_metadata(published: str) -> None:
    line = {"id": "a", "meta": {"published": published}, "records": {"published": "March 3, 2021"}}
    assert publication_date(line) == dt.date(2022, 1, 27)


def test_publication_date_from_the_extracted_published_field() -> None:
    assert publication_date({"id": "a", "records": {"published": "January 27, 2022"}}) == dt.date(2022, 1, 27)
    # Metadata that names no day gives way to the extracted field.
    line = {"id": "a", "meta": {"published": "last week"}, "records": {"published": "Jan. 27, 2022"}}
    assert publication_date(line) == dt.date(2022, 1, 27)
    # An input line (or a gold file) carries ``published`` at the top.
    assert publication_date({"id": "a", "published": "2022-01-27", "text": "..."}) == dt.date(2022, 1, 27)


@pytest.mark.parametrize("published", ["2022-01", "January 2022", "Jan 27", "last week", "soon", "", 20220127])
def test_only_a_whole_day_with_its_year_is_a_publication_date(published: object) -> None:
    assert publication_date({"id": "a", "meta": {"published": published}}) is None


def test_publication_date_from_a_dateline() -> None:
    # Seed 004 prints "January 27, 2022" on its own line below the byline.
    assert publication_date({"id": "004", "records": {"published": None}}, SEED_004) == dt.date(2022, 1, 27)
    # The text of an input line is read when no article text is passed.
    assert publication_date({"id": "004", "text": SEED_004}) == dt.date(2022, 1, 27)
    datelines = {
        "BAGHDAD, Jan. 27, 2022 (Reuters) - Iran's Quds Force commander arrived...": dt.date(2022, 1, 27),
        "Headline\nBy Anas al-Bar | January 27, 2022\nBody text.": dt.date(2022, 1, 27),
        "Published: Thursday, 27 January 2022 - 10:15 GMT\nBody text.": dt.date(2022, 1, 27),
        "Headline\nUpdated 27 January 2022 10:15\nBody text.": dt.date(2022, 1, 27),
    }
    for text, expected in datelines.items():
        assert publication_date({"id": "a"}, text) == expected, text


def test_a_date_inside_a_sentence_or_without_its_year_is_no_dateline() -> None:
    assert publication_date({"id": "a"}, "He said on January 27, 2022 that the visit had ended.") is None
    assert publication_date({"id": "a"}, "BAGHDAD, Jan 27 (Reuters) - Iran's Quds Force commander") is None
    assert publication_date({"id": "a"}, "Headline\n" + "Body.\n" * 30 + "January 27, 2022\n") is None


def test_the_date_names_are_public() -> None:
    assert structx.resolve_date is resolve_date
    assert {"DateInterval", "DatePrecision", "publication_date", "resolve_date"} <= set(structx.__all__)
