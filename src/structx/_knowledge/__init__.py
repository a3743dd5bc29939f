"""The knowledge layer: entities resolved across articles, events merged and dated, as a dataset.

It works from result lines alone (as ``structx extract`` writes them, or
answers in the gold format), so it runs on results produced anywhere. It sits
above the extraction engine and below the command line, and imports neither
(an import-linter contract in pyproject.toml says so).

* ``_articles``: reading the inputs and the article texts behind them;
* ``_names``: the rules that compare two names;
* ``_mentions``: every name a record holds, with its provenance;
* ``_entities``: mentions into entities, pairwise checked;
* ``_dates``: dates on the calendar;
* ``_events``: visits and meetings merged, the stance matrix, the source index;
* ``_dataset``: the tables, SQLite and Parquet;
* ``_scoring``: entity resolution measured against an alias gold file.
"""

from structx._knowledge._dates import DateInterval, DatePrecision, publication_date, resolve_date

__all__ = ["DateInterval", "DatePrecision", "publication_date", "resolve_date"]
