"""Extraction over many articles: one outcome per article, whatever happens to it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from structx._api import Client
from structx._backend import Halt, halting
from structx._config import MAX_ARTICLE_BYTES, GroundingPolicy
from structx._documents import iter_articles
from structx._engine import Answers, Pending
from structx._errors import (
    ConfigError,
    ExtractionError,
    GroundingFailed,
    InputError,
    Interrupted,
    NotAttempted,
    is_fatal_for_batch,
)
from structx._grounding import apply_grounding_policy
from structx._models import Article, Result, Usage
from structx._schemas import load_schema
from structx._store import RunStore, result_key

__all__ = [
    "ArticleOutcome",
    "BatchSummary",
    "aextract_many",
    "check_outcome",
    "extract_many",
    "extract_outcome",
    "iter_batch_articles",
    "resumed_outcome",
    "stored_line_holds",
]

logger = logging.getLogger("structx")


@dataclass(frozen=True, slots=True)
class ArticleOutcome:
    """What happened to one article: a result, or an error that names its type.

    An outcome read back from a run database (``resumed``) carries its stored
    line instead of the objects. ``meta`` is the article's metadata (a JSONL
    line's ``title``, ``url``, ``published`` and other keys), written under
    ``meta`` in its line when there is any.
    """

    id: str
    source: str
    status: Literal["ok", "error"]
    result: Result[Any] | None = None
    error: Exception | None = None
    resumed: bool = False
    stored: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.stored is not None:
            return self.stored
        line: dict[str, Any] = {"id": self.id, "source": self.source, "status": self.status}
        if self.meta:
            line["meta"] = json.loads(json.dumps(self.meta, ensure_ascii=False, default=str))  # JSON, whatever it held
        if self.result is not None:
            value = self.result.value
            line["records"] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            line.update(
                usage=self.result.usage.to_dict(),
                attempts=self.result.attempts,
                requests=self.result.requests,
                cached=self.result.cached,
                model=self.result.model,
                endpoint=self.result.endpoint,
                mode=self.result.mode,
                latency_s=round(self.result.latency, 3),
                chunks=self.result.chunks,
                grounding=self.result.grounding.to_dict(),
            )
        if self.error is not None:
            line["error"] = {"type": type(self.error).__name__, "message": _message(self.error)}
            if isinstance(self.error, ExtractionError):
                line.update(
                    usage=(self.error.usage or Usage()).to_dict(),
                    attempts=self.error.attempts,
                    requests=self.error.requests,
                )
            if isinstance(self.error, GroundingFailed) and self.error.grounding is not None:
                line["grounding"] = self.error.grounding.to_dict()
        return line

    def to_json_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)

    @classmethod
    def failed(cls, item: Article | InputError, error: Exception) -> ArticleOutcome:
        """The error outcome of an article, or of an input that could not be read."""
        if isinstance(item, InputError):
            source = str(item.path) if item.path is not None else item.article_id
            return cls(item.article_id, source, "error", error=error)
        return cls(item.id, item.source or item.id, "error", error=error, meta=item.metadata)


@dataclass(slots=True)
class BatchSummary:
    """Totals over a batch, built from the outcomes' lines.

    Resumed outcomes count as articles; tokens, requests and cached answers count this run's only.
    ``records`` are those kept in the lines (``ungrounded_records`` among them);
    ``dropped_records`` were removed by the ``drop`` grounding policy.
    """

    ok: int = 0
    failed: int = 0
    resumed: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    records: int = 0
    ungrounded_records: int = 0
    dropped_records: int = 0
    requests: int = 0
    #: Model answers served from the response cache instead of the endpoint.
    cached: int = 0

    def add(self, outcome: ArticleOutcome) -> None:
        line = outcome.to_json()
        self.resumed += outcome.resumed
        if line["status"] == "ok":
            self.ok += 1
        else:
            self.failed += 1
            name = line["error"]["type"]
            self.errors_by_type[name] = self.errors_by_type.get(name, 0) + 1
        if not outcome.resumed:  # tokens and requests of this run only: resumed ones cost nothing now
            usage = line.get("usage") or {}
            self.usage = self.usage + Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            self.requests += int(line.get("requests", 0))
            self.cached += int(line.get("cached", 0))
        # A failed article keeps no record, even when its line reports the grounding that failed it.
        grounding = ((line.get("grounding") or {}).get("records") or []) if line["status"] == "ok" else []
        kept = [record for record in grounding if not record.get("dropped")]
        self.records += len(kept)
        self.ungrounded_records += sum(not record["grounded"] for record in kept)
        self.dropped_records += len(grounding) - len(kept)


async def aextract_many(
    sources: Iterable[Article | InputError | Path | str],
    client: Client,
    schema: type[BaseModel],
    *,
    concurrency: int = 4,
    store: RunStore | None = None,
    redo: Literal["failed", "all"] | None = None,
    stop: asyncio.Event | None = None,
    cancel: asyncio.Event | None = None,
    answers: Callable[[Article], Answers | None] | None = None,
) -> AsyncIterator[ArticleOutcome]:
    """Extract many articles, at most ``concurrency`` at a time; outcomes come as they finish.

    ``sources`` holds :class:`Article` objects (text in hand: wrap a string
    of text as ``Article(text=...)``) and paths to read, as ``Path`` or
    ``str`` (files, directories, glob patterns, JSONL files, ``-`` for
    standard input: see :func:`iter_articles`). A ``str`` here is always a
    path, unlike in :func:`extract`. Sources are consumed lazily, so a long
    input is never held in memory at once; an article larger than the
    client's ``config.max_article_bytes`` fails before any request. Each
    article yields exactly one outcome: a failure of any kind becomes that
    article's error outcome and the batch goes on.

    With a ``store``, each outcome is saved as soon as it is known, and an
    article finished in an earlier run is not extracted again (its stored
    outcome comes back, marked ``resumed``), except errors when ``redo`` is
    ``"failed"`` and everything when it is ``"all"``. A stored outcome is
    reused only under the same model and settings (see :func:`result_key`);
    the client's grounding policy is applied to it anew, and where the stored
    line cannot show what the policy would make of the answer (records an
    earlier ``drop`` removed, an answer an earlier ``fail`` refused), the
    article is extracted again.

    An error fatal for the batch (see :func:`is_fatal_for_batch`: a
    rejected key, an exhausted quota, a model the endpoint does not have)
    stops it: no article starts after it, and each one left gets an outcome
    without a request, a :class:`NotAttempted` error unless its stored
    outcome can be reused.

    With the embedded server, at most as many articles run at once as it has
    slots (:attr:`Client.concurrency_limit`): a request beyond them would wait
    in the server's queue while its timeout runs.

    Once ``stop`` is set, no new article starts and no new request is sent:
    requests in flight may finish (within the timeout), and an article that
    needs another one (a transport retry, a re-ask, its next chunk) ends as
    :class:`Interrupted`. Once ``cancel`` is set, requests in flight are
    abandoned too and their articles end as :class:`Interrupted`. Interrupted
    articles are not stored: a later run with the same store extracts them.

    ``answers``, when given, returns for an article the answers already
    received for its requests another way (a batch file's): those requests
    are not sent again.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    limit = client.concurrency_limit
    if limit is not None and concurrency > limit:
        logger.info(
            "concurrency %d lowered to %d: the embedded server works on %d request(s) at a time",
            concurrency,
            limit,
            limit,
        )
        concurrency = limit
    schema = load_schema(schema)  # a schema that cannot be used fails the batch, not each article
    items = iter_batch_articles(sources, max_bytes=client.config.max_article_bytes)
    running: set[asyncio.Task[ArticleOutcome]] = set()
    halt = Halt(stop, cancel)
    context = halting(halt)  # what each article's requests check
    loop = asyncio.get_running_loop()
    fatal: ArticleOutcome | None = None  # this run's first outcome whose error every article would meet

    def refill() -> None:
        if fatal is not None or halt.stopped:
            return
        for item in itertools.islice(items, concurrency - len(running)):
            task = _extract_one(item, client, schema, store, redo, answers)
            running.add(loop.create_task(task, context=context.copy()))  # a copy each: tasks set variables

    refill()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                outcome = task.result()
                if fatal is None and outcome.error is not None and is_fatal_for_batch(outcome.error):
                    fatal = outcome
                yield outcome
            refill()
        if fatal is not None:
            for item in items:
                if halt.stopped:
                    break
                yield _without_request(item, fatal, client, schema, store, redo)
    finally:
        for task in running:
            task.cancel()


def extract_many(
    sources: Iterable[Article | Path | str],
    client: Client,
    schema: type[BaseModel],
    *,
    concurrency: int = 4,
    store: RunStore | None = None,
    redo: Literal["failed", "all"] | None = None,
) -> Iterator[ArticleOutcome]:
    """Sync twin of :func:`aextract_many`: runs it on an event loop of its own thread.

    Leaving the loop early (``break``, an exception) sets ``stop`` as Ctrl-C
    does: no new article or request, the requests in flight finish and their
    articles are stored, then the thread ends.
    """
    outcomes: queue.Queue[ArticleOutcome | BaseException | None] = queue.Queue()
    consumer_gone = threading.Event()
    loop_ready: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = queue.Queue()

    async def produce() -> None:
        stop = asyncio.Event()
        loop_ready.put((asyncio.get_running_loop(), stop))
        batch = aextract_many(sources, client, schema, concurrency=concurrency, store=store, redo=redo, stop=stop)
        async for outcome in batch:
            if not consumer_gone.is_set():
                outcomes.put(outcome)
        await client.aclose_connections()

    def run() -> None:
        try:
            asyncio.run(produce())
        except BaseException as exc:  # handed to the consumer, raised there
            outcomes.put(exc)
        finally:
            outcomes.put(None)

    worker = threading.Thread(target=run, name="structx-extract-many", daemon=True)
    worker.start()
    try:
        while (item := outcomes.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        consumer_gone.set()
        if worker.is_alive():
            with contextlib.suppress(queue.Empty, RuntimeError):  # the loop may have ended meanwhile
                loop, stop = loop_ready.get(timeout=5)
                loop.call_soon_threadsafe(stop.set)
        worker.join()


def iter_batch_articles(
    sources: Iterable[Article | InputError | Path | str], *, max_bytes: int = MAX_ARTICLE_BYTES
) -> Iterator[Article | InputError]:
    """The articles a batch over ``sources`` extracts, in order, each once and under an id of its own.

    What :func:`aextract_many` reads: :func:`iter_articles`, then the same
    article (same id and text) named twice is kept once, and a different
    text under an id already taken becomes ``<id>~<first 8 characters of its
    content hash>``. Articles over ``max_bytes`` are input errors.
    """
    return _once_each(iter_articles(sources, max_bytes=max_bytes))


def _once_each(items: Iterable[Article | InputError]) -> Iterator[Article | InputError]:
    """One line per article and one article per id.

    The same article (same id and text) named twice in one batch is extracted
    once. Two different texts with one id (``a/story.txt`` and
    ``b/story.txt`` named directly) keep the first id; the later one becomes
    ``<id>~<first 8 characters of its content hash>``, which is stable across
    runs of the same inputs.
    """
    seen: set[tuple[str, str]] = set()
    ids: set[str] = set()
    for item in items:
        if isinstance(item, InputError):
            ids.add(item.article_id)
        else:
            key = (item.id, item.content_hash)
            if key in seen:
                logger.warning(
                    "%s has the same id (%r) and text as an article given before; it is extracted once",
                    item.source or item.id, item.id,
                )  # fmt: skip
                continue
            seen.add(key)
            if item.id in ids:
                # Taken as well (rare): a longer part of the hash, then a counter.
                candidates = (f"{item.id}~{item.content_hash[:n]}" for n in range(8, len(item.content_hash) + 1))
                renamed = next((c for c in candidates if c not in ids), f"{item.id}~{item.content_hash}~{len(ids)}")
                logger.warning(
                    "%s: id %r is taken by another article in this batch; this one is %r",
                    item.source or item.id, item.id, renamed,
                )  # fmt: skip
                item = dataclasses.replace(item, id=renamed)
                seen.add((item.id, item.content_hash))
            ids.add(item.id)
        yield item


async def _extract_one(
    item: Article | InputError,
    client: Client,
    schema: type[BaseModel],
    store: RunStore | None,
    redo: Literal["failed", "all"] | None,
    answers: Callable[[Article], Answers | None] | None,
) -> ArticleOutcome:
    if isinstance(item, InputError):  # read again on every run: never stored
        return ArticleOutcome.failed(item, item)
    given = answers(item) if answers is not None else None
    if store is None:
        return await extract_outcome(item, client, schema, given)
    key = result_key(item, schema, client.endpoint, client.resolved_config)
    if (resumed := resumed_outcome(store, key, item, client, schema, redo)) is not None:
        return resumed
    outcome = await extract_outcome(item, client, schema, given)
    # Unfinished (interrupted), or stopped by an error about the endpoint, the key or the
    # account rather than the article (a wrong key, say): the next run does it again.
    if not isinstance(outcome.error, Interrupted) and not (outcome.error and is_fatal_for_batch(outcome.error)):
        store.save(key, item.id, outcome.status, outcome.to_json())
    return outcome


def _without_request(
    item: Article | InputError,
    fatal: ArticleOutcome,
    client: Client,
    schema: type[BaseModel],
    store: RunStore | None,
    redo: Literal["failed", "all"] | None,
) -> ArticleOutcome:
    """The outcome of an article left when ``fatal`` stopped the batch: stored, unreadable or not attempted.

    A not-attempted outcome is not stored: the next run sends the article.
    """
    if isinstance(item, InputError):
        return ArticleOutcome.failed(item, item)
    if store is not None:
        key = result_key(item, schema, client.endpoint, client.resolved_config)
        if (resumed := resumed_outcome(store, key, item, client, schema, redo)) is not None:
            return resumed
    assert isinstance(fatal.error, ExtractionError)
    return ArticleOutcome.failed(item, NotAttempted(fatal.error, fatal.id))


def resumed_outcome(
    store: RunStore,
    key: str,
    item: Article,
    client: Client,
    schema: type[BaseModel],
    redo: Literal["failed", "all"] | None,
) -> ArticleOutcome | None:
    """The outcome an earlier run stored for ``item``, under today's grounding policy; None to extract it."""
    previous = store.finished(key) if redo != "all" else None
    if previous is None:
        return None
    outcome = _under_policy(previous[1], previous[0] == "ok", item, schema, client.resolved_config.grounding)
    if outcome is None or (redo == "failed" and outcome.status == "error"):
        return None
    return outcome


def stored_line_holds(line: dict[str, Any], ok: bool, policy: GroundingPolicy) -> bool:
    """Whether a stored line is, as it stands, the line ``policy`` gives (see :func:`_under_policy`).

    True for an error met before grounding, for an answer whose records are
    all grounded, for one kept whole under ``keep``, and for one whose
    records ``drop`` removed when the policy is still ``drop``.
    """
    if not ok:
        refused = (line.get("error") or {}).get("type") == GroundingFailed.__name__
        return not refused or policy is GroundingPolicy.FAIL
    grounding = line.get("grounding") or {}
    if any(record.get("dropped") for record in grounding.get("records") or []):
        return policy is GroundingPolicy.DROP
    return bool(grounding.get("grounded", True)) or policy is GroundingPolicy.KEEP


def _under_policy(
    line: dict[str, Any], ok: bool, item: Article, schema: type[BaseModel], policy: GroundingPolicy
) -> ArticleOutcome | None:
    """The line ``policy`` makes of a stored one, or None when only a new extraction can tell.

    Every policy gives the same line for an answer whose records are all
    grounded, and for an error met before grounding. Otherwise a stored answer
    that was kept whole is grounded again and the policy applied, as the
    engine does; the grounding report and the answer are the same, so the
    line is the one a new extraction would give. Records removed by ``drop``
    are not stored, nor is the answer ``fail`` refused: those are extracted
    again (the response cache answers a request sent before).
    """
    source = item.source or item.id  # where the article is read from today, which a move may have changed

    def resumed(line: dict[str, Any]) -> ArticleOutcome:
        status: Literal["ok", "error"] = "ok" if line["status"] == "ok" else "error"
        return ArticleOutcome(item.id, source, status, resumed=True, stored={**line, "source": source})

    if stored_line_holds(line, ok, policy):
        return resumed(line)
    grounding = line.get("grounding") or {}
    if not ok or any(record.get("dropped") for record in grounding.get("records") or []):
        return None
    try:
        value = schema.model_validate(line["records"])
    except (KeyError, ValidationError):
        return None
    try:
        value, report = apply_grounding_policy(value, item.text, policy)
    except GroundingFailed as failure:
        usage = line.get("usage") or {}
        failure.attempts, failure.requests = int(line.get("attempts", 0)), int(line.get("requests", 0))
        failure.usage = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        refused = ArticleOutcome(item.id, source, "error", error=failure, meta=item.metadata)
        return resumed(refused.to_json())
    return resumed({**line, "records": value.model_dump(mode="json"), "grounding": report.to_dict()})


async def extract_outcome(
    item: Article, client: Client, schema: type[BaseModel], answers: Answers | None = None
) -> ArticleOutcome:
    """The outcome of one article, online: a result, or the error it met; never raises for the article."""
    try:
        result = await client.aextract(item, schema, answers=answers)
    except Exception as exc:
        return _failure(item, exc)
    return ArticleOutcome(item.id, item.source or item.id, "ok", result=result, meta=item.metadata)


def check_outcome(item: Article, client: Client, schema: type[BaseModel], answers: Answers) -> ArticleOutcome | Pending:
    """The outcome of one article from the answers at hand, sending nothing (see :meth:`Client.check`).

    :class:`Pending` lists the requests whose answers are still needed. Never raises for the article.
    """
    try:
        verdict = client.check(item, schema, answers)
    except Exception as exc:
        return _failure(item, exc)
    if isinstance(verdict, Pending):
        return verdict
    return ArticleOutcome(item.id, item.source or item.id, "ok", result=verdict, meta=item.metadata)


def _failure(item: Article, exc: Exception) -> ArticleOutcome:
    if not isinstance(exc, InputError | ExtractionError):  # a bug must not take down the batch either
        logger.error("unexpected %s on %s: %s", type(exc).__name__, item.source or item.id, exc)
        logger.debug("traceback", exc_info=exc)
    return ArticleOutcome.failed(item, exc)


def _message(error: Exception) -> str:
    if isinstance(error, InputError):
        return error.reason
    return str(error)
