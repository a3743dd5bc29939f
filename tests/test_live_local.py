"""The embedded default, end to end, against the real llama.cpp server (xllamacpp) and the default model.

Runs when structx[local] is installed (CI installs it); skipped otherwise. The
model is assembled where a user's would be (``STRUCTX_MODEL_DIR``, else the
XDG cache), once: later runs reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import structx
from tests.cassettes import ROOT

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        importlib.util.find_spec("xllamacpp") is None,
        reason="structx[local] is not installed (pip install -e '.[local]')",
    ),
]

SHORTEST_SEED = min((ROOT / "seeds").glob("*.txt"), key=lambda p: p.stat().st_size)


@pytest.mark.timeout(960)
def test_extract_with_nothing_configured_runs_the_bundled_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRUCTX_MODEL")}
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "structx", "extract", str(SHORTEST_SEED), "--out", str(out)]
    completed = subprocess.run(
        # A slow or busy machine: one long request rather than resending it after the default 180 s.
        [*command, "--timeout", "600", "-v"],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    name = structx.EMBEDDED_MODEL_NAME
    assert f"Using the embedded {name} model through llama.cpp" in completed.stderr
    assert f"(llama.cpp (embedded)), model {name}, structured output json_object_schema" in completed.stderr
    assert "concurrency 4 lowered to 1: the embedded server works on 1 request(s) at a time" in completed.stderr
    (line,) = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert line["id"] == SHORTEST_SEED.stem
    # A small model may finish or run out of tokens; either way the real server
    # read the article and answered through the whole pipeline.
    assert line["usage"]["prompt_tokens"] > 1000
    assert line["usage"]["completion_tokens"] > 0
    if line["status"] == "ok":
        assert completed.returncode == 0 and set(line["records"]) >= {"visits", "meetings"}
        assert line["model"] == name
        # The cited format: one call per record type and one for the other fields, re-asks on top;
        # evidence is the cited sentences, so every excerpt is found exactly.
        assert line["attempts"] >= 5
        spans = [span for record in line["grounding"]["records"] for span in record["evidence"]]
        assert all(span["status"] == "exact" for span in spans)
    else:
        assert completed.returncode == 1
        assert line["error"]["type"] in {"TruncatedOutput", "ValidationFailed"}


def test_the_embedded_server_answers_under_the_model_name_and_stops() -> None:
    config = structx.Config.from_env({k: v for k, v in os.environ.items() if k.startswith(("STRUCTX_", "XDG_"))})
    server = structx.EmbeddedServer(model_dir=config.model_dir)
    base_url = server.start()
    pid = server.pid
    assert pid is not None and _alive(pid)
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    with urllib.request.urlopen(f"{base_url}/models", timeout=10) as response:
        assert [model["id"] for model in json.loads(response.read())["data"]] == [structx.EMBEDDED_MODEL_NAME]
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    server.stop()
    assert not _alive(pid)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text(encoding="ascii").split()
        found.update(int(child) for child in text)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_the_embedded_server_does_not_outlive_a_killed_cli(tmp_path: Path, signum: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRUCTX_MODEL")}
    cli = subprocess.Popen(
        [sys.executable, "-m", "structx", "extract", str(ROOT / "seeds"), "--out", str(tmp_path / "r.jsonl"), "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        servers: set[int] = set()
        while not servers and time.monotonic() < deadline:
            servers = {c for c in _children(cli.pid) if b"structx._local" in _cmdline(c)}
            time.sleep(0.2)
        assert servers, "the CLI never started the embedded server"
        cli.send_signal(signum)
        try:
            cli.wait(timeout=5)
        except subprocess.TimeoutExpired:  # SIGTERM lets a request in flight finish; a second one cancels it
            cli.send_signal(signum)
            cli.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in servers)
    finally:
        if cli.poll() is None:
            cli.kill()


def test_a_server_that_cannot_start_says_why_from_its_log(tmp_path: Path) -> None:
    not_a_model = tmp_path / "model.gguf"
    not_a_model.write_bytes(b"not a GGUF file")
    server = structx.EmbeddedServer(model_path=not_a_model)
    with pytest.raises(structx.LocalModelUnavailable, match=r"server exited with code 1: .*model loading error"):
        server.start()
    assert server.pid is None  # nothing left running
