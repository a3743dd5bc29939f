"""structx's bundled schema packs.

``iran_militias`` describes reporting on Iran's IRGC Quds Force and
Iran-aligned Iraqi militias. Import a pack by dotted path
(``structx_schemas.iran_militias:ArticleExtraction``) or by file path
(``schemas/structx_schemas/iran_militias.py:ArticleExtraction``).
"""

from structx_schemas.iran_militias import (
    ArticleExtraction,
    Disclosure,
    Meeting,
    MilitiaStance,
    Participant,
    Position,
    QuotedSource,
    StanceTopic,
    Visit,
    When,
)

__all__ = [
    "ArticleExtraction",
    "Disclosure",
    "Meeting",
    "MilitiaStance",
    "Participant",
    "Position",
    "QuotedSource",
    "StanceTopic",
    "Visit",
    "When",
]
