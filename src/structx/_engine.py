"""The extraction engine: prompt, structured-output request, validation re-asks, outcome.

Two retry layers with separate jobs:

* transport retries (tenacity, in the backend) repeat an HTTP request that
  failed on the way; the model never hears of them;
* validation re-asks (instructor's ``max_retries``) send the validation error
  back to the model and ask again.

Truncation and refusal end the extraction at once: asking again with the
same budget would fail the same way. So does an answer repeated word for
word after the feedback on it: the model cannot mend it, and the re-asks
left are not spent.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NoReturn, TypeVar, cast

import instructor
from instructor.core.exceptions import InstructorError, ResponseParsingError
from instructor.v2.core import patch as instructor_patch
from instructor.v2.validation import async_validators
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, create_model, model_validator
from pydantic import ValidationError as PydanticValidationError

from structx._backend import Backend, CallTally, Endpoint, adapt_response_format
from structx._chunking import merge_answers, split_into_chunks
from structx._config import Config, ExtractionFormat, StructuredOutput
from structx._errors import (
    ExtractionError,
    GroundingFailed,
    InvalidResponse,
    Refusal,
    TruncatedOutput,
    ValidationFailed,
)
from structx._formats import Call, Format, Plan, format_for, resolve_format
from structx._formats._cited import salvage_truncated_json
from structx._grounding import apply_grounding_policy
from structx._models import Article, Result
from structx._schemas import without_async_validators

__all__ = ["Answers", "Engine", "Pending", "request_digest"]

ModelT = TypeVar("ModelT", bound=BaseModel)

# instructor logs every failed attempt at ERROR level. Without a handler of
# its own, Python's last-resort handler would print those lines to stderr for
# every program that never configured logging.
logging.getLogger("instructor").addHandler(logging.NullHandler())

# What instructor re-asks on; once re-asks are spent, the answer failed validation.
_VALIDATION_ERRORS = (PydanticValidationError, json.JSONDecodeError, ResponseParsingError)

_INSTRUCTOR_MODES = {
    StructuredOutput.TOOLS: instructor.Mode.TOOLS,
    StructuredOutput.JSON_SCHEMA: instructor.Mode.JSON_SCHEMA,
    # Sent as json_schema by instructor, rewritten for llama.cpp by the backend.
    StructuredOutput.JSON_OBJECT_SCHEMA: instructor.Mode.JSON_SCHEMA,
}


class Engine:
    """Fills a schema from one article through one endpoint."""

    def __init__(self, backend: Backend, endpoint: Endpoint, config: Config) -> None:
        self._backend = backend
        self._endpoint = endpoint
        # ``auto`` is settled here, once the endpoint is known, so that stored results are keyed by the real format.
        kind = resolve_format(ExtractionFormat(config.extraction_format), endpoint.server)
        if kind is not config.extraction_format:
            config = replace(config, extraction_format=kind)
        self._config = config
        self._format: Format = format_for(kind)

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def config(self) -> Config:
        return self._config

    def extract(self, article: Article, schema: type[ModelT], answers: Answers | None = None) -> Result[ModelT]:
        """Fill ``schema`` from ``article``, sending each request the ``answers`` do not hold to the endpoint."""
        outcome = self._run(article, schema, self._sender(answers, online=True))
        assert isinstance(outcome, Result), "an online extraction sends every request it needs"
        return outcome

    async def aextract(self, article: Article, schema: type[ModelT], answers: Answers | None = None) -> Result[ModelT]:
        """Async twin of :meth:`extract`."""
        outcome = await self._arun(article, schema, self._asender(answers, online=True))
        assert isinstance(outcome, Result), "an online extraction sends every request it needs"
        return outcome

    def check(self, article: Article, schema: type[ModelT], answers: Answers) -> Result[ModelT] | Pending:
        """The answer checker: the outcome of ``article`` from ``answers`` (and the response cache) alone.

        Every answer goes through what :meth:`extract` does with it
        (validation, truncation salvage, refusal, the format's feedback,
        grounding). A request whose answer is not at hand is not sent: the
        verdict is then :class:`Pending`, listing the bodies to send (first
        requests, and re-asks built from the answers so far); once their
        answers are added, ``check`` goes on from there. Failures raise as
        in :meth:`extract`.
        """
        return self._run(article, schema, self._sender(answers, online=False))

    def request_bodies(self, article: Article, schema: type[BaseModel]) -> list[dict[str, Any]]:
        """The request builder: the body of the first request of each call for each chunk of ``article``.

        Exactly what :meth:`extract` sends first. The ``excerpts`` format
        makes one call per chunk; ``cited`` one per record type. Built by the
        same steps as a real request (instructor's preparation, the endpoint's
        dialect); nothing is sent and the response cache is not read.
        """

        def capture(tally: CallTally, body: dict[str, Any]) -> ChatCompletion:
            raise _Pending(body)

        outcome = self._run(article, schema, capture)
        return list(outcome.bodies) if isinstance(outcome, Pending) else []

    # -- shared by the sync and async paths ------------------------------------

    def _run(self, article: Article, schema: type[ModelT], send: _Send) -> Result[ModelT] | Pending:
        """Each call of each chunk's plan through instructor, its requests answered by ``send``."""
        tally = CallTally()
        started = time.perf_counter()
        current: list[Call] = []

        def create(**kwargs: Any) -> ChatCompletion:
            return self._check(send(tally, self._adapt(kwargs)), tally, current[-1])

        patched: Callable[..., BaseModel] = instructor.patch(create=create, mode=self._instructor_mode)
        values: list[ModelT] = []
        pending: list[dict[str, Any]] = []
        for chunk in self._chunks(article):
            try:
                plan = self._plan(chunk, schema, article)
                answers = []
                for call in plan.calls:
                    current.append(call)
                    try:
                        with _grounding_check(plan, call, tally, self._config.max_reasks):
                            answers.append(patched(**self._request(call)))
                    except Exception as exc:
                        if not _held_back(exc, pending):
                            raise
                if not pending:
                    values.append(cast(ModelT, plan.assemble(answers)))
            except (ExtractionError, InstructorError, PydanticValidationError) as exc:
                if pending:
                    break  # decided once the calls before it are answered; the calls after it would not be made
                self._raise_failure(exc, tally)
        if pending:
            return Pending(tuple(pending))
        return self._result(values, schema, article, tally, started)

    async def _arun(self, article: Article, schema: type[ModelT], send: _AsyncSend) -> Result[ModelT] | Pending:
        """Async twin of :meth:`_run`."""
        tally = CallTally()
        started = time.perf_counter()
        current: list[Call] = []

        async def create(**kwargs: Any) -> ChatCompletion:
            return self._check(await send(tally, self._adapt(kwargs)), tally, current[-1])

        patched: Callable[..., Awaitable[BaseModel]] = instructor.patch(create=create, mode=self._instructor_mode)
        values: list[ModelT] = []
        pending: list[dict[str, Any]] = []
        for chunk in self._chunks(article):
            try:
                plan = self._plan(chunk, schema, article)
                answers = []
                for call in plan.calls:
                    current.append(call)
                    try:
                        with _grounding_check(plan, call, tally, self._config.max_reasks):
                            answers.append(await patched(**self._request(call)))
                    except Exception as exc:
                        if not _held_back(exc, pending):
                            raise
                if not pending:
                    values.append(cast(ModelT, plan.assemble(answers)))
            except (ExtractionError, InstructorError, PydanticValidationError) as exc:
                if pending:
                    break
                self._raise_failure(exc, tally)
        if pending:
            return Pending(tuple(pending))
        return self._result(values, schema, article, tally, started)

    def _sender(self, answers: Answers | None, *, online: bool) -> _Send:
        """Answers a request from ``answers``, else the endpoint (``online``), else the response cache or pends."""

        def send(tally: CallTally, body: dict[str, Any]) -> ChatCompletion:
            found = self._answered(tally, body, answers)
            if found is not None:
                return found
            if online:
                return self._backend.create(tally, body)
            cached = self._backend.cached(tally, body)
            if cached is None:
                raise _Pending(body)
            return cached

        return send

    def _asender(self, answers: Answers | None, *, online: bool) -> _AsyncSend:
        sync = self._sender(answers, online=False)

        async def send(tally: CallTally, body: dict[str, Any]) -> ChatCompletion:
            if not online:
                return sync(tally, body)
            found = self._answered(tally, body, answers)
            return found if found is not None else await self._backend.acreate(tally, body)

        return send

    def _answered(self, tally: CallTally, body: dict[str, Any], answers: Answers | None) -> ChatCompletion | None:
        """The answer ``answers`` hold for ``body``, counted as a request; raises the failure they hold for it."""
        if answers is None or not (answers.completions or answers.failures):
            return None
        digest = request_digest(body)
        failure = answers.failures.get(digest)
        if failure is not None:
            tally.requests += 1
            raise tally.attach(copy.copy(failure))
        completion = answers.completions.get(digest)
        if completion is None:
            return None
        tally.requests += 1
        completion = completion.model_copy(deep=True)  # checking it may mend it in place; the given one stays
        self._backend.remember(tally, body, completion)
        return completion

    # -- shared by the sync and async paths ------------------------------------

    @property
    def _instructor_mode(self) -> instructor.Mode:
        return _INSTRUCTOR_MODES[self._endpoint.mode]

    def _chunks(self, article: Article) -> list[Article]:
        config = self._config
        pieces = split_into_chunks(article.text, config.chunk_chars, config.chunk_overlap)
        # Each chunk is sent with the article's date and title, if it has them.
        return [Article(text=text, id=f"{article.id}@{offset}", metadata=article.metadata) for offset, text in pieces]

    def _plan(self, chunk: Article, schema: type[BaseModel], article: Article) -> Plan:
        """The calls for one chunk (the whole article, mostly); grounding checks the whole article."""
        include_schema = self._endpoint.mode is not StructuredOutput.TOOLS
        return self._format.plan(chunk, schema, article.text, self._config, include_schema=include_schema)

    def _request(self, call: Call) -> dict[str, Any]:
        config = self._config
        # No validation ``context``: with one, instructor renders the messages
        # as Jinja templates, and article text must reach the model verbatim.
        request: dict[str, Any] = {
            "response_model": _checked_schema(call.response_model),
            "max_retries": config.max_reasks,
            "strict": False,
            "model": self._endpoint.model,
            "messages": call.messages,
            "temperature": config.temperature,
        }
        if call.max_tokens is not None:
            request["max_tokens"] = call.max_tokens
        if config.frequency_penalty is not None:
            request["frequency_penalty"] = config.frequency_penalty
        return request

    def _adapt(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return adapt_response_format(kwargs, self._endpoint.mode)

    def _check(self, completion: ChatCompletion, tally: CallTally, call: Call) -> ChatCompletion:
        """Count the completion, and stop on outcomes that a re-ask cannot fix.

        A call that may salvage a truncated answer keeps the records completed before the cut.
        """
        tally.record(completion)
        if not completion.choices:
            raise InvalidResponse("the completion has no choices")
        choice = completion.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise Refusal(f"the model refused: {self._backend.scrub(str(refusal))[:300]}")
        if choice.finish_reason == "content_filter":
            raise Refusal("the endpoint's content filter stopped the answer")
        if choice.finish_reason == "length" and call.salvage_truncated and isinstance(choice.message.content, str):
            salvaged = salvage_truncated_json(choice.message.content)
            if salvaged is not None:
                choice.message.content = salvaged
                choice.finish_reason = "stop"
        if choice.finish_reason == "length":
            raise TruncatedOutput(
                f"the answer hit the token limit (max_tokens={call.max_tokens}) before it was "
                "complete; raise max_tokens or shorten the article"
            )
        _tolerate_control_characters(choice.message)
        return completion

    def _raise_failure(self, exc: Exception, tally: CallTally) -> NoReturn:
        failure = self._failure(exc, tally)
        if failure is None:
            raise exc
        raise failure  # keeps the cause set by whoever raised it, or by _failure

    def _failure(self, exc: Exception, tally: CallTally) -> ExtractionError | None:
        """The structx error to raise for what instructor raised, or None to re-raise it.

        A structx error raised below (by the backend or :meth:`_check`) is
        unwrapped and keeps its own cause, such as the HTTP error; spent
        re-asks become :class:`ValidationFailed` caused by the last
        validation error. Anything else is not an extraction outcome but a
        fault, and propagates as it is.
        """
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ExtractionError):
                # Shown with its own cause (the HTTP error, if any), not
                # behind instructor's wrapper around it.
                cause.__suppress_context__ = True
                return tally.attach(cause)
            if isinstance(cause, _VALIDATION_ERRORS):
                detail = _describe_validation_error(cause)
                failure = ValidationFailed(f"the answer was still invalid after {tally.attempts} attempt(s): {detail}")
                failure.__cause__ = cause
                return tally.attach(failure)
            cause = cause.__cause__
        return None

    def _result(
        self, answers: list[ModelT], schema: type[ModelT], article: Article, tally: CallTally, started: float
    ) -> Result[ModelT]:
        value = merge_answers(answers, schema)
        try:
            value, report = apply_grounding_policy(value, article.text, self._config.grounding)
        except GroundingFailed as failure:
            raise tally.attach(failure) from None
        self._backend.commit_cache(tally)
        return Result(
            value=value,
            grounding=report,
            chunks=len(answers),
            cached=tally.cached,
            usage=tally.usage,
            attempts=tally.attempts,
            requests=tally.requests,
            endpoint=self._endpoint.display_url,
            model=self._endpoint.model,
            mode=self._endpoint.mode.value,
            latency=time.perf_counter() - started,
        )


