"""Selection statistics: how often a selector picks context words, against the corpus's own mix.

A context word is a word whose gold tag is ``O``. The statistics count selections word by word: an entity
word in the top K counts as one entity selection, and the rest of its span is not added. So the selected
share and the base rate count the same unit.

The base rate pools all words, while the top K takes the same number of words from every sentence. A
selector with no preference (``random``) therefore lands on the mean of the per-sentence context shares,
which is below the pooled base rate when short sentences carry more entities, as in CoNLL-2003.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pytest_nerrobust.errors import NerRobustError

if TYPE_CHECKING:
    from pytest_nerrobust.corpus import Sentence


def top_k_positions(scores: np.ndarray, k: int) -> list[int]:
    """Return the positions of the ``k`` highest scores, highest first; ties go to the earlier word.

    NaN scores are never selected. Fewer than ``k`` positions come back for a shorter sentence.

    >>> top_k_positions(np.array([0.1, 0.5, 0.5, 0.2]), 2)
    [1, 2]
    """
    if k < 1:
        raise NerRobustError(f"K={k} is invalid; select at least one word per sentence")
    values = np.asarray(scores, dtype=np.float64)
    candidates = [position for position in range(len(values)) if not np.isnan(values[position])]
    candidates.sort(key=lambda position: (-values[position], position))
    return candidates[:k]


def context_base_rate(sentences: Sequence[Sentence]) -> float:
    """Return the share of context words (gold tag ``O``) among all words; 0.0 for no words."""
    words = sum(len(sentence.tags) for sentence in sentences)
    context = sum(tag == "O" for sentence in sentences for tag in sentence.tags)
    return context / words if words else 0.0


def selected_context_share(sentences: Sequence[Sentence], scores: Sequence[np.ndarray], k: int) -> float:
    """Return the share of context words among the top-``k`` words of every sentence, pooled over sentences.

    Each selected word counts once (see the module docstring). A sentence shorter than ``k`` contributes
    all its words. Returns 0.0 when nothing is selected.
    """
    if len(scores) != len(sentences):
        raise NerRobustError(
            f"got scores for {len(scores)} sentences but {len(sentences)} sentences; pass one score array per "
            "sentence"
        )
    selected = 0
    context = 0
    for sentence, sentence_scores in zip(sentences, scores):
        if len(sentence_scores) != len(sentence.words):
            raise NerRobustError(
                f"sentence at {sentence.origin or '<memory>'} has {len(sentence.words)} words but "
                f"{len(sentence_scores)} scores; pass one score per word"
            )
        positions = top_k_positions(sentence_scores, k)
        selected += len(positions)
        context += sum(sentence.tags[position] == "O" for position in positions)
    return context / selected if selected else 0.0


def selection_stats(sentences: Sequence[Sentence], scores: Sequence[np.ndarray], k: int) -> dict[str, float]:
    """Return ``context_base_rate`` and ``selected_context_share`` at ``k`` for the JSON report.

    >>> from pytest_nerrobust.corpus import Sentence
    >>> sentence = Sentence(("Peter", "lives", "here"), ("B-PER", "O", "O"))
    >>> selection_stats([sentence], [np.array([0.9, 0.1, 0.0])], k=1)
    {'context_base_rate': 0.6666666666666666, 'selected_context_share': 0.0}
    """
    return {
        "context_base_rate": context_base_rate(sentences),
        "selected_context_share": selected_context_share(sentences, scores, k),
    }
