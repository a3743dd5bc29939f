"""Entity resolution measured against an alias gold file (``eval/entities.json``).

The gold file lists clusters of surface forms that are one entity, and pairs
of forms that must stay apart::

    {"clusters": [{"entity": "Esmail Qaani", "type": "person", "forms": ["Esmail Qaani", "Qani", ...]},
                  {"entity": "Tariq al-Shammari", "type": "person",
                   "forms": ["Tariq al-Shammari", {"form": "al-Shammari", "articles": ["000_57f720f08a0b9acd"]}]},
                  {"entity": "a senior Iraqi official", "type": "anonymous", "per_article": true,
                   "forms": ["a senior Iraqi official"]}],
     "apart": [["Hisham al-Hashemi", "Muhammad al-Hashemi"], ...]}

**Matching mentions to gold forms.** A mention matches a form when its
surface and the form are equal once normalized as grounding normalizes text
(letter case, diacritics, quote marks, dashes and whitespace set aside;
surrounding punctuation dropped). A form given with ``articles`` matches only
mentions in those articles, and wins over the same form given without. A
cluster with ``per_article`` (anonymous sources and descriptions are always
so) is one entity per article: "a senior Iraqi official" in two articles is
two gold entities. Mentions that match no form are left out of the scores and
counted.

**Scores**, over the matched mentions: *pairwise* precision is the share of
mention pairs put in one entity that the gold puts in one cluster, recall the
share of the gold's same-cluster pairs put in one entity. *B-cubed* averages,
over mentions, the share of the mention's predicted entity that is in its
gold cluster (precision) and the share of its gold cluster that is in its
predicted entity (recall). *Apart pairs* are checked wherever both forms were
mentioned: a violation is an entity holding both.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structx._errors import InputError
from structx._knowledge._rows import MentionRow
from structx._text import normalize

__all__ = ["AliasGold", "EntityScores", "evaluate_entities", "load_alias_gold"]

_ANONYMOUS_TYPES = frozenset({"anonymous", "description"})


def _form_key(text: str) -> str:
    return normalize(text).strip(" .,;:!?\"'()[]")


@dataclass(frozen=True, slots=True)
class AliasGold:
    """Which gold entity each surface form is (by article where the gold says so), and the pairs kept apart."""

    #: normalized form -> cluster index, for forms good in every article
    forms: dict[str, int]
    #: (article id, normalized form) -> cluster index
    scoped_forms: dict[tuple[str, str], int]
    per_article: frozenset[int]
    names: tuple[str, ...]
    apart: tuple[tuple[str, str], ...]

    def label(self, article_id: str, surface: str) -> str | None:
        """The gold entity a mention belongs to, or None when its form is not in the gold."""
        key = _form_key(surface)
        cluster = self.scoped_forms.get((article_id, key), self.forms.get(key))
        if cluster is None:
            return None
        return f"{cluster}@{article_id}" if cluster in self.per_article else str(cluster)


def load_alias_gold(path: Path) -> AliasGold:
    """Read an alias gold file; an InputError naming it when it is not one (see the module docstring)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read it: {exc}", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg})", path=path) from None
    clusters = data.get("clusters") if isinstance(data, dict) else None
    if not isinstance(clusters, list):
        raise InputError('not an alias gold file: needs a "clusters" list', path=path)
    forms: dict[str, int] = {}
    scoped: dict[tuple[str, str], int] = {}
    per_article: set[int] = set()
    names: list[str] = []
    for index, cluster in enumerate(clusters):
        if not isinstance(cluster, dict) or not isinstance(cluster.get("forms"), list) or not cluster["forms"]:
            raise InputError(f'cluster {index + 1} needs a non-empty "forms" list', path=path)
        names.append(str(cluster.get("entity") or cluster["forms"][0]))
        if cluster.get("per_article") or cluster.get("type") in _ANONYMOUS_TYPES:
            per_article.add(index)
        for form in cluster["forms"]:
            text, articles = (form, None) if isinstance(form, str) else (form.get("form"), form.get("articles"))
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"cluster {index + 1} ({names[-1]}) has a form that is not text: {form!r}", path=path)
            key = _form_key(text)
            if articles:
                for article_id in articles:
                    previous = scoped.setdefault((str(article_id), key), index)
                    if previous != index:
                        raise InputError(f"{text!r} in {article_id} is in two clusters", path=path)
            else:
                previous = forms.setdefault(key, index)
                if previous != index:
                    raise InputError(
                        f"{text!r} is in two clusters ({names[previous]}, {names[-1]}); give it articles", path=path
                    )
    apart = []
    for pair in data.get("apart") or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise InputError(f"an apart pair is two forms: {pair!r}", path=path)
        apart.append((pair[0], pair[1]))
    return AliasGold(forms, scoped, frozenset(per_article), tuple(names), tuple(apart))


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


