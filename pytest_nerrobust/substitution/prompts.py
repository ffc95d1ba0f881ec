"""Prompt texts for infilling a context word with a causal language model.

``LocalLMInfiller`` reads one prompt per sentence: the document start, the sentence, a newline and the
sentence again (``repeat_prompt``). A causal LM reads left to right, so at a word's place in the first copy
it has seen only the left context. At the same place in the second copy it has read the whole sentence,
so its most likely next words there also fit the words right of the position.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_nerrobust.similarity import detokenize

BLANK = "[BLANK]"
# Text between a sentence and its repeat in the proposal prompt.
REPEAT_SEPARATOR = "\n"

# Placeholder that detokenize treats as a plain word, so the text splits where the word goes.
_MARKER = "\u0000nerrobust-position\u0000"

# Document separator of GPT-2 style vocabularies (GPT-2, SmolLM, Pythia), used as the document start.
GPT2_DOCUMENT_SEPARATOR = "<|endoftext|>"


def split_sentence(words: Sequence[str], position: int) -> tuple[str, str]:
    """Return the detokenized text left and right of ``words[position]``, spacing included.

    The word at ``position`` is spaced as a plain word, which is how a replacement word is spaced.

    >>> split_sentence(["The", "dog", "barked", "."], 1)
    ('The ', ' barked.')
    """
    text = detokenize([*words[:position], _MARKER, *words[position + 1 :]])
    left, _, right = text.partition(_MARKER)
    return left, right


def sentence_with(words: Sequence[str], position: int, replacement: str) -> str:
    """Return the detokenized sentence with ``words[position]`` replaced by ``replacement``."""
    left, right = split_sentence(words, position)
    return f"{left}{replacement}{right}"


def word_segments(words: Sequence[str]) -> list[str]:
    """Split the detokenized sentence into one piece per word: the space before the word, then the word.

    The pieces join into ``detokenize(words)``. Tokenizing each piece on its own makes every word start
    at a token boundary, so the tokens before a word are the tokens of its left context.

    >>> word_segments(["Germany", "(", "CDU", ")", "said", "."])
    ['Germany', ' (', 'CDU', ')', ' said', '.']
    """
    segments: list[str] = []
    previous = ""
    for end in range(1, len(words) + 1):
        # detokenize spaces a word by the words before it and the word itself only, so each prefix's
        # text extends the previous prefix's text.
        text = detokenize(words[:end])
        segments.append(text[len(previous) :])
        previous = text
    return segments


def repeat_prompt(words: Sequence[str], document_start: str) -> str:
    """Return the proposal prompt: the document start, the sentence, a newline and the sentence again.

    >>> repeat_prompt(["The", "dog", "barked", "."], "<|endoftext|>")
    '<|endoftext|>The dog barked.\\nThe dog barked.'
    """
    sentence = detokenize(words)
    return f"{document_start}{sentence}{REPEAT_SEPARATOR}{sentence}"


def choose_document_start(vocabulary: dict[str, int], bos_token: str | None) -> str:
    """Return the token text that starts a document for a tokenizer's vocabulary.

    GPT-2 style vocabularies separate pretraining documents with ``<|endoftext|>``; other tokenizers get
    their BOS token, or nothing.
    """
    if GPT2_DOCUMENT_SEPARATOR in vocabulary:
        return GPT2_DOCUMENT_SEPARATOR
    return bos_token or ""
