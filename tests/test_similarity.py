"""Tests for detokenization and the MiniLM sentence encoder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.similarity import (
    EMBEDDING_NAMESPACE,
    SentenceEncoder,
    default_encoder_path,
    detokenize,
    model_dir_fingerprint,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(batch_size=8)


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (["Peter", "Blackburn"], "Peter Blackburn"),
        (["He", "said", ",", "then", "left", "."], "He said, then left."),
        (["Germany", "'s", "representative"], "Germany's representative"),
        (["They", "do", "n't", "know", "!"], "They don't know!"),
        (["the", "Christian", "Democrats", "(", "CDU", ")", "won"], "the Christian Democrats (CDU) won"),
        (["he", "said", '"', "no", "deal", '"', "."], 'he said "no deal".'),
        (['"', "Yes", ",", '"', "he", "said"], '"Yes," he said'),
        (["rose", "5", "%", "to", "$", "10"], "rose 5% to $10"),
        (["-LRB-", "Reuters", "-RRB-"], "(Reuters)"),
        (["``", "Fine", "''", "she", "said"], '"Fine" she said'),
        (["1-0", "win", "--", "a", "surprise"], "1-0 win -- a surprise"),
        (["costs", ":", "high", ";", "risk", "?"], "costs: high; risk?"),
        ([], ""),
    ],
)
def test_detokenize_news_text(words: list[str], text: str) -> None:
    assert detokenize(words) == text


def test_encode_shape_and_norm(encoder: SentenceEncoder) -> None:
    embeddings = encoder.encode(["The dog barked at the mailman.", "Stocks fell sharply on Monday."])
    assert embeddings.shape == (2, 384)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), [1.0, 1.0], atol=1e-5)


def test_identical_sentence_cosine_one(encoder: SentenceEncoder) -> None:
    sentence = "Japan beat Syria 2-1 in the Asian Cup."
    cosines = encoder.similarity(sentence, [sentence])
    assert cosines.shape == (1,)
    assert abs(float(cosines[0]) - 1.0) < 1e-5


def test_paraphrase_above_unrelated(encoder: SentenceEncoder) -> None:
    paraphrase, unrelated = encoder.similarity(
        "The dog barked at the mailman.",
        ["A dog was barking at the postman.", "Oil prices rose after the OPEC meeting."],
    )
    assert paraphrase > unrelated
    assert paraphrase > 0.6
    assert unrelated < 0.3


def test_similarity_empty_candidates(encoder: SentenceEncoder) -> None:
    assert encoder.similarity("A sentence.", []).shape == (0,)


def test_encode_empty_list(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_encode_rejects_non_string(encoder: SentenceEncoder) -> None:
    with pytest.raises(TypeError, match="text 1 is list, not str"):
        encoder.encode(["fine", ["not", "joined"]])  # type: ignore[list-item]


def test_embeddings_cached(encoder: SentenceEncoder, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cached = SentenceEncoder(cache=cache, batch_size=8)
    first = cached.encode(["The dog barked.", "Stocks fell."])
    assert cache.stats()[EMBEDDING_NAMESPACE] == {"hits": 0, "misses": 2}

    second = cached.encode(["Stocks fell.", "A new sentence."])
    assert cache.stats()[EMBEDDING_NAMESPACE] == {"hits": 1, "misses": 3}
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_allclose(second, encoder.encode(["Stocks fell.", "A new sentence."]), atol=1e-6)


def test_cached_embeddings_survive_reopen(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    expected = SentenceEncoder(cache=cache).encode(["Japan won."])
    cache.close()

    reopened = Cache(tmp_path / "cache")
    assert np.array_equal(SentenceEncoder(cache=reopened).encode(["Japan won."]), expected)
    assert reopened.stats()[EMBEDDING_NAMESPACE] == {"hits": 1, "misses": 0}


def test_repeated_text_in_one_call(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    embeddings = SentenceEncoder(cache=cache).encode(["Same.", "Same."])
    np.testing.assert_array_equal(embeddings[0], embeddings[1])
    assert cache.stats()[EMBEDDING_NAMESPACE] == {"hits": 1, "misses": 1}


def test_fingerprint_names_model() -> None:
    fingerprint = SentenceEncoder().fingerprint()
    assert fingerprint.startswith("sentence-transformers:model:")
    assert fingerprint == SentenceEncoder(model_path=default_encoder_path()).fingerprint()


def test_model_dir_fingerprint_tracks_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 8}', encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"0" * 16)
    before = model_dir_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("notes", encoding="utf-8")
    assert model_dir_fingerprint(tmp_path) == before
    (tmp_path / "config.json").write_text('{"hidden_size": 16}', encoding="utf-8")
    assert model_dir_fingerprint(tmp_path) != before


def test_missing_model_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="sentence encoder directory .*absent' does not exist"):
        SentenceEncoder(model_path=tmp_path / "absent")


def test_unloadable_model_path_rejected(tmp_path: Path) -> None:
    encoder = SentenceEncoder(model_path=tmp_path)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        encoder.encode(["text"])


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.5])
def test_invalid_batch_size_rejected(batch_size: object) -> None:
    with pytest.raises(ConfigError, match="sentence encoder batch_size .* is invalid; pass an integer >= 1"):
        SentenceEncoder(batch_size=batch_size)  # type: ignore[arg-type]
