"""Stateless metric functions over tag sequences and attack results.

Entity scores come from seqeval 1.2.2. The default mode chunks like the conlleval script, so an ``I-X``
after ``O`` starts an entity. The strict mode needs the tag scheme and is rejected without one, because
seqeval would otherwise fall back to the default mode silently. Values are unrounded floats in 0..1
(queries and passes are counts); reports format them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

from seqeval import scheme as seqeval_scheme
from seqeval.metrics import classification_report, f1_score

from pytest_nerrobust.errors import ConfigError, CorpusError, NerRobustError
from pytest_nerrobust.results import AttackRun, SentenceResult, Status
from pytest_nerrobust.schemes import SCHEMES, normalize_scheme

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("default", "strict")

_SEQEVAL_SCHEMES = {
    "IOB1": seqeval_scheme.IOB1,
    "IOB2": seqeval_scheme.IOB2,
    "IOBES": seqeval_scheme.IOBES,
    "BILOU": seqeval_scheme.BILOU,
}
_SUMMARY_AVERAGES = ("micro avg", "macro avg", "weighted avg")


def _seqeval_options(mode: str, scheme: str | None) -> dict[str, Any]:
    """Return the ``mode``/``scheme`` keywords for seqeval after checking them."""
    if mode not in MODES:
        raise ConfigError(f"unknown scoring mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "default":
        return {}
    if scheme is None:
        raise ConfigError(
            f"scoring mode 'strict' needs a tag scheme; pass scheme= one of {', '.join(SCHEMES)}, "
            "or use mode='default'"
        )
    return {"mode": "strict", "scheme": _SEQEVAL_SCHEMES[_scheme_name(scheme)]}


def _scheme_name(scheme: str) -> str:
    try:
        return normalize_scheme(scheme, "the scoring scheme")
    except CorpusError as error:
        raise ConfigError(str(error)) from None


def _check_lengths(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(predicted):
        raise NerRobustError(
            f"gold has {len(gold)} sentences but predicted has {len(predicted)}; pass one prediction per sentence"
        )
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise NerRobustError(
                f"sentence {index} has {len(gold_tags)} gold tags but {len(predicted_tags)} predicted tags; "
                "predict exactly one tag per word"
            )


def entity_f1(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    mode: str = "default",
    scheme: str | None = None,
) -> float:
    """Compute seqeval's entity-level micro F1 of ``predicted`` against ``gold``.

    Args:
        gold: gold tag sequences, one per sentence.
        predicted: predicted tag sequences, aligned with ``gold``.
        mode: ``"default"`` (conlleval-compatible chunking) or ``"strict"`` (default ``"default"``).
        scheme: the tag scheme, required for ``mode="strict"`` (default ``None``).

    Returns:
        F1 in 0..1; 0.0 when neither side has an entity, as seqeval reports it with ``zero_division=0``.

    >>> entity_f1([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    0.0
    """
    options = _seqeval_options(mode, scheme)
    _check_lengths(gold, predicted)
    with warnings.catch_warnings():
        # seqeval warns once per non-prefixed tag such as "PER", which the corpus readers already reject.
        warnings.simplefilter("ignore", UserWarning)
        score = f1_score(
            [list(tags) for tags in gold], [list(tags) for tags in predicted], zero_division=0, **options
        )
    return float(score)


def per_type_f1(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    mode: str = "default",
    scheme: str | None = None,
) -> dict[str, dict[str, float | int]]:
    """Compute precision, recall, F1 and gold support for each entity type, using seqeval.

    Args and modes are those of :func:`entity_f1`. A type that only occurs in ``predicted`` is listed
    with support 0.

    Returns:
        ``{type: {"precision", "recall", "f1", "support"}}`` with floats and an integer support, sorted by
        type.

    >>> per_type_f1([["B-LOC"]], [["B-LOC"]])["LOC"]["f1"]
    1.0
    """
    options = _seqeval_options(mode, scheme)
    _check_lengths(gold, predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # Without any entity on either side, seqeval averages an empty array and numpy warns. The
        # result is then an empty mapping.
        warnings.simplefilter("ignore", RuntimeWarning)
        report = classification_report(
            [list(tags) for tags in gold],
            [list(tags) for tags in predicted],
            output_dict=True,
            zero_division=0,
            **options,
        )
    per_type: dict[str, dict[str, float | int]] = {}
    for label in sorted(report):
        if label in _SUMMARY_AVERAGES:
            continue
        row = report[label]
        per_type[label] = {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
    return per_type


def _require_tags(result: SentenceResult, name: str, value: list[str] | None) -> list[str]:
    if value is None:
        raise NerRobustError(
            f"{result.status.value} sentence {result.index} ({result.origin}) has no {name}; "
            "record it in the SentenceResult before computing metrics"
        )
    return value


def _checked_pair(
    result: SentenceResult, gold: list[str], predicted: list[str]
) -> tuple[list[str], list[str]]:
    if len(gold) != len(predicted):
        raise NerRobustError(
            f"{result.status.value} sentence {result.index} ({result.origin}) has {len(gold)} gold tags but "
            f"{len(predicted)} predicted tags; record one predicted tag per word"
        )
    return gold, predicted


def _original_sentence(result: SentenceResult) -> tuple[list[str], list[str]]:
    """Return the gold tags and clean prediction of a sentence."""
    return _checked_pair(
        result, result.gold_tags, _require_tags(result, "predicted_tags", result.predicted_tags)
    )


def _attacked_sentence(result: SentenceResult) -> tuple[list[str], list[str]]:
    """Return the gold and predicted tags that a sentence contributes to F1 under attack."""
    if result.status is Status.SUCCESSFUL:
        return _checked_pair(
            result,
            _require_tags(result, "adversarial_tags", result.adversarial_tags),
            _require_tags(result, "adversarial_predicted_tags", result.adversarial_predicted_tags),
        )
    # A failed attack contributes its worst valid candidate when the engine recorded one. A skipped
    # sentence, or a failed one without a candidate, contributes the original and its clean prediction.
    if result.status is Status.FAILED and result.adversarial_tags is not None:
        return _checked_pair(
            result,
            result.adversarial_tags,
            _require_tags(result, "adversarial_predicted_tags", result.adversarial_predicted_tags),
        )
    return _original_sentence(result)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _changed_fraction(result: SentenceResult) -> float:
    # A replacement counts its original words, so "New York" -> "Los Angeles City" adds 2 and an insertion 0.
    changed = sum(len(change.original) for change in result.changes)
    if not result.words:
        raise NerRobustError(
            f"successful sentence {result.index} ({result.origin}) has no words; record the original words"
        )
    return changed / len(result.words)


def summarize(run: AttackRun, mode: str = "default", scheme: str | None = None) -> dict[str, Any]:
    """Compute the run's robustness metrics, as unrounded floats, counts and per-type scores.

    - ``original_f1``: F1 of the clean predictions over every sentence that did not error.
    - ``f1_under_attack``: F1 over the adversarial set. Each non-errored sentence contributes its
      successful adversarial example, else the candidate in its ``adversarial_*`` fields (the valid
      candidate with the lowest sentence F1), else the original sentence with its clean prediction.
      Skipped sentences therefore count with their original.
    - ``attack_success_rate``: successful / (successful + failed); ``None`` when nothing was attacked.
    - ``modification_rate``: mean over successful attacks of replaced original words / original words.
    - ``similarity``: mean similarity of successful attacks. A successful result without a recorded
      similarity is left out (with a logged warning), and the mean is ``None`` when none has one.
    - ``avg_queries`` and ``avg_attribution_passes``: means over attacked (successful + failed) sentences.
    - ``sentences``, ``successful``, ``failed``, ``skipped``, ``errored``: counts; errored sentences
      count nowhere else.
    - ``no_candidates``: the failed sentences with no candidate tried, because no substitute was found or
      none passed the similarity threshold. They stay in the success rate's denominator.
    - ``per_type``: ``{type: {"original_f1", "f1_under_attack", "support"}}`` with the clean gold support.
    - ``scorer``: the library, mode and scheme used.

    Both F1 values are ``None`` when every sentence errored.

    Args:
        run: the attack results.
        mode: seqeval mode, ``"default"`` (default) or ``"strict"``.
        scheme: the tag scheme for ``mode="strict"`` (default ``None``; the recorded scheme is then IOB2,
            the library's tag scheme).

    Raises:
        NerRobustError: a result lacks the tags its status requires, or tags and words differ in length.
        ConfigError: the mode is unknown, or strict mode has no scheme.
    """
    _seqeval_options(mode, scheme)
    scored = [result for result in run.results if result.status is not Status.ERRORED]
    attacked = [result for result in scored if result.status in (Status.SUCCESSFUL, Status.FAILED)]
    successful = [result for result in attacked if result.status is Status.SUCCESSFUL]

    original_pairs = [_original_sentence(result) for result in scored]
    original_gold = [gold for gold, _ in original_pairs]
    original_predicted = [predicted for _, predicted in original_pairs]
    attacked_pairs = [_attacked_sentence(result) for result in scored]
    attacked_gold = [gold for gold, _ in attacked_pairs]
    attacked_predicted = [predicted for _, predicted in attacked_pairs]

    original_f1 = attacked_f1 = None
    per_type: dict[str, dict[str, float | int]] = {}
    if scored:
        original_f1 = entity_f1(original_gold, original_predicted, mode, scheme)
        attacked_f1 = entity_f1(attacked_gold, attacked_predicted, mode, scheme)
        original_types = per_type_f1(original_gold, original_predicted, mode, scheme)
        attacked_types = per_type_f1(attacked_gold, attacked_predicted, mode, scheme)
        for label in sorted(set(original_types) | set(attacked_types)):
            per_type[label] = {
                "original_f1": float(original_types.get(label, {}).get("f1", 0.0)),
                "f1_under_attack": float(attacked_types.get(label, {}).get("f1", 0.0)),
                "support": int(original_types.get(label, {}).get("support", 0)),
            }

    similarities = [result.similarity for result in successful if result.similarity is not None]
    if len(similarities) < len(successful):
        logger.warning(
            "%d of %d successful attacks have no similarity; the mean similarity leaves them out",
            len(successful) - len(similarities),
            len(successful),
        )
    return {
        "original_f1": original_f1,
        "f1_under_attack": attacked_f1,
        "attack_success_rate": len(successful) / len(attacked) if attacked else None,
        "modification_rate": _mean([_changed_fraction(result) for result in successful]),
        "similarity": _mean(similarities),
        "avg_queries": _mean([float(result.queries) for result in attacked]),
        "avg_attribution_passes": _mean([float(result.attribution_passes) for result in attacked]),
        "sentences": len(run.results),
        "successful": len(successful),
        "failed": run.count(Status.FAILED),
        "skipped": run.count(Status.SKIPPED),
        "errored": run.count(Status.ERRORED),
        "no_candidates": sum(1 for result in attacked if result.status is Status.FAILED and not result.candidates_tried),
        "per_type": per_type,
        "scorer": {
            "library": "seqeval",
            "mode": mode,
            "scheme": _scheme_name(scheme) if scheme is not None else "IOB2",
        },
    }
