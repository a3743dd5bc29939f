"""The report's input: result lines read into articles, records and their evidence, and the run's totals.

Everything a line holds is shown, and what it lacks is said: a record whose
grounding the line does not carry (answers in the gold format carry none)
has its evidence located here with the same aligner ``structx extract``
uses, and the page says so; a line whose article text cannot be read still
lists its records; grounding offsets that do not fit the text at hand are
reported rather than drawn somewhere else. Counting rules follow
``structx extract``'s summary, so the index agrees with it: a failed line
keeps no record, ``dropped`` records are those the ``drop`` policy removed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structx._errors import InputError
from structx._grounding import Aligner
from structx._knowledge._articles import ArticleTexts, load_lines
from structx._models import AlignmentStatus, Usage
from structx._pricing import estimate_cost

__all__ = ["Evidence", "LineArticle", "RecordView", "RunTotals", "read_lines", "record_anchor", "record_type"]

_INDEX = re.compile(r"\[\d+\]")
LOCATED = ("exact", "normalized", "fuzzy")


def record_type(path: str) -> str:
    """``visits[2]`` -> ``visits``; ``a[0].b[1]`` -> ``a.b``."""
    return _INDEX.sub("", path) or path


def record_anchor(path: str) -> str:
    """The element id of a record's card: ``visits[2]`` -> ``rec-visits-2``."""
    return "rec-" + (re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "record")


def type_label(kind: str) -> str:
    """``militia_stances`` -> ``militia stance``: how a record type is named on a page."""
    last = kind.rsplit(".", 1)[-1].replace("_", " ")
    return last[:-1] if last.endswith("s") and not last.endswith("ss") else last


@dataclass(slots=True)
class Evidence:
    """One evidence excerpt of a record and where it stands in the article."""

    number: int  # 1-based, as grounding problems count them
    excerpt: str | None  # the record's own words (a dropped record's are gone)
    start: int | None
    end: int | None
    status: str  # exact, normalized, fuzzy, not_found (or what the line says)
    drawn: bool = False  # highlighted in the article text
    key: str | None = None  # element id of the highlight
    article_says: str | None = None  # text[start:end], when the text is at hand and holds the offsets

    @property
    def located(self) -> bool:
        return isinstance(self.start, int) and isinstance(self.end, int) and self.status in LOCATED


@dataclass(slots=True)
class RecordView:
    """One record of an article, with its grounding."""

    path: str
    fields: Mapping[str, Any]  # the record without its evidence (empty for a dropped record)
    evidence: list[Evidence]
    problems: list[str]
    #: None when it could not be checked: no grounding in the line and no article text.
    grounded: bool | None
    dropped: bool = False
    #: Where the spans come from: "line" (the line's grounding), "report" (located here) or "none".
    located_by: str = "line"

    @property
    def type(self) -> str:
        return record_type(self.path)

    @property
    def anchor(self) -> str:
        return record_anchor(self.path)

    @property
    def label(self) -> str:
        match = re.search(r"\[(\d+)\]$", self.path)
        return f"{type_label(self.type)} {int(match[1]) + 1}" if match else type_label(self.type)

    @property
    def heading(self) -> str | None:
        """A few words saying what the record is about: its first text field (or a list of names)."""
        for name, value in self.fields.items():
            if name in ("evidence", "when"):
                continue
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, list):
                names = [str(v["name"]) for v in value if isinstance(v, Mapping) and isinstance(v.get("name"), str)]
                if names:
                    return ", ".join(names)
        return None


@dataclass(slots=True)
class LineArticle:
    """One result line: its article (text when it can be read), records and grounding, or its error."""

    id: str
    line: Mapping[str, Any]
    text: str | None
    text_problem: str | None  # why there is no text
    records: list[RecordView] = field(default_factory=list)
    dropped: list[RecordView] = field(default_factory=list)
    #: Records of a failed line whose grounding the line reports (GroundingFailed): why it failed.
    failed_grounding: list[RecordView] = field(default_factory=list)
    #: How the evidence was located: "line", "report" (no grounding in the line) or "mixed".
    located_by: str | None = None
    #: Exact excerpts whose offsets do not hold that excerpt in the text at hand.
    offset_mismatches: int = 0
    slug: str = ""

    @property
    def status(self) -> str:
        return str(self.line.get("status"))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def source(self) -> str | None:
        source = self.line.get("source")
        return source if isinstance(source, str) else None

    @property
    def root(self) -> Mapping[str, Any]:
        records = self.line.get("records")
        return records if isinstance(records, Mapping) else {}

    def root_text(self, name: str) -> str | None:
        """A root field of the answer (``title``, ``outlet``, ...), else the line's metadata."""
        for holder in (self.root, self.line.get("meta")):
            value = holder.get(name) if isinstance(holder, Mapping) else None
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    @property
    def root_fields(self) -> dict[str, Any]:
        """The answer's own fields that are not lists of records (``title``, ``outlet``, ...)."""
        kinds = {r.path.split("[")[0].split(".")[0] for r in self.records}
        shown = {k: v for k, v in self.root.items() if k not in kinds and k != "evidence"}
        return {k: v for k, v in shown.items() if v != [] and not _is_record_list(v)}

    @property
    def error(self) -> tuple[str, str] | None:
        error = self.line.get("error")
        if self.ok:
            return None
        if isinstance(error, Mapping):
            return str(error.get("type") or "error"), str(error.get("message") or "")
        return self.status, ""

    @property
    def ungrounded(self) -> list[RecordView]:
        return [r for r in self.records if r.grounded is False]

    @property
    def has_problems(self) -> bool:
        return not self.ok or bool(self.ungrounded) or bool(self.dropped)

    def by_type(self) -> Counter[str]:
        return Counter(r.type for r in self.records)

    @property
    def usage(self) -> Usage | None:
        usage = self.line.get("usage")
        if not isinstance(usage, Mapping):
            return None
        return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))

    @property
    def model(self) -> str | None:
        model = self.line.get("model")
        return model if isinstance(model, str) and model else None

    @property
    def drawn_spans(self) -> int:
        return sum(e.drawn for r in self.records for e in r.evidence)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(v, Mapping) and "evidence" in v for v in value)


