"""How well grounding tells true excerpts from altered ones, measured on the gold excerpts.

True excerpts, and the same excerpts with harmless differences (straight or
curly quotes, single quote marks for double, doubled spaces, letter case), must be accepted (found exactly
or up to normalization). Fabricated or altered ones (a changed name, a
changed number, a sentence from another article) must be rejected.
"""

from __future__ import annotations

import re

from structx import Aligner
from tests.cassettes import ROOT, seed_answer, seed_paths

_OTHER_NAMES = ["Nasrallah", "Barzani", "Zarif", "Maliki", "Sistani"]


def _gold_excerpts() -> dict[str, list[str]]:
    excerpts: dict[str, list[str]] = {}
    for path in seed_paths():
        answer = seed_answer(path.stem)
        records = [*answer.visits, *answer.meetings, *answer.militia_stances, *answer.quoted_sources]
        texts = [e for r in records for e in r.evidence] + [q.quote for q in answer.quoted_sources]
        excerpts[path.stem] = list(dict.fromkeys(texts))
    return excerpts


def _harmless(excerpt: str) -> list[str]:
    swapped = excerpt.translate(str.maketrans({"’": "'", "'": "’", "“": '"', "”": '"', '"': "“"}))
    single = excerpt.translate(str.maketrans({'"': "'", "“": "‘", "”": "’"}))  # 'special message'
    variants = [swapped, single, excerpt.replace(" ", "  "), excerpt.upper(), excerpt.lower()]
    return [v for v in variants if v != excerpt]


def _altered(excerpt: str, other_sentences: list[str], index: int) -> list[str]:
    altered = []
    names = re.findall(r"\b[A-Z][a-z]{3,}\b", excerpt)
    if names:
        target = names[len(names) // 2]
        replacement = next(n for n in _OTHER_NAMES[index % 5 :] + _OTHER_NAMES if n != target)
        altered.append(re.sub(rf"\b{target}\b", replacement, excerpt, count=1))
    digits = re.search(r"\d", excerpt)
    if digits:
        changed = str((int(digits.group()) + 3) % 10)
        altered.append(excerpt[: digits.start()] + changed + excerpt[digits.end() :])
    altered.append(other_sentences[index % len(other_sentences)])
    return altered


def test_grounding_accepts_true_excerpts_and_rejects_fabricated_ones() -> None:
    gold = _gold_excerpts()
    accepted_true = total_true = rejected_false = total_false = 0
    misjudged: list[tuple[str, str, str]] = []
    for stem, excerpts in gold.items():
        article = (ROOT / "seeds" / f"{stem}.txt").read_text(encoding="utf-8")
        others = [e for other, texts in gold.items() if other != stem for e in texts if e not in article]
        for index, excerpt in enumerate(excerpts):
            for candidate in [excerpt, *_harmless(excerpt)]:
                total_true += 1
                span = Aligner(article).align(candidate)
                accepted_true += span.supports
                if not span.supports:
                    misjudged.append(("rejected", stem, candidate))
            for candidate in _altered(excerpt, others, index):
                total_false += 1
                span = Aligner(article).align(candidate)
                rejected_false += not span.supports
                if span.supports:
                    misjudged.append(("accepted", stem, candidate))
    true_rate, false_rate = accepted_true / total_true, rejected_false / total_false
    print(
        f"\ntrue or harmlessly varied: {accepted_true}/{total_true} accepted ({true_rate:.1%}); "
        f"fabricated or altered: {rejected_false}/{total_false} rejected ({false_rate:.1%})"
    )
    assert total_true >= 300 and total_false >= 150
    assert true_rate >= 0.99, misjudged[:10]
    assert false_rate >= 0.95, misjudged[:10]
