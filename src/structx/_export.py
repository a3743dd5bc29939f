"""Exporting a results file to tables: CSV files, or one SQLite database.

One table per record type (``visits``, ``meetings``, ...) with a row per
record, plus ``articles`` with a row per article: the line's status, error
and usage, the root record's own fields (``title``, ``outlet``, ..., or every
field of a schema that is a single record) and the article's metadata
(``meta_title``, ``meta_url``, ...). Lists and objects in a cell are JSON; a
name already taken gets a prefix (``record_status``). Every file is written to a
temporary name in the output directory and renamed into place, so a reader
never sees half a table; nothing is written outside the output directory, and
an existing file is replaced only when asked.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from structx._errors import InputError, UsageError

__all__ = ["export_tables"]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_ARTICLE_COLUMNS = [
    "article_id", "source", "status", "error_type", "error_message", "prompt_tokens", "completion_tokens",
    "attempts", "requests", "model", "records", "ungrounded_records",
]  # fmt: skip


def _record_types(lines: list[dict[str, Any]]) -> set[str]:
    """The root fields that hold lists of records, each to become a table.

    A field is a table when some line holds records (objects) in it and no
    line holds anything else there. A field whose lists are empty in every
    line cannot be told from a list of strings, so it is a column of
    ``articles`` (``[]``), like any other field: nothing is lost either way.
    """
    tables: set[str] = set()
    columns: set[str] = set()
    for line in lines:
        records = line.get("records")
        for name, value in records.items() if isinstance(records, dict) else ():
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                columns.add(name)
            elif value:
                tables.add(name)
    return tables - columns


def _tables(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {"articles": []}
    record_types = _record_types(lines)
    for line in lines:
        grounding = {r["path"]: r for r in (line.get("grounding") or {}).get("records", []) if not r.get("dropped")}
        usage = line.get("usage") or {}
        error = line.get("error") or {}
        article: dict[str, Any] = {
            "article_id": line["id"], "source": line.get("source"), "status": line["status"],
            "error_type": error.get("type"), "error_message": error.get("message"),
            "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "attempts": line.get("attempts"), "requests": line.get("requests"), "model": line.get("model"),
            "records": len(grounding), "ungrounded_records": sum(not r["grounded"] for r in grounding.values()),
        }  # fmt: skip
        tables["articles"].append(article)
        records = line.get("records")
        for name, value in records.items() if isinstance(records, dict) else ():
            if name not in record_types:
                # The root record's own fields (a title, or every field of a
                # single-record schema) describe the article.
                _put(article, name, _cell(value), "record_")
                continue
            if not _TABLE_NAME.fullmatch(name) or name == "articles":
                raise InputError(f"record type {name!r} of article {line['id']!r} is not a usable table name")
            rows = tables.setdefault(name, [])
            for index, record in enumerate(value):
                path = f"{name}[{index}]"
                row: dict[str, Any] = {"article_id": line["id"], "index": index}
                row["grounded"] = grounding[path]["grounded"] if path in grounding else None
                for key, field in record.items():
                    _put(row, key, _cell(field), "record_")
                rows.append(row)
        meta = line.get("meta")
        for key, value in meta.items() if isinstance(meta, dict) else ():
            _put(article, f"meta_{key}", _cell(value), "meta_")
    return tables


def _put(row: dict[str, Any], column: str, value: Any, prefix: str) -> None:
    """Set ``column``; a name already taken (a linking column, say) keeps its value under ``prefix`` + name."""
    while column in row:
        column = prefix + column
    row[column] = value


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _columns(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    columns = list(first)
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _inside(directory: Path, name: str) -> Path:
    target = directory / name
    if not target.resolve().is_relative_to(directory.resolve()):
        raise UsageError(f"{target} would be written outside {directory}")
    return target


def _output_directory(directory: Path) -> None:
    """Create ``directory`` if need be; a UsageError naming it when it cannot hold the tables."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory; give a directory for the tables")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the directory {directory}: {exc.strerror}") from None
    try:
        # Trying is the only sure test: permission bits do not bind root, and
        # some file systems refuse new files whatever the bits say.
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise UsageError(f"the directory {directory} is not writable ({exc.strerror})") from None


def _check_free(target: Path, force: bool) -> None:
    if (target.exists() or target.is_symlink()) and not force:
        raise UsageError(f"{target} exists; pass --force to replace it")


def _partial(target: Path) -> Path:
    """The temporary path to write ``target`` through; a stale one (even a symlink) is removed first."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    return partial


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write_csv(target: Path, rows: list[dict[str, Any]], first: list[str]) -> None:
    partial = _partial(target)
    with partial.open("x", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_columns(rows, first))
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(target)


def _write_sqlite(target: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    partial = _partial(target)
    db = sqlite3.connect(partial)
    try:
        with db:
            for name, rows in tables.items():
                columns = _columns(rows, _first_columns(name))
                quoted = ", ".join(_quote(c) for c in columns)
                db.execute(f"CREATE TABLE {_quote(name)} ({quoted})")
                marks = ", ".join("?" for _ in columns)
                db.executemany(
                    f"INSERT INTO {_quote(name)} ({quoted}) VALUES ({marks})",
                    ([row.get(c) for c in columns] for row in rows),
                )
    finally:
        db.close()
    partial.replace(target)


def _first_columns(table: str) -> list[str]:
    return _ARTICLE_COLUMNS if table == "articles" else ["article_id", "index", "grounded"]


def export_tables(
    lines: list[dict[str, Any]], directory: Path, *, formats: Iterable[str], force: bool = False
) -> list[Path]:
    """Write the results' tables into ``directory`` as ``csv`` files and/or a ``sqlite`` database.

    Every check (formats, the directory, tables that exist) is made before
    the first table is written; a table that cannot be written raises a
    UsageError naming it.
    """
    kinds = list(dict.fromkeys(formats))
    unknown = [kind for kind in kinds if kind not in ("csv", "sqlite")]
    if unknown:
        raise UsageError(f"unknown export format {unknown[0]!r}: use csv or sqlite")
    tables = _tables(lines)
    _output_directory(directory)
    plan: list[tuple[Path, Callable[[Path], None]]] = []
    for kind in kinds:
        if kind == "csv":
            for name, rows in tables.items():
                plan.append(
                    (
                        _inside(directory, f"{name}.csv"),
                        functools.partial(_write_csv, rows=rows, first=_first_columns(name)),
                    )
                )
        else:
            plan.append((_inside(directory, "results.sqlite"), functools.partial(_write_sqlite, tables=tables)))
    for target, _ in plan:
        _check_free(target, force)
    written: list[Path] = []
    for target, write in plan:
        try:
            write(target)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                _partial(target)  # removes what was begun
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot write {target}: {reason}") from None
        written.append(target)
    return written
