"""A dataset folder written by ``structx merge``, read back from its ``dataset.sqlite`` as typed rows.

The report draws the dataset sections from the same rows
:func:`structx.build_dataset` returns, so a folder written earlier (perhaps
from more runs than the report shows) reads back into a :class:`Dataset`:
JSON text into tuples, ISO text into dates, ``supporting_records`` into
:class:`RecordRef`. The database is opened read-only; a folder without one,
or a file that is not such a database, is an InputError naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import types
import typing
from pathlib import Path
from typing import Any

from structx._errors import InputError
from structx._knowledge._dataset import SQLITE_NAME, TABLES, Dataset
from structx._knowledge._mentions import EntityType
from structx._knowledge._rows import RecordRef

__all__ = ["read_dataset"]


def read_dataset(directory: Path) -> Dataset:
    """The dataset in ``directory`` (its ``dataset.sqlite``), as :class:`Dataset` rows."""
    if not directory.is_dir():
        raise InputError("no such dataset folder (write one with structx merge)", path=directory)
    path = directory / SQLITE_NAME
    if not path.is_file():
        raise InputError(f"no {SQLITE_NAME} in the folder (write one with structx merge)", path=directory)
    dataset = Dataset()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open it: {exc}", path=path) from None
    try:
        for name, row_type in TABLES.items():
            hints = typing.get_type_hints(row_type)
            columns = ", ".join(f'"{column}"' for column in hints)
            try:
                rows = db.execute(f'SELECT {columns} FROM "{name}"').fetchall()
            except sqlite3.Error as exc:
                raise InputError(f"not a structx dataset (table {name}: {exc})", path=path) from None
            try:
                values = [row_type(**{c: _value(v, hints[c]) for c, v in zip(hints, row, strict=True)}) for row in rows]
            except (ValueError, TypeError, KeyError) as exc:
                raise InputError(f"not a structx dataset (a row of table {name}: {exc})", path=path) from None
            setattr(dataset, name, values)
    finally:
        db.close()
    dataset.articles = len({m.article_id for m in dataset.mentions})
    return dataset


def _value(value: Any, annotation: Any) -> Any:
    if value is None:
        return None
    base = _base(annotation)
    if base is bool:
        return bool(value)
    if base is int:
        return int(value)
    if base is dt.date:
        return dt.date.fromisoformat(str(value))
    if base is EntityType:
        return EntityType(value)
    if typing.get_origin(base) is tuple:
        (item, _) = typing.get_args(base)
        items = json.loads(value) if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError(f"expected a JSON list, got {value!r}")
        if item is RecordRef:
            return tuple(RecordRef(str(i["article_id"]), str(i["record_path"])) for i in items)
        return tuple(str(i) for i in items)
    return str(value)


def _base(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(annotation, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation
