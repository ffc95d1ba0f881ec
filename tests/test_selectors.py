"""Tests of the word selectors, their factory and the selection statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_sentences

from pytest_nerrobust.attribution.selectors import (
    KernelShapSelector,
    OcclusionSelector,
    RandomSelector,
    TfidfSelector,
    build_selector,
)
from pytest_nerrobust.attribution.stats import (
    context_base_rate,
    selected_context_share,
    selection_stats,
    top_k_positions,
)
from pytest_nerrobust.cache import Cache
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import ConfigError, NerRobustError

ALL_SELECTORS = ["ig", "ig-raw", "random", "tfidf", "kernel-shap", "occlusion"]
CONFIG = {"kernel_shap_samples": 64, "disentangler": {"learning_rate": 0.05, "epochs": 20}}


class MisterTagger:
    """A black-box tagger without word features: a capitalised word after "Mr" is a person."""

    labels = ("PER",)
    fingerprint = "mister-tagger"

    def predict(self, sentences):
        return [
            ["B-PER" if index > 0 and words[index - 1] == "Mr" and word[:1].isupper() else "O" for index, word in enumerate(words)]
            for words in sentences
        ]


@pytest.fixture(scope="module")
def model(tiny_tagger):
    return tiny_tagger


@pytest.fixture(scope="module")
def reference() -> list[Sentence]:
    return make_sentences(120, seed=2)


@pytest.fixture(scope="module")
def batch() -> list[Sentence]:
    """Sentences of different lengths, one without entities and one made only of an entity."""
    return make_sentences(4, seed=7) + [
        Sentence(("said", "hello"), ("O", "O"), "no-entity"),
        Sentence(("paris",), ("B-LOC",), "only-entity"),
    ]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Cache:
    return Cache(tmp_path_factory.mktemp("cache"))


def predict(model, sentences):
    return model.predict([list(sentence.words) for sentence in sentences])


@pytest.mark.parametrize("name", ALL_SELECTORS)
def test_selector_scores_every_word(name, model, reference, batch, cache):
    selector = build_selector(name, model=model, config=CONFIG, cache=cache, reference_sentences=reference)
    scores = selector.scores(model, batch, predict(model, batch))
    assert [len(sentence_scores) for sentence_scores in scores] == [len(sentence.words) for sentence in batch]
    assert all(bool(np.isfinite(sentence_scores).all()) for sentence_scores in scores)


@pytest.mark.parametrize("name", ALL_SELECTORS)
def test_selector_ignores_batch_padding(name, model, reference, batch, cache):
    selector = build_selector(name, model=model, config=CONFIG, cache=cache, reference_sentences=reference)
    predictions = predict(model, batch)
    together = selector.scores(model, batch, predictions)
    for index, sentence in enumerate(batch):
        alone = selector.scores(model, [sentence], [predictions[index]])[0]
        assert np.allclose(alone, together[index], atol=1e-5), sentence.origin


@pytest.mark.parametrize("name", ALL_SELECTORS)
def test_selector_deterministic_under_seed(name, model, reference, batch, cache):
    config = {**CONFIG, "seed": 3}
    predictions = predict(model, batch)
    first = build_selector(name, model=model, config=config, cache=cache, reference_sentences=reference)
    second = build_selector(name, model=model, config=config, cache=cache, reference_sentences=reference)
    for first_scores, second_scores in zip(first.scores(model, batch, predictions), second.scores(model, batch, predictions)):
        assert np.array_equal(first_scores, second_scores)


@pytest.mark.parametrize("name", ["random", "kernel-shap"])
def test_selector_seed_changes_scores(name, model, reference, batch, cache):
    sentence = [batch[1]]
    predictions = predict(model, sentence)
    seeded = {
        seed: build_selector(name, model=model, config={**CONFIG, "seed": seed}, cache=cache, reference_sentences=reference)
        .scores(model, sentence, predictions)[0]
        for seed in (0, 1)
    }
    assert not np.array_equal(seeded[0], seeded[1])


def test_ig_scores_entity_word_highest(model, reference, cache):
    sentence = Sentence(("we", "flew", "to", "oslo", "yesterday"), ("O", "O", "O", "B-LOC", "O"))
    selector = build_selector("ig", model=model, config=CONFIG, cache=cache, reference_sentences=reference)
    scores = selector.scores(model, [sentence], predict(model, [sentence]))[0]
    assert top_k_positions(scores, 1) == [3]


@pytest.mark.parametrize(("name", "has_transform"), [("ig", True), ("ig-raw", False)])
def test_build_selector_ig_settings(name, has_transform, model, reference, cache):
    config = {**CONFIG, "ig_steps": 8, "ig_batch_size": 4}
    selector = build_selector(name, model=model, config=config, cache=cache, reference_sentences=reference)
    assert selector.name == name
    assert selector.steps == 8
    assert selector.batch_size == 4
    assert (selector.transform is not None) is has_transform


def test_occlusion_black_box_exact():
    model = MisterTagger()
    sentences = [Sentence(("Mr", "Smith", "went", "home"), ("O", "B-PER", "O", "O")), Sentence(("Hi",), ("O",))]
    selector = build_selector("occlusion", model=model)
    scores = selector.scores(model, sentences, predict(model, sentences))
    assert scores[0].tolist() == [0.25, 0.25, 0.0, 0.0]
    assert scores[1].tolist() == [0.0]
    # The original and the four one-word ablations, then the original and one ablation.
    assert selector.passes == 7


def test_occlusion_uses_mask_token():
    model = MisterTagger()
    sentence = Sentence(("Mr", "Smith", "left"), ("O", "B-PER", "O"))
    predictions = predict(model, [sentence])
    default = OcclusionSelector().scores(model, [sentence], predictions)[0]
    custom = OcclusionSelector(mask_token="Jones").scores(model, [sentence], predictions)[0]
    # "[UNK]" in place of "Smith" loses the person tag; "Jones" in its place is a person again.
    assert default.tolist() == pytest.approx([1 / 3, 1 / 3, 0.0], abs=1e-12)
    assert custom.tolist() == pytest.approx([1 / 3, 0.0, 0.0], abs=1e-12)


def test_occlusion_zero_mode_needs_features():
    model = MisterTagger()
    sentence = Sentence(("Mr", "Smith"), ("O", "B-PER"))
    message = (
        "selector occlusion with mask mode 'zero' needs a model with word features (MisterTagger has none); "
        "use mask mode 'token'"
    )
    with pytest.raises(ConfigError) as error:
        OcclusionSelector(mask_mode="zero").scores(model, [sentence], predict(model, [sentence]))
    assert str(error.value) == message


def test_kernel_shap_black_box_close_to_shapley():
    model = MisterTagger()
    sentence = Sentence(("Mr", "Smith", "went", "home"), ("O", "B-PER", "O", "O"))
    selector = KernelShapSelector(n_samples=200)
    scores = selector.scores(model, [sentence], predict(model, [sentence]))[0]
    # "Mr" and "Smith" share the one tag they keep together: Shapley values 1/8, 1/8, 0, 0.
    assert np.allclose(scores, [0.125, 0.125, 0.0, 0.0], atol=0.05)
    assert sorted(top_k_positions(scores, 2)) == [0, 1]
    assert selector.passes == 200


def test_kernel_shap_single_word_exact():
    model = MisterTagger()
    sentence = Sentence(("Smith",), ("O",))
    selector = KernelShapSelector(n_samples=16)
    scores = selector.scores(model, [sentence], predict(model, [sentence]))[0]
    assert scores.tolist() == [0.0]
    assert selector.passes == 2


def test_kernel_shap_zero_mode_on_gradient_model(model):
    sentence = Sentence(("mister", "hans", "smiled", "at", "us"), ("O", "B-PER", "O", "O", "O"))
    selector = KernelShapSelector(n_samples=64, mask_mode="zero")
    scores = selector.scores(model, [sentence], predict(model, [sentence]))[0]
    assert top_k_positions(scores, 1) == [1]
    # One clean pass for the reference tags, then the sampled coalitions.
    assert selector.passes == 65


def test_random_scores_range_and_passes(batch):
    selector = RandomSelector(seed=0)
    scores = selector.scores(None, batch, [list(sentence.tags) for sentence in batch])  # type: ignore[arg-type]
    assert all(bool(((values >= 0.0) & (values < 1.0)).all()) for values in scores)
    assert selector.passes == 0


def test_tfidf_exact_values():
    reference = [
        Sentence(("the", "cat"), ("O", "O")),
        Sentence(("the", "dog"), ("O", "O")),
        Sentence(("a", "cat", "sat"), ("O", "O", "O")),
    ]
    selector = TfidfSelector(reference)
    sentence = Sentence(("The", "cat", "the", "zebra"), ("O", "O", "O", "B-MISC"))
    scores = selector.scores(None, [sentence], [list(sentence.tags)])[0]  # type: ignore[arg-type]
    common = math.log(4 / 3) + 1
    unseen = math.log(4 / 1) + 1
    assert np.allclose(scores, [2 / 4 * common, 1 / 4 * common, 2 / 4 * common, 1 / 4 * unseen], rtol=0, atol=1e-12)


def test_tfidf_without_reference_raises():
    message = (
        "selector tfidf needs a reference corpus but got no sentences; pass the reference sentences (the "
        "attacked corpus by default)"
    )
    with pytest.raises(ConfigError) as error:
        build_selector("tfidf", model=MisterTagger())
    assert str(error.value) == message


def test_unknown_selector_raises():
    message = "unknown selector 'shap'; accepted selectors are ig, ig-raw, random, tfidf, kernel-shap, occlusion"
    with pytest.raises(ConfigError) as error:
        build_selector("shap", model=MisterTagger())
    assert str(error.value) == message


@pytest.mark.parametrize("name", ["ig", "ig-raw"])
def test_ig_needs_gradient_model(name):
    message = (
        f"selector {name} needs a model with word features and gradients, and MisterTagger has none; pass "
        "--attack-selector=occlusion, kernel-shap, random or tfidf, which only query the model"
    )
    with pytest.raises(ConfigError) as error:
        build_selector(name, model=MisterTagger(), reference_sentences=[Sentence(("Mr", "X"), ("O", "B-PER"))])
    assert str(error.value) == message


def test_predictions_length_mismatch_raises():
    sentence = Sentence(("Mr", "Smith"), ("O", "B-PER"), "file.txt:3")
    message = "sentence at file.txt:3 has 2 words but its prediction has 1 tags; pass one predicted tag per word"
    with pytest.raises(NerRobustError) as error:
        RandomSelector().scores(MisterTagger(), [sentence], [["O"]])
    assert str(error.value) == message


def test_kernel_shap_rejects_small_sample_count():
    with pytest.raises(ConfigError) as error:
        KernelShapSelector(n_samples=1)
    assert str(error.value) == "selector kernel-shap n_samples 1 is invalid; give an integer of 2 or more"


# Selection statistics ---------------------------------------------------------------------------------


STATS_SENTENCES = [
    Sentence(("Peter", "lives", "in", "New", "York"), ("B-PER", "O", "O", "B-LOC", "I-LOC")),
    Sentence(("it", "rains"), ("O", "O")),
    Sentence(("Oslo",), ("B-LOC",)),
]


def test_context_base_rate_exact():
    assert context_base_rate(STATS_SENTENCES) == 4 / 8


def test_context_base_rate_empty():
    assert context_base_rate([]) == 0.0


def test_top_k_positions_ties_and_nan():
    assert top_k_positions(np.array([0.5, np.nan, 0.5, 0.9]), 3) == [3, 0, 2]


def test_top_k_positions_rejects_zero():
    with pytest.raises(NerRobustError, match=r"^K=0 is invalid; select at least one word per sentence$"):
        top_k_positions(np.array([1.0]), 0)


def test_selected_context_share_k1():
    scores = [np.array([0.1, 0.9, 0.0, 0.2, 0.3]), np.array([0.4, 0.1]), np.array([0.7])]
    # Top-1 words: "lives" (context), "it" (context), "Oslo" (entity).
    assert selected_context_share(STATS_SENTENCES, scores, 1) == 2 / 3


def test_selected_context_share_k3_counts_words():
    scores = [np.array([0.1, 0.9, 0.0, 0.2, 0.3]), np.array([0.4, 0.1]), np.array([0.7])]
    # Top-3 words: "lives", "York", "New" (one context, two entity words); "it", "rains"; "Oslo".
    assert selected_context_share(STATS_SENTENCES, scores, 3) == 3 / 6


def test_selected_context_share_length_mismatch():
    message = "sentence at <memory> has 1 words but 2 scores; pass one score per word"
    with pytest.raises(NerRobustError) as error:
        selected_context_share([STATS_SENTENCES[2]], [np.array([0.1, 0.2])], 1)
    assert str(error.value) == message


def test_selection_stats_keys():
    scores = [np.array([0.1, 0.9, 0.0, 0.2, 0.3]), np.array([0.4, 0.1]), np.array([0.7])]
    assert selection_stats(STATS_SENTENCES, scores, 1) == {
        "context_base_rate": 0.5,
        "selected_context_share": 2 / 3,
    }
