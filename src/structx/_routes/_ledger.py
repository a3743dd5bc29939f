"""The batch run's ledger: its articles, requests and request files, in the run database.

Kept in the same SQLite file as the results (see :class:`structx._store.RunStore`),
so that one lock covers both and a batch run resumes wherever it stopped: an
article is *done* once its line is stored, a request is *answered* once its
completion is stored, and a request file is *collected* once its answers are.
Each write is its own transaction (or one for a whole file's lines), so a
process killed at any point leaves the ledger as it was after the last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from structx._models import Article
from structx._store import RunStore

__all__ = ["FileRow", "Ledger", "RequestRow"]

_TABLES = """
CREATE TABLE IF NOT EXISTS batch_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_articles (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL,
    key TEXT UNIQUE,
    source TEXT NOT NULL,
    text TEXT,
    metadata TEXT,
    line TEXT,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch_requests (
    custom_id TEXT PRIMARY KEY,
    article_key TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    file TEXT,
    answer TEXT,
    error TEXT,
    tries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batch_requests_by_article ON batch_requests (article_key);
CREATE INDEX IF NOT EXISTS batch_requests_by_file ON batch_requests (file);
CREATE TABLE IF NOT EXISTS batch_files (
    name TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    input_file_id TEXT,
    batch_id TEXT,
    status TEXT NOT NULL,
    output_file_id TEXT,
    error_file_id TEXT,
    created_at REAL NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request of the run: its id in the files, its article's key and its body."""

    custom_id: str
    article_key: str
    digest: str
    body: dict[str, Any]
    file: str | None
    answer: dict[str, Any] | None
    error: dict[str, Any] | None
    tries: int


@dataclass(frozen=True, slots=True)
class FileRow:
    """One request file: written in the run folder, and the batch made of it, if it was uploaded."""

    name: str
    requests: int
    bytes: int
    input_file_id: str | None
    batch_id: str | None
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: float
    collected: bool


class Ledger:
    """The batch tables of one run database."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        with store.connection() as db:
            db.executescript(_TABLES)

    # -- settings ---------------------------------------------------------------

    def settings(self) -> dict[str, Any] | None:
        with self.store.connection() as db:
            row = db.execute("SELECT value FROM batch_settings WHERE name = 'run'").fetchone()
        return json.loads(row[0]) if row else None

    def save_settings(self, settings: dict[str, Any]) -> None:
        with self.store.connection() as db:
            db.execute("INSERT OR REPLACE INTO batch_settings (name, value) VALUES ('run', ?)", (json.dumps(settings),))

    # -- articles ----------------------------------------------------------------

    def has_article(self, key: str) -> bool:
        with self.store.connection() as db:
            return db.execute("SELECT 1 FROM batch_articles WHERE key = ?", (key,)).fetchone() is not None

    def add_article(self, article: Article, key: str, *, done: bool) -> None:
        with self.store.connection() as db:
            db.execute(
                "INSERT OR IGNORE INTO batch_articles (article_id, key, source, text, metadata, done) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (article.id, key, article.source or article.id, article.text, _dumps(article.metadata), int(done)),
            )

    def add_unreadable(self, article_id: str, source: str, line: dict[str, Any]) -> None:
        """An input that could not be read: its error line is its outcome, nothing is sent."""
        with self.store.connection() as db:
            db.execute(
                "INSERT INTO batch_articles (article_id, source, line, done) VALUES (?, ?, ?, 1)",
                (article_id, source, _dumps(line)),
            )

    def mark_done(self, key: str) -> None:
        with self.store.connection() as db:
            db.execute("UPDATE batch_articles SET done = 1 WHERE key = ?", (key,))

    def articles(
        self, *, done: bool | None = None
    ) -> Iterator[tuple[Article | None, str | None, dict[str, Any] | None]]:
        """``(article, key, line)`` in the order they were submitted: an unreadable input has no article."""
        query = "SELECT article_id, key, source, text, metadata, line FROM batch_articles"
        if done is not None:
            query += f" WHERE done = {int(done)}"
        with self.store.connection() as db:
            rows = db.execute(query + " ORDER BY position").fetchall()
        for article_id, key, source, text, metadata, line in rows:
            if text is None:
                yield None, None, json.loads(line)
            else:
                meta = json.loads(metadata) if metadata else {}
                yield Article(text=text, id=article_id, source=source, metadata=meta), key, None

    def count_articles(self) -> tuple[int, int]:
        """(done, waiting)."""
        with self.store.connection() as db:
            done, total = db.execute("SELECT COALESCE(SUM(done), 0), COUNT(*) FROM batch_articles").fetchone()
        return int(done), int(total) - int(done)

    # -- requests ----------------------------------------------------------------

    def add_requests(self, rows: Iterable[tuple[str, str, str, dict[str, Any]]]) -> int:
        """Queue ``(custom_id, article key, digest, body)`` for the next file; a request queued before is queued again.

        Returns how many were queued.
        """
        count = 0
        with self.store.connection() as db:
            db.execute("BEGIN")
            for custom_id, key, digest, body in rows:
                db.execute(
                    "INSERT INTO batch_requests (custom_id, article_key, digest, body) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (custom_id) DO UPDATE SET file = NULL",
                    (custom_id, key, digest, _dumps(body)),
                )
                count += 1
            db.execute("COMMIT")
        return count

    def requests_of(self, key: str) -> list[RequestRow]:
        with self.store.connection() as db:
            rows = db.execute(_REQUEST_COLUMNS + " WHERE article_key = ?", (key,)).fetchall()
        return [_request(row) for row in rows]

    def queued(self) -> list[RequestRow]:
        """Requests waiting for a file, in the order they were queued."""
        with self.store.connection() as db:
            rows = db.execute(_REQUEST_COLUMNS + " WHERE file IS NULL ORDER BY rowid").fetchall()
        return [_request(row) for row in rows]

    def known_ids(self, file: str | None = None) -> set[str]:
        with self.store.connection() as db:
            if file is None:
                rows = db.execute("SELECT custom_id FROM batch_requests").fetchall()
            else:
                rows = db.execute("SELECT custom_id FROM batch_requests WHERE file = ?", (file,)).fetchall()
        return {str(row[0]) for row in rows}

    def assign(self, custom_ids: list[str], file: str) -> None:
        with self.store.connection() as db:
            db.execute("BEGIN")
            db.executemany("UPDATE batch_requests SET file = ? WHERE custom_id = ?", [(file, c) for c in custom_ids])
            db.execute("COMMIT")

    def record_answers(self, answers: dict[str, dict[str, Any]], errors: dict[str, dict[str, Any]]) -> None:
        """Store the completions and error lines of one file's results, at once."""
        with self.store.connection() as db:
            db.execute("BEGIN")
            db.executemany(
                "UPDATE batch_requests SET answer = ?, error = NULL WHERE custom_id = ?",
                [(_dumps(body), custom_id) for custom_id, body in answers.items()],
            )
            db.executemany(
                "UPDATE batch_requests SET error = ?, tries = tries + 1 WHERE custom_id = ? AND answer IS NULL",
                [(_dumps(error), custom_id) for custom_id, error in errors.items()],
            )
            db.execute("COMMIT")

    def unanswered_in(self, file: str) -> list[RequestRow]:
        with self.store.connection() as db:
            rows = db.execute(_REQUEST_COLUMNS + " WHERE file = ? AND answer IS NULL", (file,)).fetchall()
        return [_request(row) for row in rows]

    # -- files ---------------------------------------------------------------------

    def add_file(self, name: str, requests: int, size: int) -> None:
        with self.store.connection() as db:
            db.execute(
                "INSERT OR REPLACE INTO batch_files (name, requests, bytes, status, created_at) "
                "VALUES (?, ?, ?, 'written', ?)",
                (name, requests, size, time.time()),
            )

    def update_file(self, name: str, **fields: Any) -> None:
        columns = ", ".join(f"{column} = ?" for column in fields)
        with self.store.connection() as db:
            db.execute(f"UPDATE batch_files SET {columns} WHERE name = ?", (*fields.values(), name))

    def files(self, *, collected: bool | None = None) -> list[FileRow]:
        query = (
            "SELECT name, requests, bytes, input_file_id, batch_id, status, output_file_id, error_file_id, "
            "created_at, collected FROM batch_files"
        )
        if collected is not None:
            query += f" WHERE collected = {int(collected)}"
        with self.store.connection() as db:
            rows = db.execute(query + " ORDER BY created_at, name").fetchall()
        return [
            FileRow(name, count, size, input_id, batch_id, status, output_id, error_id, created, bool(collected))
            for name, count, size, input_id, batch_id, status, output_id, error_id, created, collected in rows
        ]

    def file_count(self) -> int:
        with self.store.connection() as db:
            return int(db.execute("SELECT COUNT(*) FROM batch_files").fetchone()[0])


_REQUEST_COLUMNS = "SELECT custom_id, article_key, digest, body, file, answer, error, tries FROM batch_requests"


def _request(row: tuple[Any, ...]) -> RequestRow:
    custom_id, key, digest, body, file, answer, error, tries = row
    return RequestRow(
        custom_id=custom_id,
        article_key=key,
        digest=digest,
        body=json.loads(body),
        file=file,
        answer=json.loads(answer) if answer else None,
        error=json.loads(error) if error else None,
        tries=int(tries),
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
