"""The attack engine: predict, select words, substitute, rank by similarity, query.

Sentences are processed in chunks of ``batch_size``. Within a chunk every step is batched across
sentences: one clean prediction pass, one attribution pass, one batch of infilling requests, one encoder
pass, and query rounds in which the next-ranked candidate of every unresolved sentence goes to the model in
one call. A sentence stops at its first successful candidate, so queries are counted exactly.

Every sentence ends as successful, failed, skipped or errored. An exception in any step marks the
sentences it touched as errored, with the error text; it is never counted as a failed attack.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_nerrobust.corpus import Corpus, Sentence, read_corpus, spans_from_tags
from pytest_nerrobust.errors import about_setting
from pytest_nerrobust.results import AttackRun, Change, SentenceResult, Status

if TYPE_CHECKING:
    from pytest_nerrobust.attribution.base import Selector
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.config import AttackConfig
    from pytest_nerrobust.models.base import NERModel
    from pytest_nerrobust.similarity import SentenceEncoder
    from pytest_nerrobust.substitution.base import ContextInfiller, EntitySource

logger = logging.getLogger(__name__)

CONTEXT_CANDIDATES_PER_WORD = 5
# Candidate sentences built before similarity ranking: at least this many, or three per allowed query.
# A fixed floor makes a smaller --attack-max-candidates query a prefix of the same ranked list.
CANDIDATE_POOL_MIN = 30
ATTRIBUTION_NAMESPACE = "attribution"


@dataclass
class Components:
    """The replaceable parts of an attack. Tests and library users may pass their own."""

    selector: Selector
    entity_source: EntitySource
    infiller: ContextInfiller
    encoder: SentenceEncoder


@dataclass(frozen=True)
class Unit:
    """A selected unit: an entity span (``kind="entity"``) or one context word."""

    start: int
    end: int
    kind: str
    label: str = ""


@dataclass
class Candidate:
    """One candidate sentence with its gold tags rewritten for the changes it carries."""

    words: list[str]
    tags: list[str]
    changes: list[Change]
    similarity: float = 0.0


@dataclass
class _Work:
    """Per-sentence state while a chunk moves through the steps."""

    index: int
    sentence: Sentence
    result: SentenceResult
    scores: np.ndarray | None = None
    units: list[Unit] = field(default_factory=list)
    options: dict[Unit, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    # How many of the selected units the current candidates substitute; None means all that have options.
    substituted: int | None = None
    worst_f1: float = 2.0

    @property
    def active(self) -> bool:
        return self.result.status is Status.FAILED and self.result.error is None


def run_attack(
    config: AttackConfig,
    *,
    model: NERModel | None = None,
    corpus: Corpus | None = None,
    cache: Cache | None = None,
    progress: Callable[[int, int], None] | None = None,
    components: Components | None = None,
) -> AttackRun:
    """Attack ``config.sample`` sentences (all by default) of the corpus and return every result.

    Args:
        config: the resolved settings.
        model: the model under attack (default: loaded from ``config.model``).
        corpus: the labelled sentences (default: read from ``config.data``).
        cache: persistent cache (default: ``config.cache_dir`` unless ``config.no_cache``).
        progress: called as ``progress(done, total)`` after each chunk of sentences.
        components: selector, entity source, infiller and encoder (default: built from ``config``).
    """
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.models.loading import check_labels, load_model

    started = time.perf_counter()
    if cache is None:
        cache = Cache(None if config.no_cache else config.cache_dir)
    stats_before = cache.stats()
    if corpus is None:
        data = _required(config.data, "data")
        with about_setting("data"):
            corpus = read_corpus(data)
    if model is None:
        model_spec = _required(config.model, "model")
        with about_setting("model"):
            model = load_model(model_spec, label_map=config.label_map)
    check_labels(model, corpus.entity_types, corpus.path or "the data")

    reference = _reference_sentences(config, corpus)
    if components is None:
        components = build_components(config, model, cache, reference)

    chosen = sample_indices(len(corpus.sentences), config.sample, config.seed)
    engine = _Engine(config, model, cache, components)
    results: list[SentenceResult] = []
    for start in range(0, len(chosen), config.batch_size):
        batch = chosen[start : start + config.batch_size]
        results.extend(engine.attack_chunk([(index, corpus.sentences[index]) for index in batch]))
        if progress is not None:
            progress(len(results), len(chosen))

    run = AttackRun(
        results=results,
        settings=config.to_dict(),
        seconds=time.perf_counter() - started,
        attribution_seconds=engine.timings.get("attribution", 0.0),
        cache_stats=_stats_since(stats_before, cache.stats()),
        selection_stats=engine.selection_stats(),
        timings=dict(engine.timings),
    )
    run.settings["model_fingerprint"] = getattr(model, "fingerprint", "")
    run.settings["selector_fingerprint"] = components.selector.fingerprint()
    run.settings["data_scheme"] = corpus.scheme
    return run


def build_components(
    config: AttackConfig, model: NERModel, cache: Cache, reference: Sequence[Sentence]
) -> Components:
    """Build the selector, entity source, infiller and encoder that ``config`` names."""
    from pytest_nerrobust.attribution.selectors import build_selector
    from pytest_nerrobust.similarity import SentenceEncoder
    from pytest_nerrobust.substitution.backends import build_entity_source, build_infiller

    selector_settings = {
        "seed": config.seed,
        "ig_steps": config.ig_steps,
        "disentangler": {
            "hidden_sizes": tuple(config.ae_hidden),
            "beta": config.ae_beta,
            "learning_rate": config.ae_lr,
            "weight_decay": config.ae_weight_decay,
            "epochs": config.ae_epochs,
            "seed": config.seed,
        },
    }
    with about_setting("selector"):
        selector = build_selector(config.selector, model=model, config=selector_settings, cache=cache, reference_sentences=reference)
    return Components(
        selector=selector,
        entity_source=build_entity_source(config, cache, reference),
        infiller=build_infiller(config, cache),
        encoder=SentenceEncoder(config.encoder, cache=cache),
    )


def sample_indices(total: int, sample: int | None, seed: int) -> list[int]:
    """Return ``sample`` sentence indices drawn with ``seed``, in corpus order (all when ``sample`` is None).

    >>> sample_indices(10, 3, seed=0)
    [6, 8, 9]
    """
    if sample is None or sample >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), sample))


def select_units(sentence: Sentence, scores: np.ndarray, k: int) -> tuple[list[Unit], list[int]]:
    """Take the top-``k`` words by score (ties to the earlier word); an entity word takes its whole span.

    Returns the units in sentence order and the selected word positions before expansion.
    """
    from pytest_nerrobust.attribution.stats import top_k_positions

    # NOTE: punctuation is selectable, so a final "." can become a word such as "and". The infiller's
    # filters check only the substitute, never the original.
    positions = top_k_positions(scores, k)
    span_of = {}
    for span in spans_from_tags(sentence.tags):
        for position in range(span.start, span.end):
            span_of[position] = span
    units: dict[int, Unit] = {}
    for position in positions:
        span = span_of.get(position)
        if span is not None:
            units[span.start] = Unit(span.start, span.end, "entity", span.label)
        else:
            units[position] = Unit(position, position + 1, "context")
    return [units[start] for start in sorted(units)], positions


def misclassified(gold_tags: Sequence[str], predicted_tags: Sequence[str]) -> bool:
    """Return True when at least one gold entity is missed, mistyped or mis-bounded in the prediction."""
    predicted = set(spans_from_tags(predicted_tags))
    return any(span not in predicted for span in spans_from_tags(gold_tags))


def sentence_f1(gold_tags: Sequence[str], predicted_tags: Sequence[str]) -> float:
    """Return the entity-level F1 of one sentence (1.0 when neither side has an entity)."""
    gold = set(spans_from_tags(gold_tags))
    predicted = set(spans_from_tags(predicted_tags))
    if not gold and not predicted:
        return 1.0
    return 2 * len(gold & predicted) / (len(gold) + len(predicted))


class _Engine:
    """Runs the steps of the attack on chunks of sentences and keeps timings and selection counts."""

    def __init__(self, config: AttackConfig, model: NERModel, cache: Cache, components: Components) -> None:
        self.config = config
        self.model = model
        self.cache = cache
        self.components = components
        self.timings: dict[str, float] = {}
        self._base_words = 0
        self._base_context = 0
        self._selected_words = 0
        self._selected_context = 0

    def attack_chunk(self, items: Sequence[tuple[int, Sentence]]) -> list[SentenceResult]:
        chunk_started = time.perf_counter()
        works = [
            _Work(index, sentence, SentenceResult(index, sentence.origin, Status.FAILED, list(sentence.words), list(sentence.tags)))
            for index, sentence in items
        ]
        steps: list[tuple[str, Callable[[list[_Work]], None]]] = [
            ("prediction", self._predict_clean),
            ("attribution", self._attribute),
            ("candidates", self._generate),
            ("similarity", self._rank),
            ("queries", self._query),
        ]
        for name, step in steps:
            active = [work for work in works if work.active]
            if not active:
                break
            started = time.perf_counter()
            self._guarded(step, active)
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

        elapsed = time.perf_counter() - chunk_started
        for work in works:
            work.result.seconds = elapsed / len(works)
        return [work.result for work in works]

    def selection_stats(self) -> dict[str, float]:
        return {
            "context_base_rate": self._base_context / self._base_words if self._base_words else 0.0,
            "selected_context_share": self._selected_context / self._selected_words if self._selected_words else 0.0,
            "selected_words": float(self._selected_words),
        }

    # Error isolation ------------------------------------------------------------------------------------

    def _guarded(self, step: Callable[[list[_Work]], None], works: list[_Work]) -> None:
        """Run ``step`` on the batch; when it raises, rerun sentence by sentence to isolate the failures.

        Before the rerun, every result, the cache counters and the selection counters go back to their
        state before the batch, so work of the failed attempt (queries, cache lookups) is not counted twice.
        """
        saved = self._save_state(works)
        try:
            step(works)
            return
        except Exception as error:  # noqa: BLE001 - every failure becomes an errored result
            if len(works) == 1:
                self._mark_error(works[0], error)
                return
            logger.warning("%s failed on a batch of %d sentences (%s); retrying one by one", step.__name__, len(works), error)
        self._restore_state(works, saved)
        for work in works:
            if not work.active:
                continue
            try:
                step([work])
            except Exception as error:  # noqa: BLE001
                self._mark_error(work, error)

    def _save_state(self, works: list[_Work]) -> tuple[Any, ...]:
        results = [
            (copy.deepcopy(work.result), work.worst_f1, list(work.candidates), work.substituted) for work in works
        ]
        counters = (self._base_words, self._base_context, self._selected_words, self._selected_context)
        return results, dict(self.cache.hits), dict(self.cache.misses), counters

    def _restore_state(self, works: list[_Work], saved: tuple[Any, ...]) -> None:
        results, hits, misses, counters = saved
        for work, (result, worst_f1, candidates, substituted) in zip(works, results):
            work.result = result
            work.worst_f1 = worst_f1
            work.candidates = candidates
            work.substituted = substituted
        self.cache.hits.clear()
        self.cache.hits.update(hits)
        self.cache.misses.clear()
        self.cache.misses.update(misses)
        self._base_words, self._base_context, self._selected_words, self._selected_context = counters

    @staticmethod
    def _mark_error(work: _Work, error: Exception) -> None:
        logger.error("attack on sentence %d (%s) failed: %s: %s", work.index, work.sentence.origin, type(error).__name__, error)
        work.result.status = Status.ERRORED
        work.result.error = f"{type(error).__name__}: {error}"

    # Steps ------------------------------------------------------------------------------------------

    def _predict_clean(self, works: list[_Work]) -> None:
        predictions = self.model.predict([list(work.sentence.words) for work in works])
        _check_shapes(predictions, [work.sentence.words for work in works])
        for work, predicted in zip(works, predictions):
            work.result.predicted_tags = list(predicted)
            work.result.queries = 1
            if not work.sentence.spans:
                work.result.status = Status.SKIPPED
                work.result.skip_reason = "no gold entity"
            elif misclassified(work.sentence.tags, predicted):
                work.result.status = Status.SKIPPED
                work.result.skip_reason = "clean prediction already misclassifies a gold entity"

    def _attribute(self, works: list[_Work]) -> None:
        selector = self.components.selector
        fingerprint = f"{getattr(self.model, 'fingerprint', '')}|{selector.fingerprint()}"
        missing: list[_Work] = []
        for work in works:
            found, cached = self.cache.lookup(ATTRIBUTION_NAMESPACE, _attribution_parts(fingerprint, work))
            if found:
                work.scores = np.asarray(cached, dtype=np.float64)
            else:
                missing.append(work)

        # Sorting by length keeps padding small inside each attribution batch.
        missing.sort(key=lambda work: len(work.sentence.words))
        if missing:
            passes_before = selector.passes
            scores = selector.scores(self.model, [work.sentence for work in missing], [work.result.predicted_tags for work in missing])
            spent = (selector.passes - passes_before) / len(missing)
            for work, values in zip(missing, scores):
                values = np.asarray(values, dtype=np.float64)
                if values.shape != (len(work.sentence.words),):
                    raise ValueError(f"selector {selector.name} returned {values.shape[0]} scores for {len(work.sentence.words)} words")
                work.scores = values
                work.result.attribution_passes = round(spent)
                self.cache.store(ATTRIBUTION_NAMESPACE, _attribution_parts(fingerprint, work), values.tolist())

        for work in works:
            assert work.scores is not None
            work.units, positions = select_units(work.sentence, work.scores, self.config.k)
            work.result.selected_positions = positions
            self._base_words += len(work.sentence.tags)
            self._base_context += sum(tag == "O" for tag in work.sentence.tags)
            self._selected_words += len(positions)
            self._selected_context += sum(work.sentence.tags[position] == "O" for position in positions)

    def _generate(self, works: list[_Work]) -> None:
        source = self.components.entity_source
        infiller = self.components.infiller
        requests = [(work, unit) for work in works for unit in work.units if unit.kind == "context"]
        context_options = _infill_batch(infiller, [(list(work.sentence.words), unit.start) for work, unit in requests])
        for (work, unit), options in zip(requests, context_options):
            work.options[unit] = [((word,), infiller.name) for word in options]
        for work in works:
            for unit in work.units:
                if unit.kind != "entity":
                    continue
                mention = work.sentence.words[unit.start : unit.end]
                found = source.candidates(mention, unit.label, self.config.max_candidates)
                work.options[unit] = [(tuple(candidate.words), candidate.source) for candidate in found if candidate.words]
            work.candidates = build_candidates(work.sentence, work.units, work.options, self._candidate_pool)

    def _rank(self, works: list[_Work]) -> None:
        """Keep each sentence's most similar candidates; where none passes, substitute fewer units.

        Candidates of a short sentence can all fall below ``min_similarity``, because changing every
        selected unit changes most of the sentence. Such a sentence gets candidates that substitute only
        its best-scored units, one unit fewer at a time, until some pass or none is left.
        """
        pending = list(works)
        while pending:
            self._keep_similar(pending)
            pending = [work for work in pending if not work.candidates and self._substitute_fewer(work)]

    @property
    def _candidate_pool(self) -> int:
        """Candidate sentences built per sentence before similarity ranking."""
        return max(CANDIDATE_POOL_MIN, 3 * self.config.max_candidates)

    def _substitute_fewer(self, work: _Work) -> bool:
        """Build candidates from one unit fewer than the last attempt; return whether any were built."""
        assert work.scores is not None
        scores = work.scores
        usable = [unit for unit in work.units if work.options.get(unit)]
        ranked = sorted(usable, key=lambda unit: (-float(scores[unit.start : unit.end].max()), unit.start))
        size = (len(usable) if work.substituted is None else work.substituted) - 1
        while size >= 1:
            work.substituted = size
            best_units = sorted(ranked[:size], key=lambda unit: unit.start)
            work.candidates = build_candidates(work.sentence, best_units, work.options, self._candidate_pool)
            if work.candidates:
                return True
            size -= 1
        return False

    def _keep_similar(self, works: list[_Work]) -> None:
        from pytest_nerrobust.similarity import detokenize

        texts: list[str] = []
        for work in works:
            texts.append(detokenize(work.sentence.words))
            texts.extend(detokenize(candidate.words) for candidate in work.candidates)
        embeddings = self.components.encoder.encode(texts) if texts else np.zeros((0, 1))
        offset = 0
        for work in works:
            original = embeddings[offset]
            count = len(work.candidates)
            similarities = embeddings[offset + 1 : offset + 1 + count] @ original
            offset += 1 + count
            for candidate, value in zip(work.candidates, similarities):
                candidate.similarity = float(value)
            kept = [candidate for candidate in work.candidates if candidate.similarity >= self.config.min_similarity]
            kept.sort(key=lambda candidate: (-candidate.similarity, candidate.words))
            work.candidates = kept[: self.config.max_candidates]

    def _query(self, works: list[_Work]) -> None:
        pending = [work for work in works if work.candidates]
        round_index = 0
        while pending:
            batch = [(work, work.candidates[round_index]) for work in pending]
            predictions = self.model.predict([candidate.words for _, candidate in batch])
            _check_shapes(predictions, [candidate.words for _, candidate in batch])
            for (work, candidate), predicted in zip(batch, predictions):
                work.result.queries += 1
                work.result.candidates_tried += 1
                if misclassified(candidate.tags, predicted):
                    self._record(work, candidate, predicted)
                    work.result.status = Status.SUCCESSFUL
                    continue
                score = sentence_f1(candidate.tags, predicted)
                if score < work.worst_f1:
                    work.worst_f1 = score
                    self._record(work, candidate, predicted)
            round_index += 1
            pending = [work for work in pending if work.result.status is Status.FAILED and round_index < len(work.candidates)]

    @staticmethod
    def _record(work: _Work, candidate: Candidate, predicted: Sequence[str]) -> None:
        result = work.result
        result.adversarial_words = list(candidate.words)
        result.adversarial_tags = list(candidate.tags)
        result.adversarial_predicted_tags = list(predicted)
        result.changes = list(candidate.changes)
        result.similarity = candidate.similarity
        replaced = sum(len(change.original) for change in candidate.changes)
        result.modification_rate = replaced / len(work.sentence.words)


def build_candidates(
    sentence: Sentence,
    units: Sequence[Unit],
    options: dict[Unit, list[tuple[tuple[str, ...], str]]],
    limit: int = 30,
) -> list[Candidate]:
    """Build candidate sentences in which every selected unit that has options is substituted at once.

    Substituting all top-K units together follows the method's definition of a K-word attack (its
    modification rate grows with K). Combinations of the units' options are enumerated best-ranked first
    (lowest sum of option ranks, ties in index order) and capped at ``limit`` before similarity ranking,
    so the encoder embeds a bounded number of sentences. A unit without options stays unchanged.
    """
    from itertools import product

    from pytest_nerrobust.substitution.spans import apply_changes

    usable = [unit for unit in units if options.get(unit)]
    if not usable:
        return []
    # Each unit keeps its best r options, with r**len(usable) bounded, so large K never explodes.
    per_unit = max(1, int((10 * limit) ** (1 / len(usable))))
    ranges = [range(min(len(options[unit]), per_unit)) for unit in usable]
    combinations = sorted(product(*ranges), key=lambda indices: (sum(indices), indices))[:limit]

    candidates: list[Candidate] = []
    seen: set[tuple[str, ...]] = set()
    for indices in combinations:
        changes = []
        for unit, index in zip(usable, indices):
            words, source = options[unit][index]
            changes.append(Change(unit.start, tuple(sentence.words[unit.start : unit.end]), tuple(words), unit.kind, source))
        new_words, new_tags, _ = apply_changes(list(sentence.words), list(sentence.tags), changes)
        key = tuple(new_words)
        if key in seen or key == tuple(sentence.words):
            continue
        seen.add(key)
        candidates.append(Candidate(list(new_words), list(new_tags), changes))
    return candidates


def _infill_batch(infiller: ContextInfiller, requests: list[tuple[list[str], int]]) -> list[list[str]]:
    if not requests:
        return []
    batch = getattr(infiller, "candidates_batch", None)
    if batch is not None:
        return [list(options) for options in batch(requests, CONTEXT_CANDIDATES_PER_WORD)]
    return [list(infiller.candidates(words, position, CONTEXT_CANDIDATES_PER_WORD)) for words, position in requests]


def _attribution_parts(fingerprint: str, work: _Work) -> tuple[Any, ...]:
    """Key parts of a cached attribution: model and selector, words, gold tags (the disentangler reads
    them) and the predicted tags that IG's target scores."""
    return (fingerprint, work.sentence.words, work.sentence.tags, work.result.predicted_tags)


def _check_shapes(predictions: Sequence[Sequence[str]], sentences: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(sentences):
        raise ValueError(f"model returned {len(predictions)} predictions for {len(sentences)} sentences")
    for predicted, words in zip(predictions, sentences):
        if len(predicted) != len(words):
            raise ValueError(f"model returned {len(predicted)} tags for a sentence of {len(words)} words")


def _stats_since(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Return the cache hits and misses of one run, from the counters before and after it."""
    return {
        name: {key: count - before.get(name, {}).get(key, 0) for key, count in counts.items()}
        for name, counts in after.items()
    }


def _reference_sentences(config: AttackConfig, corpus: Corpus) -> list[Sentence]:
    """Return the reference corpus (``--ner-reference-data``), else the attacked corpus itself."""
    if config.reference_data:
        with about_setting("reference_data"):
            return list(read_corpus(config.reference_data).sentences)
    return list(corpus.sentences)


def _required(value: Any, name: str) -> Any:
    from pytest_nerrobust.config import SETTINGS_BY_NAME
    from pytest_nerrobust.errors import ConfigError

    if not value:
        setting = SETTINGS_BY_NAME[name]
        raise ConfigError(f"{setting.flag} is missing; pass {setting.flag} or set {setting.env} to run an attack")
    return value
