"""Integrated Gradients over word features, batched across sentences, with a convergence check.

The attribution target is the model's summed log-probability of its own predicted tags, the baseline is
all-zero word features, and a word's score is the L2 norm of its attribution vector. Integration starts
with ``steps`` Gauss-Legendre points for the whole batch. A sentence whose completeness gap
``|sum(attributions) - (F(x) - F(baseline))|`` exceeds ``tolerance`` times ``|F(x) - F(baseline)|`` is
integrated again with twice the steps, up to ``max_steps``. Cheap sentences stay cheap, and hard ones
converge toward what a 50-step run would select.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from pytest_nerrobust.errors import ConfigError

if TYPE_CHECKING:
    from pytest_nerrobust.corpus import Sentence
    from pytest_nerrobust.models.base import GradientNERModel, WordFeatures

logger = logging.getLogger(__name__)

FeatureTransform = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Attribution:
    """Per-word scores of one batch with the completeness gap of each sentence and the steps it needed."""

    scores: list[np.ndarray]
    attributions: torch.Tensor
    deltas: torch.Tensor
    steps: list[int]


class IntegratedGradientsSelector:
    """Select words by Integrated Gradients (captum) over a gradient-capable model's word features.

    Args:
        steps: integration steps of the first pass (default 16).
        max_steps: most steps a sentence may be refined to (default 64).
        tolerance: completeness gap allowed, relative to ``|F(x) - F(baseline)|`` (default 0.05).
        batch_size: sentences per attribution batch (default 16).
        internal_batch_size: rows captum sends through the model at once (default 128).
        transform: optional ``(values, mask, entity_mask) -> values`` applied to the word features before
            attribution; the disentangler plugs in here (default none, which is ``ig-raw``).
        name: selector name in reports (default ``"ig-raw"``).
    """

    def __init__(
        self,
        steps: int = 16,
        max_steps: int = 64,
        tolerance: float = 0.05,
        batch_size: int = 16,
        internal_batch_size: int = 128,
        transform: FeatureTransform | None = None,
        name: str = "ig-raw",
        transform_fingerprint: str = "",
    ) -> None:
        if steps < 1 or max_steps < steps:
            raise ConfigError(
                f"invalid Integrated Gradients steps={steps}, max_steps={max_steps}; pass 1 <= steps <= max_steps "
                "(--attack-ig-steps sets steps)"
            )
        self.steps = steps
        self.max_steps = max_steps
        self.tolerance = tolerance
        self.batch_size = batch_size
        self.internal_batch_size = internal_batch_size
        self.transform = transform
        self.name = name
        self.transform_fingerprint = transform_fingerprint
        self.passes = 0
        self.step_counts: list[int] = []

    def fingerprint(self) -> str:
        return (
            f"{self.name}:steps={self.steps}:max={self.max_steps}:tol={self.tolerance}:"
            f"transform={self.transform_fingerprint}"
        )

    def scores(
        self,
        model: GradientNERModel,
        sentences: Sequence[Sentence],
        predictions: Sequence[Sequence[str]],
    ) -> list[np.ndarray]:
        """Return one score per word of each sentence (L2 norm of the word's attribution)."""
        output: list[np.ndarray] = []
        for start in range(0, len(sentences), self.batch_size):
            batch = sentences[start : start + self.batch_size]
            result = self.attribute(model, batch, predictions[start : start + self.batch_size])
            output.extend(result.scores)
        return output

    def attribute(
        self,
        model: GradientNERModel,
        sentences: Sequence[Sentence],
        predictions: Sequence[Sequence[str]],
        steps: int | None = None,
        refine: bool = True,
    ) -> Attribution:
        """Attribute one batch; with ``refine``, redo non-converged sentences with more steps.

        ``step_counts`` gets one entry per sentence: the steps its final attribution used.
        """
        result = self._attribute(model, sentences, predictions, steps, refine)
        self.step_counts.extend(result.steps)
        return result

    def _attribute(
        self,
        model: GradientNERModel,
        sentences: Sequence[Sentence],
        predictions: Sequence[Sequence[str]],
        steps: int | None,
        refine: bool,
    ) -> Attribution:
        features = model.word_features([list(sentence.words) for sentence in sentences])
        values = self._input_values(features, sentences)
        target = _target_indices(model, predictions, features.mask.shape)
        first_steps = steps or self.steps
        attributions, deltas = self._integrate(model, features, values, target, first_steps)
        used = [first_steps] * len(sentences)

        if refine:
            gaps = self._relative_gaps(model, features, values, target, deltas)
            current = first_steps
            pending = [index for index, gap in enumerate(gaps) if gap > self.tolerance]
            while pending and current < self.max_steps:
                current = min(current * 2, self.max_steps)
                subset = [sentences[index] for index in pending]
                redo = self._attribute(model, subset, [predictions[index] for index in pending], current, refine=False)
                width = redo.attributions.shape[1]
                for position, index in enumerate(pending):
                    attributions[index] = 0
                    attributions[index, :width] = redo.attributions[position]
                    deltas[index] = redo.deltas[position]
                    used[index] = current
                gaps_now = self._relative_gaps(model, features, values, target, deltas)
                pending = [index for index in pending if gaps_now[index] > self.tolerance]
            if pending:
                logger.debug("%d sentences kept a completeness gap above %.3f at %d steps", len(pending), self.tolerance, current)

        mask = features.mask.bool()
        norms = attributions.norm(dim=-1).masked_fill(~mask, 0.0)
        scores = [norms[index, : len(sentence.words)].numpy().astype(np.float64) for index, sentence in enumerate(sentences)]
        return Attribution(scores=scores, attributions=attributions, deltas=deltas, steps=used)

    def _input_values(self, features: WordFeatures, sentences: Sequence[Sentence]) -> torch.Tensor:
        values = features.values.detach()
        if self.transform is None:
            return values
        entity_mask = torch.zeros(features.mask.shape, dtype=torch.bool)
        for index, sentence in enumerate(sentences):
            for position, tag in enumerate(sentence.tags):
                entity_mask[index, position] = tag != "O"
        with torch.no_grad():
            return self.transform(values, features.mask, entity_mask).detach()

    def _integrate(self, model, features, values, target, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        from captum.attr import IntegratedGradients

        mask = features.mask.to(values.dtype)

        def forward(scaled: torch.Tensor) -> torch.Tensor:
            return _target_score(model, features, scaled, target, mask)

        method = IntegratedGradients(forward)
        attributions, deltas = method.attribute(
            values,
            baselines=torch.zeros_like(values),
            n_steps=steps,
            method="gausslegendre",
            internal_batch_size=max(self.internal_batch_size, values.shape[0]),
            return_convergence_delta=True,
        )
        self.passes += steps * values.shape[0] + 2 * values.shape[0]
        return attributions.detach(), deltas.detach()

    def _relative_gaps(self, model, features, values, target, deltas) -> list[float]:
        mask = features.mask.to(values.dtype)
        with torch.no_grad():
            at_input = _target_score(model, features, values, target, mask)
            at_baseline = _target_score(model, features, torch.zeros_like(values), target, mask)
        scale = (at_input - at_baseline).abs().clamp(min=1e-6)
        return (deltas.abs() / scale).tolist()


def _target_indices(model, predictions: Sequence[Sequence[str]], shape: torch.Size) -> torch.Tensor:
    tag_index = {tag: index for index, tag in enumerate(model.tag_names)}
    target = torch.zeros(shape, dtype=torch.long)
    for row, tags in enumerate(predictions):
        for position, tag in enumerate(tags):
            target[row, position] = tag_index.get(tag, 0)
    return target


def _target_score(model, features, values: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return the summed log-probability of the predicted tags, one value per row of ``values``."""
    repeats = values.shape[0] // target.shape[0]
    log_probs = model.forward_features(values, features)
    index = target.repeat(repeats, 1).unsqueeze(-1)
    chosen = log_probs.gather(-1, index).squeeze(-1)
    return (chosen * mask.repeat(repeats, 1)).sum(dim=1)
