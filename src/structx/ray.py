"""The Ray Data route: structx as a stage of a ``ray.data`` pipeline (``pip install 'structx[ray]'``).

:class:`Extractor` is a callable class for ``Dataset.map_batches``: Ray makes
one per worker, so the client (its connections, the resolved endpoint) is
built once per worker, and each batch of rows (``id``, ``text``, optional
``metadata`` and other columns, as a JSONL line has them) becomes as many
rows of :data:`OUTPUT_SCHEMA`. Each row is extracted by the online runner's
own code (the engine's request builder and answer checker, re-asks,
transport retries), ``concurrency`` rows at a time per worker; a row that
fails gets its error row, and no row ever raises, so a bad article never
fails the Ray task.

:func:`extract_dataset` runs it from the driver with a run database: rows
finished before (on any route: ``structx extract``, the Batch API route, an
earlier Ray run) are not sent again, their rows filled from the database,
and every new row is stored as it arrives, so a job stopped midway resumes.
The database stays on the driver (SQLite, one writer); workers are given
the keys of the finished rows only.

    import ray, structx, structx.ray
    ray.init()                                   # or ray.init(address="auto") on a cluster
    ds = ray.data.read_json("articles/")         # rows with id, text (and title, published, ...)
    config = structx.Config(base_url="http://vllm:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    with structx.RunStore(Path("run.sqlite")) as store:
        for table in structx.ray.extract_dataset(ds, config=config, store=store):
            ...                                  # pyarrow Tables of OUTPUT_SCHEMA
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Literal

import pyarrow as pa
import ray
from pydantic import BaseModel

from structx._api import Client
from structx._batch import ArticleOutcome, extract_outcome, stored_line_holds
from structx._config import Config
from structx._documents import check_article
from structx._errors import ExtractionError, InputError, Interrupted, NotAttempted, StructxError, is_fatal_for_batch
from structx._models import Article
from structx._schemas import DEFAULT_SCHEMA_REF, load_schema
from structx._store import RunStore, result_key

__all__ = ["OUTPUT_SCHEMA", "Extractor", "extract_dataset", "finished_keys"]

logger = logging.getLogger("structx")

#: The rows :class:`Extractor` returns. ``records`` and ``grounding`` are JSON text, as in a result
#: line; ``line`` is the whole result line (JSON), as ``structx extract`` writes it; ``key`` is the
#: run database's key (None for an unreadable row). A ``resumed`` row was finished before: only
#: :func:`extract_dataset` fills it in from the run database.
OUTPUT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("status", pa.string()),
        ("records", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        (
            "usage",
            pa.struct([("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("total_tokens", pa.int64())]),
        ),
        ("attempts", pa.int64()),
        ("requests", pa.int64()),
        ("grounding", pa.string()),
        ("resumed", pa.bool_()),
        ("key", pa.string()),
        ("line", pa.string()),
    ]
)

#: Columns of an input row that are not metadata.
_OWN_COLUMNS = ("id", "text", "metadata")


class Extractor:
    """Rows of articles in, rows of results out: the callable for ``Dataset.map_batches``.

        ds.map_batches(Extractor, fn_constructor_kwargs={"config": config}, concurrency=4, batch_size=32)

    ``config`` None reads the worker's environment (``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL``, ``STRUCTX_MODEL``: set them with Ray's
    ``runtime_env``), so that no key travels with the job. ``schema`` is
    best given as ``"package.module:Class"``, importable on every worker.
    ``concurrency`` is the requests in flight per worker. ``finished``
    maps the keys of rows finished before to their status (an object ref to
    it, or a collection of keys); those rows come back ``resumed``, with no
    request sent.
    """

    def __init__(
        self,
        config: Config | None = None,
        schema: str | type[BaseModel] = DEFAULT_SCHEMA_REF,
        *,
        concurrency: int = 8,
        finished: Mapping[str, str] | Collection[str] | ray.ObjectRef[Any] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.config = config if config is not None else Config.from_env()
        self.schema = load_schema(schema)
        self.client = Client(self.config)  # once per worker; the endpoint is resolved with the first batch
        self.concurrency = concurrency
        given: Any = ray.get(finished) if isinstance(finished, ray.ObjectRef) else finished
        self.finished: Mapping[str, str] = given if isinstance(given, Mapping) else dict.fromkeys(given or (), "ok")
        #: The first error every later row would meet (a rejected key): later rows are not sent.
        self.fatal: tuple[str, ExtractionError] | None = None

    def __call__(self, batch: pa.Table | Mapping[str, Any] | Any) -> pa.Table:
        rows = _rows(batch)
        outcomes = asyncio.run(self._extract(rows))
        return pa.Table.from_pylist(outcomes, schema=OUTPUT_SCHEMA)

    async def _extract(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            endpoint = await asyncio.to_thread(lambda: self.client.endpoint)
            config = self.client.resolved_config
        except StructxError as exc:  # nothing can be extracted: every row says why
            return [_row(ArticleOutcome.failed(_article_or_error(row, 0), exc), None) for row in rows]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            item = _article_or_error(row, config.max_article_bytes)
            if isinstance(item, InputError):
                return _row(ArticleOutcome.failed(item, item), None)
            key = result_key(item, self.schema, endpoint, config)
            if key in self.finished:
                return _resumed_row(item.id, self.finished[key], key)
            async with gate:
                if self.fatal is not None:
                    stopped_at, error = self.fatal
                    return _row(ArticleOutcome.failed(item, NotAttempted(error, stopped_at)), None)
                outcome = await extract_outcome(item, self.client, self.schema)
            fatal = isinstance(outcome.error, ExtractionError) and is_fatal_for_batch(outcome.error)
            if fatal and self.fatal is None:
                assert isinstance(outcome.error, ExtractionError)
                self.fatal = (outcome.id, outcome.error)
            # As the batch runner stores them: not an interrupted row, nor one stopped by an error about the
            # endpoint or the account rather than the article (the next run sends those again).
            storable = not fatal and not isinstance(outcome.error, Interrupted)
            return _row(outcome, key if storable else None)

        try:
            return list(await asyncio.gather(*(one(row) for row in rows)))
        finally:
            await self.client.aclose_connections()  # they belong to this batch's event loop


def finished_keys(store: RunStore, config: Config, *, redo: Literal["failed", "all"] | None = None) -> dict[str, str]:
    """The keys of the articles ``store`` holds a line for, with its status: the rows not to send again.

    A line counts when it is, as stored, the line ``config.grounding`` gives
    (otherwise the row is extracted again); ``redo="failed"`` leaves out the
    errors, ``redo="all"`` everything.
    """
    if redo == "all":
        return {}
    finished = {}
    for key, status, line in store.lines():
        if redo == "failed" and status != "ok":
            continue
        if stored_line_holds(line, status == "ok", config.grounding):
            finished[key] = status
    return finished


def extract_dataset(
    dataset: Any,
    *,
    config: Config | None = None,
    schema: str = DEFAULT_SCHEMA_REF,
    store: RunStore | None = None,
    redo: Literal["failed", "all"] | None = None,
    workers: int = 2,
    concurrency: int = 8,
    batch_size: int = 32,
) -> Iterator[pa.Table]:
    """Run :class:`Extractor` over ``dataset`` on ``workers`` Ray actors; output batches as pyarrow Tables.

    With a ``store`` (the run database, on the driver), rows finished before
    are not sent (see :func:`finished_keys`) and come back filled in from
    it, and each new row is stored as its batch arrives. Rows keep no order.
    ``config`` None uses the driver's environment here, for the keys, and
    each worker's for its requests.
    """
    config = config if config is not None else Config.from_env()
    finished = ray.put(finished_keys(store, config, redo=redo)) if store is not None else None
    mapped = dataset.map_batches(
        Extractor,
        fn_constructor_kwargs={"config": config, "schema": schema, "concurrency": concurrency, "finished": finished},
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        batch_format="pyarrow",
    )
    for table in mapped.iter_batches(batch_format="pyarrow", batch_size=None):
        yield table if store is None else _settle(table, store)


def _settle(table: pa.Table, store: RunStore) -> pa.Table:
    """Resumed rows filled in from ``store``; new rows stored (except those a later run must send again)."""
    rows = table.to_pylist()
    for index, row in enumerate(rows):
        key = row["key"]
        if row["resumed"]:
            stored = store.finished(key)
            if stored is not None:
                rows[index] = {**_row_of_line({**stored[1], "source": row["id"]}, key), "resumed": True}
            continue
        if key is not None:  # no key: unreadable, or to be sent again by the next run
            store.save(key, row["id"], row["status"], json.loads(row["line"]))
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def _rows(batch: Any) -> list[dict[str, Any]]:
    """A batch as Ray hands it (a pyarrow Table, a dict of columns, a pandas DataFrame) as a list of rows."""
    if isinstance(batch, pa.Table):
        return list(batch.to_pylist())
    if isinstance(batch, Mapping):  # numpy arrays: tolist() gives Python values, as a JSONL line has them
        columns = {
            name: values.tolist() if hasattr(values, "tolist") else list(values) for name, values in batch.items()
        }
        count = len(next(iter(columns.values()), []))
        return [{name: values[index] for name, values in columns.items()} for index in range(count)]
    return list(batch.to_dict("records"))


def _article_or_error(row: dict[str, Any], max_bytes: int) -> Article | InputError:
    """The row as an Article (its other columns as metadata, as a JSONL line's keys), or why it cannot be one."""
    given = row.get("id")
    article_id = str(given) if given not in (None, "") else ""
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        return InputError('the row has no article text (a non-empty "text" column)', article_id=article_id or "row")
    metadata = _metadata(row.get("metadata"))
    metadata.update({name: value for name, value in row.items() if name not in _OWN_COLUMNS and value is not None})
    article = Article(text=text, id=article_id, metadata=metadata)
    if max_bytes:
        try:
            check_article(article, max_bytes=max_bytes)
        except InputError as exc:
            return exc
    return article


def _metadata(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"metadata": value}
        return parsed if isinstance(parsed, dict) else {"metadata": parsed}
    return {}


def _row(outcome: ArticleOutcome, key: str | None) -> dict[str, Any]:
    return _row_of_line(outcome.to_json(), key)


def _row_of_line(line: dict[str, Any], key: str | None) -> dict[str, Any]:
    error = line.get("error") or {}
    usage = line.get("usage") or {}
    records = line.get("records")
    grounding = line.get("grounding")
    return {
        "id": line["id"],
        "status": line["status"],
        "records": None if records is None else json.dumps(records, ensure_ascii=False),
        "error_type": error.get("type"),
        "error_message": error.get("message"),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "total_tokens": int(usage.get("total_tokens", 0)),
        },
        "attempts": int(line.get("attempts", 0)),
        "requests": int(line.get("requests", 0)),
        "grounding": None if grounding is None else json.dumps(grounding, ensure_ascii=False),
        "resumed": False,
        "key": key,
        "line": json.dumps(line, ensure_ascii=False),
    }


def _resumed_row(article_id: str, status: str, key: str) -> dict[str, Any]:
    return {
        "id": article_id,
        "status": status,
        "records": None,
        "error_type": None,
        "error_message": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "attempts": 0,
        "requests": 0,
        "grounding": None,
        "resumed": True,
        "key": key,
        "line": None,
    }
