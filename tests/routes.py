"""What the route tests share: a fake that answers each seed with its gold answer, and line comparison.

The fake decides by the article in the request, not by the order requests
arrive in, so the online route (concurrent), the Batch API route (one file)
and the Ray route (several workers) all get the same answer for the same
article, and their result lines can be compared.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structx
from structx.testing import Reply
from tests.cassettes import seed_answer, seed_article, seed_paths

#: Fields of a result line that say how long it took, not what came out.
TIMING = ("latency_s",)


def seed_texts() -> dict[str, str]:
    return {path.stem: seed_article(path.stem).text for path in seed_paths()}


def message_text(body: Any) -> str:
    """All the text of a request's messages (the article, the instructions, a re-ask's feedback)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return "\n".join(str(message.get("content") or "") for message in messages or [])


def gold_by_article(extra: Callable[[str], Reply | None] | None = None) -> Callable[[Any], Reply | None]:
    """A ``respond`` for the fake: ``extra`` first (faults), then the gold answer of the seed in the request."""
    openings = {stem: text[:200] for stem, text in seed_texts().items()}

    def respond(body: Any) -> Reply | None:
        text = message_text(body)
        if extra is not None and (reply := extra(text)) is not None:
            return reply
        for stem, opening in openings.items():
            if opening in text:
                return Reply.answer(seed_answer(stem))
        return None

    return respond


def comparable(line: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``line`` without its timing (and the fields in ``drop``)."""
    return {name: value for name, value in line.items() if name not in TIMING and name not in drop}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def completion_requests(server: Any) -> list[Any]:
    """The chat-completion requests the fake received (online requests, not batch lines)."""
    return [r for r in server.requests if r.method == "POST" and r.path.endswith("/chat/completions")]


def online_lines(config: structx.Config, sources: list[Any]) -> dict[str, dict[str, Any]]:
    """The online route's line for each article, by id."""
    from structx_schemas import ArticleExtraction

    with structx.Client(config) as client:
        return {o.id: o.to_json() for o in structx.extract_many(sources, client, ArticleExtraction, concurrency=2)}
