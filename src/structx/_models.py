"""Plain data carried between the layers: articles, token usage, results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = [
    "AlignmentStatus",
    "Article",
    "EvidenceSpan",
    "GroundingReport",
    "RecordGrounding",
    "Result",
    "Usage",
]

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


class AlignmentStatus(StrEnum):
    EXACT = "exact"
    NORMALIZED = "normalized"
    FUZZY = "fuzzy"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class EvidenceSpan:
    """Where one excerpt stands in the article: ``article[start:end]``."""

    text: str
    start: int | None
    end: int | None
    status: AlignmentStatus
    score: float

    @property
    def supports(self) -> bool:
        """True when the excerpt is in the article (exactly or up to normalization)."""
        return self.status in (AlignmentStatus.EXACT, AlignmentStatus.NORMALIZED)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "status": self.status.value, "score": round(self.score, 1)}


@dataclass(slots=True)
class RecordGrounding:
    """The grounding of one record, addressed by its path in the answer (``visits[0]``)."""

    path: str
    evidence: list[EvidenceSpan]
    problems: list[str] = field(default_factory=list)
    dropped: bool = False

    @property
    def grounded(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "grounded": self.grounded,
            "problems": self.problems,
            "evidence": [span.to_dict() for span in self.evidence],
            "dropped": self.dropped,
        }


@dataclass(slots=True)
class GroundingReport:
    records: list[RecordGrounding] = field(default_factory=list)

    @property
    def grounded(self) -> bool:
        return all(record.grounded for record in self.records)

    def excerpt_counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in AlignmentStatus}
        for record in self.records:
            for span in record.evidence:
                counts[span.status.value] += 1
        return counts

    def feedback(self) -> str:
        """What to tell the model so that its next answer can be grounded."""
        lines = [
            "Some records are not supported by the article. Evidence and quotes must be copied "
            "word for word from the article, and names must be written as the article writes them."
        ]
        lines += [f"- {record.path}: {problem}" for record in self.records for problem in record.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grounded": self.grounded,
            "excerpts": self.excerpt_counts(),
            "records": [record.to_dict() for record in self.records],
        }


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
    #: Where each record's evidence stands in the article, and which records are grounded.
    grounding: GroundingReport = field(default_factory=lambda: GroundingReport())
    #: How many chunks the article was split into (1 for most articles).
    chunks: int = 1
    #: Model calls answered from the response cache rather than the endpoint.
    cached: int = 0
