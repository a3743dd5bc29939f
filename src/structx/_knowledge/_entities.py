"""Entity resolution: mentions grouped into entities, with no transitive over-merge.

How it works, and why:

1. **Forms.** Mentions with the same words (up to normalization) and type are
   one *form*. A form is global, except where its words alone cannot say who
   is meant, so it is kept to its article: descriptions and anonymous sources
   ("a senior Iraqi official" in two articles is not known to be one person),
   and a person's surname alone ("Shammari" is Tariq al-Shammari in one
   article and Ihssan Shammari in another).
2. **What the article says.** A surname alone takes the article's full form
   of that name, found among the article's mentions and in its text
   ("Shammari" after "Ihssan Shammari"); when the article has two people of
   that surname (Muqtada al-Sadr and his father), it takes neither and the
   pairs are listed as undecided. Acronyms and glosses the article defines
   ("Asaib Ahl al-Haq (AAH)", "Kataib Hezbollah (the Hezbollah Brigades)",
   "X, known as Y") give the form its other names; an acronym defined the
   same way wherever it is defined serves every article.
3. **Evidence.** Forms are compared only within blocks that share a token
   (a person's surname, any distinctive word of a body, an acronym), with
   the rules of ``_names`` (transliterations, titles, given names, heads of
   organisation names); a pair judged ``SAME`` is an edge.
4. **Pairwise-checked agglomeration.** Edges are taken in a fixed order and
   two groups are joined only if *every* pair across them is allowed (no two
   different given names under one surname, no person with an organisation,
   no Kataib Hezbollah with Hezbollah): a chain of close names cannot pull in
   a member that conflicts with another. A form whose evidence points to two
   groups that exclude each other (Muhammad al-Sadr, when both Muhammad
   Baqir and Muhammad Sadiq al-Sadr are known) joins neither.
5. **Undecided pairs.** Edges refused by the check, ambiguous forms and
   pairs the rules leave open (close spellings of given names, a surname
   alone across articles, a one-word body inside a longer name) stay apart
   and are listed. ``decide`` is the place for a second opinion (a model, a
   person's list): it gets each undecided pair and may answer True to join
   them, still subject to the pairwise check.

Entity ids are derived from the type and canonical name (and the article,
for entities that belong to one article), never from input order, so the
same inputs give the same ids. The canonical name is the most complete
form: most name tokens, no title, most mentioned.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from structx._knowledge._articles import Article
from structx._knowledge._mentions import EntityType, Mention
from structx._knowledge._names import (
    Relation,
    full_names_in_text,
    org_name,
    org_relation,
    person_relation,
    person_tokens,
    place_relation,
    same_class,
    split_parenthetical,
    strip_titles,
    tokens,
)
from structx._text import normalize

__all__ = ["Entity", "Resolution", "UndecidedPair", "resolve"]


@dataclass(frozen=True, slots=True)
class Entity:
    """One resolved entity: its id, type, canonical name and the forms it is written in."""

    entity_id: str
    type: EntityType
    canonical_name: str
    named: bool
    article_id: str | None  # the one article it belongs to (descriptions, anonymous sources), else None
    aliases: tuple[str, ...]  # every form the records write it in
    inferred_names: tuple[str, ...]  # full forms and expansions the articles give (not written in a record)
    mention_count: int
    article_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UndecidedPair:
    """Two entities the rules could neither join nor keep apart for good, and why."""

    entity_a: str
    entity_b: str
    name_a: str
    name_b: str
    reason: str


#: A second opinion on an undecided pair, asked with the two canonical names and the reason it is
#: undecided: True joins the two entities (if every pair across them allows it), False or None leaves them apart.
Decider = Callable[[str, str, str], bool | None]


@dataclass(slots=True)
class Resolution:
    entities: list[Entity]
    entity_of: dict[str, str]  # mention_id -> entity_id
    undecided: list[UndecidedPair]
    merges: int  # forms joined into another form's entity


@dataclass(slots=True, eq=False)
class _Form:
    index: int
    type: EntityType
    scope: str | None  # article id for forms kept to their article
    named: bool
    mentions: list[Mention] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # what it is compared by
    inferred: list[str] = field(default_factory=list)  # names the article gives it
    single_surname: bool = False
    kind: int = -1  # forms of one kind are compared by the same names

    @property
    def label(self) -> str:
        return self.mentions[0].surface

    @property
    def articles(self) -> set[str]:
        return {m.article_id for m in self.mentions}


def _is_acronym(name: str) -> bool:
    return org_name(name).acronym is not None


def resolve(mentions: Sequence[Mention], articles: Mapping[str, Article], decide: Decider | None = None) -> Resolution:
    """Group ``mentions`` into entities (see the module docstring)."""
    forms = _forms(mentions)
    undecided_forms: dict[tuple[int, int], str] = {}
    _give_article_names(forms, articles, undecided_forms)
    # Forms compared by the same names behave alike: they are compared once, through one representative,
    # so that a name written in a thousand articles costs no more than one written in two.
    alike: dict[tuple[object, ...], list[_Form]] = {}
    for form in forms:
        alike.setdefault(_signature(form), []).append(form)
    for number, members in enumerate(alike.values()):
        for member in members:
            member.kind = number
    cache: dict[tuple[int, int], Relation] = {}

    def relation(a: _Form, b: _Form) -> Relation:
        key = (a.kind, b.kind) if a.kind <= b.kind else (b.kind, a.kind)
        if key not in cache:
            cache[key] = _relation(a, b)
        return cache[key]

    groups = _Groups(forms, relation)
    for members in alike.values():
        itself = relation(members[0], members[0])
        for member in members[1:]:
            if itself is Relation.SAME:
                groups.join(members[0], member)
            else:  # the same surname alone in several articles: one undecided pair each, not one per pair
                undecided_forms[_pair_key(members[0], member)] = "a surname alone, with no full form in its article"
    representatives = [members[0] for members in alike.values()]
    candidates = _candidate_pairs(representatives)
    same = [(a, b) for a, b in candidates if relation(a, b) is Relation.SAME]
    # A form whose evidence points at two forms that exclude each other joins neither of them.
    neighbours: dict[int, list[_Form]] = defaultdict(list)
    for a, b in same:
        neighbours[a.index].append(b)
        neighbours[b.index].append(a)
    torn: set[tuple[int, int]] = set()
    for form in representatives:
        around = neighbours[form.index]
        for i, x in enumerate(around):
            for y in around[i + 1 :]:
                if relation(x, y) is Relation.DIFFERENT:
                    for other in (x, y):
                        torn.add(_pair_key(form, other))
                        undecided_forms[_pair_key(form, other)] = "its evidence points at two entities that differ"
    for a, b in sorted(same, key=lambda pair: _edge_order(*pair)):
        if _pair_key(a, b) in torn:
            continue
        if not groups.join(a, b):
            undecided_forms.setdefault(_pair_key(a, b), "joining would put two different entities together")
    for a, b in candidates:
        rel = relation(a, b)
        if rel in (Relation.MAYBE, Relation.COMPATIBLE) and groups.find(a) is not groups.find(b):
            reason = (
                "a surname alone, with no full form in its article"
                if rel is Relation.COMPATIBLE
                else "close names the rules cannot tell apart"
            )
            undecided_forms.setdefault(_pair_key(a, b), reason)
    by_index = {form.index: form for form in forms}
    pairs = _undecided_groups(undecided_forms, by_index, groups)
    if decide is not None:
        for (ga, gb), reason in sorted(pairs.items(), key=lambda item: (item[0][0].key, item[0][1].key)):
            verdict = decide(_canonical(ga.members)[0], _canonical(gb.members)[0], reason)
            if verdict and groups.find(ga.members[0]) is not groups.find(gb.members[0]):
                groups.join(ga.members[0], gb.members[0])
        pairs = _undecided_groups(undecided_forms, by_index, groups)
    return _result(forms, groups, pairs)


def _signature(form: _Form) -> tuple[object, ...]:
    """What the form is compared by: its type and names (a description or anonymous source is its own)."""
    if not form.named or form.type is EntityType.ANONYMOUS:
        return ("form", form.index)
    return ("names", form.type.value, tuple(sorted({normalize(name) for name in form.names})))


def _pair_key(a: _Form, b: _Form) -> tuple[int, int]:
    return (a.index, b.index) if a.index < b.index else (b.index, a.index)


def _edge_order(a: _Form, b: _Form) -> tuple[int, str, str]:
    # Names that stand on their own first, surnames resolved through their article after.
    x, y = sorted((normalize(a.label), normalize(b.label)))
    return (int(a.single_surname) + int(b.single_surname), x, y)


def _forms(mentions: Sequence[Mention]) -> list[_Form]:
    forms: dict[tuple[str | None, EntityType, str], _Form] = {}
    for mention in mentions:
        names = mention.names if mention.named else [mention.surface]
        single = mention.type is EntityType.PERSON and len(person_tokens(names[0])) == 1
        scope = mention.article_id if (not mention.named or mention.type is EntityType.ANONYMOUS or single) else None
        key = (scope, mention.type, normalize(mention.surface))
        form = forms.get(key)
        if form is None:
            form = forms[key] = _Form(len(forms), mention.type, scope, mention.named, names=list(names))
            form.single_surname = single
        form.mentions.append(mention)
    return list(forms.values())


def _give_article_names(
    forms: list[_Form], articles: Mapping[str, Article], undecided: dict[tuple[int, int], str]
) -> None:
    """Full forms for surnames alone, and the other names the articles define (acronyms, glosses)."""
    # Acronyms defined one way wherever they are defined serve every article.
    definitions: dict[str, dict[str, str]] = defaultdict(dict)
    for article in sorted(articles.values(), key=lambda a: a.order):
        for long, short in article.aliases:
            if _is_acronym(short):
                definitions[normalize(short)].setdefault(normalize(long), long)
    for form in forms:
        if not form.named or form.single_surname:
            continue
        known = {normalize(name) for name in form.names}
        for article_id in sorted(form.articles):
            source = articles.get(article_id)
            for long, short in source.aliases if source else []:
                for this, other in ((long, short), (short, long)):
                    if normalize(this) in known and normalize(other) not in known:
                        form.names.append(other)
                        form.inferred.append(other)
                        known.add(normalize(other))
        for name in list(form.names):
            meanings = list(definitions.get(normalize(name), {}).values())
            agreed = all(org_relation(x, y) is Relation.SAME for i, x in enumerate(meanings) for y in meanings[i + 1 :])
            if meanings and agreed and normalize(meanings[0]) not in known:
                form.names.append(meanings[0])
                form.inferred.append(meanings[0])
                known.add(normalize(meanings[0]))
    by_article: dict[str, list[_Form]] = defaultdict(list)
    for form in forms:
        if form.type is EntityType.PERSON and form.named and not form.single_surname:
            for article_id in form.articles:
                by_article[article_id].append(form)
    for form in forms:
        if not form.single_surname or form.scope is None:
            continue
        home = articles.get(form.scope)
        defined = [
            other
            for long, short in (home.aliases if home else [])
            for this, other in ((long, short), (short, long))
            if normalize(this) == normalize(form.label) and len(person_tokens(other)) >= 2
        ]
        if defined:  # "Muhammad al-Hashemi, known as Abu Jihad"
            form.names = [defined[0]]
            form.inferred.append(defined[0])
            continue
        surname = person_tokens(form.names[0])[0]
        fulls = [
            other
            for other in by_article.get(form.scope, [])
            if any(person_relation([surname], person_tokens(n)) is Relation.COMPATIBLE for n in other.names)
        ]
        in_text = full_names_in_text(home.text, surname) if home and home.text else []
        options = [name for other in fulls for name in other.names if len(person_tokens(name)) >= 2] + in_text
        if not options:
            continue
        if same_class(person_tokens(name) for name in options):
            best = max(options, key=lambda name: (len(person_tokens(name)), name == strip_titles(name), len(name)))
            form.names = [best]
            if best not in (f.label for f in fulls):
                form.inferred.append(best)
        else:
            for full in fulls:
                undecided[_pair_key(form, full)] = "its article has more than one person of that surname"


def _relation(a: _Form, b: _Form) -> Relation:
    if a.type is not b.type or not a.named or not b.named or a.type is EntityType.ANONYMOUS:
        return Relation.DIFFERENT
    best = Relation.DIFFERENT
    for x in a.names:
        for y in b.names:
            if a.type is EntityType.PERSON:
                rel = person_relation(person_tokens(x), person_tokens(y))
            elif a.type is EntityType.ORGANISATION:
                rel = org_relation(x, y)
            else:
                rel = place_relation(tokens(x), tokens(y))
            best = max(best, rel)
    return best


_LOOSE = str.maketrans("", "", "vhy")
_GENERIC_BLOCKS = frozenset({"frc", "grp", "prty", "mvmnt", "gvrnmnt", "rgnztn", "mlt", "brgd", "cncl"})


def _candidate_pairs(forms: list[_Form]) -> list[tuple[_Form, _Form]]:
    """Pairs of named forms of one type that share a block key (a surname, a distinctive word, an acronym)."""
    blocks: dict[tuple[str, str], list[_Form]] = defaultdict(list)
    for form in forms:
        if not form.named or form.type is EntityType.ANONYMOUS:
            continue
        keys: set[tuple[str, str]] = set()
        for name in form.names:
            if form.type is EntityType.PERSON:
                words = person_tokens(name)
                if words:
                    # Also without the letters transliterations drop or swap most (Rouhani/Rowhani, Mahdi/Madi).
                    keys.add((form.type.value, words[-1].skeleton))
                    keys.add((form.type.value, "~" + words[-1].skeleton.translate(_LOOSE)))
            elif form.type is EntityType.ORGANISATION:
                parsed = org_name(name)
                keys.update((form.type.value, t.skeleton) for t in parsed.words if t.skeleton not in _GENERIC_BLOCKS)
                keys.update((form.type.value, "#" + initials) for initials in parsed.initials if len(initials) >= 2)
                if parsed.acronym:
                    keys.add((form.type.value, "#" + parsed.acronym))
            else:
                keys.update((form.type.value, t.skeleton) for t in tokens(name))
                keys.update((form.type.value, "~" + t.skeleton.translate(_LOOSE)) for t in tokens(name))
        for key in keys:
            blocks[key].append(form)
    pairs: dict[tuple[int, int], tuple[_Form, _Form]] = {}
    for members in blocks.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pairs.setdefault(_pair_key(a, b), (a, b) if a.index < b.index else (b, a))
    return [pairs[key] for key in sorted(pairs)]


class _Group:
    __slots__ = ("key", "kinds", "members")

    def __init__(self, member: _Form) -> None:
        self.members = [member]
        self.kinds = {member.kind: member}  # one member of each kind, for the pairwise check
        self.key = str(member.index)


class _Groups:
    """Union of forms where every pair across two groups must be allowed."""

    def __init__(self, forms: Iterable[_Form], relation: Callable[[_Form, _Form], Relation]) -> None:
        self._group = {form.index: _Group(form) for form in forms}
        self._relation = relation

    def find(self, form: _Form) -> _Group:
        return self._group[form.index]

    def join(self, a: _Form, b: _Form) -> bool:
        ga, gb = self.find(a), self.find(b)
        if ga is gb:
            return True
        if self.conflict(ga, gb):
            return False
        if len(gb.members) > len(ga.members):
            ga, gb = gb, ga
        ga.members.extend(gb.members)
        for kind, member in gb.kinds.items():
            ga.kinds.setdefault(kind, member)
        for member in gb.members:
            self._group[member.index] = ga
        return True

    def conflict(self, ga: _Group, gb: _Group) -> bool:
        """Whether some pair across the two groups may not be one entity."""
        return any(self._relation(x, y) is Relation.DIFFERENT for x in ga.kinds.values() for y in gb.kinds.values())

    def groups(self) -> list[_Group]:
        return list({id(group): group for group in self._group.values()}.values())


def _undecided_groups(
    undecided: dict[tuple[int, int], str], by_index: dict[int, _Form], groups: _Groups
) -> dict[tuple[_Group, _Group], str]:
    pairs: dict[tuple[_Group, _Group], str] = {}
    for (i, j), reason in sorted(undecided.items()):
        ga, gb = groups.find(by_index[i]), groups.find(by_index[j])
        if ga is gb:
            continue
        if groups.conflict(ga, gb):
            continue  # settled apart by another pair across them
        key = (ga, gb) if min(m.index for m in ga.members) < min(m.index for m in gb.members) else (gb, ga)
        pairs.setdefault(key, reason)
    return pairs


def _canonical(members: Sequence[_Form]) -> tuple[str, list[str], list[str]]:
    """The most complete name, the forms as written, and the names the articles gave."""
    counts: dict[str, int] = defaultdict(int)
    written: dict[str, None] = {}
    inferred: dict[str, None] = {}
    for form in members:
        for mention in form.mentions:
            written[mention.surface] = None
            for name in mention.names if mention.named else [mention.surface]:
                counts[name] += 1
        for name in form.inferred:
            inferred[name] = None
            counts.setdefault(name, 0)
    named = any(form.named for form in members)

    def rank(name: str) -> tuple[int, int, int, int, int, str]:
        if members[0].type is EntityType.PERSON:
            size = len(person_tokens(name))
        elif members[0].type is EntityType.ORGANISATION:
            parsed = org_name(name)
            size = len(parsed.words) + len(parsed.owner) if not parsed.acronym else 1
        else:
            size = len(tokens(name))
        parts = len(split_parenthetical(name))
        return (-size, int(strip_titles(name) != name), parts, -counts[name], -len(name), name)

    best = min(counts, key=rank) if named else min(counts, key=lambda n: (-counts[n], n))
    return best, list(written), [name for name in inferred if name not in written]


def _result(forms: list[_Form], groups: _Groups, pairs: dict[tuple[_Group, _Group], str]) -> Resolution:
    entities: list[Entity] = []
    entity_of: dict[str, str] = {}
    id_of_group: dict[int, str] = {}
    taken: set[str] = set()
    ordered = sorted(groups.groups(), key=lambda g: min(m.index for m in g.members))
    for group in ordered:
        members = sorted(group.members, key=lambda f: f.index)
        canonical, written, inferred = _canonical(members)
        kind = members[0].type
        scopes = {m.scope for m in members}
        articles = sorted({a for m in members for a in m.articles})
        article_id = next(iter(scopes)) if len(scopes) == 1 and None not in scopes else None
        named = any(m.named for m in members)
        base = f"{kind.value}\x1f{normalize(canonical)}\x1f{article_id or ''}"
        entity_id = "e_" + hashlib.sha256(base.encode()).hexdigest()[:12]
        if entity_id in taken:  # one canonical name for two entities: their mentions tell them apart
            ids = sorted(mention.mention_id for m in members for mention in m.mentions)
            entity_id = "e_" + hashlib.sha256((base + "".join(ids)).encode()).hexdigest()[:12]
        taken.add(entity_id)
        id_of_group[id(group)] = entity_id
        mentions = [mention for m in members for mention in m.mentions]
        for mention in mentions:
            entity_of[mention.mention_id] = entity_id
        entities.append(
            Entity(
                entity_id, kind, canonical, named, article_id, tuple(written), tuple(inferred), len(mentions),
                tuple(articles),
            )
        )  # fmt: skip
    names = {e.entity_id: e.canonical_name for e in entities}
    undecided = []
    for (ga, gb), reason in pairs.items():
        a, b = id_of_group[id(ga)], id_of_group[id(gb)]
        undecided.append(UndecidedPair(a, b, names[a], names[b], reason))
    undecided.sort(key=lambda p: (p.name_a, p.name_b, p.entity_a, p.entity_b))
    merges = len(forms) - len(entities)
    return Resolution(entities, entity_of, undecided, merges)
