"""What a call cost: its token usage times the pricing table's per-million-token prices."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DEFAULT_PRICING = Path(__file__).resolve().parent / "pricing.toml"
PER_TOKENS = Decimal(1_000_000)
NANO_PER_USD = Decimal(1_000_000_000)


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = prices

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The bundled table, with the entries of `override` (same format) on top."""
        prices = read_prices(DEFAULT_PRICING)
        if override is not None:
            prices.update(read_prices(override))
        return cls(prices)

    def price_of(self, model: str) -> Price | None:
        """The exact model's price, else the longest listed name the model starts with."""
        name = model.split(":")[-1]
        if name in self._prices:
            return self._prices[name]
        prefixes = [listed for listed in self._prices if name.startswith(listed)]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD for this usage, or None when the model has no price."""
        price = self.price_of(model)
        if price is None:
            return None
        total = Decimal(input_tokens) * price.input + Decimal(output_tokens) * price.output
        return float(total / PER_TOKENS)

    def nano_usd(self, model: str, input_tokens: int, output_tokens: int) -> int | None:
        """This usage's price in nano-dollars, rounded up (a reservation must not fall short),
        or None when the model has no price."""
        price = self.price_of(model)
        if price is None:
            return None
        total = Decimal(input_tokens) * price.input + Decimal(output_tokens) * price.output
        return math.ceil(total * NANO_PER_USD / PER_TOKENS)


def read_prices(path: Path) -> dict[str, Price]:
    with path.open("rb") as file:
        table = tomllib.load(file)
    return {
        name: Price(Decimal(str(entry["input"])), Decimal(str(entry["output"])))
        for name, entry in table.get("models", {}).items()
    }
