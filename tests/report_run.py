"""A run to report on, built from the seeds' gold answers: every kind of line the report must show.

The gold answers become result lines with their grounding computed by
``structx.ground`` on the real articles (shared and nested evidence spans
included), and around them the cases a report must not hide: an article
with ungrounded records kept, one whose ungrounded record the ``drop``
policy removed, a failed article, a GroundingFailed article, a line whose
article text is gone, and a hostile article whose text and records are full
of HTML and script, with two records whose excerpts cross.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structx
from structx._config import GroundingPolicy
from structx._grounding import apply_grounding_policy
from structx_schemas.iran_militias import ArticleExtraction
from tests.cassettes import SEEDS, seed_answer, seed_article, seed_paths

STEMS = [path.stem for path in seed_paths()]
UNGROUNDED_STEM, DROPPED_STEM = STEMS[3], STEMS[4]
FABRICATED_EXCERPT = "Vladimir Putin landed in Baghdad on Monday for talks with the militias."
HOSTILE_ID = "hostile"
NO_TEXT_ID = "gone"

HOSTILE_TEXT = """Hostile Times: the minister's visit
<script>window.__pwned = 1; alert("script in the article")</script>
The minister <img src=x onerror="window.__pwned = 2; alert('img')"> visited Baghdad on Monday, officials said.
Close the box </textarea><script>window.__pwned = 3</script> and read on, alpha beta gamma delta epsilon.
Read more at <a href="javascript:alert('link')">this link</a> or at javascript:window.__pwned=4 now.
"We will not obey anyone," said the spokesman of <b onmouseover="window.__pwned = 5">Kataib Test</b>.
"""


def _fabricated_visit() -> dict[str, Any]:
    return {"visitor": "Vladimir Putin", "country": "Iraq", "evidence": [FABRICATED_EXCERPT]}


def _line(article_id: str, source: str, answer: ArticleExtraction, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": article_id,
        "source": source,
        "status": "ok",
        "records": answer.model_dump(mode="json"),
        "grounding": structx.ground(answer, text).to_dict(),
        **extra,
    }


def hostile_answer() -> ArticleExtraction:
    return ArticleExtraction.model_validate(
        {
            "title": "<script>window.__pwned = 6</script>Hostile <i>title</i>",
            "outlet": '<a href="javascript:window.__pwned = 7">Hostile Times</a>',
            "visits": [
                {
                    "visitor": '<img src=x onerror="window.__pwned = 8">The minister',
                    "city": "Baghdad",
                    "purpose": "</textarea><script>window.__pwned = 9</script>",
                    "evidence": [
                        "The minister <img src=x onerror=\"window.__pwned = 2; alert('img')\"> visited Baghdad "
                        "on Monday, officials said.",
                        "alpha beta gamma",
                    ],
                }
            ],
            "militia_stances": [
                {
                    "militia": '<b onmouseover="window.__pwned = 5">Kataib Test</b>',
                    "topic": "obedience_to_iran",
                    "position": "opposes",
                    "summary": "javascript:window.__pwned = 10",
                    "quote": "We will not obey anyone,",
                    "evidence": [
                        "gamma delta epsilon",
                        '"We will not obey anyone," said the spokesman of <b onmouseover="window.__pwned = 5">'
                        "Kataib Test</b>.",
                    ],
                }
            ],
        }
    )


def write_run(folder: Path) -> Path:
    """Write the run's results file (and the hostile article) into ``folder``; returns the results file."""
    lines: list[dict[str, Any]] = []
    for number, stem in enumerate(STEMS):
        answer, text = seed_answer(stem), seed_article(stem).text
        usage = {"prompt_tokens": 1000 + number, "completion_tokens": 200 + number}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = "gpt-4o-mini" if number < 2 else "local-model"
        source = str(SEEDS / f"{stem}.txt")
        data = answer.model_dump(mode="json")
        if stem == UNGROUNDED_STEM:
            answer = ArticleExtraction.model_validate({**data, "visits": [*data["visits"], _fabricated_visit()]})
        if stem == DROPPED_STEM:
            answer = ArticleExtraction.model_validate({**data, "visits": [_fabricated_visit(), *data["visits"]]})
            kept, grounding = apply_grounding_policy(answer, text, GroundingPolicy.DROP)
            lines.append(
                {"id": stem, "source": source, "status": "ok", "records": kept.model_dump(mode="json"),
                 "grounding": grounding.to_dict(), "usage": usage, "model": model, "requests": 1}
            )  # fmt: skip
            continue
        lines.append(_line(stem, source, answer, text, usage=usage, model=model, requests=1))
    hostile = folder / "hostile.txt"
    hostile.write_text(HOSTILE_TEXT, encoding="utf-8")
    lines.append(_line(HOSTILE_ID, str(hostile), hostile_answer(), HOSTILE_TEXT))
    gone = seed_answer(STEMS[0])
    lines.append(_line(NO_TEXT_ID, str(folder / "nowhere" / "gone.txt"), gone, seed_article(STEMS[0]).text))
    lines.append(
        {"id": "truncated", "source": "news/truncated.txt", "status": "error",
         "error": {"type": "TruncatedOutput", "message": "the answer hit the token limit <b>2048</b>"},
         "usage": {"prompt_tokens": 500, "completion_tokens": 2048, "total_tokens": 2548}, "attempts": 1,
         "requests": 1}
    )  # fmt: skip
    failing = ArticleExtraction.model_validate({"visits": [_fabricated_visit()]})
    lines.append(
        {"id": "refused", "source": str(SEEDS / f"{STEMS[1]}.txt"), "status": "error",
         "error": {"type": "GroundingFailed", "message": "a record stayed ungrounded"},
         "grounding": structx.ground(failing, seed_article(STEMS[1]).text).to_dict()}
    )  # fmt: skip
    results = folder / "results.jsonl"
    results.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return results


def read_run(results: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in results.read_text(encoding="utf-8").splitlines()]


def located_spans(line: dict[str, Any]) -> int:
    """Evidence spans of a line's kept records that grounding located (exact, normalized or fuzzy)."""
    if line["status"] != "ok":
        return 0
    return sum(
        span.get("start") is not None
        for record in line.get("grounding", {}).get("records", [])
        if not record.get("dropped")
        for span in record["evidence"]
    )
