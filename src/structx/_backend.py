"""The OpenAI-compatible backend: one code path for OpenAI, vLLM, Ollama and llama.cpp.

What differs between endpoints is configuration, resolved here into an
:class:`Endpoint`: the base URL, the model and the structured-output mode.
This module also owns the single transport retry layer (tenacity around each
HTTP request; the openai client's own retries are switched off) and the
mapping of HTTP failures onto structx's exception tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import itertools
import json
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from structx._config import DEFAULT_OPENAI_MODEL, OPENAI_BASE_URL, Config, StructuredOutput, redact_url
from structx._errors import (
    AuthenticationFailed,
    ConfigError,
    EndpointTimeout,
    EndpointUnreachable,
    ExtractionError,
    Interrupted,
    InvalidResponse,
    QuotaExceeded,
    RateLimited,
    RequestRejected,
    ServerError,
)
from structx._models import Usage

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "UNRESOLVED_MODEL",
    "Backend",
    "CallTally",
    "Endpoint",
    "Halt",
    "ResponseCache",
    "adapt_response_format",
    "halting",
    "request_log",
]

T = TypeVar("T")

logger = logging.getLogger("structx")
#: Each HTTP request and response as a JSON line, keys scrubbed, at DEBUG level
#: (``structx extract --log-requests FILE`` writes them to FILE).
request_log = logging.getLogger("structx.requests")
# Headers whose values are replaced by *** in the request log.
_SECRET_HEADER_PARTS = ("auth", "key", "token", "secret", "pass", "cookie", "session", "signature")

#: The model of an endpoint resolved without asking it which models it serves.
UNRESOLVED_MODEL = "<the first model GET /models lists>"

_RETRYABLE_STATUS = frozenset({408, 409, 429})
# A placeholder key for local servers that ignore authentication; the openai
# client refuses to start without one.
_NO_KEY = "no-key-required"


class ResponseCache(Protocol):
    """Stores successful completions by the exact request that produced them."""

    def get_response(self, key: str) -> str | None: ...

    def put_response(self, key: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved endpoint: where requests go and how the answer's shape is asked for."""

    base_url: str
    model: str
    mode: StructuredOutput
    #: Why this mode was chosen, for --verbose output.
    reason: str
    #: What kind of server this is, as far as structx can tell.
    server: str

    @property
    def display_url(self) -> str:
        return redact_url(self.base_url)


@dataclass(slots=True)
class CallTally:
    """What one extraction has cost so far; filled in as requests are made."""

    attempts: int = 0
    requests: int = 0
    #: Completions served from the response cache instead of the endpoint.
    cached: int = 0
    #: Tokens spent on this run's requests (cached completions cost nothing).
    usage: Usage = field(default_factory=Usage)
    #: (request key, completion) pairs to cache once the extraction has succeeded.
    pending_cache: list[tuple[str, str]] = field(default_factory=list)
    last_completion: str | None = None
    #: When the extraction began (time.monotonic()); the retry budget counts from here.
    started: float = field(default_factory=time.monotonic)
    #: The failure the next transport retry is for, as it would be reported.
    retrying_after: str = ""

    def record(self, completion: ChatCompletion) -> None:
        self.attempts += 1
        if completion.usage is not None:
            self.usage = self.usage + Usage(
                prompt_tokens=completion.usage.prompt_tokens or 0,
                completion_tokens=completion.usage.completion_tokens or 0,
            )
        if completion.choices:
            message = completion.choices[0].message
            if message.content is not None:
                self.last_completion = message.content
            elif message.tool_calls:
                call = message.tool_calls[0]
                self.last_completion = getattr(getattr(call, "function", None), "arguments", None)

    def attach(self, error: ExtractionError) -> ExtractionError:
        error.attempts = self.attempts
        error.requests = self.requests
        error.usage = self.usage
        error.last_completion = self.last_completion
        return error


@dataclass(frozen=True, slots=True)
class Halt:
    """When the async requests of a batch stop (see :func:`halting`).

    Once ``stop`` is set, no request begins (a retry, a re-ask, a next chunk)
    and waits between retries end; requests in flight go on. Once ``cancel``
    is set, requests in flight are abandoned as well. Either ends the
    extraction with :class:`Interrupted`.
    """

    stop: asyncio.Event | None = None
    cancel: asyncio.Event | None = None

    @property
    def stopped(self) -> bool:
        return any(event.is_set() for event in (self.stop, self.cancel) if event is not None)