@dataclass(slots=True)
class EntityScores:
    """Pairwise and B-cubed scores of entity resolution, and what they were computed on."""

    pairwise: PRF
    bcubed: PRF
    mentions_scored: int
    mentions_not_in_gold: int
    pairs_true: int  # same entity in the prediction and in the gold
    pairs_false: int  # same entity in the prediction, not in the gold
    pairs_missed: int  # same entity in the gold, not in the prediction
    apart_checked: int
    apart_violated: list[tuple[str, str]] = field(default_factory=list)
    false_merges: list[tuple[str, str]] = field(default_factory=list)  # example surfaces
    missed_merges: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairwise": {
                **self.pairwise.to_dict(),
                "true_pairs": self.pairs_true,
                "false_pairs": self.pairs_false,
                "missed_pairs": self.pairs_missed,
            },
            "bcubed": self.bcubed.to_dict(),
            "mentions_scored": self.mentions_scored,
            "mentions_not_in_gold": self.mentions_not_in_gold,
            "apart": {"checked": self.apart_checked, "violated": [list(p) for p in self.apart_violated]},
            "false_merges": [list(p) for p in self.false_merges],
            "missed_merges": [list(p) for p in self.missed_merges],
        }


def _pairs(size: int) -> int:
    return size * (size - 1) // 2


def evaluate_entities(mentions: Sequence[MentionRow], gold: AliasGold) -> EntityScores:
    """Score the entities of ``mentions`` (a dataset's mention rows) against ``gold``."""
    items = []
    unmatched = 0
    for mention in mentions:
        label = gold.label(mention.article_id, mention.surface)
        if label is None:
            unmatched += 1
        else:
            items.append((mention, label))
    predicted = Counter(m.entity_id for m, _ in items)
    expected = Counter(label for _, label in items)
    both = Counter((m.entity_id, label) for m, label in items)
    true_pairs = sum(_pairs(n) for n in both.values())
    predicted_pairs = sum(_pairs(n) for n in predicted.values())
    expected_pairs = sum(_pairs(n) for n in expected.values())
    pairwise = PRF(
        true_pairs / predicted_pairs if predicted_pairs else 1.0,
        true_pairs / expected_pairs if expected_pairs else 1.0,
    )
    if items:
        precision = sum(both[(m.entity_id, label)] / predicted[m.entity_id] for m, label in items) / len(items)
        recall = sum(both[(m.entity_id, label)] / expected[label] for m, label in items) / len(items)
        bcubed = PRF(precision, recall)
    else:
        bcubed = PRF(1.0, 1.0)
    surfaces_of: dict[str, set[str]] = defaultdict(set)
    for mention in mentions:
        surfaces_of[mention.entity_id].add(_form_key(mention.surface))
    checked, violated = 0, []
    mentioned = {_form_key(m.surface) for m in mentions}
    for a, b in gold.apart:
        ka, kb = _form_key(a), _form_key(b)
        if ka in mentioned and kb in mentioned:
            checked += 1
            if any(ka in forms and kb in forms for forms in surfaces_of.values()):
                violated.append((a, b))
    false_merges, missed = _examples(items)
    return EntityScores(
        pairwise, bcubed, len(items), unmatched, true_pairs, predicted_pairs - true_pairs, expected_pairs - true_pairs,
        checked, violated, false_merges, missed,
    )  # fmt: skip


def _examples(items: Sequence[tuple[MentionRow, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Two surfaces for each wrongly joined gold pair and for each gold entity split in two, to show."""
    by_entity: dict[str, dict[str, str]] = defaultdict(dict)  # entity -> gold label -> a surface
    by_label: dict[str, dict[str, str]] = defaultdict(dict)  # gold label -> entity -> a surface
    for mention, label in items:
        by_entity[mention.entity_id].setdefault(label, mention.surface)
        by_label[label].setdefault(mention.entity_id, mention.surface)
    false_merges = [
        (surfaces[0], surface) for labels in by_entity.values() for surfaces in [list(labels.values())]
        for surface in surfaces[1:]
    ]  # fmt: skip
    missed = [
        (surfaces[0], surface) for entities in by_label.values() for surfaces in [list(entities.values())]
        for surface in surfaces[1:]
    ]  # fmt: skip
    return false_merges, missed
