"""The NERModel protocol and its gradient-capable extension.

A model under attack takes batches of word lists and returns one IOB2 tag per word. A gradient-capable
model also exposes word features (the model's own input embeddings pooled to words) and a forward pass
from those features, which attribution methods such as Integrated Gradients differentiate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class NERModel(Protocol):
    """Words in, IOB2 tags out, batched.

    ``labels`` lists the entity types the model predicts (``["LOC", "MISC", "ORG", "PER"]``).
    ``fingerprint`` identifies the weights and settings, so cached results are keyed per model.
    """

    labels: Sequence[str]
    fingerprint: str

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Return one IOB2 tag per word for each sentence, in the order given."""
        ...


@dataclass
class WordFeatures:
    """Word features of a batch: ``values`` ``[batch, max_words, dim]`` and ``mask`` ``[batch, max_words]``.

    ``context`` carries whatever the model needs to run a forward pass from these features (sub-word
    ids, the sub-word to word alignment, and the residual of each sub-word piece around its word mean).
    """

    values: torch.Tensor
    mask: torch.Tensor
    context: Any = None


@runtime_checkable
class GradientNERModel(NERModel, Protocol):
    """A model whose predictions are differentiable with respect to word features."""

    def word_features(self, sentences: Sequence[Sequence[str]]) -> WordFeatures:
        """Return the model's input embeddings pooled to words (mean of each word's sub-word pieces)."""
        ...

    def forward_features(self, values: torch.Tensor, features: WordFeatures) -> torch.Tensor:
        """Return per-word label log-probabilities ``[batch, max_words, num_tags]`` from word features.

        ``values`` has the shape of ``features.values`` and may be a scaled or perturbed copy of it; the
        rest of the batch (alignment, residuals) comes from ``features``. Tag index ``i`` is
        ``self.tag_names[i]``.
        """
        ...

    @property
    def tag_names(self) -> Sequence[str]:
        """IOB2 tag names in the order of the last dimension of :meth:`forward_features`."""
        ...
