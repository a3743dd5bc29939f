"""Exceptions raised by structx.

User errors (bad input or configuration, fixed by the caller) are kept apart
from run-time failures (the endpoint or the model let the extraction down).
Every run-time failure carries what the attempt cost: the number of model
calls, the number of HTTP requests, the token usage and the last raw answer.

    StructxError
    ├── UsageError                     the caller must fix something
    │   ├── ConfigError                bad or incomplete configuration
    │   │   └── LocalModelUnavailable  the embedded server or its model cannot be had
    │   ├── SchemaError                a schema cannot be loaded
    │   ├── InputError                 an article cannot be read (names the file)
    │   └── RunInUse                   another process holds the run database
    └── ExtractionError                the run failed; carries attempts and usage
        ├── TransportError             no usable HTTP answer after retries
        │   ├── EndpointUnreachable    connection refused, reset or DNS failure
        │   ├── EndpointTimeout        the endpoint did not answer in time
        │   ├── RateLimited            429 until retries or the time budget ran out
        │   └── ServerError            5xx until retries or the time budget ran out
        ├── RequestRejected            4xx that retrying cannot fix (400, 404, 422, ...)
        │   ├── AuthenticationFailed   401 / 403: the key is missing or wrong
        │   └── QuotaExceeded          429 insufficient_quota
        ├── InvalidResponse            a 200 that is not a usable completion
        ├── TruncatedOutput            finish_reason == "length"
        ├── Refusal                    the model declined to answer
        ├── ValidationFailed           every re-ask still gave an invalid answer
        ├── GroundingFailed            a record stayed ungrounded (grounding policy "fail")
        ├── Interrupted                the batch was stopped before this article finished
        └── NotAttempted               not sent: the batch stopped at an error fatal for it

An error is *fatal for a batch* when every article of the batch would meet
it, because it is about the endpoint, the key or the account rather than the
article: see :func:`is_fatal_for_batch`.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from structx._models import GroundingReport, Usage

__all__ = [
    "AuthenticationFailed",
    "ConfigError",
    "EndpointTimeout",
    "EndpointUnreachable",
    "ExtractionError",
    "GroundingFailed",
    "InputError",
    "Interrupted",
    "InvalidResponse",
    "LocalModelUnavailable",
    "NotAttempted",
    "QuotaExceeded",
    "RateLimited",
    "Refusal",
    "RequestRejected",
    "RunInUse",
    "SchemaError",
    "ServerError",
    "StructxError",
    "TransportError",
    "TruncatedOutput",
    "UsageError",
    "ValidationFailed",
    "is_fatal_for_batch",
]


class StructxError(Exception):
    """Base class of every error structx raises on purpose."""


class UsageError(StructxError):
    """The caller asked for something structx cannot do as given."""


class ConfigError(UsageError):
    """The configuration is invalid or incomplete."""


class LocalModelUnavailable(ConfigError):
    """The embedded default cannot run: ``structx[local]`` is not installed, a model package is
    missing or not the pinned file, the model cannot be written to its folder, or the server did not start."""


class SchemaError(UsageError):
    """A schema reference cannot be resolved to a pydantic model."""


class InputError(UsageError):
    """An article cannot be read: missing, empty, binary or not UTF-8."""

    def __init__(self, message: str, *, path: Path | str | None = None, article_id: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path
        self.reason = message
        self._article_id = article_id

    @property
    def article_id(self) -> str:
        """The id the unreadable article would have had: as given, else the file's stem, or ``file:line``."""
        if self._article_id:
            return self._article_id
        if self.path is None:
            return "unknown"
        text = str(self.path)
        name, _, line = text.rpartition(":")
        if line.isdigit() and name:
            return f"{PurePath(name).stem}:{line}"
        return PurePath(text).stem


