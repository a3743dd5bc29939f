"""Schema pack: the IRGC Quds Force and Iran-aligned Iraqi militias.

Four record types — visits, meetings, militia stances and quoted sources —
and :class:`ArticleExtraction`, the per-article container that holds them.

The field descriptions are written for the model: they are the prompt.
Every record carries ``evidence``, verbatim excerpts of the article that
support it, so that each record can be traced to the words of the article.

The pack depends on pydantic alone. A user's own pack follows the same
shape: any pydantic model works as a target, and records that carry an
``evidence`` list of strings are traceable in the same way.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ArticleExtraction",
    "Disclosure",
    "Meeting",
    "MilitiaStance",
    "Name",
    "Participant",
    "Position",
    "QuotedSource",
    "StanceTopic",
    "Verbatim",
    "Visit",
    "When",
]


#: A name that must occur in the article (transliteration variants allowed).
Name = Annotated[str, "grounding:name"]
#: Text that must be copied from the article word for word.
Verbatim = Annotated[str, "grounding:verbatim"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Evidenced(_Model):
    evidence: list[str] = Field(
        min_length=1,
        description=(
            "One or more excerpts copied word for word from the article that "
            "support this record. Copy exact sentences or clauses; never "
            "paraphrase or translate."
        ),
    )

    @field_validator("evidence")
    @classmethod
    def _no_blank_excerpts(cls, excerpts: list[str]) -> list[str]:
        if any(not excerpt.strip() for excerpt in excerpts):
            raise ValueError("an evidence excerpt is empty; copy words from the article")
        return excerpts


class When(_Model):
    """A date as the article gives it, resolved where the article allows."""

    text: str = Field(
        description="The date or time exactly as written, e.g. 'mid-September', 'last June', 'Jan 27, 2022'."
    )
    start: dt.date | None = Field(
        default=None,
        description="ISO date (YYYY-MM-DD) of the day or first day, only when the article makes the year clear.",
    )
    end: dt.date | None = Field(
        default=None,
        description="ISO date of the last day when the text names a range (a month, 'mid-September'); else null.",
    )

    @model_validator(mode="after")
    def _range_is_ordered(self) -> When:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Disclosure(StrEnum):
    """How the visit became known."""

    ANNOUNCED = "announced"
    UNANNOUNCED = "unannounced"
    SECRET = "secret"
    UNKNOWN = "unknown"


class Visit(_Evidenced):
    """A person travelling to a place: who went where, when and why."""

    visitor: Name = Field(description="Name of the person who travelled, as written in the article.")
    visitor_organisation: str | None = Field(
        default=None, description="The organisation the visitor represents, e.g. 'IRGC Quds Force'."
    )
    city: str | None = Field(default=None, description="City visited, e.g. 'Baghdad'.")
    country: str | None = Field(default=None, description="Country visited, e.g. 'Iraq'.")
    when: When | None = Field(default=None, description="When the visit took place.")
    disclosure: Disclosure = Field(
        default=Disclosure.UNKNOWN,
        description=(
            "'announced' if made public in advance, 'unannounced' if revealed only afterwards, "
            "'secret' if reported as secret, else 'unknown'."
        ),
    )
    purpose: str | None = Field(default=None, description="The reported purpose of the visit, in one line.")
    met_with: list[Name] = Field(
        default_factory=list, description="Names of the people the visitor met during this visit."
    )


class Participant(_Model):
    """One party to a meeting."""

    name: Name = Field(description="Person's name, or the description the article uses for them.")
    organisation: str | None = Field(default=None, description="Group or institution the person belongs to.")
    role: str | None = Field(default=None, description="Title or role, e.g. 'Badr Organization leader'.")


class Meeting(_Evidenced):
    """People meeting: who met whom, where, when, about what, with what result."""

    participants: list[Participant] = Field(
        min_length=2, description="Everyone reported as taking part, including the host or visitor."
    )
    place: str | None = Field(default=None, description="Where the meeting took place.")
    when: When | None = Field(default=None, description="When the meeting took place.")
    topics: list[str] = Field(default_factory=list, description="Subjects discussed, a few words each.")
    message: str | None = Field(
        default=None, description="The message one side conveyed to the other, if the article reports one."
    )
    outcome: str | None = Field(default=None, description="The result of the meeting, if reported.")


class StanceTopic(StrEnum):
    """The closed set of subjects a militia stance is about."""

    US_FORCES_PRESENCE = "us_forces_presence"
    ATTACKS_ON_US_INTERESTS = "attacks_on_us_interests"
    OBEDIENCE_TO_IRAN = "obedience_to_iran"
    ELECTIONS_AND_GOVERNMENT_FORMATION = "elections_and_government_formation"
    KADHIMI_GOVERNMENT = "kadhimi_government"
    ISRAEL_HAMAS_WAR = "israel_hamas_war"
    OTHER = "other"


class Position(StrEnum):
    """Where the militia stands on the topic."""

    SUPPORTS = "supports"
    OPPOSES = "opposes"
    CONDITIONAL = "conditional"
    UNCLEAR = "unclear"


class MilitiaStance(_Evidenced):
    """A position a militia, or its leader or spokesperson, expressed."""

    militia: Name = Field(description="The militia, e.g. 'Asaib Ahl al-Haq', 'Kataib Hezbollah'.")
    speaker: Name | None = Field(default=None, description="Who expressed the stance, if named.")
    speaker_role: str | None = Field(default=None, description="The speaker's role, e.g. 'leader', 'spokesperson'.")
    topic: StanceTopic = Field(
        description=(
            "us_forces_presence: presence or withdrawal of US forces; attacks_on_us_interests; "
            "obedience_to_iran: following Iran or the Quds Force; elections_and_government_formation; "
            "kadhimi_government: the government of Mustafa al-Kadhimi; israel_hamas_war; other."
        )
    )
    position: Position = Field(
        description="supports, opposes, conditional (supports only under a stated condition) or unclear."
    )
    summary: str = Field(description="The stance in one line, e.g. 'Rejects taking orders from Qaani'.")
    quote: Verbatim | None = Field(
        default=None, description="The militia's own words, copied exactly from the article, if quoted."
    )


class QuotedSource(_Evidenced):
    """An analyst, official or other source the article quotes."""

    name: Name = Field(
        description=(
            "The person's name, or for an anonymous source the description used, e.g. 'a senior Iraqi official'."
        )
    )
    anonymous: bool = Field(default=False, description="True when the article does not name the source.")
    role: str | None = Field(default=None, description="Role or title, e.g. 'political analyst'.")
    affiliation: str | None = Field(default=None, description="Organisation or institution, if given.")
    outlet: Name | None = Field(
        default=None, description="The outlet the source spoke to, e.g. 'told Al-Fassel'; null if not stated."
    )
    quote: Verbatim = Field(description="What the source said, copied word for word from the article.")
    topic: str | None = Field(default=None, description="What the quote is about, in a few words.")


class ArticleExtraction(_Model):
    """Everything structx extracts from one article."""

    title: str | None = Field(default=None, description="The article's headline, as written.")
    outlet: str | None = Field(default=None, description="The publication, if the article names it.")
    byline: str | None = Field(default=None, description="The author or agency in the byline, if any.")
    published: str | None = Field(default=None, description="Publication date as written, if present.")
    visits: list[Visit] = Field(default_factory=list, description="Every visit the article reports.")
    meetings: list[Meeting] = Field(default_factory=list, description="Every meeting the article reports.")
    militia_stances: list[MilitiaStance] = Field(
        default_factory=list, description="Every stance a militia or its leader expressed."
    )
    quoted_sources: list[QuotedSource] = Field(
        default_factory=list, description="Every analyst, official or other source quoted."
    )
