"""Extraction over many articles: one outcome per article, whatever happens to it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from structx._api import Client
from structx._documents import iter_article_files, read_article
from structx._errors import ExtractionError, GroundingFailed, InputError
from structx._models import Result, Usage

__all__ = ["ArticleOutcome", "BatchSummary", "extract_files"]

logger = logging.getLogger("structx")


@dataclass(frozen=True, slots=True)
class ArticleOutcome:
    """What happened to one article: a result, or an error that names its type."""

    id: str
    source: str
    status: Literal["ok", "error"]
    result: Result[Any] | None = None
    error: Exception | None = None

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"id": self.id, "source": self.source, "status": self.status}
        if self.result is not None:
            value = self.result.value
            line["records"] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            line.update(
                usage=self.result.usage.to_dict(),
                attempts=self.result.attempts,
                requests=self.result.requests,
                model=self.result.model,
                endpoint=self.result.endpoint,
                mode=self.result.mode,
                latency_s=round(self.result.latency, 3),
                chunks=self.result.chunks,
                grounding=self.result.grounding.to_dict(),
            )
        if self.error is not None:
            line["error"] = {"type": type(self.error).__name__, "message": _message(self.error)}
            if isinstance(self.error, ExtractionError):
                line.update(
                    usage=(self.error.usage or Usage()).to_dict(),
                    attempts=self.error.attempts,
                    requests=self.error.requests,
                )
            if isinstance(self.error, GroundingFailed) and self.error.grounding is not None:
                line["grounding"] = self.error.grounding.to_dict()
        return line

    def to_json_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)


@dataclass(slots=True)
class BatchSummary:
    ok: int = 0
    failed: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    records: int = 0
    ungrounded_records: int = 0

    def add(self, outcome: ArticleOutcome) -> None:
        if outcome.status == "ok":
            self.ok += 1
        else:
            self.failed += 1
            name = type(outcome.error).__name__
            self.errors_by_type[name] = self.errors_by_type.get(name, 0) + 1
        if outcome.result is not None:
            self.usage = self.usage + outcome.result.usage
            grounding = outcome.result.grounding.records
            self.records += len(grounding)
            self.ungrounded_records += sum(not record.grounded for record in grounding)
        elif isinstance(outcome.error, ExtractionError) and outcome.error.usage is not None:
            self.usage = self.usage + outcome.error.usage


def extract_files(paths: Iterable[Path | str], client: Client, schema: type[BaseModel]) -> Iterator[ArticleOutcome]:
    """Read and extract each article file in turn; one outcome per file.

    A failure in one article, of any kind, becomes that article's error
    outcome and the batch goes on.
    """
    for path in iter_article_files(paths):
        article_id, source = path.stem, str(path)
        try:
            article = read_article(path)
            result = client.extract(article, schema)
        except (InputError, ExtractionError) as exc:
            yield ArticleOutcome(article_id, source, "error", error=exc)
        except Exception as exc:  # a bug must not take down the batch either
            logger.error("unexpected %s on %s: %s", type(exc).__name__, source, exc)
            logger.debug("traceback", exc_info=exc)
            yield ArticleOutcome(article_id, source, "error", error=exc)
        else:
            yield ArticleOutcome(article.id, source, "ok", result=result)


def _message(error: Exception) -> str:
    if isinstance(error, InputError):
        return error.reason
    return str(error)