@dataclass(slots=True)
class Inputs:
    """The lines of the report, in input order, and what was set aside."""

    articles: list[LineArticle]
    duplicate_ids: list[str]
    sources: list[str]  # what was read, for the index


def read_lines(items: Iterable[Mapping[str, Any] | Path | str], *, articles: Path | None = None) -> Inputs:
    """Result lines, results files (JSONL) and folders of answers (gold format) read into articles.

    An article id given twice keeps its first line (the others are listed);
    unreadable input raises an InputError naming the file.
    """
    texts = ArticleTexts(articles)
    items = list(items)
    sources = [str(Path(item)) for item in items if isinstance(item, str | Path)]
    loaded = load_lines(items, articles=articles)
    if not loaded:
        raise InputError("no result lines to report on")
    result = Inputs([], [], sources)
    seen: set[str] = set()
    for line, base in loaded:
        article_id = str(line.get("id"))
        if article_id in seen:
            result.duplicate_ids.append(article_id)
            continue
        seen.add(article_id)
        text = texts.text(line, base)
        article = LineArticle(article_id, line, text, None if text else _why_no_text(line, articles))
        _read_records(article)
        result.articles.append(article)
    return result


def _why_no_text(line: Mapping[str, Any], articles: Path | None) -> str:
    source = line.get("source")
    said = f"its source {source!r} cannot be read" if isinstance(source, str) and source else "the line names no source"
    if articles is not None:
        return f"{said}, and {articles} holds no {line.get('id')}.*"
    return f"{said}; give the folder of article texts with --articles DIR"


