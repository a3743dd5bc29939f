"""Re-record the cassettes under ``cassettes/``.

    python -m tests.record_cassettes            # everything
    python -m tests.record_cassettes scripted   # the scripted server only (seconds), the batch one included
    python -m tests.record_cassettes batch      # the Batch API route's cassette only (seconds)
    python -m tests.record_cassettes llama      # the real llama.cpp server (minutes; needs structx[local])
    python -m tests.record_cassettes llama --seed 001_c222d2c9a2cf11cb   # one seed's recording again

Scripted cassettes come from :class:`structx.testing.ScriptedServer`, our
own OpenAI-compatible server on loopback playing fixed replies. llama.cpp
cassettes are real recordings of llama.cpp's native server (xllamacpp)
running the embedded default model, as structx's embedded default starts it. Each recording updates
``cassettes/provenance.json`` and regenerates ``cassettes/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from importlib.metadata import version

import structx
from structx._local import LOCAL_MODELS
from structx.testing import BatchEnd, BatchServer, Reply, ScriptedServer
from tests.cassettes import (
    BATCH_CASSETTE,
    BATCH_RUN_ANSWERED,
    CASSETTES,
    FAULT_ARTICLE,
    LLAMA_PORT,
    RECORDING_API_KEY,
    SCRIPTED_BASE_URL,
    batch_cassette_vcr,
    cassette_vcr,
    fault_scenarios,
    grounding_scenarios,
    injected_article,
    injection_scenarios,
    llama_cassette,
    llama_config,
    scripted_config,
    seed_answer,
    seed_article,
    seed_paths,
)

PROVENANCE = CASSETTES / "provenance.json"
SCRIPTED_PORT = int(SCRIPTED_BASE_URL.rsplit(":", 1)[1].split("/")[0])


def record_scripted(provenance: dict[str, dict[str, str]]) -> None:
    recorder = cassette_vcr("all")
    command = "python -m tests.record_cassettes scripted"
    source = {
        "server": "structx.testing.ScriptedServer (scripted, not a model) on 127.0.0.1",
        "model": "scripted-model: replies fixed in tests/cassettes.py",
        "date": dt.date.today().isoformat(),
        "command": command,
    }
    # Well-formed answers about each seed, from tests/data/answers/.
    stems = [path.stem for path in seed_paths()]
    name = "scripted/seeds.yaml"
    (CASSETTES / name).unlink(missing_ok=True)
    with ScriptedServer([Reply.answer(seed_answer(stem)) for stem in stems], port=SCRIPTED_PORT) as server:
        with recorder.use_cassette(name):
            for stem in stems:
                result = structx.extract(seed_article(stem), config=scripted_config())
                print(f"{name}: {stem}: {len(result.value.visits)} visits, {result.requests} request(s)")
        assert not server._replies, "every scripted seed answer should have been used"
    provenance[name] = {**source, "what": "the gold answer for each seed (eval/gold/)"}

    for scenario in [*fault_scenarios(), *grounding_scenarios()]:
        (CASSETTES / scenario.cassette).unlink(missing_ok=True)
        with ScriptedServer(scenario.replies, port=SCRIPTED_PORT), recorder.use_cassette(scenario.cassette):
            try:
                result = structx.extract(seed_article(FAULT_ARTICLE), config=scripted_config())
                outcome = f"ok after {result.requests} request(s)"
            except structx.StructxError as exc:
                outcome = f"{type(exc).__name__} after {getattr(exc, 'requests', '?')} request(s)"
        print(f"{scenario.cassette}: {outcome}")
        provenance[scenario.cassette] = {**source, "what": f"fault: {scenario.name} ({outcome})"}

    for scenario in injection_scenarios():
        (CASSETTES / scenario.cassette).unlink(missing_ok=True)
        with ScriptedServer(scenario.replies, port=SCRIPTED_PORT), recorder.use_cassette(scenario.cassette):
            result = structx.extract(injected_article(), config=scripted_config())
        ungrounded = sum(not record.grounded for record in result.grounding.records)
        outcome = f"ok after {result.requests} request(s), {ungrounded} record(s) ungrounded"
        print(f"{scenario.cassette}: {outcome}")
        what = f"prompt injection: {scenario.name} ({outcome}); the fault seed plus tests.cassettes.INJECTIONS"
        provenance[scenario.cassette] = {**source, "what": what}


def record_batch(provenance: dict[str, dict[str, str]]) -> None:
    """The seeds through the Batch API route against BatchServer; the batch expires after 3 answers."""
    import tempfile
    from pathlib import Path

    from tests.routes import gold_by_article

    (CASSETTES / BATCH_CASSETTE).unlink(missing_ok=True)
    ends = [BatchEnd("expired", answered=BATCH_RUN_ANSWERED)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        BatchServer(respond=gold_by_article(), batches=ends, port=SCRIPTED_PORT),
        batch_cassette_vcr("all").use_cassette(BATCH_CASSETTE),
        structx.BatchRun(Path(tmp)) as run,
    ):
        run.submit([str(path) for path in seed_paths()], scripted_config(), "structx_schemas:ArticleExtraction")
        with structx.Client(run.config(api_key=RECORDING_API_KEY), cache=run.store, probe=False) as client:
            run.status(client)
            report = run.collect(client)
            lines = list(run.lines(client, report.unsettled))
    ok = sum(line["status"] == "ok" for line in lines)
    outcome = (
        f"{ok} of {len(lines)} ok; {report.answers} answered in the batch, {report.errors} expired and sent online"
    )
    print(f"{BATCH_CASSETTE}: {outcome}")
    provenance[BATCH_CASSETTE] = {
        "server": "structx.testing.BatchServer: ScriptedServer (scripted, not a model) plus the Files and Batches "
        "APIs, on 127.0.0.1",
        "model": "scripted-model: the gold answer for each seed (eval/gold/), chosen by the article in the request",
        "date": dt.date.today().isoformat(),
        "command": "python -m tests.record_cassettes batch",
        "what": f"the seeds through structx.BatchRun submit, status, collect; the batch expires after "
        f"{BATCH_RUN_ANSWERED} answers ({outcome})",
    }


def record_llama(provenance: dict[str, dict[str, str]], stems: list[str] | None = None) -> None:
    recorder = cassette_vcr("all")
    config = structx.Config.from_env()  # where the model is assembled: STRUCTX_MODEL_DIR or the user's cache
    server = structx.EmbeddedServer(
        local_model=structx.DEFAULT_LOCAL_MODEL, model_dir=config.model_dir, port=LLAMA_PORT
    )
    server.start()
    model = LOCAL_MODELS[structx.DEFAULT_LOCAL_MODEL]
    try:
        source = {
            "server": (
                f"llama.cpp native server from xllamacpp {version('xllamacpp')} "
                "(structx.EmbeddedServer, 1 slot) on 127.0.0.1"
            ),
            "model": (
                f"{model.name} Q4_K_M GGUF, sha256 {model.sha256}, assembled from "
                f"{model.requirement(1)} ... {model.requirement(model.parts)}"
            ),
            "date": dt.date.today().isoformat(),
            "command": "python -m tests.record_cassettes llama",
        }
        for path in seed_paths():
            if stems and path.stem not in stems:
                continue
            name = llama_cassette(path.stem)
            (CASSETTES / name).unlink(missing_ok=True)
            started = time.perf_counter()
            with recorder.use_cassette(name):
                try:
                    result = structx.extract(seed_article(path.stem), config=llama_config())
                    outcome = f"ok, {result.attempts} attempt(s)"
                except structx.ExtractionError as exc:
                    outcome = f"{type(exc).__name__}, {exc.attempts} attempt(s)"
            seconds = time.perf_counter() - started
            print(f"{name}: {outcome} in {seconds:.1f} s")
            provenance[name] = {
                **source,
                "what": f"seed {path.stem}: {outcome}, {seconds:.0f} s on {platform.machine()}",
            }
            save(provenance)  # a recording stopped midway keeps the seeds it finished documented
    finally:
        server.stop()


def save(provenance: dict[str, dict[str, str]]) -> None:
    PROVENANCE.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_readme(provenance)


def write_readme(provenance: dict[str, dict[str, str]]) -> None:
    rows = "\n".join(
        f"| `{name}` | {p['server']} | {p['model']} | {p['date']} | `{p['command']}` | {p['what']} |"
        for name, p in sorted(provenance.items())
    )
    (CASSETTES / "README.md").write_text(
        f"""# Cassettes