def request_digest(body: dict[str, Any]) -> str:
    """A request body's identity: the SHA-256 of its canonical JSON.

    Answers found by another route (a batch file's lines) are matched to the
    requests the engine makes by this digest.
    """
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Answers:
    """Answers already received for an article's requests, by the :func:`request_digest` of each body.

    ``completions`` are answers to use as if the endpoint had just sent them
    (a batch's output lines); ``failures`` are requests that failed for good
    on their way (a batch's error lines), raised as the backend raises them.
    """

    completions: Mapping[str, ChatCompletion] = field(default_factory=dict)
    failures: Mapping[str, ExtractionError] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pending:
    """The answer checker's verdict while answers are missing: the request bodies to send, in order."""

    bodies: tuple[dict[str, Any], ...]


class _Pending(Exception):
    """Raised for a request whose answer is not at hand: see :meth:`Engine.check`."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("no answer at hand for this request")
        self.body = body


_Send = Callable[[CallTally, dict[str, Any]], ChatCompletion]
_AsyncSend = Callable[[CallTally, dict[str, Any]], Awaitable[ChatCompletion]]


def _held_back(exc: BaseException, pending: list[dict[str, Any]]) -> bool:
    """Whether ``exc`` says the call waits for an answer not at hand; its request is then added to ``pending``.

    instructor wraps what the request raised, so the chain of causes is searched.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, _Pending):
            pending.append(cause.body)
            return True
        cause = cause.__cause__
    return False


