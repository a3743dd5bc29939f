"""The dataset: typed tables built from result lines, written as SQLite and Parquet.

:func:`build_dataset` reads result lines (or results files, or folders of
answers in the gold format), resolves the names to entities and merges the
events, and returns a :class:`Dataset`: one list of frozen rows per table.
:meth:`Dataset.write` puts a SQLite database (``dataset.sqlite``) and one
Parquet file per table in a folder: every file is written under a temporary
name inside that folder and renamed into place, nothing is written outside
it, and an existing dataset is replaced only when asked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
import tempfile
import types
import typing
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structx._errors import UsageError
from structx._knowledge._articles import articles_from
from structx._knowledge._entities import Decider, Entity, UndecidedPair, resolve
from structx._knowledge._events import MentionIndex, build_events
from structx._knowledge._mentions import EntityType, extract_mentions
from structx._knowledge._rows import (
    MeetingParticipantRow,
    MeetingRow,
    MentionRow,
    QuoteRow,
    RecordRef,
    SourceRow,
    StanceRow,
    VisitRow,
)

__all__ = ["TABLES", "Dataset", "build_dataset"]

#: Table name -> row type, in the order they are written.
TABLES: dict[str, type[Any]] = {
    "entities": Entity,
    "mentions": MentionRow,
    "visits": VisitRow,
    "meetings": MeetingRow,
    "meeting_participants": MeetingParticipantRow,
    "stances": StanceRow,
    "sources": SourceRow,
    "quotes": QuoteRow,
    "undecided_pairs": UndecidedPair,
}
SQLITE_NAME = "dataset.sqlite"


@dataclass(slots=True)
class Dataset:
    """Entities, mentions, events, stances and sources built from result lines, as typed rows."""

    entities: list[Entity] = field(default_factory=list)
    mentions: list[MentionRow] = field(default_factory=list)
    visits: list[VisitRow] = field(default_factory=list)
    meetings: list[MeetingRow] = field(default_factory=list)
    meeting_participants: list[MeetingParticipantRow] = field(default_factory=list)
    stances: list[StanceRow] = field(default_factory=list)
    sources: list[SourceRow] = field(default_factory=list)
    quotes: list[QuoteRow] = field(default_factory=list)
    undecided_pairs: list[UndecidedPair] = field(default_factory=list)
    #: Forms (different ways of writing a name) joined into another form's entity.
    merges: int = 0
    #: Articles read (``ok`` lines), and lines skipped because their status was an error.
    articles: int = 0
    error_lines: int = 0
    #: Article ids given more than once: the first line was used.
    duplicate_ids: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, list[Any]]:
        """Each table's rows by table name."""
        return {name: list(getattr(self, name)) for name in TABLES}

    def entity(self, entity_id: str) -> Entity | None:
        return next((e for e in self.entities if e.entity_id == entity_id), None)

    def entities_by_type(self) -> dict[str, int]:
        counts = Counter(e.type.value for e in self.entities)
        return {kind.value: counts.get(kind.value, 0) for kind in EntityType}

    def corroborated_events(self, at_least: int = 2) -> int:
        """Visits and meetings reported by ``at_least`` distinct articles."""
        events: list[VisitRow | MeetingRow] = [*self.visits, *self.meetings]
        return sum(event.corroboration >= at_least for event in events)

    def timeline(self, entity_id: str) -> list[VisitRow]:
        """The visits of one visitor in time order (undated ones last)."""
        return [v for v in self.visits if v.visitor_entity_id == entity_id]

    def stance_matrix(self) -> dict[tuple[str, str], list[StanceRow]]:
        """(militia entity id, topic) -> its positions, oldest first (undated ones last)."""
        matrix: dict[tuple[str, str], list[StanceRow]] = {}
        for row in self.stances:
            matrix.setdefault((row.militia_entity_id, row.topic), []).append(row)
        return matrix

    def summary(self) -> str:
        """One line: entities by type, merges, undecided pairs, events corroborated by 2+ articles."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.entities_by_type().items())
        line = (
            f"{self.articles} articles: {len(self.entities)} entities ({kinds}); {self.merges} merges; "
            f"{len(self.undecided_pairs)} undecided pairs; {self.corroborated_events()} events corroborated by "
            f"2+ articles ({len(self.visits)} visits, {len(self.meetings)} meetings)"
        )
        if self.error_lines:
            line += f"; skipped {self.error_lines} line{'s' if self.error_lines != 1 else ''} with an error status"
        if self.duplicate_ids:
            line += f"; {len(self.duplicate_ids)} repeated article ids (first line used)"
        return line

    def to_pandas(self) -> dict[str, Any]:
        """Each table as a pandas DataFrame (needs pandas, which structx does not install)."""
        try:
            import pandas as pd
        except ImportError:
            raise UsageError("Dataset.to_pandas needs pandas: pip install pandas") from None
        frames = {}
        for name, row_type in TABLES.items():
            columns = [f.name for f in dataclasses.fields(row_type)]
            rows = [_plain(row, json_cells=False) for row in getattr(self, name)]
            frames[name] = pd.DataFrame(rows, columns=columns)
        return frames

    def write(self, directory: Path | str, *, force: bool = False) -> list[Path]:
        """Write ``dataset.sqlite`` and ``<table>.parquet`` for every table into ``directory``.

        A directory that exists and is not empty is refused unless ``force``;
        with ``force`` the dataset's own files are replaced and nothing else
        in the folder is touched. Returns the paths written.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"{directory} exists and is not a directory; give a folder for the dataset")
        if directory.is_dir() and any(directory.iterdir()) and not force:
            raise UsageError(f"{directory} exists and is not empty; pass --force to replace the dataset in it")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write in {directory}: {exc.strerror}") from None
        plan = [(_inside(directory, SQLITE_NAME), self._write_sqlite)]
        for name in TABLES:
            plan.append((_inside(directory, f"{name}.parquet"), _parquet_writer(self, name)))
        written = []
        for target, write in plan:
            partial = target.with_name(f".{target.name}.partial")
            try:
                partial.unlink(missing_ok=True)
                write(partial)
                partial.replace(target)
            except (OSError, sqlite3.Error, ValueError, TypeError) as exc:  # pyarrow's errors are these too
                with contextlib.suppress(OSError):
                    partial.unlink(missing_ok=True)
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise UsageError(f"cannot write {target}: {reason}") from None
            written.append(target)
        return written

    def _write_sqlite(self, path: Path) -> None:
        db = sqlite3.connect(path)
        try:
            with db:
                for name, row_type in TABLES.items():
                    columns = [(column, _sqlite_type(hint)) for column, hint in _hints(row_type).items()]
                    spec = ", ".join(f'"{column}" {kind}' for column, kind in columns)
                    db.execute(f'CREATE TABLE "{name}" ({spec})')
                    marks = ", ".join("?" for _ in columns)
                    db.executemany(
                        f'INSERT INTO "{name}" VALUES ({marks})',
                        ([_plain(row, json_cells=True)[c] for c, _ in columns] for row in getattr(self, name)),
                    )
        finally:
            db.close()


