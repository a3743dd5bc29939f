"""The knowledge layer: result lines become a dataset (entities, dates on the calendar, merged events).

It works from result lines alone (dicts as read from a results JSONL file, or
gold files of the same ``records`` shape), so it sits above the engine and
below the CLI and never imports either.
"""

from structx._knowledge._dates import DateInterval, DatePrecision, publication_date, resolve_date

__all__ = ["DateInterval", "DatePrecision", "publication_date", "resolve_date"]
