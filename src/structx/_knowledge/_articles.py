"""The knowledge layer's input: result lines, answers in the gold format, and the articles behind them.

The layer works from result lines alone (dicts as ``structx extract`` writes
them), so it runs on results produced anywhere. A line's article text, when it
can be had, gives the mentions their character spans and the resolver the
article's own full names and acronym definitions; it is read from the line's
``source`` (a file, or ``file.jsonl:N`` for a JSONL article), relative to the
current folder or to the results file's folder, or from an ``articles``
folder holding ``<id>.txt``. Without it, spans are None and nothing else is
guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from structx._documents import read_article
from structx._errors import InputError
from structx._evaluation import load_predictions
from structx._knowledge._dates import publication_date
from structx._knowledge._names import article_aliases
from structx._text import NormalizedText, normalize

__all__ = ["Article", "ArticleTexts", "articles_from", "load_answers", "read_result_lines"]

_JSONL_SOURCE = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")


def read_result_lines(path: Path) -> list[dict[str, Any]]:
    """The lines of a results file; an InputError naming the file when it is not one."""
    if path.is_dir():
        raise InputError("is a directory, not a results file (a directory of answers is read as answers)", path=path)
    lines = load_predictions(path)
    if not lines:
        raise InputError("no result lines in the file", path=path)
    for number, line in enumerate(lines, start=1):
        if line.get("status") == "ok" and not isinstance(line.get("records"), dict):
            raise InputError(f"result line {number} has status ok but no records object", path=path)
    return lines


def load_answers(directory: Path, *, articles: Path | None = None) -> list[dict[str, Any]]:
    """Result lines for a folder of answers in the gold format (``<article id>.json``, one object each).

    Each becomes an ``ok`` line whose ``records`` is the answer; its
    ``source`` is the article in ``articles`` (``<id>.txt`` or any
    ``<id>.*``) when there is one, so that mentions get spans.
    """
    if not directory.is_dir():
        raise InputError("no such directory of answers", path=directory)
    lines = []
    for path in sorted(directory.rglob("*.json")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        try:
            answer = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read it: {exc}", path=path) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON ({exc.msg})", path=path) from None
        if not isinstance(answer, dict):
            raise InputError("not an answer (a JSON object of records)", path=path)
        article_id = relative.with_suffix("").as_posix()
        source = _article_file(articles, article_id) if articles is not None else None
        lines.append({"id": article_id, "source": str(source) if source else None, "status": "ok", "records": answer})
    if not lines:
        raise InputError("no answers (*.json) in the directory", path=directory)
    return lines


def _article_file(articles: Path, article_id: str) -> Path | None:
    exact = articles / f"{article_id}.txt"
    if exact.is_file():
        return exact
    folder = (articles / article_id).parent
    stem = Path(article_id).name
    return next((p for p in sorted(folder.glob(f"{stem}.*")) if p.is_file()), None) if folder.is_dir() else None


@dataclass
class Article:
    """One ``ok`` result line with what can be known of its article."""

    id: str
    line: Mapping[str, Any]
    text: str | None
    order: int  # position among the inputs, for stable output
    _evidence: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def records(self) -> Mapping[str, Any]:
        records = self.line.get("records")
        return records if isinstance(records, Mapping) else {}

    @cached_property
    def published(self) -> dt.date | None:
        return publication_date(self.line, self.text)

    @cached_property
    def normalized(self) -> NormalizedText | None:
        return NormalizedText(self.text) if self.text else None

    @cached_property
    def aliases(self) -> list[tuple[str, str]]:
        """Pairs of names the article gives for one thing (acronyms, glosses, "known as")."""
        return article_aliases(self.text) if self.text else []

    @cached_property
    def outlet(self) -> str | None:
        outlet = self.records.get("outlet")
        return outlet if isinstance(outlet, str) and outlet.strip() else None

    def evidence_spans(self, path: str, record: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Where the record's evidence stands in the article: from the line's grounding, else found in the text."""
        if path in self._evidence:
            return self._evidence[path]
        spans: list[tuple[int, int]] = []
        grounding = self.line.get("grounding")
        for entry in (grounding.get("records") or []) if isinstance(grounding, Mapping) else []:
            if isinstance(entry, Mapping) and entry.get("path") == path and not entry.get("dropped"):
                for span in entry.get("evidence") or []:
                    if (
                        isinstance(span, Mapping)
                        and isinstance(span.get("start"), int)
                        and isinstance(span.get("end"), int)
                    ):
                        spans.append((span["start"], span["end"]))
        if not spans:
            for excerpt in record.get("evidence") or []:
                found = self.find(excerpt) if isinstance(excerpt, str) else None
                if found:
                    spans.append(found)
        self._evidence[path] = spans
        return spans

    def find(self, phrase: str, within: Iterable[tuple[int, int]] = ()) -> tuple[int, int] | None:
        """The span of ``phrase`` in the article (up to normalization, on word boundaries), inside ``within`` first."""
        text = self.normalized
        needle = normalize(phrase).strip()
        if text is None or not needle:
            return None
        occurrences = []
        start = text.text.find(needle)
        while start >= 0:
            end = start + len(needle)
            before = text.text[start - 1] if start else " "
            after = text.text[end] if end < len(text.text) else " "
            if not before.isalnum() and not after.isalnum():
                occurrences.append(text.original_span(start, end))
            start = text.text.find(needle, start + 1)
        if not occurrences:
            return None
        for low, high in within:
            inside = next((o for o in occurrences if low <= o[0] and o[1] <= high), None)
            if inside:
                return inside
        return occurrences[0]


