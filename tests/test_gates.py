"""Tests of the gate lines, their verdicts and the gate block."""

from __future__ import annotations

import pytest

from pytest_nerrobust.config import AttackConfig, resolve
from pytest_nerrobust.gates import evaluate_gates, format_gate_block, gates_passed, metric_counts

NO_GATE_LINE = (
    "NONE no robustness gate is configured: set --min-f1-under-attack or --max-attack-success-rate "
    "(ini min_f1_under_attack, max_attack_success_rate) to fail on it"
)


def _metrics(**values) -> dict:
    metrics = {
        "f1_under_attack": 0.8123,
        "attack_success_rate": 0.25,
        "sentences": 10,
        "successful": 2,
        "failed": 6,
        "skipped": 1,
        "errored": 1,
    }
    metrics.update(values)
    return metrics


def _lines(metrics: dict, **layers) -> list[str]:
    config, sources = resolve(env={}, **layers)
    return [gate.line for gate in evaluate_gates(metrics, config, sources)]


@pytest.mark.parametrize(
    ("metrics", "cli", "expected"),
    [
        (
            _metrics(),
            {"min_f1_under_attack": "0.8"},
            "PASS f1_under_attack 0.8123 >= 0.8000 (--min-f1-under-attack)",
        ),
        (
            _metrics(),
            {"min_f1_under_attack": "0.9"},
            "FAIL f1_under_attack 0.8123 < 0.9000 (--min-f1-under-attack)",
        ),
        (
            _metrics(f1_under_attack=0.8),
            {"min_f1_under_attack": "0.8"},
            "PASS f1_under_attack 0.8000 >= 0.8000 (--min-f1-under-attack)",
        ),
        (
            _metrics(f1_under_attack=0.79996),
            {"min_f1_under_attack": "0.8"},
            "FAIL f1_under_attack 0.79996 < 0.80000 (--min-f1-under-attack)",
        ),
        (
            _metrics(),
            {"max_attack_success_rate": "0.3"},
            "PASS attack_success_rate 0.2500 <= 0.3000 (--max-attack-success-rate)",
        ),
        (
            _metrics(attack_success_rate=0.54),
            {"max_attack_success_rate": "0.3"},
            "FAIL attack_success_rate 0.5400 > 0.3000 (--max-attack-success-rate)",
        ),
    ],
)
def test_threshold_gate_line(metrics: dict, cli: dict, expected: str) -> None:
    assert _lines(metrics, cli=cli)[0] == expected


def test_gate_source_from_ini() -> None:
    lines = _lines(_metrics(attack_success_rate=0.54), ini={"max_attack_success_rate": "0.3"})
    assert lines[0] == "FAIL attack_success_rate 0.5400 > 0.3000 (ini max_attack_success_rate)"


def test_gate_source_from_marker() -> None:
    lines = _lines(_metrics(), marker={"min_f1_under_attack": 0.5})
    assert lines[0] == "PASS f1_under_attack 0.8123 >= 0.5000 (marker ner_robustness)"


def test_both_thresholds_in_order() -> None:
    lines = _lines(
        _metrics(), cli={"min_f1_under_attack": "0.8", "max_attack_success_rate": "0.3", "max_errors": "1"}
    )
    assert lines == [
        "PASS f1_under_attack 0.8123 >= 0.8000 (--min-f1-under-attack)",
        "PASS attack_success_rate 0.2500 <= 0.3000 (--max-attack-success-rate)",
        "PASS errored 1 <= 1 (--max-attack-errors)",
    ]


def test_errors_gate_fails_over_limit() -> None:
    lines = _lines(_metrics(errored=2), cli={"min_f1_under_attack": "0.8"})
    assert lines[-1] == "FAIL errored 2 > 0 (--max-attack-errors default)"


def test_errors_gate_from_flag() -> None:
    lines = _lines(_metrics(errored=2), cli={"max_errors": "0"})
    assert lines[-1] == "FAIL errored 2 > 0 (--max-attack-errors)"


def test_no_threshold_says_so() -> None:
    lines = _lines(_metrics(errored=0))
    assert lines == [NO_GATE_LINE, "PASS errored 0 <= 0 (--max-attack-errors default)"]


def test_no_threshold_passes() -> None:
    config, sources = resolve(env={})
    assert gates_passed(evaluate_gates(_metrics(errored=0), config, sources))


def test_undefined_success_rate_fails() -> None:
    metrics = _metrics(attack_success_rate=None, successful=0, failed=0, skipped=3, errored=0)
    lines = _lines(metrics, ini={"max_attack_success_rate": "0.3"})
    assert lines[0] == (
        "FAIL attack_success_rate n/a <= 0.3000 (ini max_attack_success_rate): no sentence was attacked "
        "(0 attacked, 3 skipped, 0 errored)"
    )


def test_undefined_f1_fails() -> None:
    lines = _lines(_metrics(f1_under_attack=None), cli={"min_f1_under_attack": "0.5"})
    assert lines[0] == "FAIL f1_under_attack n/a >= 0.5000 (--min-f1-under-attack): no sentence was scored"


def test_gates_without_sources_use_flags() -> None:
    gates = evaluate_gates(_metrics(errored=0), AttackConfig(min_f1_under_attack=0.9))
    assert [gate.line for gate in gates] == [
        "FAIL f1_under_attack 0.8123 < 0.9000 (--min-f1-under-attack)",
        "PASS errored 0 <= 0 (--max-attack-errors)",
    ]


def test_gates_passed_false_on_one_failure() -> None:
    gates = evaluate_gates(
        _metrics(errored=0), AttackConfig(min_f1_under_attack=0.8, max_attack_success_rate=0.1)
    )
    assert [gate.passed for gate in gates] == [True, False, True]
    assert not gates_passed(gates)


def test_gate_block_failed() -> None:
    config, sources = resolve(cli={"min_f1_under_attack": "0.9"}, env={})
    metrics = _metrics()
    block = format_gate_block(evaluate_gates(metrics, config, sources), metrics)
    assert block.splitlines() == [
        "nerrobust gates failed (8 attacked, 1 skipped, 1 errored):",
        "FAIL f1_under_attack 0.8123 < 0.9000 (--min-f1-under-attack)",
        "FAIL errored 1 > 0 (--max-attack-errors default)",
    ]


def test_gate_block_passed() -> None:
    metrics = _metrics(errored=0)
    block = format_gate_block(evaluate_gates(metrics, AttackConfig()), metrics)
    assert block.splitlines()[0] == "nerrobust gates passed (8 attacked, 1 skipped, 0 errored):"


def test_metric_counts_flat() -> None:
    assert metric_counts(_metrics()) == {
        "sentences": 10,
        "successful": 2,
        "failed": 6,
        "skipped": 1,
        "errored": 1,
        "no_candidates": 0,
    }


def test_metric_counts_nested() -> None:
    nested = {"counts": {"sentences": 3, "skipped": 3}}
    assert metric_counts(nested) == {
        "sentences": 3, "successful": 0, "failed": 0, "skipped": 3, "errored": 0, "no_candidates": 0,
    }
