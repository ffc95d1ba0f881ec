"""Tests for the context-candidate filters (pytest_nerrobust.substitution.filters)."""

from __future__ import annotations

import pytest

from pytest_nerrobust.substitution.filters import filter_context_candidates

SENTENCE = ["The", "dog", "barked", "at", "the", "mailman", "."]
HEADLINE = ["JAPAN", "GET", "LUCKY", "WIN"]
NO_LEXICON: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (["dog", "cat"], ["cat"]),
        (["DOG", "cat"], ["cat"]),
        (["Dog", "cat"], ["cat"]),
    ],
)
def test_original_word_dropped(candidates: list[str], expected: list[str]):
    assert filter_context_candidates(candidates, SENTENCE, 1, NO_LEXICON) == expected


@pytest.mark.parametrize(
    "candidate",
    ["ice cream", "two\twords", "", "   ", "##ing", "[UNK]", "<unk>", "e.g.", "-ish", "cat-", "'s"],
)
def test_not_single_plain_word_dropped(candidate: str):
    assert filter_context_candidates([candidate, "cat"], SENTENCE, 1, NO_LEXICON) == ["cat"]


@pytest.mark.parametrize("candidate", [",", ".", "...", "--", "'", "!", "?!", "(", "&"])
def test_punctuation_dropped(candidate: str):
    assert filter_context_candidates([candidate, "cat"], SENTENCE, 1, NO_LEXICON) == ["cat"]


@pytest.mark.parametrize("candidate", ["1996", "3", "42", "3D", "mp3", "1990s", "20th", "٣"])
def test_digits_dropped(candidate: str):
    assert filter_context_candidates([candidate, "cat"], SENTENCE, 1, NO_LEXICON) == ["cat"]


@pytest.mark.parametrize(
    ("candidate", "position", "expected"),
    [
        ("Paris", 1, ["cat"]),
        ("Smith", 5, ["cat"]),
        ("Cat", 1, ["cat"]),
        ("NASA", 1, ["cat"]),
        ("NASA", 0, ["Cat"]),
        ("McDonald", 0, ["Cat"]),
        ("iPhone", 1, ["cat"]),
    ],
)
def test_name_like_candidate_dropped(candidate: str, position: int, expected: list[str]):
    assert filter_context_candidates([candidate, "cat"], SENTENCE, position, NO_LEXICON) == expected


@pytest.mark.parametrize(
    ("candidate", "position", "lexicon"),
    [
        ("paris", 1, {"paris"}),
        ("german", 5, {"german", "france"}),
        ("France", 0, {"france"}),
        ("texas", 4, {"texas"}),
    ],
)
def test_lexicon_word_dropped(candidate: str, position: int, lexicon: set[str]):
    accepted = filter_context_candidates([candidate], SENTENCE, position, lexicon)

    assert accepted == []


def test_default_lexicon_is_gazetteer():
    accepted = filter_context_candidates(["french", "german", "loud", "tokyo", "angry"], SENTENCE, 2)

    assert accepted == ["loud", "angry"]


def test_empty_lexicon_keeps_entity_word():
    assert filter_context_candidates(["french"], SENTENCE, 2, NO_LEXICON) == ["french"]


@pytest.mark.parametrize(
    ("words", "candidates", "expected"),
    [
        (["The", "dog", "barked"], ["a", "this"], ["A", "This"]),
        (["The", "dog", "barked"], ["A", "That"], ["A", "That"]),
        (["the", "dog", "barked"], ["A", "That"], ["a", "that"]),
        (["THE", "DOG", "BARKED"], ["a", "this"], ["A", "THIS"]),
        (["I", "think", "so"], ["we", "they"], ["We", "They"]),
        (["Élan", "matters"], ["ñandú"], ["Ñandú"]),
    ],
)
def test_first_word_takes_original_case(words: list[str], candidates: list[str], expected: list[str]):
    assert filter_context_candidates(candidates, words, 0, NO_LEXICON) == expected


def test_headline_word_written_in_capitals():
    accepted = filter_context_candidates(["happy", "Fortunate", "paris", "LUCKY"], HEADLINE, 2, {"paris"})

    assert accepted == ["HAPPY", "FORTUNATE"]


def test_mid_sentence_keeps_candidate_case():
    assert filter_context_candidates(["loud", "angry"], SENTENCE, 2, NO_LEXICON) == ["loud", "angry"]


@pytest.mark.parametrize("candidate", ["café", "naïve", "façade", "über", "straße", "ñandú",
                                       "мост"])
def test_non_ascii_letters_kept(candidate: str):
    assert filter_context_candidates([candidate], SENTENCE, 5, NO_LEXICON) == [candidate]


def test_decomposed_accent_normalised():
    accepted = filter_context_candidates(["cafe\u0301"], SENTENCE, 5, NO_LEXICON)

    assert accepted == ["caf\u00e9"]


@pytest.mark.parametrize("candidate", ["well-known", "don't", "o'clock", "rock\u2019n"])
def test_inner_hyphen_or_apostrophe_kept(candidate: str):
    assert filter_context_candidates([candidate], SENTENCE, 5, NO_LEXICON) == [candidate]


def test_surrounding_whitespace_stripped():
    assert filter_context_candidates(["  cat \n"], SENTENCE, 1, NO_LEXICON) == ["cat"]


def test_duplicates_keep_first():
    accepted = filter_context_candidates(["cat", "fox", "cat", "fox", "owl"], SENTENCE, 1, NO_LEXICON)

    assert accepted == ["cat", "fox", "owl"]


def test_duplicates_after_case_matching():
    accepted = filter_context_candidates(["a", "A", "this"], ["The", "dog"], 0, NO_LEXICON)

    assert accepted == ["A", "This"]


def test_order_preserved():
    accepted = filter_context_candidates(["zebra", "ant", "mole"], SENTENCE, 1, NO_LEXICON)

    assert accepted == ["zebra", "ant", "mole"]


@pytest.mark.parametrize("position", [-1, 7, 100])
def test_position_outside_sentence(position: int):
    with pytest.raises(ValueError, match=f"position {position} is outside the sentence of 7 words"):
        filter_context_candidates(["cat"], SENTENCE, position, NO_LEXICON)
