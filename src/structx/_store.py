"""The run database: finished articles for resuming, and a cache of model responses.

One SQLite file (WAL mode) beside the output. A result is stored the moment
its article finishes, in its own transaction, so a process killed at any
point loses nothing that was finished, and a re-run skips it.

A stored result is reused only for the same question asked the same way:
it is keyed by the article's id and content hash, the schema's fingerprint,
the prompt version, the model's resolved name, the structured-output mode
and the configuration fields in :data:`KEY_FIELDS`. Change any of them and
the article is extracted anew (the response cache still answers a request
sent before). The grounding policy is not in the key: it is re-applied to
the stored answer (see :mod:`structx._batch`).
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

from structx._backend import Endpoint
from structx._config import Config
from structx._errors import InputError
from structx._models import Article
from structx._prompt import PROMPT_VERSION
from structx._schemas import schema_fingerprint

__all__ = ["ENDPOINT_FIELDS", "KEY_FIELDS", "REAPPLIED_FIELDS", "TRANSPORT_FIELDS", "RunStore", "result_key"]

# How each field of Config bears on a stored line. Every field is in exactly
# one group (a test checks), so a new field must be placed in one.

#: What the model is asked, or how its answers become a line: part of the key.
KEY_FIELDS = ("max_reasks", "max_tokens", "temperature", "frequency_penalty", "chunk_chars", "chunk_overlap")
#: Part of the key as the endpoint resolved them: the model's name and the structured-output mode.
ENDPOINT_FIELDS = ("model", "structured_output")
#: Re-applied to the stored answer on resume, without a new request.
REAPPLIED_FIELDS = ("grounding",)
#: How requests travel, not what they ask: a stored line stays valid when these change
#: (the same model behind another URL answers the same; the embedded server's port changes every run).
TRANSPORT_FIELDS = (
    "base_url",
    "api_key",
    "timeout",
    "max_retries",
    "retry_budget",
    "retry_initial_wait",
    "retry_max_wait",
)

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


def result_key(article: Article, schema: type[BaseModel], endpoint: Endpoint, config: Config) -> str:
    """The key of an article's stored result under this endpoint and configuration.

    ``config`` is the one requests are made with (:attr:`Client.resolved_config`).
    """
    # The id is part of the key: two articles with the same text and different
    # ids are two results (the response cache still answers the second one).
    # Numbers as floats, so that temperature=0 and temperature=0.0 are one setting.
    settings: dict[str, Any] = {}
    for name in KEY_FIELDS:
        value = getattr(config, name)
        settings[name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    parts = [
        article.id,
        article.content_hash,
        schema_fingerprint(schema),
        PROMPT_VERSION,
        endpoint.model,
        endpoint.mode.value,
        json.dumps(settings, sort_keys=True),
    ]
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
            raise InputError(f"not a structx run database ({exc})", path=path) from None
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
