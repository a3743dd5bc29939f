"""Comparing two names: the same entity, not the same, or a pair the rules cannot settle.

Every comparison answers with a :class:`Relation`, and entity resolution
(``_entities``) acts on it: ``SAME`` is evidence to merge, ``COMPATIBLE`` and
``MAYBE`` are no evidence either way (the pair stays apart and is listed as
undecided), ``DIFFERENT`` forbids the two from sharing an entity even through
a chain of other names. Why each rule exists:

* **Tokens, transliteration-tolerant.** Names are cut into tokens as grounding
  cuts them (:func:`structx._text.name_tokens`: diacritics, case, apostrophes
  and particles such as al-/bin/abu set aside, consonant skeletons), after
  folding spellings that stand for one Arabic or Persian letter (gh/q, dh/z,
  w/v, ph/f), so Qaani / Qani / Ghaani, Hezbollah / Hizbullah, Khazali /
  Khazaali and Ameri / Amiri agree. The skeleton alone is too loose (Hassan
  and Hussein, Muhammad and Mahmoud share one), so two tokens are the same
  only when rapidfuzz also finds the spellings close (``ratio`` >= 70); a
  shared skeleton with distant spellings is ``MAYBE``. Tokens with different
  skeletons are the same only as a typo of a long word (``ratio`` >= 85,
  Mobilization / Mobilisation).
* **People.** Titles and honorifics in front of a name (General, Grand
  Ayatollah, Mr., Prime Minister) are not part of it. Two full names are the
  same person when the first and the last tokens agree and the shorter name's
  middle tokens appear, in order, in the longer's (Muhammad al-Sadr may be
  Muhammad Muhammad Sadiq al-Sadr). Two different given names under one
  surname are two people (Hisham / Muhammad al-Hashemi, Tariq al-Shammari /
  Ihssan Shammari, Muqtada / Muhammad Muhammad Sadiq al-Sadr): ``DIFFERENT``.
  A surname alone is only ``COMPATIBLE`` with a full name: it may be anyone of
  that name, so it merges only through the article's own full form (see
  ``_entities``).
* **Organisations.** The same tokens in any order are the same body, after
  English glosses of common Arabic organisational words (kataib = brigades,
  harakat = movement, ...), so "Hezbollah Brigades" is "Kataib Hezbollah".
  An acronym of three letters or more is the name whose initials it spells
  (AAH = Asaib Ahl al-Haq, with or without the function words); a two-letter
  one only where an article defines it. "X of Y" and "Y's X" are read as "Y X"
  and an owner in the possessive ("Iran's") is set aside unless both names have
  one. Two names sharing their last two tokens or more (the head, with a
  token that is not a generic word like "force") are one body when what stands
  before the head agrees (one side empty, one contained in the other, or an
  acronym of it): "IRGC-Qods Force" = "Quds Force of Iran's Revolutionary
  Guards" = "Islamic Revolutionary Guard Corps Quds Force". A one-word name
  inside a longer name is another body unless the extra words are
  nationality adjectives ("Lebanese Hezbollah", left undecided): Kataib
  Hezbollah is not Hezbollah.
* **Places** are the same only with the same tokens (Baghdad is not Baghdad
  airport).
* **Descriptions** ("a senior Iraqi official", "pro-Iranian militias",
  "militia leaders in Iraq") are not names: they never merge with anything
  but the same words in the same article (``_entities``). Anonymous sources
  especially: "a senior Iraqi official" in two articles is not known to be
  one person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from rapidfuzz import fuzz

from structx._text import name_tokens, normalize

__all__ = [
    "OrgName",
    "Relation",
    "Token",
    "article_aliases",
    "descriptive_tail",
    "full_names_in_text",
    "is_description",
    "org_name",
    "org_relation",
    "person_relation",
    "person_tokens",
    "place_relation",
    "same_class",
    "split_parenthetical",
    "strip_titles",
    "token_relation",
    "tokens",
]


class Relation(IntEnum):
    """What the rules say about two names, ordered from the weakest link to the strongest."""

    DIFFERENT = 0  # never one entity, not even through others
    MAYBE = 1  # close, but the rules cannot tell (an undecided pair)
    COMPATIBLE = 2  # nothing against, nothing for (a surname alone and a full name)
    SAME = 3  # evidence that the two are one entity


# -- tokens -----------------------------------------------------------------------------

# Spellings of one Arabic or Persian consonant: ghaani/qaani, kadhimi/kazimi, hamidawi/hamidavi.
_FOLDS = (("gh", "q"), ("dh", "z"), ("ph", "f"), ("ck", "k"), ("dj", "j"), ("w", "v"))
# Common Arabic organisational words and their English gloss, so that an English
# rendering of a name ("Hezbollah Brigades") meets its transliteration ("Kataib Hezbollah").
_GLOSSES_AS_WRITTEN = {
    "kataib": "brigade", "katiba": "brigade", "liva": "brigade", "liwa": "brigade", "asaib": "league",
    "usbat": "league", "harakat": "movement", "haraka": "movement", "harakah": "movement", "tayyar": "movement",
    "hizb": "party", "hezb": "party", "jaish": "army", "jaysh": "army", "jabhat": "front", "jabha": "front",
    "saraya": "company", "quwat": "force", "majlis": "council", "munazzamat": "organization",
    "munazzama": "organization", "tanzim": "organization", "faylaq": "corps", "failaq": "corps",
}  # fmt: skip
_GLOSSES: dict[str, str] = {}  # keys folded as tokens are (liwa -> liva), filled below _fold
# Words that name a kind of body rather than a body: a head made of these alone says nothing.
_GENERIC_WORDS = """\
force army government ministry party group movement organization organisation militia brigade council front
alliance bloc coalition committee office agency commission corps guard unit faction network authority
administration service media company league union association forces state people
"""
_GENERIC = frozenset(_GENERIC_WORDS.split())


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a name: its folded spelling (for rapidfuzz), consonant skeleton and initial, and whether it
    was written in capitals."""

    text: str
    skeleton: str
    upper: bool
    initial: str
    glossed: bool = False  # an Arabic organisational word read as its English gloss