def iter_record_dicts(value: Any, path: str = "", *, root: str = "record") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every record (an object with an ``evidence`` list) in an answer, with its path, as grounding names it.

    An answer that is itself a record (a schema of one record type) is named
    ``root``: grounding names it after its model, which a line does not record.
    """
    if isinstance(value, Mapping):
        if isinstance(value.get("evidence"), list):
            yield path or root, value
        for name, item in value.items():
            if name != "evidence":
                yield from iter_record_dicts(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_record_dicts(item, f"{path}[{index}]")


def _entries(line: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    grounding = line.get("grounding")
    if not isinstance(grounding, Mapping) or not isinstance(grounding.get("records"), list):
        return None
    return [
        entry for entry in grounding["records"] if isinstance(entry, Mapping) and isinstance(entry.get("path"), str)
    ]


def _spans_of(entry: Mapping[str, Any], excerpts: list[Any]) -> list[Evidence]:
    evidence = []
    spans = entry.get("evidence")
    for number, item in enumerate(spans if isinstance(spans, list) else [], start=1):
        span: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
        excerpt = excerpts[number - 1] if number <= len(excerpts) and isinstance(excerpts[number - 1], str) else None
        start, end = span.get("start"), span.get("end")
        evidence.append(
            Evidence(
                number,
                excerpt,
                start if isinstance(start, int) and not isinstance(start, bool) else None,
                end if isinstance(end, int) and not isinstance(end, bool) else None,
                str(span.get("status") or "unknown"),
            )
        )
    return evidence


def _problems(entry: Mapping[str, Any]) -> list[str]:
    problems = entry.get("problems")
    return [str(p) for p in problems] if isinstance(problems, list) else []


def _read_records(article: LineArticle) -> None:
    line, text = article.line, article.text
    entries = _entries(line)
    if not article.ok:
        # A failed line keeps no record; GroundingFailed reports the records that failed it.
        for entry in entries or []:
            if entry.get("grounded") is False or _problems(entry):
                view = RecordView(entry["path"], {}, _spans_of(entry, []), _problems(entry), grounded=False)
                article.failed_grounding.append(view)
        _check_offsets(article, [e for r in article.failed_grounding for e in r.evidence])
        return
    kept = {e["path"]: e for e in entries or [] if not e.get("dropped")}
    aligner = Aligner(text) if text else None
    ways: set[str] = set()
    # The grounding's name for an answer that is a record: its one path without a field or an index.
    root = next((p for p in kept if not re.search(r"[.\[]", p)), "record")
    for path, record in iter_record_dicts(article.root, root=root):
        excerpts = list(record.get("evidence") or [])
        fields = {k: v for k, v in record.items() if k != "evidence"}
        found = kept.get(path)
        if found is not None:
            problems = _problems(found)
            grounded = found.get("grounded") is not False and not problems
            view = RecordView(path, fields, _spans_of(found, excerpts), problems, grounded)
        else:
            view = _located_here(path, fields, excerpts, aligner)
        ways.add(view.located_by)
        article.records.append(view)
    for entry in entries or []:
        if entry.get("dropped"):
            problems = _problems(entry)
            article.dropped.append(
                RecordView(entry["path"], {}, _spans_of(entry, []), problems, grounded=False, dropped=True)
            )
    article.located_by = None if not ways else ways.pop() if len(ways) == 1 else "mixed"
    _check_offsets(article, [e for r in (*article.records, *article.dropped) for e in r.evidence])


def _located_here(path: str, fields: dict[str, Any], excerpts: list[Any], aligner: Aligner | None) -> RecordView:
    """A record the line carries no grounding for: its excerpts located in the text, names and quotes unchecked."""
    evidence, problems = [], []
    for number, excerpt in enumerate(excerpts, start=1):
        if not isinstance(excerpt, str):
            continue
        if aligner is None:
            evidence.append(Evidence(number, excerpt, None, None, "unknown"))
            continue
        span = aligner.align(excerpt)
        evidence.append(Evidence(number, excerpt, span.start, span.end, span.status.value))
        if span.status is AlignmentStatus.NOT_FOUND:
            problems.append(f"evidence {number} {_quote(excerpt)} is not in the article")
        elif span.status is AlignmentStatus.FUZZY:
            problems.append(f"evidence {number} {_quote(excerpt)} differs from the article")
    if aligner is None:
        return RecordView(path, fields, evidence, [], grounded=None, located_by="none")
    return RecordView(path, fields, evidence, problems, grounded=not problems, located_by="report")


def _quote(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _check_offsets(article: LineArticle, evidence: list[Evidence]) -> None:
    text = article.text
    if text is None:
        return
    for item in evidence:
        if item.start is None or item.end is None:
            continue
        if not 0 <= item.start < item.end <= len(text):
            article.offset_mismatches += 1
            continue
        item.article_says = text[item.start : item.end]
        if item.status == "exact" and item.excerpt is not None and item.article_says != item.excerpt.strip():
            article.offset_mismatches += 1


@dataclass(slots=True)
class RunTotals:
    """The run at a glance, counted from the lines as ``structx extract``'s summary counts them."""

    lines: int = 0
    ok: int = 0
    failed: int = 0
    errors_by_type: Counter[str] = field(default_factory=Counter)
    records_by_type: Counter[str] = field(default_factory=Counter)
    records: int = 0
    grounded: int = 0
    ungrounded: int = 0
    dropped: int = 0
    located_here: int = 0  # records whose line carries no grounding: located by the report
    unchecked: int = 0  # records with neither grounding in the line nor the article text
    excerpts_by_status: Counter[str] = field(default_factory=Counter)
    highlights: int = 0
    without_text: int = 0
    usage: Usage = field(default_factory=Usage)
    lines_with_usage: int = 0
    requests: int = 0
    cost: float | None = None
    priced_lines: int = 0
    unpriced_models: Counter[str] = field(default_factory=Counter)  # model (or "model not recorded") -> lines
    models: Counter[str] = field(default_factory=Counter)

    @property
    def excerpts(self) -> int:
        return sum(self.excerpts_by_status.values())


def run_totals(articles: list[LineArticle], prices: Mapping[str, tuple[float, float]] | None) -> RunTotals:
    totals = RunTotals()
    for article in articles:
        totals.lines += 1
        totals.without_text += article.text is None
        if article.ok:
            totals.ok += 1
            totals.records_by_type.update(article.by_type())
            totals.records += len(article.records)
            totals.ungrounded += len(article.ungrounded)
            totals.grounded += sum(r.grounded is True for r in article.records)
            totals.unchecked += sum(r.grounded is None for r in article.records)
            totals.dropped += len(article.dropped)
            totals.located_here += sum(r.located_by == "report" for r in article.records)
            totals.excerpts_by_status.update(e.status for r in article.records for e in r.evidence)
            totals.highlights += article.drawn_spans
        else:
            totals.failed += 1
            error = article.error
            totals.errors_by_type[error[0] if error else "error"] += 1
        if article.model:
            totals.models[article.model] += 1
        totals.requests += _int(article.line.get("requests"))
        usage = article.usage
        if usage is None:
            continue
        totals.lines_with_usage += 1
        totals.usage = totals.usage + usage
        if usage.total_tokens == 0:
            continue
        cost = estimate_cost(article.model, usage, prices) if article.model else None
        if cost is None:
            totals.unpriced_models[article.model or "model not recorded"] += 1
        else:
            totals.cost = (totals.cost or 0.0) + cost
            totals.priced_lines += 1
    return totals
