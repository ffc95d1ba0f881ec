"""Typed results of an attack: one record per sentence, and the run that contains them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Outcome of the attack on one sentence.

    ``SKIPPED``: the clean prediction already misclassifies a gold entity, or the sentence has no entity,
    so there is nothing to attack. ``ERRORED``: an exception stopped the attack; it is never counted as a
    failed attack.
    """

    SUCCESSFUL = "successful"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERRORED = "errored"


@dataclass(frozen=True)
class Change:
    """One substitution: ``original`` words at ``start`` replaced by ``replacement`` words."""

    start: int
    original: tuple[str, ...]
    replacement: tuple[str, ...]
    kind: str  # "entity" or "context"
    source: str = ""


@dataclass
class SentenceResult:
    """The attack on one sentence.

    ``adversarial_words`` and ``adversarial_tags`` (gold tags rewritten for the new span lengths) hold the
    successful example, else the valid candidate with the lowest sentence F1, else ``None``.
    """

    index: int
    origin: str
    status: Status
    words: list[str]
    gold_tags: list[str]
    predicted_tags: list[str] | None = None
    adversarial_words: list[str] | None = None
    adversarial_tags: list[str] | None = None
    adversarial_predicted_tags: list[str] | None = None
    changes: list[Change] = field(default_factory=list)
    selected_positions: list[int] = field(default_factory=list)
    similarity: float | None = None
    modification_rate: float | None = None
    queries: int = 0
    attribution_passes: int = 0
    candidates_tried: int = 0
    skip_reason: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "origin": self.origin,
            "status": self.status.value,
            "words": self.words,
            "gold_tags": self.gold_tags,
            "predicted_tags": self.predicted_tags,
            "adversarial_words": self.adversarial_words,
            "adversarial_tags": self.adversarial_tags,
            "adversarial_predicted_tags": self.adversarial_predicted_tags,
            "changed_words": [
                {
                    "start": change.start,
                    "original": list(change.original),
                    "replacement": list(change.replacement),
                    "kind": change.kind,
                    "source": change.source,
                }
                for change in self.changes
            ],
            "selected_positions": self.selected_positions,
            "similarity": self.similarity,
            "modification_rate": self.modification_rate,
            "queries": self.queries,
            "attribution_passes": self.attribution_passes,
            "candidates_tried": self.candidates_tried,
            "skip_reason": self.skip_reason,
            "error": self.error,
            "seconds": self.seconds,
        }


@dataclass
class AttackRun:
    """All sentence results of one attack, with the settings and timings that produced them."""

    results: list[SentenceResult]
    settings: dict[str, Any]
    seconds: float = 0.0
    attribution_seconds: float = 0.0
    cache_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    selection_stats: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(1 for result in self.results if result.status is status)