def _fold(word: str) -> str:
    for spelling, letter in _FOLDS:
        word = word.replace(spelling, letter)
    return word


_GLOSSES.update({_fold(word): gloss for word, gloss in _GLOSSES_AS_WRITTEN.items()})


@lru_cache(maxsize=65536)
def _token(raw: str, gloss: bool) -> Token | None:
    """``raw`` (one word as written) as a token, or None for a particle (al, bin, of, the, ...)."""
    upper = len(raw) >= 2 and raw.isupper() and raw.isalpha()
    folded = re.sub(r"['’‘`ʼ]s$", "", normalize(raw)).replace("'", "")
    if not folded:
        return None
    initial = folded[0]
    plain = folded
    if len(plain) >= 6 and plain.endswith("s") and plain.isascii():  # plurals, as name_tokens reads them
        plain = plain[:-1]
    gloss_word = _GLOSSES.get(_fold(plain)) if gloss else None
    folded_text = gloss_word or _fold(plain)
    skeletons = name_tokens(folded_text)
    if not skeletons:
        return None
    return Token(folded_text, skeletons[0], upper, initial, gloss_word is not None)


def tokens(name: str, *, gloss: bool = False) -> list[Token]:
    """The significant tokens of ``name`` in order; hyphens split words (al-Ameri, IRGC-QF)."""
    result = []
    for word in re.split(r"[\s\-‐‑–—/]+", name):
        word = word.strip('.,;:!?()[]{}"“”«»')
        if not word:
            continue
        token = _token(word, gloss)
        if token is not None:
            result.append(token)
    return result


