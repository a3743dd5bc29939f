"""Plain data carried between the layers: articles, token usage, results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = ["Article", "Result", "Usage"]

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, summed over every completion an extraction received."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Article:
    """One article's text, with an id that is stable across runs.

    ``source`` says where the text came from (a file path), for messages.
    """

    text: str
    id: str = ""
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.content_hash[:16])

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Result(Generic[ModelT]):
    """A validated extraction and what it cost.

    ``attempts`` counts model calls (the first ask plus validation re-asks);
    ``requests`` counts HTTP requests, transport retries included;
    ``latency`` is wall-clock seconds for the whole extraction.
    """

    value: ModelT
    usage: Usage
    attempts: int
    requests: int
    endpoint: str
    model: str
    mode: str
    latency: float
