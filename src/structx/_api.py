"""The library's front door: :class:`Client`, :func:`extract` and :func:`aextract`."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from openai import OpenAI
from pydantic import BaseModel

from structx._backend import Backend, Endpoint, ResponseCache
from structx._config import Config
from structx._documents import check_article
from structx._engine import Answers, Engine, Pending
from structx._errors import ConfigError
from structx._local import EMBEDDED_PARALLEL, LOCAL_MODELS, EmbeddedServer, slot_context
from structx._models import Article, Result
from structx._schemas import load_schema
from structx_schemas import ArticleExtraction

__all__ = ["Client", "aextract", "extract"]

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

#: The embedded model's token budget per call when ``max_tokens`` is None.
EMBEDDED_MAX_TOKENS = 2048
#: The least time a request to the embedded server may take before it counts as a timeout. The
#: server is ours and answers every request it gets; on a busy CPU a long answer takes minutes,
#: and a timeout would only send the same request again, to be generated again from the start.
EMBEDDED_MIN_TIMEOUT = 900.0


class Client:
    """A connection to one endpoint, reused across extractions.

    With no endpoint configured, the first extraction starts the embedded
    llama.cpp server; :meth:`close` (or leaving the ``with`` block) stops it.
    The endpoint is resolved once, on first use: see :attr:`endpoint`.

    Use the async methods from one event loop per client.
    """

    def __init__(self, config: Config | None = None, *, cache: ResponseCache | None = None, probe: bool = True) -> None:
        self.config = config if config is not None else Config.from_env()
        #: Where completions are remembered by request (a :class:`RunStore`, say); None for no cache.
        self.cache = cache
        #: Whether resolving the endpoint may ask ``GET /models``; without it, an unknown server is taken
        #: for a generic one (for request files another program runs, such as ``vllm run-batch``).
        self.probe = probe
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._backend: Backend | None = None
        self._server: EmbeddedServer | None = None
        self._finalizer: weakref.finalize[..., Client] | None = None

    @property
    def endpoint(self) -> Endpoint:
        """Where requests go, which model answers and how the schema is sent.

        Resolving it may start the embedded server or send ``GET /models``.
        """
        return self._get_engine().endpoint

    @property
    def resolved_config(self) -> Config:
        """The configuration requests are made with: :attr:`config` as resolving the endpoint completed it.

        For the embedded model, that bounds ``max_tokens`` when it was left to
        the endpoint. Resolving may start the embedded server or send ``GET /models``.
        """
        return self._get_engine().config

    @property
    def concurrency_limit(self) -> int | None:
        """Requests the endpoint works on at once, when structx knows: the embedded server's slots.

        A batch sends no more articles at once than this, so that no request
        waits in the embedded server's queue while its timeout runs. None for
        other endpoints.
        """
        return EMBEDDED_PARALLEL if self.config.uses_embedded_model else None

    def extract(
        self,
        article: Article | str,
        schema: type[ModelT] | str = ArticleExtraction,  # type: ignore[assignment]
        *,
        answers: Answers | None = None,
    ) -> Result[ModelT]:
        """Fill ``schema`` from one article with one model call (plus re-asks).

        ``article`` is the article's text, or an :class:`Article`; never a
        path (read files with :func:`read_article`). Blank text, or text over
        ``config.max_article_bytes``, is an :class:`InputError` before any
        request. ``answers`` holds answers received another way (a batch
        file): a request they answer is not sent.
        """
        target = load_schema(schema)  # a bad schema fails before the endpoint is contacted
        return self._get_engine().extract(self._checked(article), target, answers)  # type: ignore[arg-type]

    async def aextract(
        self,
        article: Article | str,
        schema: type[ModelT] | str = ArticleExtraction,  # type: ignore[assignment]
        *,
        answers: Answers | None = None,
    ) -> Result[ModelT]:
        """Async twin of :meth:`extract`."""
        target = load_schema(schema)
        checked = self._checked(article)
        engine = self._engine if self._engine is not None else await asyncio.to_thread(self._get_engine)
        return await engine.aextract(checked, target, answers)  # type: ignore[arg-type]

    def check(self, article: Article, schema: type[ModelT], answers: Answers) -> Result[ModelT] | Pending:
        """The outcome of ``article`` from answers at hand, sending nothing: see :meth:`Engine.check`.

        A :class:`Pending` verdict lists the request bodies still to send.
        Resolving the endpoint may ask ``GET /models`` unless ``probe`` is off.
        """
        return self._get_engine().check(self._checked(article), load_schema(schema), answers)  # type: ignore[arg-type]

    def call_api(self, send: Callable[[OpenAI], T]) -> T:
        """``send(openai_client)`` against the endpoint with structx's transport retries and errors.

        The Files and Batches APIs of a batch run go through here.
        """
        self._get_engine()
        assert self._backend is not None
        return self._backend.call(send)

    def _checked(self, article: Article | str) -> Article:
        """The article to extract, refused before any request when it cannot be sent."""
        checked = _as_article(article)
        check_article(checked, max_bytes=self.config.max_article_bytes)
        return checked

    def request_bodies(
        self,
        article: Article | str,
        schema: type[BaseModel] | str = ArticleExtraction,
    ) -> list[dict[str, Any]]:
        """The JSON body of the first request of each call for each chunk of ``article``, as :meth:`extract` sends it.

        The ``excerpts`` format makes one call per chunk, ``cited`` one per list of records plus one for the rest.

        Nothing is sent. Until :attr:`endpoint` has been resolved, nothing is
        asked of the endpoint either: the model and the structured-output mode
        are what resolving would choose without ``GET /models`` (an unknown
        server gets ``json_schema``, and the model it would name is a
        placeholder). Re-asks send these messages plus the previous answer and
        what was wrong with it.
        """
        target = load_schema(schema)
        if self._engine is not None:
            return self._engine.request_bodies(_as_article(article), target)
        config = self._backend_config()
        backend = Backend(config)
        try:
            embedded_model = LOCAL_MODELS[config.local_model].name if config.uses_embedded_model else None
            endpoint = backend.resolve(embedded_model=embedded_model, probe=False)
            return Engine(backend, endpoint, config).request_bodies(_as_article(article), target)
        finally:
            backend.close()

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._connect()
            return self._engine

    def _backend_config(self) -> Config:
        """The configuration requests are made with.

        The embedded server's own default is to generate until the context is
        full: its requests always carry a token budget. And they wait at least
        :data:`EMBEDDED_MIN_TIMEOUT` seconds for the answer.
        """
        config = self.config
        if config.uses_embedded_model and config.max_tokens is None:
            config = replace(config, max_tokens=EMBEDDED_MAX_TOKENS)
        if config.uses_embedded_model and config.timeout < EMBEDDED_MIN_TIMEOUT:
            config = replace(config, timeout=EMBEDDED_MIN_TIMEOUT)
        return config

    def _connect(self) -> Engine:
        config = self._backend_config()
        embedded_model: str | None = None
        base_url = config.base_url
        if config.uses_embedded_model:
            self._server = EmbeddedServer(
                local_model=config.local_model,
                model_dir=config.model_dir,
                n_ctx=slot_context(config.chunk_chars, config.max_tokens),
            )
            # Stop the server even if the client is never closed.
            self._finalizer = weakref.finalize(self, self._server.stop)
            base_url = self._server.start()
            embedded_model = self._server.model_name
        self._backend = Backend(config, base_url=base_url, cache=self.cache)
        endpoint = self._backend.resolve(embedded_model=embedded_model, probe=self.probe)
        return Engine(self._backend, endpoint, config)

    def close(self) -> None:
        """Close connections and stop the embedded server, if one was started."""
        if self._backend is not None:
            self._backend.close()
        self._stop_server()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self.aclose_connections()
        self.close()

    async def aclose_connections(self) -> None:
        """Close the connections of the current event loop; the endpoint stays resolved."""
        if self._backend is not None:
            await self._backend.aclose()

    def _stop_server(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._engine = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def extract(
    article: Article | str,
    schema: type[ModelT] | str = ArticleExtraction,  # type: ignore[assignment]
    *,
    client: Client | None = None,
    config: Config | None = None,
) -> Result[ModelT]:
    """Extract ``schema`` from ``article``: its text (a ``str``), or an :class:`Article`.

    A ``str`` is always the article's text here, never a path (read files
    with :func:`read_article`, or name them to :func:`extract_many`). Blank
    text, or text over ``max_article_bytes``, raises :class:`InputError`
    before any request; anything else raises :class:`TypeError`.

    Pass a :class:`Client` to reuse a connection across articles, or a
    :class:`Config` for a one-off call; with neither, the configuration comes
    from the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
    ``STRUCTX_MODEL``) and falls back to the embedded local model.
    """
    if client is not None:
        _no_config_with_client(config)
        return client.extract(article, schema)
    with Client(config) as one_off:
        return one_off.extract(article, schema)


async def aextract(
    article: Article | str,
    schema: type[ModelT] | str = ArticleExtraction,  # type: ignore[assignment]
    *,
    client: Client | None = None,
    config: Config | None = None,
) -> Result[ModelT]:
    """Async twin of :func:`extract`."""
    if client is not None:
        _no_config_with_client(config)
        return await client.aextract(article, schema)
    async with Client(config) as one_off:
        return await one_off.aextract(article, schema)


def _no_config_with_client(config: Config | None) -> None:
    if config is not None:
        raise ConfigError("pass either client= or config=, not both: a client already has its config")


def _as_article(article: object) -> Article:
    if isinstance(article, Article):
        return article
    if isinstance(article, Path):
        raise TypeError("extract() takes article text; read files with structx.read_article(path)")
    if not isinstance(article, str):
        raise TypeError(
            f"extract() takes article text (a str) or a structx.Article, not {type(article).__name__}: {article!r:.80}"
        )
    return Article(text=article)