@lru_cache(maxsize=262144)
def token_relation(a: Token, b: Token) -> Relation:
    """SAME, MAYBE or DIFFERENT for two tokens (see the module docstring)."""
    if a.text == b.text:
        return Relation.SAME
    if a.text + "i" == b.text or b.text + "i" == a.text:
        # A nisba is another name: Hussein / Husseini, Hashem / Hashemi, Sadr / Sadri.
        return Relation.MAYBE
    ratio = fuzz.ratio(a.text, b.text)
    if a.skeleton == b.skeleton:
        return Relation.SAME if ratio >= 70 else Relation.MAYBE
    if min(len(a.text), len(b.text)) >= 4 and ratio >= 85:
        return Relation.SAME  # a typo, or one letter transliterated apart (Mahdi / Madi)
    if min(len(a.text), len(b.text)) >= 5 and ratio >= 75:
        return Relation.MAYBE
    return Relation.DIFFERENT


def _sequence_relation(a: Sequence[Token], b: Sequence[Token]) -> Relation:
    """Token by token, the weakest link (equal lengths)."""
    return min((token_relation(x, y) for x, y in zip(a, b, strict=True)), default=Relation.SAME)


def _multiset_relation(a: Sequence[Token], b: Sequence[Token]) -> Relation:
    """The same tokens in any order: the best one-to-one pairing's weakest link, else DIFFERENT."""
    if len(a) != len(b) or not a:
        return Relation.DIFFERENT
    rest = list(b)
    weakest = Relation.SAME
    for token in a:
        best = max(rest, key=lambda other: token_relation(token, other))
        relation = token_relation(token, best)
        if relation is Relation.DIFFERENT:
            return Relation.DIFFERENT
        weakest = min(weakest, relation)
        rest.remove(best)
    return weakest


def _contained(small: Sequence[Token], large: Sequence[Token]) -> bool:
    """Every token of ``small`` is the same as a different token of ``large``."""
    rest = list(large)
    for token in small:
        match = next((other for other in rest if token_relation(token, other) is Relation.SAME), None)
        if match is None:
            return False
        rest.remove(match)
    return True


def _subsequence(small: Sequence[Token], large: Sequence[Token]) -> bool:
    """The tokens of ``small`` appear in ``large`` in order."""
    position = 0
    for token in small:
        while position < len(large) and token_relation(token, large[position]) is not Relation.SAME:
            position += 1
        if position == len(large):
            return False
        position += 1
    return True


# -- people ---------------------------------------------------------------------------------

_TITLES_WORDS = """\
general gen lieutenant lt colonel col brigadier brig major maj captain capt admiral commander cmdr sergeant
sgt marshal president vice prime minister deputy grand ayatollah hojatoleslam sheikh shaikh shaykh sayyid
sayed seyed sayyed mullah imam hajj haji mr mrs ms miss dr doctor prof professor sir lord king queen prince
princess emir supreme leader chief head spokesman spokeswoman spokesperson senator rep representative judge
justice cleric mp ambassador envoy secretary speaker chairman chair mister madam analyst expert researcher
journalist correspondent blogger lawmaker politician official diplomat scholar activist writer reporter economist
strategist adviser advisor aide
"""
_TITLES = frozenset(_TITLES_WORDS.split())
_DETERMINERS_WORDS = """\
a an one two three four five several some many most other others various unnamed unidentified certain few
all both each another any no these those this that his her their its
"""
_DETERMINERS = frozenset(_DETERMINERS_WORDS.split())
# Words that start sentences and so are capitalized next to names.
_SENTENCE_START_WORDS = """\
in on at by to for from with without during before after since until while when as but and or yet so if
though although despite unlike like under over between among against about according meanwhile however both
either neither the a an this that these those his her their its our we they he she it i also then thus still
even only now later earlier today yesterday historically additionally consequently
"""
_SENTENCE_WORDS = frozenset(_SENTENCE_START_WORDS.split())
_LOWER_PARTICLES = ("al-", "el-", " al ", "el ", "bin ", "ibn ", "bint ", "de ", "van ", "von ", "da ", "di ", "du ")
_ADJECTIVE_ENDINGS = ("i", "ian", "ean", "can", "ese", "ish", "ite", "ic", "ern")
# Nationality and sect adjectives: Iraqi, Iranian, Lebanese, Kurdish, Shiite.
_NATIONALITY_ENDINGS = ("i", "ian", "ean", "can", "ese", "ish", "ite")


