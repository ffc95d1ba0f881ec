"""Tests of Integrated Gradients over the tiny model's word features: completeness, refinement and padding."""

from __future__ import annotations

import pytest
import torch

from pytest_nerrobust.attribution.ig import IntegratedGradientsSelector
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import ConfigError

# Sentences of 11, 1 and 4 words, so the shorter two are padded in a batch.
SENTENCES = [
    Sentence(
        ("Talks", "between", "Tokelau", "and", "the", "World", "Bank", "ended", "without", "agreement", "."),
        ("O", "O", "B-LOC", "O", "O", "B-ORG", "I-ORG", "O", "O", "O", "O"),
    ),
    Sentence(("Bianchi",), ("B-PER",)),
    Sentence(("Reporting", "by", "Luis", "Weber"), ("O", "O", "B-PER", "I-PER")),
]


@pytest.fixture(scope="module")
def predictions(tiny_model) -> list[list[str]]:
    return tiny_model.predict([list(sentence.words) for sentence in SENTENCES])


def target_gap(model, predictions) -> list[float]:
    """Return ``F(x) - F(0)`` per sentence, where F sums the log-probabilities of the predicted tags."""
    features = model.word_features([list(sentence.words) for sentence in SENTENCES])
    index = {tag: position for position, tag in enumerate(model.tag_names)}
    with torch.no_grad():
        at_input = model.forward_features(features.values, features)
        at_baseline = model.forward_features(torch.zeros_like(features.values), features)
    gaps = []
    for row, tags in enumerate(predictions):
        total = 0.0
        for position, tag in enumerate(tags):
            total += float(at_input[row, position, index[tag]] - at_baseline[row, position, index[tag]])
        gaps.append(total)
    return gaps


def test_tiny_model_predicts_gold(predictions):
    assert predictions == [list(sentence.tags) for sentence in SENTENCES]


@pytest.mark.parametrize("steps", [4, 64])
def test_completeness_within_delta(tiny_model, predictions, steps):
    selector = IntegratedGradientsSelector(steps=steps, max_steps=steps)
    gaps = target_gap(tiny_model, predictions)

    result = selector.attribute(tiny_model, SENTENCES, predictions, refine=False)

    for row, gap in enumerate(gaps):
        total = float(result.attributions[row].sum())
        assert total - gap == pytest.approx(float(result.deltas[row]), abs=1e-4)


def test_delta_small_at_64_steps(tiny_model, predictions):
    selector = IntegratedGradientsSelector(steps=64, max_steps=64)
    gaps = target_gap(tiny_model, predictions)

    result = selector.attribute(tiny_model, SENTENCES, predictions, refine=False)

    for row, gap in enumerate(gaps):
        assert abs(float(result.deltas[row])) <= 1e-3 * abs(gap)


def test_refinement_raises_steps(tiny_model, predictions):
    tolerance = 0.1
    relative_gaps = {}
    for steps in (2, 4, 8):
        probe = IntegratedGradientsSelector(steps=steps, max_steps=steps)
        result = probe.attribute(tiny_model, SENTENCES, predictions, refine=False)
        gaps = target_gap(tiny_model, predictions)
        relative_gaps[steps] = [abs(float(delta)) / abs(gap) for delta, gap in zip(result.deltas, gaps)]
    # A sentence keeps the first step count whose gap is within the tolerance, else the maximum, 8.
    expected = [next((steps for steps in (2, 4, 8) if relative_gaps[steps][row] <= tolerance), 8) for row in range(3)]
    selector = IntegratedGradientsSelector(steps=2, max_steps=8, tolerance=tolerance)

    result = selector.attribute(tiny_model, SENTENCES, predictions)

    assert len(set(expected)) > 1
    assert result.steps == expected
    assert selector.step_counts == expected


def test_refinement_keeps_converged(tiny_model, predictions):
    selector = IntegratedGradientsSelector(steps=2, max_steps=8, tolerance=1e9)

    result = selector.attribute(tiny_model, SENTENCES, predictions)

    assert result.steps == [2, 2, 2]
    assert selector.passes == 2 * 3 + 2 * 3


def test_refined_deltas_replace_first(tiny_model, predictions):
    fixed = IntegratedGradientsSelector(steps=8, max_steps=8)
    reference = fixed.attribute(tiny_model, SENTENCES, predictions, refine=False)
    selector = IntegratedGradientsSelector(steps=2, max_steps=8, tolerance=0.0)

    result = selector.attribute(tiny_model, SENTENCES, predictions)

    assert result.steps == [8, 8, 8]
    assert torch.allclose(result.deltas, reference.deltas, atol=1e-4)
    assert torch.allclose(result.attributions, reference.attributions, atol=1e-4)


def test_scores_one_per_word(tiny_model, predictions):
    selector = IntegratedGradientsSelector(steps=8, max_steps=8)

    result = selector.attribute(tiny_model, SENTENCES, predictions, refine=False)

    assert [score.shape for score in result.scores] == [(11,), (1,), (4,)]
    for row, sentence in enumerate(SENTENCES):
        norms = result.attributions[row, : len(sentence.words)].norm(dim=-1)
        assert result.scores[row].tolist() == pytest.approx(norms.tolist())


def test_padding_attributions_zero(tiny_model, predictions):
    selector = IntegratedGradientsSelector(steps=8, max_steps=8)

    result = selector.attribute(tiny_model, SENTENCES, predictions, refine=False)

    assert result.attributions.shape[:2] == (3, 11)
    assert float(result.attributions[1, 1:].abs().sum()) == 0.0
    assert float(result.attributions[2, 4:].abs().sum()) == 0.0
    assert float(result.attributions[1, 0].abs().sum()) > 0.0


def test_scores_batch_independent(tiny_model, predictions):
    selector = IntegratedGradientsSelector(steps=8, max_steps=8, batch_size=2)

    batched = selector.scores(tiny_model, SENTENCES, predictions)
    alone = [selector.scores(tiny_model, [sentence], [tags])[0] for sentence, tags in zip(SENTENCES, predictions)]

    for together, single in zip(batched, alone):
        assert together.tolist() == pytest.approx(single.tolist(), abs=1e-4)


def test_invalid_steps_rejected():
    with pytest.raises(ConfigError, match=r"^invalid Integrated Gradients steps=8, max_steps=4; pass 1 <= steps"):
        IntegratedGradientsSelector(steps=8, max_steps=4)
