"""The Batch API route: request files uploaded to a provider's Batches API, or run by ``vllm run-batch``.

A batch run lives in a folder: its run database (the same file ``structx
extract --out FOLDER/results.jsonl`` uses, so either route resumes the
other), the request files it wrote, and the output and error files it
downloaded. The lifecycle:

* ``submit`` (or ``write``): each article's first requests, as the online
  route would send them, go into JSONL files split at the Batch API's limits
  (50,000 requests and 200 MB a file); ``submit`` uploads each through the
  Files API (purpose ``batch``) and creates a batch of it
  (``/v1/chat/completions``, 24 h window). Articles finished before, on any
  route, are not sent.
* ``collect``: the output and error files of each finished batch are read
  (``write``'s files: the results file ``vllm run-batch`` wrote), every
  answer goes through the online route's answer checker, and each article
  ends with its line in the run database. Re-asks (an answer that fails
  validation or grounding), requests in the error file and requests a batch
  never answered (expired, cancelled) are sent again: online by default, or
  queued into a follow-up batch (``resubmit="batch"``). A request whose
  batch ended before answering it is always sent again; one that failed with
  an HTTP error in the batch is re-sent at most ``max_retries`` times, then
  its article fails with that error, as online.
* ``lines``: every article's line, in the order of submission.

Why the ledger and not the files: a line for an id the run never sent (a
provider's mistake, another run's file) is counted and ignored, never
matched to an article, and a batch that ends early loses nothing, since what
was not answered is still listed as unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

from openai import OpenAI
from openai._models import construct_type
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from structx._api import Client
from structx._batch import ArticleOutcome, aextract_many, check_outcome, iter_batch_articles, resumed_outcome
from structx._config import MAX_FILE_BYTES, MAX_REQUESTS_PER_FILE, Config
from structx._engine import Answers, Pending, request_digest
from structx._errors import (
    AuthenticationFailed,
    ConfigError,
    ExtractionError,
    InputError,
    Interrupted,
    InvalidResponse,
    RateLimited,
    RequestRejected,
    ServerError,
)
from structx._models import Article
from structx._routes._ledger import FileRow, Ledger, RequestRow
from structx._schemas import load_schema, schema_fingerprint
from structx._store import INPUT_FIELDS, KEY_FIELDS, REAPPLIED_FIELDS, RunStore, result_key

__all__ = [
    "BATCH_ENDPOINT",
    "COMPLETION_WINDOW",
    "RUN_DATABASE",
    "BatchCollectReport",
    "BatchRun",
    "BatchSubmitReport",
]

logger = logging.getLogger("structx")

#: The run database in the run folder: the one ``structx extract --out FOLDER/results.jsonl`` keeps.
RUN_DATABASE = "results.jsonl.structx.sqlite"
BATCH_ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
#: Batch statuses after which nothing more will be answered.
_FINISHED = frozenset({"completed", "expired", "cancelled", "failed"})
#: The configuration a run keeps: what its requests ask and how answers become lines. The key, the
#: headers and the transport settings are given again to each command (a key is never stored).
_STORED_FIELDS = (*KEY_FIELDS, *REAPPLIED_FIELDS, *INPUT_FIELDS)

Resubmit = Literal["online", "batch"]


@dataclass(slots=True)
class BatchSubmitReport:
    """What ``submit`` (or ``write``) did."""

    #: Articles read from the sources.
    articles: int = 0
    #: Articles already in this run, finished before (any route), or answered by the response cache.
    skipped: int = 0
    #: Inputs that could not be read: their error line is their outcome.
    unreadable: int = 0
    #: Requests queued (written to files).
    requests: int = 0
    #: The request files written, with their batches when uploaded.
    files: list[FileRow] = field(default_factory=list)


@dataclass(slots=True)
class BatchCollectReport:
    """What ``collect`` did, and what is left."""

    #: Request files whose answers were read this time.
    collected: list[FileRow] = field(default_factory=list)
    #: Batches still running (their articles wait for them).
    running: list[FileRow] = field(default_factory=list)
    answers: int = 0
    #: Error-file lines, and requests a finished batch never answered (expired, cancelled).
    errors: int = 0
    not_answered: int = 0
    #: Lines for request ids this run never sent: ignored.
    unknown_ids: int = 0
    #: Articles that got their line this time.
    settled: int = 0
    #: Requests queued for a follow-up batch, and the files they went into.
    queued: int = 0
    files: list[FileRow] = field(default_factory=list)
    #: Articles still waiting for answers.
    waiting: int = 0
    #: Lines of articles that ended without a stored line (interrupted, or stopped by an error every
    #: article would meet): written to the output, and sent again by the next collect.
    unsettled: dict[str, dict[str, Any]] = field(default_factory=dict)


class BatchRun:
    """A batch run kept in ``folder``: its run database, request files and downloaded results.

    Opening it locks the run database (:class:`RunStore`) until :meth:`close`.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.folder / RUN_DATABASE)
        self.ledger = Ledger(self.store)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- settings -------------------------------------------------------------------

    @property
    def kind(self) -> Literal["api", "files"] | None:
        """``api`` for a run submitted to a Batches API, ``files`` for one written for ``vllm run-batch``."""
        settings = self.ledger.settings()
        return None if settings is None else cast(Literal["api", "files"], settings["kind"])

    def config(self, **transport: Any) -> Config:
        """The configuration the run was submitted with, plus ``transport`` (``api_key``, ``headers``, ...).

        Fields given as None are left out.
        """
        settings = self._settings()
        values = dict(settings["config"])
        values.update({name: value for name, value in transport.items() if value is not None})
        return Config(**values)

    def schema(self) -> type[BaseModel]:
        """The schema the run was submitted with; a SchemaError when it has changed since."""
        settings = self._settings()
        target = load_schema(settings["schema"])
        if schema_fingerprint(target) != settings["schema_fingerprint"]:
            raise ConfigError(
                f"the schema {settings['schema']} has changed since this run was submitted; "
                "its answers would not fit it: submit the articles again in a new run folder"
            )
        return target

    def _settings(self) -> dict[str, Any]:
        settings = self.ledger.settings()
        if settings is None:
            raise InputError("holds no batch run: start one with structx batch submit or write", path=self.folder)
        return settings

    # -- submit / write -------------------------------------------------------------------

    def submit(
        self,
        sources: Iterable[Article | InputError | Path | str],
        config: Config,
        schema: str,
        *,
        upload: bool = True,
        max_requests: int = MAX_REQUESTS_PER_FILE,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> BatchSubmitReport:
        """Queue the first requests of each article of ``sources`` and write them to request files.

        With ``upload`` (``submit``), each file goes through the Files API and
        becomes a batch; without (``write``), the files are left for ``vllm
        run-batch`` and nothing is asked of any server. ``schema`` is a
        reference as :func:`load_schema` takes it, stored so that ``collect``
        loads the same one. A run folder keeps one configuration: submitting
        into it with another is a :class:`ConfigError`.
        """
        if config.uses_embedded_model:
            raise ConfigError("a batch run needs an endpoint: give a base URL (--base-url) or an API key")
        target = load_schema(schema)
        with Client(config, cache=self.store, probe=upload) as client:
            settings = _settings_of(client, schema, target, "api" if upload else "files")
            previous = self.ledger.settings()
            if previous is not None and previous != settings:
                changed = sorted(_changes(previous, settings))
                raise ConfigError(
                    f"the run in {self.folder} was submitted with other settings ({', '.join(changed)}); "
                    "give another --run folder, or the same settings"
                )
            self.ledger.save_settings(settings)
            report = self._queue_articles(sources, client, target)
            report.files = self._file_queued(client, upload=upload, max_requests=max_requests, max_bytes=max_bytes)
            if upload:  # a file written by a submit that stopped before its upload
                for row in self.ledger.files(collected=False):
                    if row.batch_id is None:
                        report.files.append(self._upload(client, row.name))
        return report

    def _queue_articles(
        self, sources: Iterable[Article | InputError | Path | str], client: Client, target: type[BaseModel]
    ) -> BatchSubmitReport:
        report = BatchSubmitReport()
        endpoint, config = client.endpoint, client.resolved_config
        for item in iter_batch_articles(sources, max_bytes=config.max_article_bytes):
            report.articles += 1
            if isinstance(item, InputError):
                line = ArticleOutcome.failed(item, item).to_json()
                self.ledger.add_unreadable(line["id"], line["source"], line)
                report.unreadable += 1
                continue
            key = result_key(item, target, endpoint, config)
            if self.ledger.has_article(key):
                report.skipped += 1
                continue
            if resumed_outcome(self.store, key, item, client, target, None) is not None:
                self.ledger.add_article(item, key, done=True)
                report.skipped += 1
                continue
            verdict = check_outcome(item, client, target, Answers())
            if isinstance(verdict, Pending):
                self.ledger.add_article(item, key, done=False)
                report.requests += self.ledger.add_requests(_request_rows(key, verdict.bodies))
            else:  # the response cache answered every request
                self.store.save(key, item.id, verdict.status, verdict.to_json())
                self.ledger.add_article(item, key, done=True)
                report.skipped += 1
        return report

    def _file_queued(self, client: Client, *, upload: bool, max_requests: int, max_bytes: int) -> list[FileRow]:
        """Write the queued requests to files within the limits; upload each as a batch when ``upload``."""
        written: list[FileRow] = []
        for group in _split(self.ledger.queued(), max_requests, max_bytes):
            name = f"requests-{self.ledger.file_count() + 1:04d}.jsonl"
            data = b"".join(line for _, line in group)
            _write_atomically(self.folder / name, data)
            self.ledger.add_file(name, len(group), len(data))
            self.ledger.assign([row.custom_id for row, _ in group], name)
            written.append(self._upload(client, name) if upload else self._file(name))
        return written

    def _upload(self, client: Client, name: str) -> FileRow:
        data = (self.folder / name).read_bytes()  # in memory, so that a transport retry sends it whole again
        uploaded = client.call_api(
            lambda api: api.files.create(file=(name, data, "application/jsonl"), purpose="batch")
        )
        self.ledger.update_file(name, input_file_id=uploaded.id, status="uploaded")
        batch = client.call_api(
            lambda api: api.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"structx_file": name},
            )
        )
        self.ledger.update_file(name, batch_id=batch.id, status=batch.status)
        logger.info("%s: uploaded as %s, batch %s (%s)", name, uploaded.id, batch.id, batch.status)
        return self._file(name)

    def _file(self, name: str) -> FileRow:
        return next(row for row in self.ledger.files() if row.name == name)

    # -- status ------------------------------------------------------------------------

    def status(self, client: Client | None) -> list[tuple[FileRow, dict[str, int]]]:
        """Each request file with its batch's request counts (total, completed, failed), asked of the API.

        Files of a ``write`` run (or with no ``client``) are shown as the ledger has them.
        """
        shown = []
        for row in self.ledger.files():
            counts: dict[str, int] = {}
            if client is not None and row.batch_id is not None and not row.collected:
                batch = _retrieve(client, row.batch_id)
                self.ledger.update_file(
                    row.name,
                    status=batch.status,
                    output_file_id=batch.output_file_id,
                    error_file_id=batch.error_file_id,
                )
                if batch.request_counts is not None:
                    counts = batch.request_counts.model_dump()
                row = self._file(row.name)
            shown.append((row, counts))
        return shown

    def progress(self) -> tuple[int, int]:
        """Articles (done, waiting)."""
        return self.ledger.count_articles()

    # -- collect ----------------------------------------------------------------------------

    def collect(
        self,
        client: Client,
        *,
        resubmit: Resubmit = "online",
        results: Iterable[Path] = (),
        concurrency: int = 4,
        max_requests: int = MAX_REQUESTS_PER_FILE,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> BatchCollectReport:
        """Read the answers of every finished batch (or ``vllm run-batch`` results) and settle the articles.

        ``client`` is made with :meth:`config` (and the key); its cache should
        be :attr:`store`. Answers are checked as online; what is still missing
        is sent online (``resubmit="online"``, ``concurrency`` articles at a
        time) or queued into a follow-up batch (``"batch"``: uploaded for an
        ``api`` run, written as the next request file for a ``files`` run).
        Articles in a batch still running wait for it.
        """
        target = self.schema()
        report = BatchCollectReport()
        if results:
            self._read_results_files(list(results), report)
        else:
            self._download_finished(client, report)
        pending_files = {row.name for row in self.ledger.files(collected=False)}
        ready = []
        for article, key, _ in self.ledger.articles(done=False):
            assert article is not None and key is not None
            rows = self.ledger.requests_of(key)
            if any(row.answer is None and row.file in pending_files for row in rows):
                report.waiting += 1
            else:
                ready.append((article, key))
        if resubmit == "online":
            self._settle_online(client, target, ready, concurrency, report)
        else:
            self._settle_by_batch(client, target, ready, report)
            upload = self.kind == "api"
            report.files = self._file_queued(client, upload=upload, max_requests=max_requests, max_bytes=max_bytes)
        return report

    def _download_finished(self, client: Client, report: BatchCollectReport) -> None:
        known = self.ledger.known_ids()
        for row in self.ledger.files(collected=False):
            if row.batch_id is None:  # written for vllm run-batch: its answers come with --from
                report.running.append(row)
                continue
            batch = _retrieve(client, row.batch_id)
            self.ledger.update_file(
                row.name, status=batch.status, output_file_id=batch.output_file_id, error_file_id=batch.error_file_id
            )
            if batch.status not in _FINISHED:
                report.running.append(self._file(row.name))
                continue
            for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
                if file_id:
                    data = _download(client, file_id)
                    _write_atomically(self.folder / f"{Path(row.name).stem}.{kind}.jsonl", data)
                    self._record_lines(data, f"{kind} file {file_id}", known, report)
            self._close_file(row.name, batch.status, report)

    def _read_results_files(self, paths: list[Path], report: BatchCollectReport) -> None:
        known = self.ledger.known_ids()
        answered: set[str] = set()
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read the results file ({exc.strerror})", path=path) from None
            answered |= self._record_lines(data, str(path), known, report)
        # Only the request files these results answer are finished; another file may still be running.
        for row in self.ledger.files(collected=False):
            if self.ledger.known_ids(file=row.name) & answered:
                self._close_file(row.name, "completed", report)

    def _record_lines(self, data: bytes, where: str, known: set[str], report: BatchCollectReport) -> set[str]:
        """Record the answers and errors in ``data``; the ids they answer."""
        answers, errors, unknown = _parse_results(data, where, known)
        self.ledger.record_answers(answers, errors)
        report.answers += len(answers)
        report.errors += len(errors)
        report.unknown_ids += unknown
        return set(answers) | set(errors)

    def _close_file(self, name: str, status: str, report: BatchCollectReport) -> None:
        """The file's batch is over: a request it did not answer is marked so, to be sent again."""
        never = {
            row.custom_id: {"code": f"batch_{status}", "message": f"the batch ended ({status}) without answering it"}
            for row in self.ledger.unanswered_in(name)
            if row.error is None
        }
        if never:
            self.ledger.record_answers({}, never)
        report.not_answered += len(never)
        self.ledger.update_file(name, status=status, collected=1)
        report.collected.append(self._file(name))

    def _settle_online(
        self,
        client: Client,
        target: type[BaseModel],
        ready: list[tuple[Article, str]],
        concurrency: int,
        report: BatchCollectReport,
    ) -> None:
        """The online route's batch runner over the ready articles, each request a batch answered not being sent."""
        keys = {article.id: key for article, key in ready}

        def answers(article: Article) -> Answers:
            return self._answers(keys[article.id], client.resolved_config.max_retries, final_errors=False)

        async def run() -> list[ArticleOutcome]:
            outcomes = aextract_many(
                [article for article, _ in ready],
                client,
                target,
                concurrency=concurrency,
                store=self.store,
                answers=answers,
            )
            collected = [outcome async for outcome in outcomes]
            await client.aclose_connections()
            return collected

        for outcome in asyncio.run(run()):
            key = keys[outcome.id]
            if self.store.finished(key) is not None:
                self.ledger.mark_done(key)
                report.settled += 1
            else:  # not stored (interrupted, or an error every article would meet): sent again next time
                report.unsettled[outcome.id] = outcome.to_json()

    def _settle_by_batch(
        self, client: Client, target: type[BaseModel], ready: list[tuple[Article, str]], report: BatchCollectReport
    ) -> None:
        max_retries = client.resolved_config.max_retries
        for article, key in ready:
            verdict = check_outcome(article, client, target, self._answers(key, max_retries, final_errors=True))
            if isinstance(verdict, Pending):
                report.queued += self.ledger.add_requests(_request_rows(key, verdict.bodies))
                report.waiting += 1
            elif isinstance(verdict.error, Interrupted):
                report.unsettled[article.id] = verdict.to_json()
            else:
                self.store.save(key, article.id, verdict.status, verdict.to_json())
                self.ledger.mark_done(key)
                report.settled += 1

    def _answers(self, key: str, max_retries: int, *, final_errors: bool) -> Answers:
        """What the files brought for the article with ``key``.

        An HTTP error a request met in more than ``max_retries`` batches is
        final when ``final_errors`` (a follow-up batch would not mend it); a
        request online gets its own transport retries instead.
        """
        completions: dict[str, ChatCompletion] = {}
        failures: dict[str, ExtractionError] = {}
        for row in self.ledger.requests_of(key):
            if row.answer is not None:
                try:
                    completions[row.digest] = _completion(row.answer)
                except InvalidResponse as exc:
                    failures[row.digest] = exc
            elif final_errors and row.error is not None and row.tries > max_retries:
                error = _line_error(row.error)
                if error is not None:
                    failures[row.digest] = error
        return Answers(completions, failures)

    # -- lines ------------------------------------------------------------------------

    def lines(self, client: Client, extra: dict[str, dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        """Every article's line, in the order they were submitted.

        A finished article's line is its stored one, under the run's grounding
        policy; ``extra`` gives the lines of articles that ended without one
        (:attr:`BatchCollectReport.unsettled`). An article still waiting for
        answers is an :class:`InputError`: collect again first.
        """
        target = self.schema()
        extra = extra or {}
        for article, key, line in self.ledger.articles():
            if article is None or key is None:
                assert line is not None
                yield line
                continue
            if article.id in extra:
                yield extra[article.id]
                continue
            outcome = resumed_outcome(self.store, key, article, client, target, None)
            if outcome is None:
                stored = self.store.finished(key)
                if stored is None:
                    raise InputError(
                        f"article {article.id} is still waiting for answers; collect again", path=self.folder
                    )
                yield {**stored[1], "source": article.source or article.id}
            else:
                yield outcome.to_json()


# -- helpers -------------------------------------------------------------------------------


def _settings_of(client: Client, schema: str, target: type[BaseModel], kind: str) -> dict[str, Any]:
    """What a run keeps of its configuration: the endpoint as resolved, so later commands ask nothing of it."""
    config, endpoint = client.resolved_config, client.endpoint
    stored = {name: _plain(getattr(config, name)) for name in _STORED_FIELDS}
    stored.update(base_url=endpoint.base_url, model=endpoint.model, structured_output=endpoint.mode.value)
    return {"kind": kind, "schema": schema, "schema_fingerprint": schema_fingerprint(target), "config": stored}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> Iterator[str]:
    for name in ("kind", "schema", "schema_fingerprint"):
        if before.get(name) != after.get(name):
            yield name
    old, new = before.get("config", {}), after.get("config", {})
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            yield name


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _request_rows(key: str, bodies: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """``(custom_id, key, digest, body)``: the id is the article's run-database key and the body's digest."""
    seen: set[str] = set()
    for body in bodies:
        digest = request_digest(body)
        if digest not in seen:
            seen.add(digest)
            yield f"{key[:32]}-{digest[:32]}", key, digest, body


def _split(rows: list[RequestRow], max_requests: int, max_bytes: int) -> Iterator[list[tuple[RequestRow, bytes]]]:
    """The request lines in files of at most ``max_requests`` lines and ``max_bytes`` bytes (a longer line alone)."""
    group: list[tuple[RequestRow, bytes]] = []
    size = 0
    for row in rows:
        line = {"custom_id": row.custom_id, "method": "POST", "url": BATCH_ENDPOINT, "body": row.body}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        if group and (len(group) >= max_requests or size + len(data) > max_bytes):
            yield group
            group, size = [], 0
        group.append((row, data))
        size += len(data)
    if group:
        yield group


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


def _download(client: Client, file_id: str) -> bytes:
    def send(api: OpenAI) -> bytes:
        return api.files.content(file_id).content

    return client.call_api(send)


def _retrieve(client: Client, batch_id: str) -> Any:
    return client.call_api(lambda api: api.batches.retrieve(batch_id))


def _parse_results(
    data: bytes, where: str, known: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], int]:
    """(answers by id, errors by id, lines for unknown ids) of an output or error file."""
    answers: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, Any]] = {}
    unknown = 0
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            logger.warning("%s: line %d is not JSON; ignored (its request is sent again)", where, number)
            continue
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if custom_id not in known:
            logger.warning("%s: line %d answers %r, which this run never sent; ignored", where, number, custom_id)
            unknown += 1
            continue
        response = line.get("response")
        if not isinstance(response, dict):
            response = {}  # no answer in it: the request is sent again
        body = response.get("body")
        if not line.get("error") and response.get("status_code") == 200 and isinstance(body, dict):
            answers[custom_id] = body
        else:
            errors[custom_id] = {"status_code": response.get("status_code"), "error": line.get("error") or body}
    return answers, errors, unknown


def _completion(body: dict[str, Any]) -> ChatCompletion:
    """A batch line's body as the openai client would have parsed it from a response."""
    if not isinstance(body, dict) or "choices" not in body:
        raise InvalidResponse("the batch answered with a body that is not a chat completion")
    return cast(ChatCompletion, construct_type(type_=ChatCompletion, value=body))


def _line_error(error: dict[str, Any]) -> ExtractionError | None:
    """The error an HTTP failure in a batch line stands for, as the backend maps it; None for a request never run."""
    status = error.get("status_code")
    if not isinstance(status, int):
        return None
    detail = error.get("error")
    inner = detail.get("error", detail) if isinstance(detail, dict) else detail
    message = inner.get("message") if isinstance(inner, dict) else inner
    text = f"the batch answered {status}" + (f": {str(message)[:300]}" if message else "")
    failure: ExtractionError
    if status in (401, 403):
        failure = AuthenticationFailed(text)
    elif status == 429:
        failure = RateLimited(text)
    elif status >= 500 or status in (408, 409):
        failure = ServerError(text)
    else:
        failure = RequestRejected(text)
    failure.status_code = status
    return failure
