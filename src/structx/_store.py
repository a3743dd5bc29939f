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

One process at a time: a :class:`RunStore` holds an exclusive lock on its
database for as long as it is open.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import BaseModel

from structx._backend import Endpoint
from structx._config import Config
from structx._errors import InputError, RunInUse
from structx._formats import _cited
from structx._models import Article
from structx._prompt import PROMPT_VERSION
from structx._schemas import schema_fingerprint

__all__ = [
    "ENDPOINT_FIELDS",
    "INPUT_FIELDS",
    "KEY_FIELDS",
    "REAPPLIED_FIELDS",
    "TRANSPORT_FIELDS",
    "RunStore",
    "result_key",
]

# How each field of Config bears on a stored line. Every field is in exactly
# one group (a test checks), so a new field must be placed in one.

#: What the model is asked, or how its answers become a line: part of the key.
KEY_FIELDS = (
    "max_reasks",
    "max_tokens",
    "temperature",
    "frequency_penalty",
    "chunk_chars",
    "chunk_overlap",
    "extraction_format",
)
#: Part of the key as the endpoint resolved them: the model's name and the structured-output mode
#: (the embedded server's model, ``local_model``, is the name the endpoint reports).
ENDPOINT_FIELDS = ("model", "structured_output", "local_model")
#: Re-applied to the stored answer on resume, without a new request.
REAPPLIED_FIELDS = ("grounding",)
#: Checked each time an article is read, before the run database is consulted: an article
#: the limit now refuses gets its input error, whatever was stored for it.
INPUT_FIELDS = ("max_article_bytes",)
#: How requests travel, not what they ask: a stored line stays valid when these change
#: (the same model behind another URL answers the same; the embedded server's port changes every run;
#: the folder the embedded model is assembled in holds the same checked file wherever it is).
TRANSPORT_FIELDS = (
    "base_url",
    "api_key",
    "timeout",
    "max_retries",
    "retry_budget",
    "retry_initial_wait",
    "retry_max_wait",
    "headers",
    "model_dir",
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
    # Numbers as floats, so that 0 and 0.0 (a temperature, say) are one setting.
    settings: dict[str, Any] = {}
    for name in KEY_FIELDS:
        value = getattr(config, name)
        settings[name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    parts = [
        article.id,
        article.content_hash,
        schema_fingerprint(schema),
        PROMPT_VERSION,
        # The cited format's own wording has its version too (read at call time, so a test can change it).
        _cited.CITED_PROMPT_VERSION if config.extraction_format == "cited" else "",
        endpoint.model,
        endpoint.mode.value,
        json.dumps(settings, sort_keys=True),
    ]
    if article.metadata:
        # Part of the line (``meta``), and its date and title are offered to the model: a change
        # re-extracts (the response cache answers when the request is the same).
        parts.append(json.dumps(article.metadata, sort_keys=True, ensure_ascii=False, default=str))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class RunStore:
    """Finished articles and cached responses, in one SQLite file.

    Opening it takes an exclusive lock on the database, held until
    :meth:`close` (or the end of the ``with`` block, or of the process, however
    it ends): a second store on the same file raises :class:`RunInUse`.
    The lock is an OS lock on ``<database>.lock``, which holds the pid of its holder.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file = _lock(path)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._lock_file.close()
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

    def lines(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """``(key, status, line)`` of every finished article, read a page at a time."""
        last = ""
        while True:
            with self._lock:
                page = self._db.execute(
                    "SELECT key, status, line FROM results WHERE key > ? ORDER BY key LIMIT 1000", (last,)
                ).fetchall()
            if not page:
                return
            for key, status, line in page:
                yield key, status, json.loads(line)
            last = page[-1][0]

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The database connection, held for the block: the tables a route keeps beside the results.

        The connection commits each statement on its own; wrap many in
        ``BEGIN`` and ``COMMIT`` to write them at once.
        """
        with self._lock:
            yield self._db

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
        """Close the database and release its lock."""
        with self._lock:
            self._db.close()
            self._lock_file.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _lock(database: Path) -> IO[bytes]:
    """Take the exclusive lock on ``database``: an open ``<database>.lock`` holding our pid.

    An OS lock ends with the process that holds it, however it ends
    (``kill -9`` included), so no stale lock is ever left to clear. The file
    itself stays: removing it would let two processes lock two different files.
    """
    path = database.with_name(database.name + ".lock")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.fdopen(os.open(path, flags, 0o644), "r+b", buffering=0)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link planted there
            raise InputError("is a symbolic link; structx does not write through links", path=path) from None
        raise InputError(f"cannot open the run's lock file ({exc.strerror})", path=path) from None
    try:
        if not _try_lock(handle):
            raise RunInUse(database, _holder(handle))
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
    except OSError as exc:
        handle.close()
        raise InputError(f"cannot lock the run database ({exc.strerror})", path=path) from None
    except BaseException:
        handle.close()
        raise
    return handle


if sys.platform == "win32":
    import msvcrt

    # The lock is on one byte far past the pid, which stays readable to the process refused.
    _LOCKED_BYTE = 1 << 30

    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(_LOCKED_BYTE)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            handle.seek(0)
        return True

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _holder(handle: IO[bytes]) -> int | None:
    """The pid in the lock file, waiting briefly for a holder that has just taken the lock to write it."""
    for _ in range(20):
        handle.seek(0)
        text = handle.read(32).decode("ascii", "replace").strip()
        if text:
            with contextlib.suppress(ValueError):
                return int(text)
            return None
        time.sleep(0.01)
    return None
