"""Protocols for the two kinds of substitution source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EntityCandidate:
    """A replacement entity: its words, and the source and knowledge-base category it came from."""

    words: tuple[str, ...]
    source: str
    category: str = ""


class EntitySource(Protocol):
    """Gives other entities of the same category as a mention."""

    name: str

    def fingerprint(self) -> str:
        """Identify the source and its settings, for cache keys."""
        ...

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` replacements for ``mention`` of type ``entity_type``, best first.

        An unknown type returns an empty list, never an error. The mention itself is never returned.
        """
        ...


class ContextInfiller(Protocol):
    """Gives single-word replacements for a context word that fit both sides of it."""

    name: str

    def fingerprint(self) -> str:
        """Identify the model or endpoint, its prompt and its sampling settings, for cache keys."""
        ...

    def candidates(self, words: Sequence[str], position: int, limit: int) -> list[str]:
        """Return at most ``limit`` single-word replacements for ``words[position]``, best first."""
        ...