Recorded HTTP exchanges that the tests replay with vcrpy (record mode `none`:
a request that is not in its cassette fails the test). Nothing here is edited
by hand: `python -m tests.record_cassettes` writes every file, this README
included, from the scenarios in `tests/cassettes.py`.

Two sources:

- **Real recordings** (`llama_cpp/`): llama.cpp's native OpenAI-compatible
  server (the `xllamacpp` wheel) running the embedded default model, the same
  server and model structx's embedded default starts (`structx.EmbeddedServer`,
  on a fixed loopback port so that the recorded URLs stay put). They pin the
  real wire format (`response_format: {{"type": "json_object", "schema": ...}}`,
  usage with cached prompt tokens, llama.cpp's `timings`, finish reasons) and
  what the small model really answers.
- **Scripted** (`scripted/`): structx's own test double,
  `structx.testing.ScriptedServer`, on loopback, playing fixed replies:
  the gold answers about the seeds (`eval/gold/`), the fault cases (429 with
  Retry-After, 5xx, 4xx, truncation, refusal, invalid JSON then valid) and the
  grounding cases (an altered excerpt and an invented name, re-asked).
  `scripted/batch_api_seeds.yaml` is the Batch API route against
  `structx.testing.BatchServer` (the scripted server plus the Files and
  Batches APIs): the seeds uploaded as one batch that expires after three
  answers, the other two sent online; uploads are matched by their form
  fields, since their multipart boundary changes every time.
  These are labelled scripted: no model produced them.

Secrets are scrubbed before a cassette is written (Authorization, api-key,
cookies, organisation and project headers); the recordings send a fake key
so that `tests/test_cassettes.py` can prove it never lands here.

Re-record: `python -m tests.record_cassettes` (all), `... scripted` (seconds),
`... llama` (minutes; needs `pip install -e '.[local]'`; `STRUCTX_MODEL_DIR`
says where the model is assembled).

| cassette | server | model | recorded | command | content |
|---|---|---|---|---|---|
{rows}
""",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", choices=["all", "scripted", "batch", "llama"], default="all")
    parser.add_argument("--seed", action="append", metavar="ID", help="record only this seed (llama; repeatable)")
    args = parser.parse_args(argv)
    provenance: dict[str, dict[str, str]] = (
        json.loads(PROVENANCE.read_text(encoding="utf-8")) if PROVENANCE.exists() else {}
    )
    if args.which in ("all", "scripted"):
        record_scripted(provenance)
    if args.which in ("all", "scripted", "batch"):
        record_batch(provenance)
    if args.which in ("all", "llama"):
        record_llama(provenance, args.seed)
    save(provenance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