def strip_titles(name: str) -> str:
    """``name`` without the titles and honorifics in front of it (General, Grand Ayatollah, Mr.)."""
    words = name.split()
    # Everything up to the last title goes: "Iraqi Prime Minister Mustafa al-Kadhimi", "US President Joe Biden".
    cut = max((i + 1 for i, w in enumerate(words[:-1]) if normalize(w).strip(".,") in _TITLES), default=0)
    return " ".join(words[cut:])


def person_tokens(name: str) -> list[Token]:
    return tokens(strip_titles(name))


def person_relation(a: Sequence[Token], b: Sequence[Token]) -> Relation:
    """Two people's names (tokens without titles); see the module docstring."""
    if not a or not b:
        return Relation.DIFFERENT
    if len(a) == 1 or len(b) == 1:
        single, other = (a, b) if len(a) == 1 else (b, a)
        # A surname alone says nothing about who bears it, even when two articles use the same one.
        last = token_relation(single[0], other[-1])
        return Relation.COMPATIBLE if last is Relation.SAME else min(last, Relation.MAYBE)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    ends = min(token_relation(short[0], long[0]), token_relation(short[-1], long[-1]))
    if ends is Relation.DIFFERENT:
        return Relation.DIFFERENT
    if len(short) == len(long):
        return min(ends, _sequence_relation(short[1:-1], long[1:-1]))
    if not _subsequence(short[1:-1], long[1:-1]):
        return Relation.DIFFERENT
    if len(short) > 2:
        # Both give middle names and the longer gives more: George W. Bush is not George H. W. Bush.
        return min(ends, Relation.MAYBE)
    return ends


# -- organisations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgName:
    """An organisation's name read as ``owner``'s ``words`` (Y X for "X of Y" and "Y's X")."""

    words: tuple[Token, ...]
    owner: tuple[Token, ...]
    acronym: str | None  # the letters, when the whole name is an acronym (IRGC-QF -> irgcqf)
    initials: tuple[str, ...]  # initials of the words, without and with function words


def _initials(name: str) -> tuple[str, ...]:
    words = [w for w in re.split(r"[\s\-‐‑–—/]+", normalize(name)) if w.strip(".,;:'()")]
    content = "".join(t.initial for t in tokens(name))
    every = "".join(w.strip(".,;:'()")[0] for w in words if w.strip(".,;:'()"))
    # "Shiite Popular Mobilization Forces" is still the PMF; "IRGC-Qods Force" spells IRGC-QF.
    proper = "".join(t.initial for t in tokens(name) if not _nationality_like(t))
    spelled = "".join(t.text if t.upper else t.initial for t in tokens(name))
    return tuple(dict.fromkeys(x for x in (content, every, proper, spelled) if x))


