"""The run database: finished articles for resuming, and a cache of model responses.

One SQLite file (WAL mode) beside the output. A result is stored the moment
its article finishes, in its own transaction, so a process killed at any
point loses nothing that was finished, and a re-run skips it. Results are
keyed by the article's id and content hash, the schema's fingerprint, the
model and the prompt version: change any of them and the article is
extracted anew.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from structx._errors import InputError
from structx._models import Article
from structx._prompt import PROMPT_VERSION
from structx._schemas import schema_fingerprint

__all__ = ["RunStore", "result_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    article_id TEXT NOT NULL,
    status TEXT NOT NULL,
    line TEXT NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    stored_at REAL NOT NULL
);
"""


def result_key(article: Article, schema: type[BaseModel], model: str) -> str:
    # The id is part of the key: two articles with the same text and different
    # ids are two results (the response cache still answers the second one).
    parts = [article.id, article.content_hash, schema_fingerprint(schema), model, PROMPT_VERSION]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class RunStore:
    """Finished articles and cached responses, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # OperationalError: SQLite could not open or write the file (a missing or read-only directory, say)
            problem = (
                "cannot open the run database"
                if isinstance(exc, sqlite3.OperationalError)
                else "not a structx run database"
            )
            raise InputError(f"{problem} ({exc})", path=path) from None
        self._lock = threading.Lock()

    def finished(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """``(status, line)`` of an article finished before, if any."""
        with self._lock:
            row = self._db.execute("SELECT status, line FROM results WHERE key = ?", (key,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def save(self, key: str, article_id: str, status: str, line: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO results (key, article_id, status, line, finished_at) VALUES (?, ?, ?, ?, ?)",
                (key, article_id, status, json.dumps(line, ensure_ascii=False), time.time()),
            )

    def count(self, status: str | None = None) -> int:
        with self._lock:
            if status is None:
                return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
            query = "SELECT COUNT(*) FROM results WHERE status = ?"
            return int(self._db.execute(query, (status,)).fetchone()[0])

    # -- the response cache (see structx._backend.ResponseCache) ---------------------

    def get_response(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put_response(self, key: str, body: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, body, stored_at) VALUES (?, ?, ?)", (key, body, time.time())
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
