"""Model-facing formats: what the model is asked and how its answers become the user's schema.

A format has two halves, kept apart so that other routes (batch files, a
cluster) can reuse them:

* the *request builder*, :meth:`Format.plan`, turns one article (or chunk),
  the user's schema and the configuration into a :class:`Plan`: the list of
  model calls to make (messages, response model, token budget per call);
* the *answer checker*, :meth:`Plan.feedback` and :meth:`Plan.assemble`,
  says what is wrong with one call's answer (the text a re-ask sends back)
  and turns the answers of every call into one instance of the user's schema.

``excerpts`` (:mod:`structx._formats._excerpts`) is one call with the
user's schema, the model copying evidence excerpts; ``cited``
(:mod:`structx._formats._cited`) numbers the sentences and makes one small
call per record type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from structx._config import Config, ExtractionFormat
from structx._models import Article

__all__ = ["Call", "Format", "Plan", "format_for", "resolve_format"]


@dataclass(frozen=True, slots=True)
class Call:
    """One model call of a plan (re-asks of it excluded)."""

    #: What the call asks for, for messages and logs (a list field's name, or "all").
    label: str
    messages: list[dict[str, Any]]
    #: The model the answer is parsed into; its JSON schema goes in response_format.
    response_model: type[BaseModel]
    max_tokens: int | None
    #: When the answer hits max_tokens, keep the records completed before the cut
    #: instead of failing the article.
    salvage_truncated: bool = False


class Plan(Protocol):
    """The calls for one article (or chunk), and how their answers are checked and combined."""

    @property
    def calls(self) -> Sequence[Call]:
        """The calls, in the order they are made."""

    def feedback(self, call: Call, answer: BaseModel) -> str | None:
        """What is wrong with ``answer`` to ``call``, as the re-ask tells the model; None when nothing is."""

    def assemble(self, answers: Sequence[BaseModel]) -> BaseModel:
        """One instance of the user's schema from the answers to :attr:`calls`, in order."""


class Format(Protocol):
    def plan(
        self, chunk: Article, schema: type[BaseModel], article_text: str, config: Config, *, include_schema: bool
    ) -> Plan:
        """The plan for ``chunk`` of an article whose whole text is ``article_text``."""


def resolve_format(requested: ExtractionFormat, server: str) -> ExtractionFormat:
    """``auto`` made concrete for an endpoint: ``cited`` for llama.cpp servers, else ``excerpts``."""
    if requested is not ExtractionFormat.AUTO:
        return requested
    return ExtractionFormat.CITED if server.startswith("llama.cpp") else ExtractionFormat.EXCERPTS


def format_for(kind: ExtractionFormat) -> Format:
    """The format object for a resolved :class:`ExtractionFormat`."""
    from structx._formats._cited import CitedFormat
    from structx._formats._excerpts import ExcerptsFormat

    if kind is ExtractionFormat.CITED:
        return CitedFormat()
    if kind is ExtractionFormat.EXCERPTS:
        return ExcerptsFormat()
    raise ValueError(f"resolve {kind!r} with resolve_format() first")
