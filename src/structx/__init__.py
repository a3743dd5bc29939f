"""structx: validated, evidence-grounded structured records from news articles.

>>> import structx
>>> result = structx.extract(open("seeds/000_57f720f08a0b9acd.txt").read())
>>> result.value.meetings[0].participants

The endpoint comes from a :class:`Config` (or the environment): OpenAI, any
OpenAI-compatible server (vLLM, Ollama, llama.cpp), or, with nothing
configured, a small bundled model run locally by llama.cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structx._api import Client, aextract, extract
    from structx._backend import Endpoint
    from structx._batch import ArticleOutcome, BatchSummary, aextract_many, extract_many, iter_batch_articles
    from structx._config import (
        DEFAULT_LOCAL_MODEL,
        MAX_FILE_BYTES,
        MAX_REQUESTS_PER_FILE,
        Config,
        ExtractionFormat,
        GroundingPolicy,
        LocalModelChoice,
        StructuredOutput,
    )
    from structx._documents import count_articles, html_to_text, iter_article_files, iter_articles, read_article
    from structx._engine import Answers, Pending, request_digest
    from structx._errors import (
        AuthenticationFailed,
        ConfigError,
        EndpointTimeout,
        EndpointUnreachable,
        ExtractionError,
        GroundingFailed,
        InputError,
        Interrupted,
        InvalidResponse,
        LocalModelUnavailable,
        NotAttempted,
        QuotaExceeded,
        RateLimited,
        Refusal,
        RequestRejected,
        RunInUse,
        SchemaError,
        ServerError,
        StructxError,
        TransportError,
        TruncatedOutput,
        UsageError,
        ValidationFailed,
        is_fatal_for_batch,
    )
    from structx._evaluation import EvaluationReport, Score, evaluate, load_gold, load_predictions
    from structx._export import export_tables
    from structx._grounding import Aligner, ground
    from structx._knowledge._articles import load_answers
    from structx._knowledge._dataset import Dataset, build_dataset
    from structx._knowledge._dates import DateInterval, DatePrecision, publication_date, resolve_date
    from structx._knowledge._mentions import EntityType
    from structx._knowledge._rows import (
        Entity,
        MeetingParticipantRow,
        MeetingRow,
        MentionRow,
        QuoteRow,
        RecordRef,
        SourceRow,
        StanceRow,
        UndecidedPair,
        VisitRow,
    )
    from structx._knowledge._scoring import AliasGold, EntityScores, evaluate_entities, load_alias_gold
    from structx._local import EMBEDDED_MODEL_NAME, EmbeddedServer
    from structx._models import AlignmentStatus, Article, EvidenceSpan, GroundingReport, RecordGrounding, Result, Usage
    from structx._pricing import LIST_PRICES, estimate_cost, load_prices
    from structx._prompt import build_messages
    from structx._report._site import ReportSite, write_report
    from structx._routes._openai_batch import BatchCollectReport, BatchRun, BatchSubmitReport
    from structx._schemas import DEFAULT_SCHEMA_REF, load_schema
    from structx._store import RunStore

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "DEFAULT_SCHEMA_REF",
    "EMBEDDED_MODEL_NAME",
    "LIST_PRICES",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS_PER_FILE",
    "AliasGold",
    "Aligner",
    "AlignmentStatus",
    "Answers",
    "Article",
    "ArticleOutcome",
    "AuthenticationFailed",
    "BatchCollectReport",
    "BatchRun",
    "BatchSubmitReport",
    "BatchSummary",
    "Client",
    "Config",
    "ConfigError",
    "Dataset",
    "DateInterval",
    "DatePrecision",
    "EmbeddedServer",
    "Endpoint",
    "EndpointTimeout",
    "EndpointUnreachable",
    "Entity",
    "EntityScores",
    "EntityType",
    "EvaluationReport",
    "EvidenceSpan",
    "ExtractionError",
    "ExtractionFormat",
    "GroundingFailed",
    "GroundingPolicy",
    "GroundingReport",
    "InputError",
    "Interrupted",
    "InvalidResponse",
    "LocalModelChoice",
    "LocalModelUnavailable",
    "MeetingParticipantRow",
    "MeetingRow",
    "MentionRow",
    "NotAttempted",
    "Pending",
    "QuotaExceeded",
    "QuoteRow",
    "RateLimited",
    "RecordGrounding",
    "RecordRef",
    "Refusal",
    "ReportSite",
    "RequestRejected",
    "Result",
    "RunInUse",
    "RunStore",
    "SchemaError",
    "Score",
    "ServerError",
    "SourceRow",
    "StanceRow",
    "StructuredOutput",
    "StructxError",
    "TransportError",
    "TruncatedOutput",
    "UndecidedPair",
    "Usage",
    "UsageError",
    "ValidationFailed",
    "VisitRow",
    "__version__",
    "aextract",
    "aextract_many",
    "build_dataset",
    "build_messages",
    "count_articles",
    "estimate_cost",
    "evaluate",
    "evaluate_entities",
    "export_tables",
    "extract",
    "extract_many",
    "ground",
    "html_to_text",
    "is_fatal_for_batch",
    "iter_article_files",
    "iter_articles",
    "iter_batch_articles",
    "load_alias_gold",
    "load_answers",
    "load_gold",
    "load_predictions",
    "load_prices",
    "load_schema",
    "publication_date",
    "read_article",
    "request_digest",
    "resolve_date",
    "write_report",
]

# Each public name is imported from its module on first use, so that
# ``import structx`` (and ``structx --help``) does not load openai and
# instructor before they are needed (PEP 562). The names above are what type
# checkers see; tests/test_public_api.py keeps the three lists in step.
_SOURCES: dict[str, tuple[str, ...]] = {
    "structx._api": ("Client", "aextract", "extract"),
    "structx._backend": ("Endpoint",),
    "structx._engine": ("Answers", "Pending", "request_digest"),
    "structx._batch": ("ArticleOutcome", "BatchSummary", "aextract_many", "extract_many", "iter_batch_articles"),
    "structx._config": (
        "DEFAULT_LOCAL_MODEL",
        "MAX_FILE_BYTES",
        "MAX_REQUESTS_PER_FILE",
        "Config",
        "ExtractionFormat",
        "GroundingPolicy",
        "LocalModelChoice",
        "StructuredOutput",
    ),
    "structx._documents": ("count_articles", "html_to_text", "iter_article_files", "iter_articles", "read_article"),
    "structx._errors": (
        "AuthenticationFailed",
        "ConfigError",
        "EndpointTimeout",
        "EndpointUnreachable",
        "ExtractionError",
        "GroundingFailed",
        "InputError",
        "Interrupted",
        "InvalidResponse",
        "LocalModelUnavailable",
        "NotAttempted",
        "QuotaExceeded",
        "RateLimited",
        "Refusal",
        "RequestRejected",
        "RunInUse",
        "SchemaError",
        "ServerError",
        "StructxError",
        "TransportError",
        "TruncatedOutput",
        "UsageError",
        "ValidationFailed",
        "is_fatal_for_batch",
    ),
    "structx._evaluation": ("EvaluationReport", "Score", "evaluate", "load_gold", "load_predictions"),
    "structx._export": ("export_tables",),
    "structx._grounding": ("Aligner", "ground"),
    "structx._knowledge._articles": ("load_answers",),
    "structx._knowledge._dataset": ("Dataset", "build_dataset"),
    "structx._knowledge._mentions": ("EntityType",),
    "structx._knowledge._rows": (
        "Entity",
        "MeetingParticipantRow",
        "MeetingRow",
        "MentionRow",
        "QuoteRow",
        "RecordRef",
        "SourceRow",
        "StanceRow",
        "UndecidedPair",
        "VisitRow",
    ),
    "structx._knowledge._scoring": ("AliasGold", "EntityScores", "evaluate_entities", "load_alias_gold"),
    "structx._knowledge._dates": ("DateInterval", "DatePrecision", "publication_date", "resolve_date"),
    "structx._local": ("EMBEDDED_MODEL_NAME", "EmbeddedServer"),
    "structx._models": (
        "AlignmentStatus",
        "Article",
        "EvidenceSpan",
        "GroundingReport",
        "RecordGrounding",
        "Result",
        "Usage",
    ),
    "structx._pricing": ("LIST_PRICES", "estimate_cost", "load_prices"),
    "structx._prompt": ("build_messages",),
    "structx._report._site": ("ReportSite", "write_report"),
    "structx._routes._openai_batch": ("BatchCollectReport", "BatchRun", "BatchSubmitReport"),
    "structx._schemas": ("DEFAULT_SCHEMA_REF", "load_schema"),
    "structx._store": ("RunStore",),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
