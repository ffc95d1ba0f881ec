"""Tests of the disentangler on a tiny BERT token classifier trained by the test itself."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from conftest import PEOPLE, PLACES, make_sentences

from pytest_nerrobust.attribution.disentangle import (
    CACHE_NAMESPACE,
    STATE_FORMAT_VERSION,
    Disentangler,
    DisentanglerSettings,
    collect_training_pairs,
    context_recovery_error,
    data_fingerprint,
    gold_entity_mask,
    pooled_context,
)
from pytest_nerrobust.cache import Cache, make_key
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import ConfigError, NerRobustError

# A larger learning rate: with the default 1e-3 the loss moves only a few percent in 25 epochs on this data.
FAST = DisentanglerSettings(learning_rate=0.05, epochs=50)


@pytest.fixture(scope="module")
def model(tiny_tagger):
    return tiny_tagger


@pytest.fixture(scope="module")
def corpus() -> list[Sentence]:
    return make_sentences(200, seed=2)


@pytest.fixture(scope="module")
def trained(model, corpus) -> Disentangler:
    return Disentangler(FAST).fit(model, corpus)


def test_tiny_model_tags_entities(model):
    sentences = make_sentences(6, seed=5)
    predictions = model.predict([list(sentence.words) for sentence in sentences])
    assert predictions == [list(sentence.tags) for sentence in sentences]


def test_gold_entity_mask_values():
    sentences = [Sentence(("Anna", "sang"), ("B-PER", "O")), Sentence(("New", "York", "x"), ("B-LOC", "I-LOC", "O"))]
    mask = gold_entity_mask(sentences, 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False]]


def test_pooled_context_values():
    values = torch.tensor([[[1.0, 1.0], [2.0, 4.0], [4.0, 8.0]], [[5.0, 5.0], [9.0, 9.0], [7.0, 7.0]]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    entity_mask = torch.tensor([[True, False, False], [True, True, False]])
    pooled = pooled_context(values, mask, entity_mask)
    assert pooled[0].tolist() == [3.0, 6.0]
    assert pooled[1].tolist() == [0.0, 0.0]


def test_reconstruction_loss_falls_defaults(model, corpus):
    disentangler = Disentangler().fit(model, corpus)
    history = disentangler.history.reconstruction
    assert len(history) == 25
    assert history[-1] < history[0]


def test_reconstruction_loss_falls_fast(trained):
    history = trained.history.reconstruction
    assert len(history) == FAST.epochs
    assert history[-1] < 0.5 * history[0]


def test_training_is_deterministic(model, corpus, trained):
    again = Disentangler(FAST).fit(model, corpus)
    assert again.history == trained.history


def test_discriminator_error_higher_on_codes(model, corpus, trained):
    pairs = collect_training_pairs(model, corpus)
    error_on_entities = context_recovery_error(pairs.entities, pairs.contexts, FAST)
    assert trained.history.discriminator[-1] > error_on_entities


def test_discriminator_error_without_adversary(model, corpus):
    # Without the adversarial term the discriminator recovers C from E' better than from E, so the test
    # above fails for an implementation that drops -beta * MSE(C, Ĉ).
    settings = DisentanglerSettings(**{**asdict(FAST), "beta": 0.0})
    plain = Disentangler(settings).fit(model, corpus)
    pairs = collect_training_pairs(model, corpus)
    assert plain.history.discriminator[-1] < context_recovery_error(pairs.entities, pairs.contexts, settings)


def test_transform_keeps_context_and_padding(model, trained):
    sentences = [
        Sentence(("we", "met", "anna", "today"), ("O", "O", "B-PER", "O")),
        Sentence(("paris",), ("B-LOC",)),
        Sentence(("said", "hello"), ("O", "O")),
    ]
    features = model.word_features([list(sentence.words) for sentence in sentences])
    entity_mask = gold_entity_mask(sentences, features.values.shape[1])
    output = trained.transform(features.values, features.mask, entity_mask)
    changed = (output != features.values).any(dim=-1)

    assert output.shape == features.values.shape
    assert output.dtype == features.values.dtype
    assert changed.tolist() == entity_mask.tolist()
    assert bool(torch.isfinite(output).all())


def test_transform_batch_independent(model, trained):
    alone = Sentence(("paris",), ("B-LOC",))
    other = Sentence(("we", "met", "anna", "today"), ("O", "O", "B-PER", "O"))
    single = model.word_features([list(alone.words)])
    single_output = trained.transform(single.values, single.mask, gold_entity_mask([alone], 1))
    batch = model.word_features([list(other.words), list(alone.words)])
    batch_output = trained.transform(batch.values, batch.mask, gold_entity_mask([other, alone], 4))
    assert torch.allclose(batch_output[1, 0], single_output[0, 0], atol=1e-6)


def test_transform_sentence_without_entities(model, trained):
    sentence = Sentence(("said", "hello"), ("O", "O"))
    features = model.word_features([list(sentence.words)])
    output = trained.transform(features.values, features.mask, gold_entity_mask([sentence], 2))
    assert torch.equal(output, features.values)


def test_transform_is_differentiable(model, trained):
    sentence = Sentence(("we", "met", "anna"), ("O", "O", "B-PER"))
    features = model.word_features([list(sentence.words)])
    values = features.values.clone().requires_grad_(True)
    trained.transform(values, features.mask, gold_entity_mask([sentence], 3)).sum().backward()
    assert values.grad is not None
    assert float(values.grad[0, 2].abs().sum()) > 0.0


def test_transform_before_fit_raises():
    with pytest.raises(NerRobustError, match=r"^the disentangler is not trained; call fit\(model, sentences\) first$"):
        Disentangler().transform(torch.zeros(1, 1, 4), torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))


def test_fit_without_entities_raises(model):
    sentences = [Sentence(("said", "hello"), ("O", "O"))] * 3
    message = (
        "the disentangler found no gold entity word in 3 sentences; pass a corpus with entity tags or use the "
        "selector ig-raw"
    )
    with pytest.raises(ConfigError) as error:
        Disentangler(FAST).fit(model, sentences)
    assert str(error.value) == message


def test_fit_only_entity_sentences(model):
    sentences = [Sentence((name,), ("B-PER",)) for name in PEOPLE] + [Sentence((place,), ("B-LOC",)) for place in PLACES]
    disentangler = Disentangler(FAST).fit(model, sentences)
    features = model.word_features([["anna"]])
    output = disentangler.transform(features.values, features.mask, torch.ones(1, 1, dtype=torch.bool))
    assert disentangler.training_pairs == 16
    assert bool(torch.isfinite(output).all())


def test_cache_reloads_trained_state(model, corpus, tmp_path):
    cache = Cache(tmp_path / "cache")
    first = Disentangler(FAST, cache=cache).fit(model, corpus)
    second = Disentangler(FAST, cache=cache).fit(model, corpus)
    features = model.word_features([["we", "met", "anna"]])
    entity_mask = torch.tensor([[False, False, True]])

    assert first.loaded_from_cache is False
    assert second.loaded_from_cache is True
    assert cache.stats()["disentangler"] == {"hits": 1, "misses": 1}
    assert second.history == first.history
    assert second.training_seconds == first.training_seconds
    assert torch.equal(
        second.transform(features.values, features.mask, entity_mask),
        first.transform(features.values, features.mask, entity_mask),
    )


def test_cache_key_includes_settings(model, corpus, tmp_path):
    cache = Cache(tmp_path / "cache")
    Disentangler(FAST, cache=cache).fit(model, corpus)
    other = Disentangler(DisentanglerSettings(**{**asdict(FAST), "beta": 1.0}), cache=cache).fit(model, corpus)
    assert other.loaded_from_cache is False
    assert cache.stats()["disentangler"] == {"hits": 0, "misses": 2}


def test_cache_key_ignores_feature_batch_size(model, corpus, tmp_path):
    cache = Cache(tmp_path / "cache")
    Disentangler(FAST, cache=cache).fit(model, corpus)
    other = Disentangler(DisentanglerSettings(**{**asdict(FAST), "feature_batch_size": 7}), cache=cache).fit(model, corpus)
    assert other.loaded_from_cache is True


def test_cache_key_includes_data(model, corpus, tmp_path):
    cache = Cache(tmp_path / "cache")
    first = Disentangler(FAST, cache=cache).fit(model, corpus)
    other = Disentangler(FAST, cache=cache).fit(model, corpus[:100])
    assert other.loaded_from_cache is False
    assert other.fingerprint() != first.fingerprint()


def test_cache_unreadable_entry_retrains(model, corpus, tmp_path):
    cache = Cache(tmp_path / "cache")
    parts = (model.fingerprint, data_fingerprint(corpus), FAST.result_key(), STATE_FORMAT_VERSION)
    cache.set(make_key(CACHE_NAMESPACE, *parts), b"not a torch file")
    retrained = Disentangler(FAST, cache=cache).fit(model, corpus)
    reloaded = Disentangler(FAST, cache=cache).fit(model, corpus)

    assert retrained.loaded_from_cache is False
    assert len(retrained.history.reconstruction) == FAST.epochs
    assert reloaded.loaded_from_cache is True
    assert reloaded.history == retrained.history


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_sizes", (), "disentangler hidden_sizes [] is invalid; give one or more positive integers, for example [64, 10]"),
        ("hidden_sizes", (64, 0), "disentangler hidden_sizes [64, 0] is invalid; give one or more positive integers, for example [64, 10]"),
        ("epochs", 0, "disentangler epochs 0 is invalid; give a positive integer"),
        ("batch_size", 2.5, "disentangler batch_size 2.5 is invalid; give a positive integer"),
        ("learning_rate", 0.0, "disentangler learning_rate 0.0 is invalid; give a non-negative number above 0"),
        ("beta", -1.0, "disentangler beta -1.0 is invalid; give a non-negative number"),
    ],
)
def test_settings_reject_invalid(field, value, message):
    with pytest.raises(ConfigError) as error:
        DisentanglerSettings(**{field: value})
    assert str(error.value) == message


def test_settings_from_mapping():
    settings = DisentanglerSettings.from_mapping({"hidden_sizes": [32, 8], "beta": 1.0})
    assert settings.hidden_sizes == (32, 8)
    assert settings.beta == 1.0


def test_settings_from_mapping_unknown_key():
    with pytest.raises(ConfigError, match=r"^unknown disentangler setting\(s\) \['betta'\]; accepted settings are "):
        DisentanglerSettings.from_mapping({"betta": 1.0})