def _inside(directory: Path, name: str) -> Path:
    target = directory / name
    if not target.resolve().is_relative_to(directory.resolve()):
        raise UsageError(f"{target} would be written outside {directory}")
    return target


def _plain(row: Any, *, json_cells: bool) -> dict[str, Any]:
    """A row as column -> value: enums as text, tuples as lists (JSON text for SQLite), dates as dates."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        if isinstance(value, tuple):
            items = [dataclasses.asdict(v) if isinstance(v, RecordRef) else v for v in value]
            value = json.dumps(items, ensure_ascii=False) if json_cells else items
        elif isinstance(value, EntityType):
            value = value.value
        elif json_cells and isinstance(value, dt.date):
            value = value.isoformat()
        values[f.name] = value
    return values


def _hints(row_type: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(row_type)


def _base(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(annotation, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _sqlite_type(annotation: Any) -> str:
    return "INTEGER" if _base(annotation) in (int, bool) else "TEXT"


def _arrow_schema(row_type: type[Any]) -> Any:
    import pyarrow as pa

    record_ref = pa.struct([("article_id", pa.string()), ("record_path", pa.string())])
    fields = []
    for name, annotation in _hints(row_type).items():
        base = _base(annotation)
        if base is bool:
            kind = pa.bool_()
        elif base is int:
            kind = pa.int64()
        elif base is dt.date:
            kind = pa.date32()
        elif typing.get_origin(base) is tuple:
            (item, _) = typing.get_args(base)
            kind = pa.list_(record_ref if item is RecordRef else pa.string())
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _parquet_writer(dataset: Dataset, name: str) -> Any:
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(TABLES[name])
        rows = [_plain(row, json_cells=False) for row in getattr(dataset, name)]
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, path)

    return write


def build_dataset(
    inputs: Iterable[Mapping[str, Any] | Path | str],
    *,
    articles: Path | str | None = None,
    decide: Decider | None = None,
) -> Dataset:
    """Build the dataset from result lines, results files (JSONL) and folders of answers (gold format).

    ``articles`` is a folder of article texts (``<id>.txt``) for lines whose
    ``source`` cannot be read (answers carry none): with the text, mentions get
    character spans and the resolver the article's own full names and
    acronyms. ``decide`` is asked about each pair of entities the rules leave
    undecided (canonical names and the reason) and joins them when it returns
    True. Lines with an error status are skipped and counted; bad input raises
    an InputError naming the file.
    """
    read = articles_from(inputs, articles=Path(articles) if articles is not None else None)
    by_id = {article.id: article for article in read.articles}
    mentions = [mention for article in read.articles for mention in extract_mentions(article)]
    resolution = resolve(mentions, by_id, decide)
    entities = {entity.entity_id: entity for entity in resolution.entities}
    entity_at = {(m.article_id, m.record_path, m.field): resolution.entity_of[m.mention_id] for m in mentions}
    events = build_events(read.articles, MentionIndex(entity_at, entities))
    mention_rows = [
        MentionRow(
            mention_id=m.mention_id,
            entity_id=resolution.entity_of[m.mention_id],
            type=m.type.value,
            surface=m.surface,
            article_id=m.article_id,
            record_path=m.record_path,
            field=m.field,
            named=m.named,
            start=m.start,
            end=m.end,
        )
        for m in mentions
    ]
    return Dataset(
        entities=resolution.entities,
        mentions=mention_rows,
        visits=events.visits,
        meetings=events.meetings,
        meeting_participants=events.meeting_participants,
        stances=events.stances,
        sources=events.sources,
        quotes=events.quotes,
        undecided_pairs=resolution.undecided,
        merges=resolution.merges,
        articles=len(read.articles),
        error_lines=read.error_lines,
        duplicate_ids=read.duplicate_ids,
    )