@lru_cache(maxsize=65536)
def org_name(name: str) -> OrgName:
    name = re.sub(r"^the\s+", "", name.strip(), flags=re.IGNORECASE)
    text = " ".join(name.split())
    owner_text = ""
    of = re.match(r"^(?P<head>.+?)\s+of\s+(?P<qualifier>.+)$", text)
    if of and of["head"].lower() not in ("the",):
        text = f"{of['qualifier']} {of['head']}"
    possessive = re.match(r"^(?P<owner>\S+?)['’]s?\s+(?P<rest>.+)$", text)
    if possessive:
        owner_text, text = possessive["owner"], possessive["rest"]
        # "Revolutionary Guards' Quds Force": a possessive on a later word joins two parts, no owner.
    text = re.sub(r"['’]s?\s", " ", text)
    words = tuple(tokens(text, gloss=True))
    owner = tuple(tokens(owner_text, gloss=True))
    if possessive and len(owner) == 1 and not words:
        words, owner = owner, ()
    spelled = [w for w in re.split(r"[\s\-‐‑–—/]+", name.strip()) if w]
    acronym = None
    if spelled and all(w.strip(".,()").isupper() and w.strip(".,()").isalpha() for w in spelled):
        letters = "".join(w.strip(".,()") for w in spelled).lower()
        acronym = letters if len(letters) >= 2 else None
    return OrgName(words, owner, acronym, tuple(dict.fromkeys(_initials(name) + _initials(text))))


def _spells(acronym: str, name: OrgName) -> bool:
    return acronym in name.initials


def _qualifiers_agree(a: Sequence[Token], b: Sequence[Token]) -> bool:
    # Nationality words qualify without naming ("Iranian Quds Force"): they count only when both sides have them.
    nations_a = [t for t in a if _nation_word(t)]
    nations_b = [t for t in b if _nation_word(t)]
    if nations_a and nations_b and not (_contained(nations_a, nations_b) or _contained(nations_b, nations_a)):
        return False
    a = [t for t in a if not _nation_word(t)]
    b = [t for t in b if not _nation_word(t)]
    if not a or not b:
        return True
    if _contained(a, b) or _contained(b, a):
        return True
    for one, other in ((a, b), (b, a)):
        if all(t.upper for t in one):
            letters = "".join(t.text for t in one)
            initials = "".join(t.initial for t in other)
            if _is_subsequence(initials, letters):
                return True
    return False


def _is_subsequence(small: str, large: str) -> bool:
    position = 0
    for char in small:
        position = large.find(char, position) + 1
        if position == 0:
            return False
    return True


def _nationality_like(token: Token) -> bool:
    return token.text.endswith(_NATIONALITY_ENDINGS) and not token.upper


def _nation_word(token: Token) -> bool:
    """A nationality adjective or a country's two-letter code (US, UK) in front of a name."""
    return _nationality_like(token) or (token.upper and len(token.text) <= 2)


def org_relation(a_text: str, b_text: str) -> Relation:
    """Two organisations' names; see the module docstring."""
    a, b = org_name(a_text), org_name(b_text)
    if _letters(a_text) == _letters(b_text):
        return Relation.SAME  # spaced differently: "The Arab Weekly" / "thearabweekly"
    if a.acronym or b.acronym:
        if a.acronym and b.acronym:
            return Relation.SAME if a.acronym == b.acronym else Relation.DIFFERENT
        acronym, other = (a.acronym, b) if a.acronym else (b.acronym, a)
        assert acronym is not None
        if _spells(acronym, other):
            return Relation.SAME if len(acronym) >= 3 else Relation.MAYBE
        if len(other.words) == 1 and token_relation(other.words[0], tokens(acronym)[0]) is Relation.SAME:
            return Relation.SAME
        # Part of the acronym ("Quds Force" in IRGC-QF): maybe the same body named shorter.
        if any(_is_subsequence(initials, acronym) for initials in other.initials if len(initials) >= 2):
            return Relation.MAYBE
        return Relation.DIFFERENT
    if not a.words or not b.words:
        return Relation.DIFFERENT
    if a.owner and b.owner and _multiset_relation(a.owner, b.owner) is Relation.DIFFERENT:
        return Relation.DIFFERENT
    whole = _multiset_relation(a.words, b.words)
    if whole is not Relation.DIFFERENT:
        return whole
    # The head: the longest common run of tokens at the end.
    k = 0
    while k < min(len(a.words), len(b.words)) and token_relation(a.words[-1 - k], b.words[-1 - k]) is Relation.SAME:
        k += 1
    head = a.words[len(a.words) - k :]
    if k >= 2 and any(t.text not in _GENERIC for t in head):
        if _qualifiers_agree(a.words[: len(a.words) - k], b.words[: len(b.words) - k]):
            return Relation.SAME
        return Relation.DIFFERENT
    small, large = (a.words, b.words) if len(a.words) <= len(b.words) else (b.words, a.words)
    if _contained(small, large):
        rest = list(large)
        for token in small:
            rest.remove(next(o for o in rest if token_relation(token, o) is Relation.SAME))
        if all(_nationality_like(t) or (t.text in _GENERIC and not t.glossed) for t in rest):
            return Relation.MAYBE
        if list(large[len(large) - len(rest) :]) == rest:
            # Words added after the whole name make a part of it: the IRGC and the IRGC Quds Force.
            return Relation.DIFFERENT
        return Relation.DIFFERENT if len(small) == 1 else Relation.MAYBE
    return Relation.DIFFERENT


