"""Scoring predictions against gold answers: precision, recall and F1 per record type and key field.

Matching rules (the same for every run, so figures compare):

* **records** of one type in one article are paired one to one, as many
  pairs as the type's *match rule* (below) allows, preferring pairs that
  agree on more key fields. Unpaired predictions are false positives,
  unpaired gold records false negatives. An article predicted twice is
  scored once (the first line).
* **names** match when the transliteration-tolerant tokens of one (the same
  tokens grounding uses: Qaani = Qani, Kataib Hezbollah = Kata'ib Hizbullah)
  are contained in the other's, each token of the shorter name matching a
  different token of the longer ("Qaani" matches "Esmail Qaani"), and, when
  both names have a given name (two tokens or more), the tokens before the
  surname agree: Esmail Qaani = General Ismail Qaani, but Hisham al-Hashemi is
  not Muhammad al-Hashemi, nor Tariq al-Shammari Ihssan Shammari. A surname
  alone ("al-Shammari") matches any name that contains it.
* **dates** match at the precision the gold gives: ISO start (and end, when
  the gold has one) must be equal; a gold date with no ISO form must be
  written the same, up to normalization ("June 2021" is not "June 2022").
* **quotes** are compared as words: normalized text (quote marks, dashes,
  case and diacritics set aside), punctuation dropped. A predicted quote no
  longer than the gold quote matches when rapidfuzz's ``ratio`` of the two
  word sequences is at least ``TEXT_THRESHOLD`` (80 of 100: one word in five
  changed, two in ten, or a word dropped). A longer prediction matches when some
  passage of it, as many words long as the gold quote, scores that much
  against it: a prediction that holds the gold quote plus the sentence after
  it (or the words before it) matches. A fragment of the gold quote does not
  match the whole, "will disarm" does not match "will not disarm" in a short
  quote, and a different quote that shares a few words does not match.
* **participant lists** match when at least half of the union is matched by name
  (Jaccard >= 0.5).

Match rules: a visit by its visitor; a meeting by its participants; a
militia stance by militia and topic; a quoted source by the speaker's name
and the quote.

A key field counts toward precision when the prediction sets it, toward
recall when the gold sets it, and is correct when both set it in a paired
record and the values match. With nothing predicted, precision is 0 when the
gold has records (1 when neither has any); likewise for recall.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from rapidfuzz import fuzz

from structx._errors import InputError, SchemaError
from structx._schemas import DEFAULT_SCHEMA_REF, load_schema, schema_fingerprint
from structx._text import name_tokens, normalize
from structx_schemas import ArticleExtraction

__all__ = ["TEXT_THRESHOLD", "EvaluationReport", "Score", "evaluate", "load_gold", "load_predictions"]

TEXT_THRESHOLD = 80.0
PARTICIPANT_JACCARD = 0.5
_WORD = re.compile(r"\w+")


@dataclass(slots=True)
class Score:
    """True positives, false positives and false negatives, and what follows from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else (1.0 if self.fn == 0 else 0.0)

    @property
    def recall(self) -> float:
        expected = self.tp + self.fn
        return self.tp / expected if expected else (1.0 if self.fp == 0 else 0.0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


# -- value comparison --------------------------------------------------------------


def names_match(a: str | None, b: str | None) -> bool:
    """Whether two names can be the same person or body (see the module docstring)."""
    if not a or not b:
        return False
    ta, tb = name_tokens(a), name_tokens(b)
    if not ta or not tb:
        return normalize(a) == normalize(b)
    small, large = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    rest = list(large)
    for token in small:  # each token of the shorter name is a different token of the longer
        if token not in rest:
            return False
        rest.remove(token)
    if len(small) == 1:  # a surname alone ("al-Shammari") may be anyone of that name
        return True
    # Both names have a given name: the one before the surname must agree
    # (Esmail / Ismail Qaani do; Hisham and Muhammad al-Hashemi do not).
    surname = max(i for i, token in enumerate(large) if token == small[-1])
    return surname > 0 and large[surname - 1] == small[-2]


def _words(text: str) -> list[str]:
    """The words of a quote: normalized, apostrophes inside words removed, punctuation and quote marks dropped."""
    return _WORD.findall(normalize(text).replace("'", ""))


def quote_overlap(predicted: str, gold: str) -> float:
    """How much of the gold quote the predicted quote holds, 0-100 (see the module docstring)."""
    p, g = _words(predicted), _words(gold)
    if not p or not g:
        return 0.0
    if len(p) <= len(g):
        return float(fuzz.ratio(p, g))
    # Longer than the gold: the best passage of the gold's length decides,
    # so words before or after the gold quote cost nothing.
    size = len(g)
    return max(float(fuzz.ratio(g, p[start : start + size])) for start in range(len(p) - size + 1))


def texts_match(predicted: str | None, gold: str | None) -> bool:
    """Whether a predicted quote is the gold quote (order matters: predicted, then gold)."""
    if not predicted or not gold:
        return False
    return quote_overlap(predicted, gold) >= TEXT_THRESHOLD


def dates_match(predicted: Any, gold: Any) -> bool:
    if predicted is None or gold is None:
        return False
    if gold.start is not None:
        return bool(predicted.start == gold.start and (gold.end is None or predicted.end == gold.end))
    return bool(predicted.text) and normalize(predicted.text) == normalize(gold.text)


def participants_match(predicted: list[Any], gold: list[Any]) -> bool:
    if not predicted or not gold:
        return False
    unmatched = list(gold)
    matched = 0
    for person in predicted:
        for candidate in unmatched:
            if names_match(person.name, candidate.name):
                unmatched.remove(candidate)
                matched += 1
                break
    union = len(predicted) + len(gold) - matched
    return matched / union >= PARTICIPANT_JACCARD


def _place(visit: Any) -> tuple[str | None, str | None]:
    return visit.city, visit.country


def places_match(predicted: tuple[str | None, str | None], gold: tuple[str | None, str | None]) -> bool:
    if gold[0]:
        return names_match(predicted[0], gold[0])
    return names_match(predicted[1], gold[1])


def _equal(a: Any, b: Any) -> bool:
    return a is not None and a == b


@dataclass(frozen=True)
class KeyField:
    get: Callable[[Any], Any]
    same: Callable[[Any, Any], bool]

    def present(self, record: Any) -> bool:
        value = self.get(record)
        if isinstance(value, tuple):
            return any(value)
        return value not in (None, "", [])


@dataclass(frozen=True)
class TargetRules:
    fields: dict[str, KeyField]
    match: Callable[[Any, Any], bool]


TARGETS: dict[str, TargetRules] = {
    "visits": TargetRules(
        fields={
            "who": KeyField(lambda r: r.visitor, names_match),
            "where": KeyField(_place, places_match),
            "when": KeyField(lambda r: r.when, dates_match),
        },
        match=lambda p, g: names_match(p.visitor, g.visitor),
    ),
    "meetings": TargetRules(
        fields={
            "who": KeyField(lambda r: r.participants, participants_match),
            "where": KeyField(lambda r: r.place, names_match),
            "when": KeyField(lambda r: r.when, dates_match),
        },
        match=lambda p, g: participants_match(p.participants, g.participants),
    ),
    "militia_stances": TargetRules(
        fields={
            "militia": KeyField(lambda r: r.militia, names_match),
            "topic": KeyField(lambda r: r.topic, _equal),
            "position": KeyField(lambda r: r.position, _equal),
            "speaker": KeyField(lambda r: r.speaker, names_match),
        },
        match=lambda p, g: names_match(p.militia, g.militia) and p.topic == g.topic,
    ),
    "quoted_sources": TargetRules(
        fields={
            "speaker": KeyField(lambda r: r.name, names_match),
            "quote": KeyField(lambda r: r.quote, texts_match),
            "outlet": KeyField(lambda r: r.outlet, names_match),
        },
        match=lambda p, g: names_match(p.name, g.name) and texts_match(p.quote, g.quote),
    ),
}


# -- scoring --------------------------------------------------------------------------


@dataclass(slots=True)
class TargetScore:
    records: Score = field(default_factory=Score)
    fields: dict[str, Score] = field(default_factory=dict)


@dataclass(slots=True)
class EvaluationReport:
    targets: dict[str, TargetScore] = field(default_factory=dict)
    articles_scored: int = 0
    articles_failed: list[str] = field(default_factory=list)
    articles_missing: list[str] = field(default_factory=list)
    predictions_without_gold: list[str] = field(default_factory=list)
    duplicate_predictions: list[str] = field(default_factory=list)
    excerpts: dict[str, int] = field(default_factory=dict)
    records_grounded: int = 0
    records_checked: int = 0

    @property
    def overall(self) -> Score:
        total = Score()
        for target in self.targets.values():
            total.add(target.records)
        return total

    def grounding_rates(self) -> dict[str, float]:
        total = sum(self.excerpts.values())
        return {status: (count / total if total else 0.0) for status, count in self.excerpts.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "articles": {
                "scored": self.articles_scored,
                "failed": self.articles_failed,
                "missing_predictions": self.articles_missing,
                "predictions_without_gold": self.predictions_without_gold,
                "duplicate_predictions": self.duplicate_predictions,
            },
            "overall": self.overall.to_dict(),
            "targets": {
                name: {
                    "records": target.records.to_dict(),
                    "fields": {key: score.to_dict() for key, score in target.fields.items()},
                }
                for name, target in self.targets.items()
            },
            "grounding": {
                "excerpts": self.excerpts,
                "rates": {k: round(v, 4) for k, v in self.grounding_rates().items()},
                "records_grounded": self.records_grounded,
                "records_checked": self.records_checked,
            },
            "rules": {"text_threshold": TEXT_THRESHOLD, "participant_jaccard": PARTICIPANT_JACCARD},
        }


def score_article(predicted: ArticleExtraction | None, gold: ArticleExtraction, report: EvaluationReport) -> None:
    for name, rules in TARGETS.items():
        target = report.targets.setdefault(name, TargetScore(fields={key: Score() for key in rules.fields}))
        gold_records = list(getattr(gold, name))
        predicted_records = list(getattr(predicted, name)) if predicted is not None else []
        pairs = _pair(predicted_records, gold_records, rules)
        target.records.tp += len(pairs)
        target.records.fp += len(predicted_records) - len(pairs)
        target.records.fn += len(gold_records) - len(pairs)
        for key, key_field in rules.fields.items():
            score = target.fields[key]
            correct = sum(
                1
                for p, g in pairs
                if key_field.present(p) and key_field.present(g) and key_field.same(key_field.get(p), key_field.get(g))
            )
            score.tp += correct
            score.fp += sum(key_field.present(p) for p in predicted_records) - correct
            score.fn += sum(key_field.present(g) for g in gold_records) - correct


def _pair(predicted: list[Any], gold: list[Any], rules: TargetRules) -> list[tuple[Any, Any]]:
    """A maximum one-to-one pairing (augmenting paths), trying better-agreeing pairs first."""
    options: list[list[int]] = []
    for p in predicted:
        scored = [
            (-sum(f.present(p) and f.present(g) and f.same(f.get(p), f.get(g)) for f in rules.fields.values()), j)
            for j, g in enumerate(gold)
            if rules.match(p, g)
        ]
        options.append([j for _, j in sorted(scored)])
    owner: dict[int, int] = {}  # gold index -> predicted index

    def assign(i: int, visited: set[int]) -> bool:
        for j in options[i]:
            if j in visited:
                continue
            visited.add(j)
            if j not in owner or assign(owner[j], visited):
                owner[j] = i
                return True
        return False

    for i in range(len(predicted)):
        assign(i, set())
    return [(predicted[i], gold[j]) for j, i in sorted(owner.items(), key=lambda item: item[1])]


def evaluate(
    predictions: Iterable[dict[str, Any]],
    gold: dict[str, ArticleExtraction],
    *,
    schema: type[BaseModel] | str = ArticleExtraction,
) -> EvaluationReport:
    """Score prediction lines (as ``structx extract`` writes them) against gold answers by article id.

    ``schema`` is the schema the predictions were extracted with. Match rules
    are declared for the bundled pack's ArticleExtraction only: any other
    schema raises SchemaError; a prediction that does not fit it, InputError.
    """
    target = load_schema(schema)
    if schema_fingerprint(target) != schema_fingerprint(ArticleExtraction):
        name = schema if isinstance(schema, str) else schema.__qualname__
        raise SchemaError(
            f"structx eval scores the bundled schema pack only ({DEFAULT_SCHEMA_REF}, whose match rules are "
            f"declared in structx/_evaluation.py); {name} has no match rules"
        )
    report = EvaluationReport(excerpts={"exact": 0, "normalized": 0, "fuzzy": 0, "not_found": 0})
    seen: set[str] = set()
    for line in predictions:
        article_id = str(line.get("id"))
        if article_id not in gold:
            report.predictions_without_gold.append(article_id)
            continue
        if article_id in seen:
            report.duplicate_predictions.append(article_id)
            continue
        seen.add(article_id)
        report.articles_scored += 1
        predicted: ArticleExtraction | None = None
        if line.get("status") == "ok":
            try:
                predicted = ArticleExtraction.model_validate(line.get("records"))
            except ValidationError as exc:
                raise InputError(_not_the_bundled_schema(article_id, exc)) from None
            grounding = line.get("grounding") or {}
            for status, count in (grounding.get("excerpts") or {}).items():
                report.excerpts[status] = report.excerpts.get(status, 0) + int(count)
            records = grounding.get("records") or []
            report.records_checked += len(records)
            report.records_grounded += sum(bool(r.get("grounded")) for r in records)
        else:
            report.articles_failed.append(article_id)
        score_article(predicted, gold[article_id], report)
    for article_id in sorted(set(gold) - seen):
        report.articles_missing.append(article_id)
        score_article(None, gold[article_id], report)
    return report


def _not_the_bundled_schema(article_id: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "records"
    return (
        f"the prediction for {article_id!r} is not an {ArticleExtraction.__name__} ({where}: {first['msg']}): "
        f"was it extracted with another schema? structx eval scores the bundled pack ({DEFAULT_SCHEMA_REF}) only"
    )


def load_gold(directory: Path) -> dict[str, ArticleExtraction]:
    """``<article id>.json`` files, each an ArticleExtraction.

    Subfolders are part of the id, as they are for the articles
    (``gold/iraq/a.json`` answers the article ``iraq/a``).
    """
    if not directory.is_dir():
        raise InputError("gold directory does not exist", path=directory)
    gold = {}
    for path in sorted(directory.rglob("*.json")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):  # hidden, as for articles
            continue
        article_id = relative.with_suffix("").as_posix()
        try:
            gold[article_id] = ArticleExtraction.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read it: {exc.strerror}", path=path) from None
        except ValueError as exc:
            raise InputError(f"not a valid gold answer: {exc}", path=path) from None
    if not gold:
        raise InputError("no gold answers (*.json) in the directory", path=directory)
    return gold


def load_predictions(path: Path) -> list[dict[str, Any]]:
    """The lines of a ``structx extract`` output file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=path) from None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number} is not JSON ({exc.msg})", path=path) from None
        if not isinstance(line, dict) or "id" not in line or "status" not in line:
            raise InputError(f"line {number} is not a structx result line (needs id and status)", path=path)
        lines.append(line)
    return lines
