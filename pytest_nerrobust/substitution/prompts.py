"""Prompt texts for infilling a context word with a causal language model.

A causal LM reads left to right, so two prompts propose candidates for the word at a position. The
first is the sentence's own left context, which the LM continues. The second is an instruction that shows
the whole sentence with ``[BLANK]`` and then repeats its left context, so its proposals also depend on the
words right of the blank. The LM then scores the full sentence with each candidate in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_nerrobust.similarity import detokenize

BLANK = "[BLANK]"
INFILL_INSTRUCTION = "Sentence: {blanked}\nThe same sentence with [BLANK] replaced by one word: "

# Placeholder that detokenize treats as a plain word, so the text splits where the word goes.
_MARKER = "\u0000nerrobust-position\u0000"

# Document separator of GPT-2 style vocabularies (GPT-2, SmolLM, Pythia), used as the document start.
GPT2_DOCUMENT_SEPARATOR = "<|endoftext|>"


@dataclass(frozen=True)
class InfillPrompt:
    """A prompt that ends right before the word to propose. ``space_before`` is true when that word
    starts with a space."""

    text: str
    space_before: bool


def split_sentence(words: Sequence[str], position: int) -> tuple[str, str]:
    """Return the detokenized text left and right of ``words[position]``, spacing included.

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


def _ending_before_word(text: str) -> InfillPrompt:
    # A trailing space belongs to the next token in byte-level BPE vocabularies (" dog"), so the prompt
    # ends without it and the proposed token must carry it.
    if text.endswith(" "):
        return InfillPrompt(text[:-1], space_before=True)
    return InfillPrompt(text, space_before=False)


def build_infill_prompts(words: Sequence[str], position: int, document_start: str) -> list[InfillPrompt]:
    """Build the left-context prompt and the ``[BLANK]`` instruction prompt for ``words[position]``.

    >>> [p.text for p in build_infill_prompts(["The", "dog", "barked"], 1, "")]
    ['The', 'Sentence: The [BLANK] barked\\nThe same sentence with [BLANK] replaced by one word: The']
    """
    left, right = split_sentence(words, position)
    blanked = f"{left}{BLANK}{right}"
    return [
        _ending_before_word(document_start + left),
        _ending_before_word(document_start + INFILL_INSTRUCTION.format(blanked=blanked) + left),
    ]


def choose_document_start(vocabulary: dict[str, int], bos_token: str | None) -> str:
    """Return the token text that starts a document for a tokenizer's vocabulary.

    GPT-2 style vocabularies separate pretraining documents with ``<|endoftext|>``; other tokenizers get
    their BOS token, or nothing.
    """
    if GPT2_DOCUMENT_SEPARATOR in vocabulary:
        return GPT2_DOCUMENT_SEPARATOR
    return bos_token or ""
