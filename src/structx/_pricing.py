"""Estimated cost of a run from token usage and a price table the user can override."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from structx._errors import ConfigError
from structx._models import Usage

__all__ = ["LIST_PRICES", "estimate_cost", "load_prices"]

#: US dollars per million tokens (prompt, completion): OpenAI's published list
#: prices for these models when this table was written. Models that are not
#: listed, local ones included, get no estimate rather than a guess.
LIST_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
}


def estimate_cost(model: str, usage: Usage, prices: Mapping[str, tuple[float, float]] | None = None) -> float | None:
    """Dollars for ``usage`` on ``model``, or None when the model has no price."""
    table = LIST_PRICES if prices is None else prices
    price = table.get(model)
    if price is None:
        return None
    return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1_000_000


def load_prices(path: Path) -> dict[str, tuple[float, float]]:
    """A TOML table of ``model = [prompt, completion]`` dollars per million tokens, over the list prices."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read prices from {path}: {exc}") from None
    prices = dict(LIST_PRICES)
    for model, value in data.items():
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)):
            raise ConfigError(f"{path}: price of {model!r} must be [prompt, completion] dollars per million tokens")
        prices[model] = (float(value[0]), float(value[1]))
    return prices
