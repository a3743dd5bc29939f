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

import csv
import json
import re
import sqlite3
from collections.abc import Iterable
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

    A field whose lists are all empty is taken for one (nothing is lost either
    way); a field that is anything else in any line is a column of ``articles``.
    """
    tables: set[str] = set()
    columns: set[str] = set()
    for line in lines:
        records = line.get("records")
        for name, value in records.items() if isinstance(records, dict) else ():
            is_records = isinstance(value, list) and all(isinstance(item, dict) for item in value)
            (tables if is_records else columns).add(name)
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


def _claim(target: Path, force: bool) -> Path:
    """The temporary path to write ``target`` through; a stale one (even a symlink) is removed first."""
    if (target.exists() or target.is_symlink()) and not force:
        raise UsageError(f"{target} exists; pass --force to replace it")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    return partial


def export_tables(
    lines: list[dict[str, Any]], directory: Path, *, formats: Iterable[str], force: bool = False
) -> list[Path]:
    """Write the results' tables into ``directory`` as ``csv`` files and/or a ``sqlite`` database."""
    tables = _tables(lines)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind in formats:
        if kind == "csv":
            for name, rows in tables.items():
                target = _inside(directory, f"{name}.csv")
                partial = _claim(target, force)
                first = _ARTICLE_COLUMNS if name == "articles" else ["article_id", "index", "grounded"]
                with partial.open("x", encoding="utf-8", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=_columns(rows, first))
                    writer.writeheader()
                    writer.writerows(rows)
                partial.replace(target)
                written.append(target)
        elif kind == "sqlite":
            target = _inside(directory, "results.sqlite")
            partial = _claim(target, force)
            with sqlite3.connect(partial) as db:
                for name, rows in tables.items():
                    first = _ARTICLE_COLUMNS if name == "articles" else ["article_id", "index", "grounded"]
                    columns = _columns(rows, first)
                    quoted = ", ".join(f'"{c}"' for c in columns)
                    db.execute(f'CREATE TABLE "{name}" ({quoted})')
                    marks = ", ".join("?" for _ in columns)
                    db.executemany(
                        f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})',
                        ([row.get(c) for c in columns] for row in rows),
                    )
            db.close()
            partial.replace(target)
            written.append(target)
        else:
            raise UsageError(f"unknown export format {kind!r}: use csv or sqlite")
    return written
