"""Adapter for a local Hugging Face token-classification directory, with an optional CRF head.

The label of a word is the label of its first sub-word piece. Sentences longer than the model's maximum
length are predicted over overlapping windows of whole words, and each word takes its prediction from the
window where it sits farthest from an edge, so nothing is truncated.

A directory written by ``nerrobust train`` also contains ``nerrobust_model.json`` (maximum length, whether a
CRF head is present) and, with a CRF head, ``crf.pt`` (the pytorch-crf transition weights).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pytest_nerrobust.errors import ModelLoadError
from pytest_nerrobust.models.base import WordFeatures
from pytest_nerrobust.quiet import no_progress_bars

logger = logging.getLogger(__name__)

METADATA_FILE = "nerrobust_model.json"
CRF_FILE = "crf.pt"
DEFAULT_MAX_LENGTH = 128
WINDOW_OVERLAP_WORDS = 16


@dataclass
class _Window:
    """Words ``start`` to ``end`` of sentence ``sentence`` as one encoder row."""

    sentence: int
    start: int
    end: int


class HFTokenClassifier:
    """A Hugging Face ``*ForTokenClassification`` model from a local directory.

    Args:
        path: directory with ``config.json``, weights and a fast tokenizer.
        batch_size: encoder rows per forward pass (default 32).
        max_length: sub-word pieces per row including special tokens (default: the value saved by
            ``nerrobust train``, else the tokenizer's limit capped at the position embeddings).
        device: torch device (default ``"cpu"``).

    >>> model = HFTokenClassifier("models/conll-minilm")  # doctest: +SKIP
    >>> model.predict([["Peter", "lives", "in", "Berlin"]])  # doctest: +SKIP
    [['B-PER', 'O', 'O', 'B-LOC']]
    """

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str = "cpu",
    ) -> None:
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        self.path = Path(path)
        check_token_classifier_dir(self.path)
        metadata = _read_metadata(self.path)
        config = AutoConfig.from_pretrained(str(self.path), local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True, use_fast=True)
        if not self.tokenizer.is_fast:
            raise ModelLoadError(
                f"model directory {str(self.path)!r} has no fast tokenizer (tokenizer.json); word alignment "
                "needs one: save the tokenizer with a recent transformers version"
            )
        with no_progress_bars():
            self.network = AutoModelForTokenClassification.from_pretrained(str(self.path), local_files_only=True)
        self.network.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self._tag_names = [config.id2label[index] for index in range(config.num_labels)]
        self.labels = sorted({tag.split("-", 1)[1] for tag in self._tag_names if "-" in tag})

        positions = getattr(config, "max_position_embeddings", DEFAULT_MAX_LENGTH)
        saved = metadata.get("max_length") or min(self.tokenizer.model_max_length, positions)
        self.max_length = int(max_length or saved)

        self.crf = None
        if metadata.get("crf"):
            self.crf = load_crf(self.path, len(self._tag_names))
        self.fingerprint = _fingerprint_dir(self.path, self.max_length)

    @property
    def tag_names(self) -> list[str]:
        return list(self._tag_names)

    # Prediction -------------------------------------------------------------------------------------

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Return one IOB2 tag per word for each sentence (first sub-word piece decides)."""
        if not sentences:
            return []
        with torch.no_grad():
            features = self.word_features(sentences, need_grad=False)
            log_probs = self.forward_features(features.values, features)
        return self.decode(log_probs, features.mask)

    def decode(self, log_probs: torch.Tensor, mask: torch.Tensor) -> list[list[str]]:
        """Turn per-word scores ``[B, W, T]`` into tag lists, with Viterbi decoding when a CRF is present."""
        lengths = mask.sum(dim=1).tolist()
        if self.crf is not None:
            paths = self.crf.decode(log_probs, mask=mask.bool()) if log_probs.shape[1] else [[] for _ in lengths]
        else:
            paths = log_probs.argmax(dim=-1).tolist()
        return [[self._tag_names[index] for index in path[: int(length)]] for path, length in zip(paths, lengths)]

    # Word features and the forward pass from them ---------------------------------------------------

    def word_features(self, sentences: Sequence[Sequence[str]], need_grad: bool = True) -> WordFeatures:
        """Return the input embeddings pooled to words, plus what :meth:`forward_features` needs."""
        windows, _piece_counts = self._plan_windows(sentences)
        rows = [list(sentences[window.sentence][window.start : window.end]) for window in windows]
        encoded = self.tokenizer(
            rows,
            is_split_into_words=True,
            return_tensors="pt",
            padding=True,
            truncation=False,
        )
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        piece_word = torch.full(input_ids.shape, -1, dtype=torch.long)
        first_piece = torch.zeros(input_ids.shape, dtype=torch.bool)
        for row, window in enumerate(windows):
            previous = None
            for position, word in enumerate(encoded.word_ids(row)):
                if word is None:
                    continue
                piece_word[row, position] = window.start + word
                first_piece[row, position] = word != previous
                previous = word

        embedding = self.network.get_input_embeddings()
        with torch.no_grad():
            piece_embeddings = embedding(input_ids)
        max_words = max((len(sentence) for sentence in sentences), default=0)
        dim = piece_embeddings.shape[-1]
        sums = torch.zeros(len(sentences), max(max_words, 1), dim)
        counts = torch.zeros(len(sentences), max(max_words, 1), 1)
        row_sentence = torch.tensor([window.sentence for window in windows], dtype=torch.long)
        valid = piece_word >= 0
        rows_index, pieces_index = valid.nonzero(as_tuple=True)
        sentence_index = row_sentence[rows_index]
        word_index = piece_word[rows_index, pieces_index]
        # A word that sits in two overlapping windows is counted once: take only pieces of its owning row.
        owner = self._owner_rows(windows, sentences)
        owned = owner[sentence_index, word_index] == rows_index
        sums.index_put_(
            (sentence_index[owned], word_index[owned]), piece_embeddings[rows_index[owned], pieces_index[owned]], accumulate=True
        )
        counts.index_put_((sentence_index[owned], word_index[owned]), torch.ones(int(owned.sum()), 1), accumulate=True)
        values = sums / counts.clamp(min=1)
        mask = torch.zeros(len(sentences), max(max_words, 1), dtype=torch.long)
        for index, sentence in enumerate(sentences):
            mask[index, : len(sentence)] = 1

        residual = piece_embeddings.clone()
        residual[rows_index, pieces_index] = piece_embeddings[rows_index, pieces_index] - values[sentence_index, word_index]
        context = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "piece_word": piece_word,
            "first_piece": first_piece,
            "row_sentence": row_sentence,
            "residual": residual,
            "owner": owner,
            "windows": windows,
        }
        if need_grad:
            values = values.detach().requires_grad_(False)
        return WordFeatures(values=values, mask=mask, context=context)

    def forward_features(self, values: torch.Tensor, features: WordFeatures) -> torch.Tensor:
        """Return per-word log-probabilities ``[B, W, T]`` computed from word features ``values``.

        Each sub-word piece is its word's feature plus the piece's fixed residual around the word mean, so
        the output is differentiable in ``values`` and equals the plain model output at the clean features.
        ``values`` may carry a leading expansion of the batch (``[n * B, W, D]``) as captum builds it.
        """
        context = features.context
        batch = features.values.shape[0]
        repeats = values.shape[0] // batch
        row_sentence = context["row_sentence"]
        rows = len(row_sentence)

        input_embeddings = context["residual"].repeat(repeats, 1, 1)
        piece_word = context["piece_word"].repeat(repeats, 1)
        row_offsets = torch.arange(repeats).repeat_interleave(rows) * batch
        expanded_sentence = row_sentence.repeat(repeats) + row_offsets
        valid = piece_word >= 0
        rows_index, pieces_index = valid.nonzero(as_tuple=True)
        word_values = values[expanded_sentence[rows_index], piece_word[rows_index, pieces_index]]
        input_embeddings = input_embeddings.index_put((rows_index, pieces_index), input_embeddings[rows_index, pieces_index] + word_values)

        attention_mask = context["attention_mask"].repeat(repeats, 1)
        logits = self._encode_rows(input_embeddings, attention_mask)
        log_probs = torch.log_softmax(logits, dim=-1)

        # Gather, for every word, the first piece of the word in its owning window row.
        first_piece = context["first_piece"].repeat(repeats, 1)
        owner = context["owner"]
        output = torch.zeros(values.shape[0], values.shape[1], log_probs.shape[-1], dtype=log_probs.dtype)
        rows_index, pieces_index = first_piece.nonzero(as_tuple=True)
        sentence_index = expanded_sentence[rows_index]
        word_index = piece_word[rows_index, pieces_index]
        base_row = rows_index % rows
        owned = owner[sentence_index % batch, word_index] == base_row
        output = output.index_put(
            (sentence_index[owned], word_index[owned]), log_probs[rows_index[owned], pieces_index[owned]]
        )
        return output

    def _encode_rows(self, input_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        chunks = []
        for start in range(0, input_embeddings.shape[0], self.batch_size):
            end = start + self.batch_size
            output = self.network(inputs_embeds=input_embeddings[start:end], attention_mask=attention_mask[start:end])
            chunks.append(output.logits)
        return torch.cat(chunks, dim=0)

    # Windows ------------------------------------------------------------------------------------------

    def _plan_windows(self, sentences: Sequence[Sequence[str]]) -> tuple[list[_Window], list[list[int]]]:
        """Split each sentence into rows of whole words that fit ``max_length`` pieces."""
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        windows: list[_Window] = []
        all_counts: list[list[int]] = []
        for index, words in enumerate(sentences):
            counts = [max(1, len(self.tokenizer.tokenize(word))) for word in words]
            all_counts.append(counts)
            if sum(counts) <= budget:
                windows.append(_Window(index, 0, len(words)))
                continue
            start = 0
            while start < len(words):
                end = words_that_fit(counts, start, budget)
                if end == start:
                    raise ModelLoadError(
                        f"word {words[start]!r} alone has {counts[start]} sub-word pieces, more than the "
                        f"model's maximum length {self.max_length}; raise max_length or clean the data"
                    )
                windows.append(_Window(index, start, end))
                if end == len(words):
                    break
                start = max(start + 1, end - min(WINDOW_OVERLAP_WORDS, (end - start) // 2))
        return windows, all_counts

    @staticmethod
    def _owner_rows(windows: list[_Window], sentences: Sequence[Sequence[str]]) -> torch.Tensor:
        """For each word, the row where it sits farthest from a window edge."""
        max_words = max((len(sentence) for sentence in sentences), default=1)
        owner = torch.full((len(sentences), max(max_words, 1)), -1, dtype=torch.long)
        best = torch.full((len(sentences), max(max_words, 1)), -1, dtype=torch.long)
        for row, window in enumerate(windows):
            for word in range(window.start, window.end):
                margin = min(word - window.start, window.end - 1 - word)
                if margin > best[window.sentence, word]:
                    best[window.sentence, word] = margin
                    owner[window.sentence, word] = row
        return owner


def words_that_fit(piece_counts: Sequence[int], start: int, budget: int) -> int:
    """Return the end (exclusive) of the longest run of words from ``start`` whose pieces fit ``budget``.

    >>> words_that_fit([2, 3, 1, 4], 0, 6)
    3
    """
    end, used = start, 0
    while end < len(piece_counts) and used + piece_counts[end] <= budget:
        used += piece_counts[end]
        end += 1
    return end


def check_token_classifier_dir(path: Path) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` is a local token-classification model directory."""
    if not path.exists():
        raise ModelLoadError(
            f"model path {str(path)!r} does not exist; pass a directory written by `nerrobust train` or "
            "`save_pretrained`, or a Python callable as module:attr"
        )
    config_file = path / "config.json"
    if not path.is_dir() or not config_file.is_file():
        raise ModelLoadError(
            f"model path {str(path)!r} is not a Hugging Face model directory (no config.json); pass a "
            "token-classification directory or a Python callable as module:attr"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{config_file}: unreadable model config ({error}); re-save the model") from error
    architectures = config.get("architectures") or []
    if not any(name.endswith("ForTokenClassification") for name in architectures):
        raise ModelLoadError(
            f"model directory {str(path)!r} is not a token classifier (architectures: "
            f"{', '.join(architectures) or 'none'}); fine-tune it on your labelled data first: "
            f"`nerrobust train TRAIN_FILE --encoder {path} -o MODEL_DIR`"
        )


def load_crf(path: Path, num_tags: int) -> Any:
    """Load the CRF head saved beside a token classifier."""
    from torchcrf import CRF

    crf = CRF(num_tags, batch_first=True)
    crf_file = path / CRF_FILE
    if not crf_file.is_file():
        raise ModelLoadError(
            f"model directory {str(path)!r} declares a CRF head but {CRF_FILE} is missing; re-run "
            "`nerrobust train --crf` or remove \"crf\" from " + METADATA_FILE
        )
    crf.load_state_dict(torch.load(crf_file, map_location="cpu", weights_only=True))
    crf.eval()
    return crf


def _read_metadata(path: Path) -> dict[str, Any]:
    metadata_file = path / METADATA_FILE
    if not metadata_file.is_file():
        return {}
    try:
        return dict(json.loads(metadata_file.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{metadata_file}: unreadable ({error}); re-save the model") from error


def _fingerprint_dir(path: Path, max_length: int) -> str:
    """Hash the config, metadata and weight file sizes and modification times."""
    digest = hashlib.sha256()
    for item in sorted(path.iterdir()):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
            if item.suffix == ".json":
                digest.update(item.read_bytes())
    digest.update(f"max_length={max_length}".encode())
    return digest.hexdigest()[:16]
