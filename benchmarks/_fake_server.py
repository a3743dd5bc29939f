"""A fake OpenAI-compatible endpoint for bench_batch.py: prints its base URL, then serves until killed.

Every completion is the gold answer for seed 000, after the delay given as
the first argument (seconds). GET /count says how many completions it served.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction

ROOT = Path(__file__).resolve().parent.parent
gold = ArticleExtraction.model_validate_json((ROOT / "eval" / "gold" / "000_57f720f08a0b9acd.json").read_text("utf-8"))
answer = Reply.answer(gold)
delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
server = ScriptedServer(default=Reply(answer.status_code, answer.body, delay=delay))
handler = server._httpd.RequestHandlerClass
original_get = handler.do_GET  # type: ignore[attr-defined]


def do_get(self: object) -> None:
    if getattr(self, "path", "") == "/count":
        served = sum(r.method == "POST" for r in server.requests)
        self._send(Reply(200, json.dumps(served).encode()))  # type: ignore[attr-defined]
    else:
        original_get(self)


handler.do_GET = do_get  # type: ignore[attr-defined]
server.start()
print(server.base_url, flush=True)
threading.Event().wait()
