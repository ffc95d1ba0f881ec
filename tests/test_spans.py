"""Tests for applying substitutions to labelled sentences (pytest_nerrobust.substitution.spans)."""

from __future__ import annotations

import pytest

from pytest_nerrobust.corpus import Span, spans_from_tags
from pytest_nerrobust.results import Change
from pytest_nerrobust.substitution.spans import apply_changes

WORDS = ["He", "flew", "to", "Paris", "with", "Anna", "Smith", "."]
TAGS = ["O", "O", "O", "B-LOC", "O", "B-PER", "I-PER", "O"]


def entity(start: int, original: list[str], replacement: list[str]) -> Change:
    return Change(start, tuple(original), tuple(replacement), "entity")


def context(start: int, original: list[str], replacement: list[str]) -> Change:
    return Change(start, tuple(original), tuple(replacement), "context")


def test_longer_entity_gives_b_i_i():
    words, tags, alignment = apply_changes(WORDS, TAGS, [entity(3, ["Paris"], ["Rio", "de", "Janeiro"])])

    assert words == ["He", "flew", "to", "Rio", "de", "Janeiro", "with", "Anna", "Smith", "."]
    assert tags == ["O", "O", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-PER", "I-PER", "O"]
    assert alignment == [0, 1, 2, 3, 6, 7, 8, 9]


def test_longer_entity_shifts_later_spans():
    _, tags, _ = apply_changes(WORDS, TAGS, [entity(3, ["Paris"], ["Rio", "de", "Janeiro"])])

    assert spans_from_tags(tags) == [Span(3, 6, "LOC"), Span(7, 9, "PER")]


def test_shorter_entity_shifts_back():
    words, tags, alignment = apply_changes(WORDS, TAGS, [entity(5, ["Anna", "Smith"], ["Pele"])])

    assert words == ["He", "flew", "to", "Paris", "with", "Pele", "."]
    assert tags == ["O", "O", "O", "B-LOC", "O", "B-PER", "O"]
    assert alignment == [0, 1, 2, 3, 4, 5, 5, 6]


def test_entity_at_first_position():
    words, tags, alignment = apply_changes(["Paris", "is", "big"], ["B-LOC", "O", "O"],
                                           [entity(0, ["Paris"], ["New", "York"])])

    assert words == ["New", "York", "is", "big"]
    assert tags == ["B-LOC", "I-LOC", "O", "O"]
    assert alignment == [0, 2, 3]


def test_entity_at_last_position():
    words, tags, alignment = apply_changes(["I", "love", "Paris"], ["O", "O", "B-LOC"],
                                           [entity(2, ["Paris"], ["New", "York"])])

    assert words == ["I", "love", "New", "York"]
    assert tags == ["O", "O", "B-LOC", "I-LOC"]
    assert alignment == [0, 1, 2]


def test_one_word_sentence():
    words, tags, alignment = apply_changes(["Germany"], ["B-LOC"],
                                           [entity(0, ["Germany"], ["United", "Kingdom"])])

    assert words == ["United", "Kingdom"]
    assert tags == ["B-LOC", "I-LOC"]
    assert alignment == [0]


def test_two_changes_in_any_order():
    changes = [entity(5, ["Anna", "Smith"], ["Bob"]), entity(3, ["Paris"], ["Rio", "de", "Janeiro"])]

    forward = apply_changes(WORDS, TAGS, changes)
    backward = apply_changes(WORDS, TAGS, list(reversed(changes)))

    assert forward == backward
    assert forward[0] == ["He", "flew", "to", "Rio", "de", "Janeiro", "with", "Bob", "."]
    assert forward[1] == ["O", "O", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-PER", "O"]
    assert forward[2] == [0, 1, 2, 3, 6, 7, 7, 8]


def test_entity_and_context_change():
    changes = [context(1, ["flew"], ["drove"]), entity(3, ["Paris"], ["New", "York"])]

    words, tags, _ = apply_changes(WORDS, TAGS, changes)

    assert words == ["He", "drove", "to", "New", "York", "with", "Anna", "Smith", "."]
    assert tags == ["O", "O", "O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O"]


def test_context_change_keeps_tag():
    _, tags, _ = apply_changes(WORDS, TAGS, [context(5, ["Anna"], ["Anne"])])

    assert tags == TAGS


def test_context_change_of_o_words_may_resize():
    words, tags, alignment = apply_changes(WORDS, TAGS, [context(1, ["flew"], ["came", "back"])])

    assert words[:4] == ["He", "came", "back", "to"]
    assert tags == ["O", "O", "O", "O", "B-LOC", "O", "B-PER", "I-PER", "O"]
    assert alignment == [0, 1, 3, 4, 5, 6, 7, 8]


def test_change_inside_entity_continues_it():
    _, tags, _ = apply_changes(WORDS, TAGS, [entity(6, ["Smith"], ["van", "Dijk"])])

    assert tags[5:8] == ["B-PER", "I-PER", "I-PER"]
    assert spans_from_tags(tags) == [Span(3, 4, "LOC"), Span(5, 8, "PER")]


def test_no_changes_returns_copy():
    words, tags, alignment = apply_changes(WORDS, TAGS, [])

    assert words == WORDS
    assert tags == TAGS
    assert alignment == list(range(len(WORDS)))


def test_overlap_names_both_changes():
    first = entity(5, ["Anna", "Smith"], ["Bob"])
    second = context(6, ["Smith"], ["Jones"])

    with pytest.raises(ValueError) as raised:
        apply_changes(WORDS, TAGS, [second, first])

    assert "entity change at word 5 ('Anna Smith' -> 'Bob')" in str(raised.value)
    assert "context change at word 6 ('Smith' -> 'Jones')" in str(raised.value)


def test_same_start_overlaps():
    with pytest.raises(ValueError, match="overlap"):
        apply_changes(WORDS, TAGS, [context(1, ["flew"], ["ran"]), context(1, ["flew"], ["went"])])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (entity(3, ["London"], ["Rome"]), "does not match the sentence, which has 'Paris' there"),
        (entity(7, [".", "x"], ["Rome"]), "reaches outside the sentence of 8 words"),
        (entity(-1, ["He"], ["She"]), "reaches outside the sentence"),
        (entity(3, ["Paris"], []), "is empty"),
        (entity(3, [], ["Rome"]), "is empty"),
        (Change(3, ("Paris",), ("Rome",), "swap"), "has kind 'swap'; use one of entity, context"),
        (entity(1, ["flew"], ["Rome"]), "starts at a word tagged 'O'"),
        (entity(3, ["Paris", "with"], ["Rome"]), "are not one LOC entity"),
        (context(5, ["Anna", "Smith"], ["Bob"]), "must keep their number"),
    ],
)
def test_invalid_change_raises(change: Change, message: str):
    with pytest.raises(ValueError) as raised:
        apply_changes(WORDS, TAGS, [change])

    assert message in str(raised.value)


def test_two_adjacent_entities_rejected():
    with pytest.raises(ValueError, match="not one LOC entity"):
        apply_changes(["Paris", "Berlin"], ["B-LOC", "B-LOC"], [entity(0, ["Paris", "Berlin"], ["Rome"])])


def test_words_and_tags_length_mismatch():
    with pytest.raises(ValueError, match="got 2 words but 1 tags"):
        apply_changes(["a", "b"], ["O"], [])
