"""Context substitutes from a masked language model in a local directory (the transformers fill-mask task).

The chosen word is replaced by the tokenizer's mask token and the model's top predictions for that one
token become the candidates, after dropping special tokens, word pieces (``##ing``) and what
:func:`~pytest_nerrobust.substitution.filters.filter_context_candidates` rejects (the original word,
non-words, words that would create an entity). transformers loads only when the first candidate is
requested.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import ModelLoadError
from pytest_nerrobust.quiet import no_progress_bars
from pytest_nerrobust.similarity import model_dir_fingerprint
from pytest_nerrobust.substitution.filters import filter_context_candidates

logger = logging.getLogger(__name__)

CACHE_NAMESPACE = "masked-lm"


class MaskedLMInfiller:
    """A :class:`~pytest_nerrobust.substitution.base.ContextInfiller` over a local fill-mask model.

    Args:
        model_dir: a directory with a masked LM and its tokenizer (``config.json``, weights, vocabulary).
        cache: the persistent cache for predictions.
        top_k: predictions requested from the model before filtering (default 20).
        batch_size: sentences per forward pass when :meth:`candidates_batch` is used (default 16).
        lexicon: lowercased entity names that a candidate must not be (default ``None``: the gazetteer
            lexicon of :func:`~pytest_nerrobust.substitution.entities.entity_lexicon`).

    Raises:
        ModelLoadError: ``model_dir`` is not a directory with a ``config.json``.
    """

    name = "masked-lm"

    def __init__(self, model_dir: str | Path, cache: Cache, *, top_k: int = 20, batch_size: int = 16,
                 lexicon: Collection[str] | None = None) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelLoadError(f"--infill-model {str(self.model_dir)!r} is not a model directory (no config.json); "
                                 "pass a local directory that contains a masked language model and its tokenizer")
        self.cache = cache
        self.top_k = top_k
        self.batch_size = batch_size
        self.lexicon = lexicon
        self._pipeline: Any = None
        self._fingerprint = f"{self.name}:{model_dir_fingerprint(self.model_dir)}:k{top_k}"

    def fingerprint(self) -> str:
        """Identify the model (its configs and weight file sizes) and ``top_k``."""
        return self._fingerprint

    def candidates(self, words: Sequence[str], position: int, limit: int) -> list[str]:
        """Return at most ``limit`` single-word replacements for ``words[position]``, most probable first."""
        return self.candidates_batch([(words, position)], limit)[0]

    def candidates_batch(self, requests: Sequence[tuple[Sequence[str], int]], limit: int) -> list[list[str]]:
        """Return the candidates for several ``(words, position)`` pairs, predicting the uncached ones together."""
        results: list[list[tuple[str, float]] | None] = []
        pending: list[int] = []
        for index, (words, position) in enumerate(requests):
            found, value = self.cache.lookup(CACHE_NAMESPACE, self._key(words, position))
            results.append(value if found else None)
            if not found:
                pending.append(index)
        for start in range(0, len(pending), self.batch_size):
            chunk = pending[start : start + self.batch_size]
            predictions = self._predict([requests[index] for index in chunk])
            for index, prediction in zip(chunk, predictions):
                words, position = requests[index]
                self.cache.store(CACHE_NAMESPACE, self._key(words, position), prediction)
                results[index] = prediction
        return [self._select(words, position, predictions or [], limit)
                for (words, position), predictions in zip(requests, results)]

    def _key(self, words: Sequence[str], position: int) -> tuple[Any, ...]:
        return (self._fingerprint, list(words), position)

    def _load(self) -> Any:
        if self._pipeline is None:
            from transformers import pipeline

            try:
                with no_progress_bars():
                    self._pipeline = pipeline("fill-mask", model=str(self.model_dir),
                                              tokenizer=str(self.model_dir), device="cpu")
            except (OSError, ValueError, KeyError) as error:
                raise ModelLoadError(f"--infill-model {str(self.model_dir)!r} could not be loaded as a fill-mask "
                                     f"model ({error}); pass a directory with a masked LM and its tokenizer") from error
            if self._pipeline.tokenizer.mask_token is None:
                raise ModelLoadError(f"--infill-model {str(self.model_dir)!r} has no mask token, so it is not a "
                                     "masked language model; pass a BERT-like model or use --infill=local-lm")
        return self._pipeline

    def _predict(self, requests: Sequence[tuple[Sequence[str], int]]) -> list[list[tuple[str, float]]]:
        fill_mask = self._load()
        mask = fill_mask.tokenizer.mask_token
        texts = [" ".join(mask if index == position else word for index, word in enumerate(words))
                 for words, position in requests]
        special = set(fill_mask.tokenizer.all_special_tokens)
        # A tiny vocabulary can be smaller than top_k, and the pipeline rejects a k above it.
        top_k = min(self.top_k, len(fill_mask.tokenizer))
        outputs = fill_mask(texts, top_k=top_k, batch_size=self.batch_size)
        if len(texts) == 1 and outputs and isinstance(outputs[0], dict):
            # The pipeline drops the outer list for a single input.
            outputs = [outputs]
        return [[(str(entry["token_str"]), float(entry["score"])) for entry in output
                 if entry["token_str"].strip() not in special] for output in outputs]

    def _select(self, words: Sequence[str], position: int, predictions: Sequence[tuple[str, float]],
                limit: int) -> list[str]:
        tokens = [token for token, _score in predictions if not token.strip().startswith("##")]
        return filter_context_candidates(tokens, words, position, self.lexicon)[:limit]
