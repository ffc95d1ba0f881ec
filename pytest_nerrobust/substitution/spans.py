"""Apply substitutions to a labelled sentence and rewrite its gold tags for the new span lengths."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from pytest_nerrobust.results import Change

CHANGE_KINDS = ("entity", "context")


def apply_changes(words: Sequence[str], tags: Sequence[str],
                  changes: Sequence[Change]) -> tuple[list[str], list[str], list[int]]:
    """Replace words of a sentence and rewrite its IOB2 tags to match.

    An entity change gets ``B-X I-X ...`` over the length of its replacement, where ``X`` is the type of
    the words it replaces (the first tag keeps its prefix, so a change inside an entity continues it). A
    context change keeps the tags of the words it replaces. It may change the number of words only when
    all of them are tagged ``O``. Words after a change shift by the difference in length. Changes may come
    in any order.

    >>> apply_changes(["in", "Paris", "today"], ["O", "B-LOC", "O"],
    ...               [Change(1, ("Paris",), ("New", "York"), "entity")])
    (['in', 'New', 'York', 'today'], ['O', 'B-LOC', 'I-LOC', 'O'], [0, 1, 3])

    Args:
        words: the original words.
        tags: their IOB2 tags, one per word.
        changes: substitutions over disjoint words, in any order.

    Returns:
        ``(new_words, new_tags, alignment)``, where ``alignment[i]`` is the new position of original word
        ``i``. A replaced word maps to the replacement word at the same offset, or to the last one when the
        replacement is shorter.

    Raises:
        ValueError: ``words`` and ``tags`` differ in length; a change has an unknown kind, is empty, lies
            outside the sentence or does not match the words at its position; two changes overlap; an
            entity change covers a word tagged ``O`` or more than one entity; a context change of tagged
            words changes their number.
    """
    if len(words) != len(tags):
        raise ValueError(f"got {len(words)} words but {len(tags)} tags; give exactly one tag per word")
    ordered = sorted(changes, key=lambda change: change.start)
    for change in ordered:
        _check_change(change, words)
    for before, after in itertools.pairwise(ordered):
        if before.start + len(before.original) > after.start:
            raise ValueError(f"changes overlap: {_describe(before)} and {_describe(after)}; "
                             "give changes over disjoint words")

    new_words: list[str] = []
    new_tags: list[str] = []
    alignment: list[int] = []
    position = 0
    for change in ordered:
        end = change.start + len(change.original)
        for index in range(position, change.start):
            alignment.append(len(new_words))
            new_words.append(words[index])
            new_tags.append(tags[index])

        new_start = len(new_words)
        new_tags.extend(_replacement_tags(change, tags[change.start:end]))
        new_words.extend(change.replacement)
        for offset in range(len(change.original)):
            alignment.append(new_start + min(offset, len(change.replacement) - 1))
        position = end

    for index in range(position, len(words)):
        alignment.append(len(new_words))
        new_words.append(words[index])
        new_tags.append(tags[index])
    return new_words, new_tags, alignment


def _check_change(change: Change, words: Sequence[str]) -> None:
    if change.kind not in CHANGE_KINDS:
        raise ValueError(f"{_describe(change)} has kind {change.kind!r}; "
                         f"use one of {', '.join(CHANGE_KINDS)}")
    if not change.original or not change.replacement:
        raise ValueError(f"{_describe(change)} is empty; a change replaces one or more words by one or more "
                         "words")
    end = change.start + len(change.original)
    if change.start < 0 or end > len(words):
        raise ValueError(f"{_describe(change)} reaches outside the sentence of {len(words)} words")
    if tuple(words[change.start:end]) != tuple(change.original):
        raise ValueError(f"{_describe(change)} does not match the sentence, which has "
                         f"{' '.join(words[change.start:end])!r} there")


def _replacement_tags(change: Change, old_tags: Sequence[str]) -> list[str]:
    if change.kind == "context":
        if len(change.replacement) == len(old_tags):
            return list(old_tags)
        if any(tag != "O" for tag in old_tags):
            raise ValueError(f"{_describe(change)} changes the number of words tagged {list(old_tags)}; a "
                             "context change of entity words must keep their number")
        return ["O"] * len(change.replacement)

    prefix, _, label = old_tags[0].partition("-")
    if prefix not in ("B", "I") or not label:
        raise ValueError(f"{_describe(change)} starts at a word tagged {old_tags[0]!r}; "
                         "an entity change must replace entity words")
    for tag in old_tags[1:]:
        if tag != f"I-{label}":
            raise ValueError(f"{_describe(change)} covers tags {list(old_tags)}, which are not one {label} "
                             "entity; replace one entity per change")
    return [f"{prefix}-{label}"] + [f"I-{label}"] * (len(change.replacement) - 1)


def _describe(change: Change) -> str:
    return (f"{change.kind} change at word {change.start} "
            f"({' '.join(change.original)!r} -> {' '.join(change.replacement)!r})")
