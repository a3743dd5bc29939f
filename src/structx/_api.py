"""The library's front door: :class:`Client`, :func:`extract` and :func:`aextract`."""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pydantic import BaseModel

from structx._backend import Backend, Endpoint, ResponseCache
from structx._config import Config
from structx._engine import Engine
from structx._errors import ConfigError
from structx._local import EMBEDDED_FREQUENCY_PENALTY, EmbeddedServer
from structx._models import Article, Result
from structx._schemas import load_schema
from structx_schemas import ArticleExtraction

__all__ = ["Client", "aextract", "extract"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Client:
    """A connection to one endpoint, reused across extractions.

    With no endpoint configured, the first extraction starts the embedded
    llama.cpp server; :meth:`close` (or leaving the ``with`` block) stops it.
    The endpoint is resolved once, on first use: see :attr:`endpoint`.

    Use the async methods from one event loop per client.
    """

    def __init__(self, config: Config | None = None, *, cache: ResponseCache | None = None) -> None:
        self.config = config if config is not None else Config.from_env()
        #: Where completions are remembered by request (a :class:`RunStore`, say); None for no cache.
        self.cache = cache
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

        For the embedded model, that sets its frequency penalty. Resolving may
        start the embedded server or send ``GET /models``.
        """
        return self._get_engine().config

    def extract(self, article: Article | str, schema: type[ModelT] | str = ArticleExtraction) -> Result[ModelT]:  # type: ignore[assignment]
        """Fill ``schema`` from one article with one model call (plus re-asks)."""
        target = load_schema(schema)  # a bad schema fails before the endpoint is contacted
        return self._get_engine().extract(_as_article(article), target)  # type: ignore[arg-type]

    async def aextract(
        self,
        article: Article | str,
        schema: type[ModelT] | str = ArticleExtraction,  # type: ignore[assignment]
    ) -> Result[ModelT]:
        """Async twin of :meth:`extract`."""
        target = load_schema(schema)
        engine = self._engine if self._engine is not None else await asyncio.to_thread(self._get_engine)
        return await engine.aextract(_as_article(article), target)  # type: ignore[arg-type]

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._connect()
            return self._engine

    def _connect(self) -> Engine:
        config = self.config
        embedded_model: str | None = None
        base_url = config.base_url
        if config.uses_embedded_model:
            if config.frequency_penalty is None:
                config = replace(config, frequency_penalty=EMBEDDED_FREQUENCY_PENALTY)
            self._server = EmbeddedServer()
            # Stop the server even if the client is never closed.
            self._finalizer = weakref.finalize(self, self._server.stop)
            base_url = self._server.start()
            embedded_model = self._server.model_name
        self._backend = Backend(config, base_url=base_url, cache=self.cache)
        endpoint = self._backend.resolve(embedded_model=embedded_model)
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
    """Extract ``schema`` from ``article`` (its text, or an :class:`Article`).

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


def _as_article(article: Article | str | Path) -> Article:
    if isinstance(article, Article):
        return article
    if isinstance(article, Path):
        raise TypeError("extract() takes article text; read files with structx.read_article(path)")
    return Article(text=article)
