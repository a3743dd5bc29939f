"""The ``excerpts`` format: one call with the user's schema; the model copies evidence excerpts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from structx._config import Config
from structx._formats import Call
from structx._grounding import ground
from structx._models import Article
from structx._prompt import build_messages

__all__ = ["ExcerptsFormat"]


@dataclass(frozen=True, slots=True)
class ExcerptsPlan:
    calls: Sequence[Call]
    schema: type[BaseModel]
    article_text: str

    def feedback(self, call: Call, answer: BaseModel) -> str | None:
        report = ground(answer, self.article_text)
        return None if report.grounded else report.feedback()

    def assemble(self, answers: Sequence[BaseModel]) -> BaseModel:
        # instructor hands back instances of its own subclass of the schema.
        return self.schema.model_validate(answers[0].model_dump())


class ExcerptsFormat:
    def plan(
        self, chunk: Article, schema: type[BaseModel], article_text: str, config: Config, *, include_schema: bool
    ) -> ExcerptsPlan:
        call = Call(
            label="all",
            messages=build_messages(chunk, schema, include_schema=include_schema),
            response_model=schema,
            max_tokens=config.max_tokens,
        )
        return ExcerptsPlan(calls=(call,), schema=schema, article_text=article_text)