class RunInUse(UsageError):
    """The run database is open in another RunStore, most often another process's run on the same output.

    ``pid`` is the holder's process id, when it could be read.
    """

    def __init__(self, path: Path | str, pid: int | None) -> None:
        if pid is not None and pid == os.getpid():
            holder = "this process (a RunStore on it is still open)"
        else:
            holder = f"another structx process (pid {pid})" if pid is not None else "another structx process"
        super().__init__(f"{path} is in use by {holder}")
        self.path = path
        self.pid = pid


class ExtractionError(StructxError):
    """An extraction failed at run time.

    ``attempts`` counts model calls (the first ask and each re-ask),
    ``requests`` counts HTTP requests (including transport retries),
    ``usage`` sums the tokens of every completion received, and
    ``last_completion`` is the raw text of the last answer, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        attempts: int = 0,
        requests: int = 0,
        usage: Usage | None = None,
        last_completion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.attempts = attempts
        self.requests = requests
        self.usage = usage
        self.last_completion = last_completion


class TransportError(ExtractionError):
    """No usable HTTP answer came back, even after the transport retries."""


class EndpointUnreachable(TransportError):
    """The endpoint refused or dropped the connection."""


class EndpointTimeout(TransportError):
    """The endpoint did not answer within the timeout."""


class RateLimited(TransportError):
    """The endpoint kept answering 429."""


class ServerError(TransportError):
    """The endpoint kept answering with a 5xx status."""


class RequestRejected(ExtractionError):
    """The endpoint rejected the request with a status retrying cannot fix."""


class AuthenticationFailed(RequestRejected):
    """401 or 403: the API key is missing, wrong or lacks permission."""


class QuotaExceeded(RequestRejected):
    """429 with ``insufficient_quota``: the account is out of credit."""


class InvalidResponse(ExtractionError):
    """A successful HTTP answer that holds no usable completion."""


class TruncatedOutput(ExtractionError):
    """The model hit its token limit before finishing (``finish_reason == "length"``)."""


class Refusal(ExtractionError):
    """The model declined to answer."""


class ValidationFailed(ExtractionError):
    """The model's answer failed validation on every attempt."""


class GroundingFailed(ExtractionError):
    """Under the ``fail`` policy: a record's evidence or names were still not in the article."""

    grounding: GroundingReport | None = None


class Interrupted(ExtractionError):
    """The batch was stopped (Ctrl-C, SIGTERM, a stop event) before this article finished.

    It needed a request after the stop (a retry, a re-ask, its next chunk),
    or its request in flight was cancelled. Such an outcome is not stored in
    the run database: the next run extracts the article again.
    """


class NotAttempted(ExtractionError):
    """The article was never sent: an earlier article of the batch failed with an error fatal for it.

    ``stopped_by`` is that error (also the ``__cause__``), ``stopped_at`` the id of its article.
    """

    def __init__(self, stopped_by: ExtractionError, stopped_at: str) -> None:
        super().__init__(
            f"not sent: the batch stopped after {type(stopped_by).__name__} on {stopped_at}, "
            f"which every article would meet: {stopped_by}"
        )
        self.stopped_by = stopped_by
        self.stopped_at = stopped_at
        self.__cause__ = stopped_by


def is_fatal_for_batch(error: BaseException) -> bool:
    """True for an error that every article of the batch would meet as well.

    Every article goes to the same URL with the same key and model, so these
    answers are about the endpoint, the key or the account, not about the
    article, and a batch stops at the first one:

    * :class:`AuthenticationFailed` (401, 403): the key is missing, wrong or lacks access;
    * :class:`QuotaExceeded` (429 ``insufficient_quota``): the account is out of credit;
    * :class:`RequestRejected` with status 404: the model (``model_not_found``),
      or the chat completions route, does not exist at this endpoint.

    Other rejections (400, 422, ...) can be about one article (a context too
    long, say) and fail only that article.
    """
    if isinstance(error, AuthenticationFailed | QuotaExceeded):
        return True
    return isinstance(error, RequestRejected) and error.status_code == 404