def _tolerate_control_characters(message: Any) -> None:
    """Accept raw newlines and tabs inside JSON strings, as small models often write them.

    Strict JSON forbids unescaped control characters in strings; the text
    itself is kept, re-encoded with proper escapes. Anything else that is not
    JSON is left for validation to report and re-ask.
    """
    content = message.content
    if not isinstance(content, str):
        return
    try:
        json.loads(content)
    except json.JSONDecodeError:
        with contextlib.suppress(json.JSONDecodeError):
            message.content = json.dumps(json.loads(content, strict=False), ensure_ascii=False)


def _describe_validation_error(exc: BaseException) -> str:
    if isinstance(exc, PydanticValidationError):
        errors = exc.errors(include_url=False, include_input=False)
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return "; ".join(parts) + more
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@dataclass(frozen=True, slots=True)
class _GroundingCheck:
    """What the grounding validator needs for the request being parsed."""

    plan: Plan
    call: Call
    tally: CallTally
    first_attempt: int
    max_reasks: int
    #: Answers (as JSON) the checker has already sent back with feedback.
    refused: set[str] = field(default_factory=set)

    @property
    def attempts_remain(self) -> bool:
        return self.tally.attempts - self.first_attempt < self.max_reasks


# Set around each model call; read by the validator of the checked schema.
# A context variable keeps concurrent extractions (threads or tasks) apart.
_CURRENT_CHECK: ContextVar[_GroundingCheck | None] = ContextVar("structx_grounding_check", default=None)