_HALT: ContextVar[Halt | None] = ContextVar("structx_halt", default=None)


def halting(halt: Halt) -> contextvars.Context:
    """A copy of the current context in which the backend's async requests obey ``halt``.

    Run each task of a batch in a copy of it (``loop.create_task(coro, context=context.copy())``).
    """
    context = contextvars.copy_context()
    context.run(_HALT.set, halt)
    return context


async def _first_set(events: list[asyncio.Event], timeout: float | None) -> bool:
    """Whether one of ``events`` is set within ``timeout`` seconds (None: wait for one)."""
    if any(event.is_set() for event in events):
        return True
    if not events:
        await asyncio.sleep(timeout or 0)
        return False
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


async def _pause(seconds: float, halt: Halt | None, why: Callable[[], str]) -> None:
    """Sleep ``seconds``, unless the batch stops first: then raise :class:`Interrupted`."""
    if halt is None:
        await asyncio.sleep(seconds)
        return
    events = [event for event in (halt.stop, halt.cancel) if event is not None]
    if await _first_set(events, seconds):
        raise Interrupted(why())


async def _unless_cancelled(halt: Halt | None, request: Awaitable[Any]) -> Any:
    """Await ``request``, abandoning it as :class:`Interrupted` once the batch is cancelled."""
    if halt is None or halt.cancel is None:
        return await request
    sending = asyncio.ensure_future(request)
    cancelled = asyncio.ensure_future(halt.cancel.wait())
    try:
        await asyncio.wait([sending, cancelled], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this task itself was cancelled: the request goes with it
        sending.cancel()
        raise
    finally:
        cancelled.cancel()
    if sending.done():
        return sending.result()
    sending.cancel()
    await asyncio.wait([sending])  # its connection is closed before the article's line is written
    if not sending.cancelled():
        sending.exception()  # retrieved, so that asyncio does not report it as lost
    raise Interrupted("cancelled while its request was in flight")


def adapt_response_format(kwargs: dict[str, Any], mode: StructuredOutput) -> dict[str, Any]:
    """Rewrite instructor's ``json_schema`` request into llama.cpp's dialect when needed.

    llama.cpp's servers build a grammar from
    ``{"type": "json_object", "schema": ...}``; llama-cpp-python answers 500
    to ``{"type": "json_schema", ...}``.
    """
    fmt = kwargs.get("response_format")
    if mode is StructuredOutput.JSON_OBJECT_SCHEMA and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema")
        return {**kwargs, "response_format": {"type": "json_object", "schema": schema}}
    return kwargs


class Backend:
    """Talks to one OpenAI-compatible endpoint, with one layer of transport retries."""

    def __init__(self, config: Config, *, base_url: str | None = None, cache: ResponseCache | None = None) -> None:
        self._config = config
        self._cache = cache
        self._base_url = base_url or config.resolved_base_url()
        self._api_key = config.api_key or _NO_KEY
        self._gate = _RateLimitGate()
        self._exchanges = itertools.count(1)
        # Both clients are made up front: cheap, and no lazy creation to race on.
        self._sync = OpenAI(
            **self._client_options(),
            http_client=openai.DefaultHttpxClient(
                event_hooks={"request": [self._log_request], "response": [self._log_response]}
            ),
        )
        self._async = self._new_async_client()

    # -- clients -----------------------------------------------------------

    def close(self) -> None:
        """Close the sync client's connections (the async client needs :meth:`aclose`)."""
        self._sync.close()

    async def aclose(self) -> None:
        """Close the async client's connections, which belong to the running event loop.

        A fresh async client takes its place, so the backend still works from
        another event loop afterwards.
        """
        closed, self._async = self._async, self._new_async_client()
        await closed.close()

    def _new_async_client(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            **self._client_options(),
            http_client=openai.DefaultAsyncHttpxClient(
                event_hooks={"request": [self._alog_request], "response": [self._alog_response]}
            ),
        )

    def _client_options(self) -> dict[str, Any]:
        """What the sync and async clients share; max_retries=0: tenacity is the only retry layer."""
        return {
            "base_url": self._base_url,
            "api_key": self._api_key,
            "timeout": self._config.timeout,
            "max_retries": 0,
            "default_headers": dict(self._config.headers),
        }

    # -- the request log -------------------------------------------------------

    def _log_request(self, request: httpx2.Request) -> None:
        if not request_log.isEnabledFor(logging.DEBUG):
            return
        exchange = next(self._exchanges)
        request.extensions["structx_exchange"] = exchange
        headers = {
            name: "***" if any(part in name.lower() for part in _SECRET_HEADER_PARTS) else value
            for name, value in request.headers.items()
        }
        self._log(exchange, "request", request, headers=headers, body=_body(request.content))

    def _log_response(self, response: httpx2.Response) -> None:
        if request_log.isEnabledFor(logging.DEBUG):
            response.read()
            self._log_answer(response)

    async def _alog_request(self, request: httpx2.Request) -> None:
        self._log_request(request)

    async def _alog_response(self, response: httpx2.Response) -> None:
        if request_log.isEnabledFor(logging.DEBUG):
            await response.aread()
            self._log_answer(response)

    def _log_answer(self, response: httpx2.Response) -> None:
        request = response.request
        exchange = request.extensions.get("structx_exchange")
        self._log(exchange, "response", request, status=response.status_code, body=_body(response.content))

    def _log_failure(self, exc: openai.APIConnectionError) -> None:
        if request_log.isEnabledFor(logging.DEBUG):
            request = exc.request
            cause = exc.__cause__ or exc
            error = f"{type(exc).__name__} ({type(cause).__name__}: {cause})"
            self._log(request.extensions.get("structx_exchange"), "no response", request, error=error)

    def _log(self, exchange: object, event: str, request: httpx2.Request, **fields: Any) -> None:
        entry = {"exchange": exchange, "event": event, "method": request.method, "url": redact_url(str(request.url))}
        request_log.debug(self.scrub(json.dumps({**entry, **fields}, ensure_ascii=False)))

    # -- endpoint resolution ------------------------------------------------

    def resolve(self, *, embedded_model: str | None = None, probe: bool = True) -> Endpoint:
        """Decide the model and the structured-output mode for this endpoint.

        An explicit mode wins. Otherwise: the embedded server and llama.cpp
        servers get ``json_object_schema``; OpenAI gets ``tools``; any other
        server gets ``json_schema``. Servers are told apart by ``GET /models``
        (llama-cpp-python reports ``owned_by: "me"``, llama-server
        ``"llamacpp"``, vLLM ``"vllm"``, Ollama ``"library"``/``"ollama"``).
        When that is asked and lists models, a configured model must be one
        of them: a :class:`ConfigError` before any article, rather than the
        same 404 for every article.
        With ``probe=False`` nothing is sent: a server that would be asked is
        taken for a generic one, and a model it would name is left as
        :data:`UNRESOLVED_MODEL`.
        """
        config = self._config
        model = config.model
        if embedded_model is not None:
            server, reason = "llama.cpp (embedded)", "the embedded llama.cpp server"
            model = model or embedded_model
        elif self._is_openai():
            server, reason = "openai", f"base URL is {OPENAI_BASE_URL}"
            model = model or DEFAULT_OPENAI_MODEL
        elif model is not None and config.structured_output is not StructuredOutput.AUTO:
            server, reason = "openai-compatible", "set in the configuration"
        elif not probe:
            server, reason = "openai-compatible", "assumed without asking GET /models"
            model = model or UNRESOLVED_MODEL
        else:
            server, served = self._probe()
            reason = f"GET /models reports a {server} server"
            if model is not None and served and not _is_served(model, served):
                listed = ", ".join(served[:5]) + (f" and {len(served) - 5} more" if len(served) > 5 else "")
                raise ConfigError(
                    f"model {model!r} is not served by {redact_url(self._base_url)}, which lists: {listed}; "
                    "pass one of them with --model"
                )
            model = model or (served[0] if served else None)
            if model is None:
                raise ConfigError(
                    f"no model given for {redact_url(self._base_url)} and the endpoint lists none: "
                    "pass --model or set STRUCTX_MODEL"
                )
        if config.structured_output is not StructuredOutput.AUTO:
            mode, reason = config.structured_output, "set in the configuration"
        elif server.startswith("llama.cpp"):
            mode = StructuredOutput.JSON_OBJECT_SCHEMA
        elif server == "openai":
            mode = StructuredOutput.TOOLS
        else:
            mode = StructuredOutput.JSON_SCHEMA
        return Endpoint(base_url=self._base_url, model=model, mode=mode, reason=reason, server=server)

    def _is_openai(self) -> bool:
        return urlsplit(self._base_url).hostname == urlsplit(OPENAI_BASE_URL).hostname

    def _probe(self) -> tuple[str, list[str]]:
        """Ask ``GET /models`` what kind of server this is and which models it serves."""
        tally = CallTally()
        try:
            page = self._with_retries(tally, lambda: self._sync.models.list())
        except (AuthenticationFailed, QuotaExceeded):
            raise
        except (RequestRejected, InvalidResponse) as exc:
            logger.debug("GET /models failed (%s); assuming a generic OpenAI-compatible server", exc)
            return "openai-compatible", []
        models = list(page.data)
        owners = {str(getattr(m, "owned_by", "") or "").lower() for m in models}
        if owners & {"me", "llamacpp", "llama.cpp"}:
            server = "llama.cpp"
        elif "vllm" in owners:
            server = "vllm"
        elif owners & {"library", "ollama"} or urlsplit(self._base_url).port == 11434:
            server = "ollama"
        else:
            server = "openai-compatible"
        return server, [m.id for m in models if m.id]

    # -- requests -------------------------------------------------------------

    def create(self, tally: CallTally, kwargs: dict[str, Any]) -> ChatCompletion:
        """``POST /chat/completions`` with transport retries; failures become structx errors.

        With a response cache, an identical earlier request is answered from it.
        """
        key = self._cache_key(kwargs)
        if (cached := self._cached(key, tally)) is not None:
            return cached
        completion = cast(
            ChatCompletion, self._with_retries(tally, lambda: self._sync.chat.completions.create(**kwargs))
        )
        self._remember(key, completion, tally)
        return completion

    async def acreate(self, tally: CallTally, kwargs: dict[str, Any]) -> ChatCompletion:
        key = self._cache_key(kwargs)
        if (cached := self._cached(key, tally)) is not None:
            return cached
        completion = await self._acreate(tally, kwargs)
        self._remember(key, completion, tally)
        return completion

    def _cache_key(self, kwargs: dict[str, Any]) -> str | None:
        if self._cache is None:
            return None
        request = json.dumps({"base_url": self._base_url, **kwargs}, sort_keys=True, default=str)
        return hashlib.sha256(request.encode()).hexdigest()

    def _cached(self, key: str | None, tally: CallTally) -> ChatCompletion | None:
        if key is None or self._cache is None or (body := self._cache.get_response(key)) is None:
            return None
        tally.cached += 1
        completion = ChatCompletion.model_validate_json(body)
        completion.usage = None  # its tokens were paid for by the run that cached it
        return completion

    def cached(self, tally: CallTally, kwargs: dict[str, Any]) -> ChatCompletion | None:
        """The response cache's answer to this exact request, if any (nothing is sent)."""
        return self._cached(self._cache_key(kwargs), tally)

    def remember(self, tally: CallTally, kwargs: dict[str, Any], completion: ChatCompletion) -> None:
        """Cache ``completion``, received for ``kwargs`` by another route, once the extraction succeeds."""
        self._remember(self._cache_key(kwargs), completion, tally)

    def call(self, send: Callable[[OpenAI], T]) -> T:
        """``send(client)`` with the endpoint's client and the transport retries; failures become structx errors.

        For the endpoint's other APIs (the Files and Batches APIs of a batch run).
        """
        return cast(T, self._with_retries(CallTally(), lambda: send(self._sync)))

    def _remember(self, key: str | None, completion: ChatCompletion, tally: CallTally) -> None:
        if key is not None:
            tally.pending_cache.append((key, completion.model_dump_json()))

    def commit_cache(self, tally: CallTally) -> None:
        """Cache the exchanges of an extraction that succeeded.

        Those of a failed one are never cached: retrying it must ask the model again.
        """
        if self._cache is not None:
            for key, body in tally.pending_cache:
                self._cache.put_response(key, body)
        tally.pending_cache.clear()

    async def _acreate(self, tally: CallTally, kwargs: dict[str, Any]) -> ChatCompletion:
        # A batch that is stopping sends nothing new and waits for nothing more; see Halt.
        halt = _HALT.get()

        def before_retry() -> str:
            return f"stopped before retrying after {tally.retrying_after}"

        async def sleep(seconds: float) -> None:
            await _pause(seconds, halt, before_retry)

        try:
            async for attempt in AsyncRetrying(**self._retry_args(tally), sleep=sleep):
                with attempt:
                    if (pause := self._gate.remaining(tally)) > 0:
                        await _pause(pause, halt, lambda: "stopped while waiting out a rate limit")
                    if halt is not None and halt.stopped:
                        raise Interrupted("stopped before its next request")
                    tally.requests += 1
                    with _body_must_be_json(self.scrub), self._logged_failure():
                        completion = await _unless_cancelled(halt, self._async.chat.completions.create(**kwargs))
                    return cast(ChatCompletion, _as_completion(completion, self.scrub))
        except openai.OpenAIError as exc:
            raise tally.attach(self._to_structx_error(exc)) from exc
        except Interrupted as exc:
            raise tally.attach(exc) from None
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _with_retries(self, tally: CallTally, send: Callable[[], Any]) -> Any:
        try:
            for attempt in Retrying(**self._retry_args(tally)):
                with attempt:
                    if (pause := self._gate.remaining(tally)) > 0:
                        time.sleep(pause)
                    tally.requests += 1
                    with _body_must_be_json(self.scrub), self._logged_failure():
                        return _as_completion(send(), self.scrub)
        except openai.OpenAIError as exc:
            raise tally.attach(self._to_structx_error(exc)) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _retry_args(self, tally: CallTally) -> dict[str, Any]:
        config = self._config
        return {
            "retry": retry_if_exception(_is_retryable),
            "wait": lambda state: self._wait(state, tally),
            "stop": stop_any(
                stop_after_attempt(config.max_retries + 1),
                _stop_past_budget(tally.started, config.retry_budget),
                _stop_when_told_to_wait_too_long(config.retry_max_wait),
            ),
            "before_sleep": _log_retry,
            "reraise": True,
        }

    def _wait(self, state: RetryCallState, tally: CallTally) -> float:
        """Honour Retry-After / retry-after-ms; otherwise exponential backoff with jitter.

        The n-th wait is drawn uniformly between half and all of
        ``retry_initial_wait * 2**(n-1)``, capped at ``retry_max_wait``.
        """
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, openai.OpenAIError):
            error = self._to_structx_error(exc)
            tally.retrying_after = f"{type(error).__name__}: {error}"
        wait = _retry_after_seconds(exc)
        if wait is None:
            config = self._config
            ceiling = min(config.retry_max_wait, config.retry_initial_wait * 2 ** (state.attempt_number - 1))
            wait = random.uniform(ceiling / 2, ceiling)
        if isinstance(exc, openai.RateLimitError) and wait <= self._config.retry_max_wait:
            # Every request through this backend waits out a rate limit, not only this one.
            # A wait beyond the ceiling fails this extraction at once instead; it
            # must not hold the others for that long either.
            self._gate.hold(wait, tally)
        return wait

    def _to_structx_error(self, exc: openai.OpenAIError) -> ExtractionError:
        where = redact_url(self._base_url)
        if isinstance(exc, openai.APITimeoutError):
            return EndpointTimeout(f"{where} did not answer within {self._config.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            # These httpx errors break a connection that was open; the rest never made one.
            lost = type(cause).__name__ in ("ReadError", "WriteError", "RemoteProtocolError")
            what = "connection lost with" if lost else "cannot connect to"
            return EndpointUnreachable(f"{what} {where} ({type(cause).__name__}: {cause})")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _error_detail(exc, self.scrub)
            error: ExtractionError
            if status in (401, 403):
                error = AuthenticationFailed(
                    f"{where} answered {status}: the API key is missing or wrong "
                    f"(OPENAI_API_KEY, --api-key or --api-key-env){detail}"
                )
            elif status == 429 and _error_code(exc) == "insufficient_quota":
                error = QuotaExceeded(f"{where} answered 429 insufficient_quota: the account is out of credit")
            elif status == 429:
                error = RateLimited(f"{where} kept answering 429 (rate limited){detail}")
            elif status >= 500 or status in (408, 409):
                error = ServerError(f"{where} answered {status}{detail}")
            else:
                error = RequestRejected(f"{where} rejected the request with {status}{detail}")
            error.status_code = status
            return error
        return InvalidResponse(f"{where} sent an answer structx cannot read: {self.scrub(str(exc))}")

    @contextlib.contextmanager
    def _logged_failure(self) -> Iterator[None]:
        try:
            yield
        except openai.APIConnectionError as exc:  # no response to log: say what became of the request
            self._log_failure(exc)
            raise

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        key = self._config.api_key
        return text.replace(key, "***") if key else text


@contextlib.contextmanager
def _body_must_be_json(scrub: Callable[[str], str]) -> Iterator[None]:
    # A 200 whose body is not JSON although labelled so (a proxy's HTML page,
    # an empty body) fails in the openai client's parsing. That is the
    # endpoint's fault, not the model's: no re-ask can mend it.
    try:
        yield
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raw = exc.doc if isinstance(exc, json.JSONDecodeError) else exc.object
        body = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        shown = repr(scrub(body)[:120]) if body else "an empty body"
        raise InvalidResponse(f"the endpoint answered with a body that is not JSON: {shown}") from None


def _body(content: bytes) -> Any:
    """A logged body: its JSON when it is JSON, else its text."""
    text = content.decode("utf-8", "replace")
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


def _as_completion(value: Any, scrub: Callable[[str], str]) -> Any:
    # The openai client hands back a bare string when the body is not JSON
    # (an HTML error page behind a proxy, say); that is not a completion.
    if isinstance(value, str):
        raise InvalidResponse(f"the endpoint answered with text, not JSON: {scrub(value)[:120]!r}")
    return value


def _is_served(model: str, served: list[str]) -> bool:
    # Ollama lists "qwen2.5:7b" and "llama3:latest", and takes "llama3" for the latter.
    return model in served or f"{model}:latest" in served


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429 and _error_code(exc) == "insufficient_quota":
            return False
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return False


def _error_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
    return None


def _error_detail(exc: openai.APIStatusError, scrub: Callable[[str], str]) -> str:
    body = exc.body
    message: object = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
    if not message:
        return ""
    return f": {scrub(str(message))[:300]}"  # scrubbed before cutting, so no part of a key is left


def _retry_after_seconds(exc: BaseException | None) -> float | None:
    """The server's requested wait, from ``retry-after-ms`` or ``Retry-After``."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None and (seconds := _seconds(raw_ms, scale=1000)) is not None:
        return seconds
    raw = headers.get("retry-after")
    if raw is None:
        return None
    if (seconds := _seconds(raw)) is not None:
        return seconds
    try:
        return max(parsedate_to_datetime(raw).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _seconds(raw: str, *, scale: float = 1.0) -> float | None:
    """A header's number of seconds, or None when it is not a finite number."""
    try:
        value = float(raw) / scale
    except ValueError:
        return None
    return max(value, 0.0) if math.isfinite(value) else None


class _RateLimitGate:
    """Until when every request waits after a 429, shared by all concurrent callers.

    The caller that got the 429 waits through its own retry backoff; the
    others wait here before their next request.
    """

    def __init__(self) -> None:
        self._until = 0.0
        self._owner: object = None
        self._lock = threading.Lock()

    def hold(self, seconds: float, owner: object) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._until:
                self._until, self._owner = until, owner

    def remaining(self, caller: object) -> float:
        with self._lock:
            return 0.0 if caller is self._owner else max(0.0, self._until - time.monotonic())


class _stop_past_budget(stop_base):
    """Stop when the next wait would end past the budget, counted from the extraction's start.

    The budget spans every model call of one extraction (re-asks included)
    and the time spent inside requests, not only the waits between them.
    """

    def __init__(self, started: float, budget: float) -> None:
        self.started = started
        self.budget = budget

    def __call__(self, state: RetryCallState) -> bool:
        return time.monotonic() - self.started + (state.upcoming_sleep or 0.0) >= self.budget


class _stop_when_told_to_wait_too_long(stop_base):
    """Stop at once when the server asks for a longer wait than the ceiling allows."""

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling

    def __call__(self, state: RetryCallState) -> bool:
        hinted = _retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return hinted is not None and hinted > self.ceiling


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.info(
        "retrying after %s (request %d), waiting %.2f s",
        type(exc).__name__,
        state.attempt_number,
        state.upcoming_sleep,
    )