# -- places -----------------------------------------------------------------------------------


def _letters(name: str) -> str:
    return re.sub(r"\W|_", "", normalize(name))


def place_relation(a: Sequence[Token], b: Sequence[Token]) -> Relation:
    relation = _multiset_relation(a, b)
    return relation if relation is not Relation.SAME or len(a) == len(b) else Relation.DIFFERENT


# -- descriptions, parentheticals, what the article defines ------------------------------------------


def is_description(surface: str) -> bool:
    """Whether ``surface`` describes someone or something instead of naming it ("a senior Iraqi official")."""
    words = [w.strip(".,;:()\"“”'’") for w in surface.split()]
    words = [w for w in words if w]
    had_the = bool(words) and words[0].lower() == "the"
    if had_the:
        words = words[1:]
    if not words:
        return True
    first = words[0]
    if first.lower() in _DETERMINERS:
        return True
    lowered = surface.lstrip().lower()
    if first[0].islower() and not lowered.startswith(_LOWER_PARTICLES) and not first.lower().startswith(("al-", "el-")):
        return True
    last = words[-1]
    if last[0].islower() and not last.lower().startswith(("al-", "el-")):
        named = [w for w in words if w[0].isupper()]
        return all(_adjective_word(w) for w in named)
    return False


def _adjective_word(word: str) -> bool:
    """Iraqi, Iranian, Shiite, Iran-backed, pro-Iranian: words that qualify a description without naming."""
    lower = normalize(word)
    if "-" in lower:
        parts = lower.split("-")
        return any(
            part in ("backed", "aligned", "allied", "linked", "affiliated", "based", "led") for part in parts
        ) or (parts[0] in ("pro", "anti"))
    return lower.endswith(_ADJECTIVE_ENDINGS) and not word.isupper()


# Words after a name that say what kind of thing it is: "the Hezbollah Brigades militia" is Hezbollah Brigades.
_KIND_WORDS_TEXT = "militia group faction organisation organization movement party bloc outlet newspaper channel"
_KIND_WORDS = frozenset(_KIND_WORDS_TEXT.split())


def descriptive_tail(name: str) -> str:
    """``name`` without a lowercase "the" in front and kind words after it ("the Hezbollah Brigades militia")."""
    words = name.split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in _KIND_WORDS:
        words.pop()
    return " ".join(words)


def split_parenthetical(surface: str) -> list[str]:
    """ "A (B)" is two names for one thing: [A, B]; anything else is [surface]."""
    match = re.fullmatch(r"\s*(?P<main>[^()]+?)\s*\((?P<inner>[^()]+)\)\s*", surface)
    if match:
        return [match["main"], match["inner"].removeprefix("the ").strip()]
    return [surface]