@contextlib.contextmanager
def _grounding_check(plan: Plan, call: Call, tally: CallTally, max_reasks: int) -> Iterator[None]:
    token = _CURRENT_CHECK.set(_GroundingCheck(plan, call, tally, tally.attempts + 1, max_reasks))
    try:
        yield
    finally:
        _CURRENT_CHECK.reset(token)


@lru_cache(maxsize=64)
def _checked_schema(schema: type[ModelT]) -> type[ModelT]:
    """``schema`` plus a validator that re-asks while the format's answer checker finds problems.

    The check runs on every answer; while re-asks remain, an answer with
    problems (ungrounded records: an excerpt or name that is not in the
    article, a citation of a sentence that does not mention a record's name)
    fails validation with the checker's feedback, so instructor sends it back to the model. On the last
    attempt the answer passes and the grounding policy decides. Made once per
    schema; its JSON schema (the same as ``schema``'s) is computed once too.
    """

    def check(answer: ModelT) -> ModelT:
        current = _CURRENT_CHECK.get()
        if current is not None and current.attempts_remain:
            feedback = current.plan.feedback(current.call, answer)
            if feedback is not None:
                given = answer.model_dump_json()
                # The same answer after the feedback: the model cannot mend it (at temperature 0 it
                # would answer the same again), so it is final and the grounding policy decides.
                if given not in current.refused:
                    current.refused.add(given)
                    raise ValueError(feedback)
        return answer

    # Already a ResponseSchema, so instructor uses it as it is instead of
    # deriving a new class from it on every call.
    bases: tuple[type[Any], ...] = (schema, instructor.ResponseSchema)
    checked: type[ModelT] = create_model(
        schema.__name__,
        __base__=bases,
        __module__=schema.__module__,
        __doc__=schema.__doc__,
        __validators__={"structx_grounding": model_validator(mode="after")(check)},  # type: ignore[dict-item]
    )
    computed: dict[Any, str] = {}
    generate = cast(Any, checked).model_json_schema

    def model_json_schema(*args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in computed:
            computed[key] = json.dumps(generate(*args, **kwargs))
        # A fresh copy each time, since callers may edit it; parsing is faster than deepcopy.
        fresh: dict[str, Any] = json.loads(computed[key])
        return fresh

    type.__setattr__(checked, "model_json_schema", model_json_schema)
    _skip_repeated_async_validator_checks(checked)
    return cast(type[ModelT], checked)


_CHECKED_FOR_ASYNC_VALIDATORS: weakref.WeakSet[type[Any]] = weakref.WeakSet()


def _skip_repeated_async_validator_checks(checked: type[Any]) -> None:
    """Let instructor check ``checked`` for async validators once, not four times a call.

    instructor 1.17 walks every class of the response model (and every base
    down to BaseModel) at four points of each call, about 0.7 ms an article
    for the domain schema. The answer cannot change for a class made once by
    ``_checked_schema``, so for those classes only the first check runs; any
    other class is checked by instructor as before. The first check is the
    one ``load_schema`` makes, so a schema with an async validator fails as a
    SchemaError before any request.
    """
    original = async_validators.reject_async_validators
    if not getattr(original, "structx_memo", False):

        def reject_async_validators(response_model: Any) -> None:
            if response_model in _CHECKED_FOR_ASYNC_VALIDATORS:
                return
            original(response_model)

        reject_async_validators.structx_memo = True  # type: ignore[attr-defined]
        async_validators.reject_async_validators = reject_async_validators
        # patch.py imported the function by name; the other callers import it at each call.
        setattr(instructor_patch, "reject_async_validators", reject_async_validators)  # noqa: B010
    without_async_validators(cast(type[BaseModel], checked))
    _CHECKED_FOR_ASYNC_VALIDATORS.add(checked)
