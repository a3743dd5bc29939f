"""structx: validated, evidence-grounded structured records from news articles.

>>> import structx
>>> result = structx.extract(open("seeds/000_57f720f08a0b9acd.txt").read())
>>> result.value.meetings[0].participants

The endpoint comes from a :class:`Config` (or the environment): OpenAI, any
OpenAI-compatible server (vLLM, Ollama, llama.cpp), or, with nothing
configured, a small bundled model run locally by llama.cpp.
"""

from structx._api import Client, aextract, extract
from structx._backend import Endpoint
from structx._batch import ArticleOutcome, BatchSummary, aextract_many, extract_many
from structx._config import Config, GroundingPolicy, StructuredOutput
from structx._documents import html_to_text, iter_article_files, iter_articles, read_article
from structx._errors import (
    AuthenticationFailed,
    ConfigError,
    EndpointTimeout,
    EndpointUnreachable,
    ExtractionError,
    GroundingFailed,
    InputError,
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
from structx._local import EMBEDDED_MODEL_NAME, EmbeddedServer
from structx._models import AlignmentStatus, Article, EvidenceSpan, GroundingReport, RecordGrounding, Result, Usage
from structx._pricing import LIST_PRICES, estimate_cost, load_prices
from structx._prompt import build_messages
from structx._schemas import DEFAULT_SCHEMA_REF, load_schema
from structx._store import RunStore

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCHEMA_REF",
    "EMBEDDED_MODEL_NAME",
    "LIST_PRICES",
    "Aligner",
    "AlignmentStatus",
    "Article",
    "ArticleOutcome",
    "AuthenticationFailed",
    "BatchSummary",
    "Client",
    "Config",
    "ConfigError",
    "EmbeddedServer",
    "Endpoint",
    "EndpointTimeout",
    "EndpointUnreachable",
    "EvaluationReport",
    "EvidenceSpan",
    "ExtractionError",
    "GroundingFailed",
    "GroundingPolicy",
    "GroundingReport",
    "InputError",
    "InvalidResponse",
    "LocalModelUnavailable",
    "NotAttempted",
    "QuotaExceeded",
    "RateLimited",
    "RecordGrounding",
    "Refusal",
    "RequestRejected",
    "Result",
    "RunInUse",
    "RunStore",
    "SchemaError",
    "Score",
    "ServerError",
    "StructuredOutput",
    "StructxError",
    "TransportError",
    "TruncatedOutput",
    "Usage",
    "UsageError",
    "ValidationFailed",
    "__version__",
    "aextract",
    "aextract_many",
    "build_messages",
    "estimate_cost",
    "evaluate",
    "export_tables",
    "extract",
    "extract_many",
    "ground",
    "html_to_text",
    "is_fatal_for_batch",
    "iter_article_files",
    "iter_articles",
    "load_gold",
    "load_predictions",
    "load_prices",
    "load_schema",
    "read_article",
]