_CAP_WORD = r"(?:[A-Z][\w'’\-]*|al-[\w'’\-]+|el-[\w'’\-]+)"
_RUN = rf"{_CAP_WORD}(?:\s+(?:(?:of|the|and|for|al|bin|ibn)\s+){{0,2}}{_CAP_WORD}){{0,7}}"
_PAREN = re.compile(rf"(?P<name>{_RUN})\s*\((?:the\s+)?(?P<inner>[^()]{{1,80}})\)")
_KNOWN_AS = re.compile(
    rf"(?P<name>{_RUN}),\s+(?:also\s+)?(?:known\s+as|nicknamed|dubbed)\s+[\"“']?(?P<alias>{_RUN})[\"”']?"
)
_ACRONYM = re.compile(r"[A-Z][A-Za-z]*(?:[-‐][A-Z][A-Za-z]*)*")


def article_aliases(text: str) -> list[tuple[str, str]]:
    """Pairs of names the article itself gives for one thing.

    An acronym in parentheses after the name it abbreviates (only the words
    its letters spell are kept: "commander of the Popular Mobilization Forces
    (PMF)" gives "Popular Mobilization Forces"), a name in parentheses after a
    name ("Kataib Hezbollah (the Hezbollah Brigades)"), and "X, known as Y".
    """
    pairs: list[tuple[str, str]] = []
    for match in _PAREN.finditer(text):
        name, inner = match["name"], match["inner"].strip()
        if _ACRONYM.fullmatch(inner) and sum(c.isupper() for c in inner) >= 2:
            expansion = _spelled_by(inner, name)
            if expansion:
                pairs.append((expansion, inner))
        elif re.fullmatch(_RUN, inner) and len(inner.split()) <= 6:
            pairs.append((name, inner))
    for match in _KNOWN_AS.finditer(text):
        pairs.append((match["name"], match["alias"]))
    return pairs


def _spelled_by(acronym: str, run: str) -> str | None:
    """The shortest tail of ``run`` whose initials the acronym spells."""
    letters = re.sub(r"[^A-Za-z]", "", acronym).lower()
    words = run.split()
    # Content words first ("Asaib Ahl al-Haq", not "Ahl al-Haq"), then with function words (JCPOA).
    for which in (0, -1):
        for start in range(len(words) - 1, -1, -1):
            candidate = " ".join(words[start:])
            if _initials(candidate)[which] == letters:
                return candidate
    return None


_FULL_NAME = re.compile(rf"{_CAP_WORD}(?:\s+{_CAP_WORD}){{1,6}}")


def full_names_in_text(text: str, surname: Token) -> list[str]:
    """Names of two tokens or more in ``text`` that end with ``surname`` (titles cut off).

    "Iraqi Prime Minister Mustafa al-Kadhimi" gives "Mustafa al-Kadhimi": the
    words up to the last title are dropped.
    """
    found: list[str] = []
    for match in _FULL_NAME.finditer(text):
        words = match.group().split()
        # The run may go on past the name ("Qaani Said"); try every end that is the surname.
        for end in range(len(words), 1, -1):
            last = _token(words[end - 1].strip(".,;:"), False)
            if last is None or token_relation(last, surname) is not Relation.SAME:
                continue
            candidate = words[:end]
            # Words up to the last title or capitalized function word ("During", "Both") are not the name.
            cut = max(
                (i + 1 for i, w in enumerate(candidate) if normalize(w).strip(".,") in _TITLES | _SENTENCE_WORDS),
                default=0,
            )
            candidate = candidate[cut:]
            if re.search(r"['’]s?$", candidate[0]) or len(candidate) < 2:
                break
            name = " ".join(candidate[-4:])
            if len(person_tokens(name)) >= 2:
                found.append(name)
            break
    return found


def same_class(names: Iterable[Sequence[Token]]) -> bool:
    """Whether every pair of these names could be one person."""
    listed = list(names)
    return all(person_relation(x, y) is not Relation.DIFFERENT for i, x in enumerate(listed) for y in listed[i + 1 :])