class ArticleTexts:
    """Reads each article once: a file, a line of a JSONL file, or ``<articles>/<id>.*``."""

    def __init__(self, articles: Path | None) -> None:
        self.articles = articles
        self._jsonl: dict[Path, list[str]] = {}

    def text(self, line: Mapping[str, Any], base: Path | None) -> str | None:
        """The text of the line's article, looked for relative to the current folder, then to ``base``."""
        source = line.get("source")
        if isinstance(source, str) and source:
            for folder in (None, base):
                found = self._from_source(Path(source) if folder is None else folder / source)
                if found is not None:
                    return found
            match = _JSONL_SOURCE.match(source)
            if match:
                for folder in (None, base):
                    path = Path(match["file"]) if folder is None else folder / match["file"]
                    found = self._jsonl_text(path, int(match["line"]))
                    if found is not None:
                        return found
        if self.articles is not None:
            found_file = _article_file(self.articles, str(line.get("id")))
            if found_file is not None:
                return self._from_source(found_file)
        return None

    @staticmethod
    def _from_source(path: Path) -> str | None:
        if not path.is_file():
            return None
        try:
            return read_article(path).text
        except InputError:
            return None

    def _jsonl_text(self, path: Path, number: int) -> str | None:
        if path not in self._jsonl:
            if not path.is_file():
                return None
            try:
                self._jsonl[path] = path.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                self._jsonl[path] = []
        rows = self._jsonl[path]
        if not 0 < number <= len(rows):
            return None
        try:
            record = json.loads(rows[number - 1])
        except json.JSONDecodeError:
            return None
        text = record.get("text") if isinstance(record, dict) else None
        return text if isinstance(text, str) else None


@dataclass(slots=True)
class Inputs:
    """The ``ok`` lines as articles, and what was skipped."""

    articles: list[Article]
    error_lines: int
    duplicate_ids: list[str]


def load_lines(
    items: Iterable[Mapping[str, Any] | Path | str], *, articles: Path | None = None
) -> list[tuple[Mapping[str, Any], Path | None]]:
    """Result lines, results files (JSONL) and folders of answers, as lines.

    Each line comes with the folder its ``source`` is relative to (a results
    file's folder), or None.
    """
    loaded: list[tuple[Mapping[str, Any], Path | None]] = []
    for item in items:
        if isinstance(item, Mapping):
            loaded.append((item, None))
            continue
        if not isinstance(item, str | Path):
            raise TypeError(f"an input is a result line (dict) or a path, not {type(item).__name__}")
        path = Path(item)
        if path.is_dir():
            loaded.extend((line, None) for line in load_answers(path, articles=articles))
        else:
            loaded.extend((line, path.parent) for line in read_result_lines(path))
    return loaded


def articles_from(items: Iterable[Mapping[str, Any] | Path | str], *, articles: Path | None = None) -> Inputs:
    """Result lines, results files (JSONL) and folders of answers, read into articles.

    Lines whose status is not ``ok`` are counted and skipped; an article id
    seen twice keeps its first line.
    """
    reader = ArticleTexts(articles)
    loaded = load_lines(items, articles=articles)
    result = Inputs([], 0, [])
    seen: set[str] = set()
    for line, base in loaded:
        if line.get("status") != "ok":
            result.error_lines += 1
            continue
        article_id = str(line.get("id"))
        if article_id in seen:
            result.duplicate_ids.append(article_id)
            continue
        seen.add(article_id)
        result.articles.append(Article(article_id, line, reader.text(line, base), len(result.articles)))
    return result
