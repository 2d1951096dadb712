"""A/B variants: which registry alias serves an athlete, sticky and weighted.

An athlete's bucket is a point in [0, 1) from SHA-256 of its id (not Python's `hash`, which
changes per process), so every worker and every restart sends the athlete to the same variant
while the set of active variants stays the same. A configured variant whose alias does not
exist in the registry is left out and the others share its weight in proportion: with
champion 90 / challenger 10 and no challenger yet, everyone gets the champion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    alias: str
    weight: int


@dataclass(frozen=True)
class VariantSplit:
    """The active variants with their cumulative shares (pure; built once per model snapshot)."""

    variants: tuple[Variant, ...]
    skipped: tuple[str, ...] = ()  # configured aliases left out (no such alias in the registry)

    @classmethod
    def of(cls, configured: Sequence[Variant], available: set[str] | frozenset[str]) -> VariantSplit:
        """The configured variants whose alias is `available`, in config order.

        Raises ValueError when none with a weight > 0 is left (nothing to route to)."""
        active = tuple(v for v in configured if v.alias in available and v.weight > 0)
        skipped = tuple(v.alias for v in configured if v.alias not in available)
        if not active:
            raise ValueError(
                f"none of the variants {', '.join(v.alias for v in configured)} has both an alias in the "
                "registry and a weight > 0"
            )
        return cls(active, skipped)

    @property
    def shares(self) -> dict[str, float]:
        """alias -> share of athletes (summing to 1): the weights after skipped ones were left out."""
        total = sum(v.weight for v in self.variants)
        return {v.alias: v.weight / total for v in self.variants}

    def assign(self, athlete_id: str) -> str:
        """The alias serving `athlete_id`: its bucket's place among the cumulative weights."""
        total = sum(v.weight for v in self.variants)
        point = bucket(athlete_id) * total
        running = 0
        for variant in self.variants:
            running += variant.weight
            if point < running:
                return variant.alias
        return self.variants[-1].alias  # unreachable: point < total

    @property
    def primary(self) -> str:
        """The variant with the largest weight (the first such in config order): what the OIP
        routes serve, as they carry no athlete to split on."""
        return max(self.variants, key=lambda v: v.weight).alias


def bucket(athlete_id: str) -> float:
    """A stable point in [0, 1) for an athlete id (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(athlete_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def variants_from_settings(configured: Sequence[Mapping[str, object]] | Sequence[object]) -> tuple[Variant, ...]:
    """`serving.variants` (VariantSettings or mappings) as `Variant`s."""
    out = []
    for item in configured:
        alias = item["alias"] if isinstance(item, Mapping) else item.alias
        weight = item["weight"] if isinstance(item, Mapping) else item.weight
        out.append(Variant(str(alias), int(weight)))
    return tuple(out)
