"""Metric functions: seqeval scores on hand-written tables, a seeded differential check, and summaries of
hand-built attack runs."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest
from seqeval.metrics import f1_score

from pytest_nerrobust.corpus import spans_from_tags
from pytest_nerrobust.errors import ConfigError, NerRobustError
from pytest_nerrobust.metrics import entity_f1, per_type_f1, summarize
from pytest_nerrobust.results import AttackRun, Change, SentenceResult, Status

F1_CASES = [
    ([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]], 1.0),
    ([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]], 0.0),
    ([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "O"]], 2 / 3),
    ([["O", "I-LOC"]], [["O", "B-LOC"]], 1.0),
    ([["B-LOC", "B-LOC"]], [["B-LOC", "I-LOC"]], 0.0),
    ([["B-PER"], ["B-LOC"]], [["B-PER"], ["B-ORG"]], 0.5),
    ([["O"]], [["O"]], 0.0),
    ([["O", "O"]], [["B-MISC", "O"]], 0.0),
    ([["B-ORG", "I-ORG", "O", "B-MISC"], ["B-PER"]], [["B-ORG", "I-ORG", "O", "B-MISC"], ["B-LOC"]], 2 / 3),
    ([["B-PER", "I-PER"], ["O"]], [["B-PER", "I-PER"], ["B-PER"]], 2 / 3),
]


@pytest.mark.parametrize(("gold", "predicted", "expected"), F1_CASES)
def test_entity_f1_table(gold: list, predicted: list, expected: float) -> None:
    assert entity_f1(gold, predicted) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("gold", "predicted", "expected"), F1_CASES)
def test_entity_f1_equals_seqeval(gold: list, predicted: list, expected: float) -> None:
    assert entity_f1(gold, predicted) == f1_score(gold, predicted, zero_division=0)


def test_entity_f1_returns_float() -> None:
    assert type(entity_f1([["B-PER"]], [["B-PER"]])) is float


def test_per_type_f1_table() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "O"]]
    assert per_type_f1(gold, predicted) == {
        "LOC": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }


def test_per_type_f1_plain_types() -> None:
    row = per_type_f1([["B-PER"]], [["B-PER"]])["PER"]
    assert type(row["f1"]) is float
    assert type(row["support"]) is int


def test_per_type_f1_without_entities() -> None:
    assert per_type_f1([["O"]], [["O"]]) == {}


def _random_sequence(rng: random.Random, length: int) -> list[str]:
    tags = []
    for _ in range(length):
        prefix = rng.choice("OOBI")
        tags.append("O" if prefix == "O" else f"{prefix}-{rng.choice(['PER', 'LOC', 'ORG'])}")
    return tags


def _counted_f1(gold: list[list[str]], predicted: list[list[str]]) -> tuple[float, dict[str, float]]:
    """Recompute micro and per-type F1 by counting chunked spans."""
    gold_spans = {(index, span) for index, tags in enumerate(gold) for span in spans_from_tags(tags)}
    predicted_spans = {
        (index, span) for index, tags in enumerate(predicted) for span in spans_from_tags(tags)
    }

    def f1(true_positives: int, gold_count: int, predicted_count: int) -> float:
        if true_positives == 0:
            return 0.0
        precision = true_positives / predicted_count
        recall = true_positives / gold_count
        return 2 * precision * recall / (precision + recall)

    matched = gold_spans & predicted_spans
    micro = f1(len(matched), len(gold_spans), len(predicted_spans))
    gold_by_type = Counter(span.label for _, span in gold_spans)
    predicted_by_type = Counter(span.label for _, span in predicted_spans)
    matched_by_type = Counter(span.label for _, span in matched)
    types = set(gold_by_type) | set(predicted_by_type)
    per_type = {
        label: f1(matched_by_type[label], gold_by_type[label], predicted_by_type[label]) for label in types
    }
    return micro, per_type


def test_entity_f1_differential_seeded() -> None:
    rng = random.Random(20240601)
    for _ in range(200):
        lengths = [rng.randint(1, 8) for _ in range(rng.randint(1, 5))]
        gold = [_random_sequence(rng, length) for length in lengths]
        predicted = [_random_sequence(rng, length) for length in lengths]
        micro, per_type = _counted_f1(gold, predicted)
        assert entity_f1(gold, predicted) == pytest.approx(micro, abs=1e-12), (gold, predicted)
        scores = {label: row["f1"] for label, row in per_type_f1(gold, predicted).items()}
        assert scores == pytest.approx(per_type, abs=1e-12), (gold, predicted)


def test_strict_mode_needs_scheme() -> None:
    with pytest.raises(ConfigError) as raised:
        entity_f1([["B-PER"]], [["B-PER"]], mode="strict")
    assert "needs a tag scheme" in str(raised.value)
    assert "IOB1, IOB2, IOBES, BILOU" in str(raised.value)


def test_strict_mode_differs_from_default() -> None:
    gold, predicted = [["B-PER", "I-PER"]], [["I-PER", "I-PER"]]
    assert entity_f1(gold, predicted) == 1.0
    assert entity_f1(gold, predicted, mode="strict", scheme="IOB2") == 0.0


def test_strict_mode_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match="unknown tag scheme 'IOE9' in the scoring scheme"):
        entity_f1([["O"]], [["O"]], mode="strict", scheme="IOE9")


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="unknown scoring mode 'lenient'; use one of default, strict"):
        entity_f1([["O"]], [["O"]], mode="lenient")


def test_entity_f1_length_mismatch() -> None:
    with pytest.raises(NerRobustError, match="sentence 1 has 2 gold tags but 1 predicted tags"):
        entity_f1([["O"], ["O", "O"]], [["O"], ["O"]])


def test_entity_f1_sentence_count_mismatch() -> None:
    with pytest.raises(NerRobustError, match="gold has 2 sentences but predicted has 1"):
        entity_f1([["O"], ["O"]], [["O"]])


def successful() -> SentenceResult:
    return SentenceResult(
        index=0,
        origin="t.conll:1",
        status=Status.SUCCESSFUL,
        words=["Ann", "Lee", "visited", "Paris"],
        gold_tags=["B-PER", "I-PER", "O", "B-LOC"],
        predicted_tags=["B-PER", "I-PER", "O", "B-LOC"],
        adversarial_words=["Bob", "visited", "Paris"],
        adversarial_tags=["B-PER", "O", "B-LOC"],
        adversarial_predicted_tags=["O", "O", "B-LOC"],
        changes=[Change(0, ("Ann", "Lee"), ("Bob",), "entity")],
        similarity=0.9,
        queries=5,
        attribution_passes=2,
    )


def failed_with_candidate() -> SentenceResult:
    return SentenceResult(
        index=1,
        origin="t.conll:6",
        status=Status.FAILED,
        words=["Rome", "wins"],
        gold_tags=["B-LOC", "O"],
        predicted_tags=["B-LOC", "O"],
        adversarial_words=["Milan", "wins"],
        adversarial_tags=["B-LOC", "O"],
        adversarial_predicted_tags=["B-LOC", "B-MISC"],
        changes=[Change(0, ("Rome",), ("Milan",), "entity")],
        similarity=0.95,
        queries=11,
        candidates_tried=10,
        attribution_passes=1,
    )


def failed_without_candidate() -> SentenceResult:
    return SentenceResult(
        index=2,
        origin="t.conll:9",
        status=Status.FAILED,
        words=["Oslo"],
        gold_tags=["B-LOC"],
        predicted_tags=["B-LOC"],
        queries=3,
        candidates_tried=2,
        attribution_passes=1,
    )


def skipped() -> SentenceResult:
    return SentenceResult(
        index=3,
        origin="t.conll:11",
        status=Status.SKIPPED,
        words=["Bob", "ran"],
        gold_tags=["B-PER", "O"],
        predicted_tags=["O", "O"],
        queries=1,
        skip_reason="clean prediction misses a gold entity",
    )


def errored() -> SentenceResult:
    return SentenceResult(
        index=4,
        origin="t.conll:14",
        status=Status.ERRORED,
        words=["Kim"],
        gold_tags=["B-PER"],
        predicted_tags=["O"],
        queries=2,
        attribution_passes=7,
        error="RuntimeError: out of memory",
    )


def full_run() -> AttackRun:
    results = [successful(), failed_with_candidate(), failed_without_candidate(), skipped(), errored()]
    return AttackRun(results=results, settings={"k": 1})


def test_summarize_f1_values() -> None:
    summary = summarize(full_run())
    assert summary["original_f1"] == pytest.approx(8 / 9, abs=1e-12)
    assert summary["f1_under_attack"] == pytest.approx(2 / 3, abs=1e-12)


def test_summarize_rates() -> None:
    summary = summarize(full_run())
    assert summary["attack_success_rate"] == pytest.approx(1 / 3)
    assert summary["modification_rate"] == 0.5
    assert summary["similarity"] == 0.9
    assert summary["avg_queries"] == pytest.approx(19 / 3)
    assert summary["avg_attribution_passes"] == pytest.approx(4 / 3)


def test_summarize_counts() -> None:
    summary = summarize(full_run())
    counts = {key: summary[key] for key in ("sentences", "successful", "failed", "skipped", "errored")}
    assert counts == {"sentences": 5, "successful": 1, "failed": 2, "skipped": 1, "errored": 1}
    assert summary["no_candidates"] == 0


def test_summarize_counts_failed_without_candidates() -> None:
    run = full_run()
    unqueried = next(result for result in run.results if result.status is Status.FAILED)
    unqueried.queries = 1
    unqueried.candidates_tried = 0

    summary = summarize(run)

    assert summary["no_candidates"] == 1
    assert summary["failed"] == 2
    assert summary["attack_success_rate"] == pytest.approx(1 / 3)


def test_summarize_per_type() -> None:
    assert summarize(full_run())["per_type"] == {
        "LOC": {"original_f1": 1.0, "f1_under_attack": 1.0, "support": 3},
        "MISC": {"original_f1": 0.0, "f1_under_attack": 0.0, "support": 0},
        "PER": {"original_f1": pytest.approx(2 / 3), "f1_under_attack": 0.0, "support": 2},
    }


def test_summarize_scorer() -> None:
    assert summarize(full_run())["scorer"] == {"library": "seqeval", "mode": "default", "scheme": "IOB2"}


def test_summarize_strict_scorer() -> None:
    summary = summarize(full_run(), mode="strict", scheme="iob2")
    assert summary["scorer"] == {"library": "seqeval", "mode": "strict", "scheme": "IOB2"}


def test_summarize_strict_needs_scheme() -> None:
    with pytest.raises(ConfigError, match="needs a tag scheme"):
        summarize(full_run(), mode="strict")


def test_summarize_errored_excluded() -> None:
    without_error = AttackRun(results=full_run().results[:4], settings={})
    assert summarize(without_error)["original_f1"] == summarize(full_run())["original_f1"]
    assert summarize(without_error)["f1_under_attack"] == summarize(full_run())["f1_under_attack"]
    assert summarize(without_error)["avg_queries"] == summarize(full_run())["avg_queries"]


def test_summarize_skipped_uses_original() -> None:
    summary = summarize(AttackRun(results=[skipped(), failed_without_candidate()], settings={}))
    assert summary["original_f1"] == pytest.approx(2 / 3)
    assert summary["f1_under_attack"] == pytest.approx(2 / 3)


def test_summarize_nothing_attacked() -> None:
    summary = summarize(AttackRun(results=[skipped()], settings={}))
    assert summary["attack_success_rate"] is None
    assert summary["modification_rate"] is None
    assert summary["similarity"] is None
    assert summary["avg_queries"] is None
    assert summary["avg_attribution_passes"] is None
    assert summary["original_f1"] == 0.0


def test_summarize_all_errored() -> None:
    summary = summarize(AttackRun(results=[errored()], settings={}))
    assert summary["original_f1"] is None
    assert summary["f1_under_attack"] is None
    assert summary["per_type"] == {}
    assert summary["errored"] == 1


def test_modification_rate_counts_original_words() -> None:
    result = successful()
    result.words = ["New", "York", "is", "big", "."]
    result.gold_tags = result.predicted_tags = ["B-LOC", "I-LOC", "O", "O", "O"]
    result.adversarial_words = ["Los", "Angeles", "City", "is", "big", "."]
    result.adversarial_tags = ["B-LOC", "I-LOC", "I-LOC", "O", "O", "O"]
    result.adversarial_predicted_tags = ["B-LOC", "O", "O", "O", "O", "O"]
    result.changes = [
        Change(0, ("New", "York"), ("Los", "Angeles", "City"), "entity"),
        Change(3, ("big",), ("large",), "context"),
    ]
    assert summarize(AttackRun(results=[result], settings={}))["modification_rate"] == 3 / 5


def test_similarity_missing_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    second = successful()
    second.similarity = None
    third = successful()
    third.similarity = 0.7
    with caplog.at_level(logging.WARNING, logger="pytest_nerrobust.metrics"):
        summary = summarize(AttackRun(results=[successful(), second, third], settings={}))
    assert summary["similarity"] == pytest.approx(0.8)
    assert "1 of 3 successful attacks have no similarity" in caplog.text


def test_successful_without_adversarial_tags() -> None:
    result = successful()
    result.adversarial_predicted_tags = None
    with pytest.raises(NerRobustError) as raised:
        summarize(AttackRun(results=[result], settings={}))
    assert "successful sentence 0 (t.conll:1) has no adversarial_predicted_tags" in str(raised.value)


def test_skipped_without_prediction() -> None:
    result = skipped()
    result.predicted_tags = None
    with pytest.raises(NerRobustError, match=r"skipped sentence 3 \(t.conll:11\) has no predicted_tags"):
        summarize(AttackRun(results=[result], settings={}))


def test_adversarial_length_mismatch() -> None:
    result = successful()
    result.adversarial_predicted_tags = ["O", "O"]
    with pytest.raises(NerRobustError, match=r"\(t.conll:1\) has 3 gold tags but 2 predicted tags"):
        summarize(AttackRun(results=[result], settings={}))
