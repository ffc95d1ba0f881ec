"""Filters for context-word candidates: keep single plain words that cannot create an entity."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence

# A word of Unicode letters ("café", "naïve"), optionally joined by hyphens or apostrophes ("well-known",
# "don't"). Digits, underscores and other punctuation are rejected.
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


def filter_context_candidates(candidates: Iterable[str], words: Sequence[str], position: int,
                              lexicon: Collection[str] | None = None) -> list[str]:
    """Keep the candidates for ``words[position]`` that are plain single words and create no entity.

    A candidate is dropped when it

    * is not one word of letters (whitespace inside, punctuation, digits, word pieces such as ``##ing``);
    * equals the original word, ignoring case;
    * reads as a name: it starts with a capital letter after the first position, or has a capital letter
      after its first letter anywhere ("NASA", "McDonald"). This check is skipped when the original word
      is all capitals (a headline), where case says nothing;
    * is in ``lexicon`` (compared lowercased), because it names a known entity.

    A candidate for position 0 takes the capitalisation of the original word, and a candidate for an
    all-capitals word is written in capitals, after the checks above. Candidates are Unicode
    NFC-normalised, and of duplicates only the first is kept.

    >>> filter_context_candidates(["big", "Paris", "large", "2", "big"], ["A", "small", "dog"], 1,
    ...                           lexicon={"paris"})
    ['big', 'large']

    Args:
        candidates: replacement words, best first.
        words: the sentence.
        position: the index of the word being replaced.
        lexicon: lowercased entity names to reject. ``None`` (the default) uses
            :func:`~pytest_nerrobust.substitution.entities.entity_lexicon`; pass an empty set to skip
            this check.

    Raises:
        ValueError: ``position`` is not an index of ``words``.
    """
    if not 0 <= position < len(words):
        raise ValueError(f"position {position} is outside the sentence of {len(words)} words")
    if lexicon is None:
        from pytest_nerrobust.substitution.entities import entity_lexicon

        lexicon = entity_lexicon()
    original = words[position]
    headline = _is_all_capitals(original)

    accepted: list[str] = []
    for candidate in candidates:
        word = unicodedata.normalize("NFC", candidate.strip())
        if not _PLAIN_WORD.fullmatch(word):
            continue
        if word.lower() == original.lower():
            continue
        if not headline and _reads_as_name(word, position):
            continue
        if word.lower() in lexicon:
            continue
        word = _match_case(word, original, position)
        if word not in accepted:
            accepted.append(word)
    return accepted


def _reads_as_name(word: str, position: int) -> bool:
    if position > 0 and word[0].isupper():
        return True
    return any(character.isupper() for character in word[1:])


def _match_case(word: str, original: str, position: int) -> str:
    if _is_all_capitals(original):
        return word.upper()
    if position > 0:
        return word
    if original[:1].isupper():
        return word[0].upper() + word[1:]
    return word[0].lower() + word[1:]


def _is_all_capitals(word: str) -> bool:
    letters = [character for character in word if character.isalpha()]
    return len(letters) > 1 and all(character.isupper() for character in letters)
