"""The selector protocol: one importance score per word, higher first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from pytest_nerrobust.corpus import Sentence
    from pytest_nerrobust.models.base import NERModel


class Selector(Protocol):
    """Scores words for how much changing them should hurt the model.

    ``scores`` returns, for each sentence, a float array with one score per word. The engine takes the top K
    and expands an entity word to its whole span. Selectors must be deterministic for a given ``seed``.
    ``passes`` counts the model forward or gradient passes spent so far (reported apart from queries).
    """

    name: str
    passes: int

    def fingerprint(self) -> str:
        """Identify the selector and its settings, for cache keys."""
        ...

    def scores(
        self,
        model: NERModel,
        sentences: Sequence[Sentence],
        predictions: Sequence[Sequence[str]],
    ) -> list[np.ndarray]:
        """Return one importance score per word of each sentence."""
        ...
