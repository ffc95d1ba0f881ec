"""Robustness gates: compare the metrics of an attack with the thresholds of its config.

Each gate yields one line, such as ``FAIL attack_success_rate 0.5400 > 0.3000 (ini
max_attack_success_rate)``. Values are compared unrounded. The printed digits grow until the
value and the threshold differ, so a failing line never shows two equal numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_nerrobust.config import SETTINGS_BY_NAME, AttackConfig

COUNT_NAMES = ("sentences", "successful", "failed", "skipped", "errored", "no_candidates")
DIGITS = 4
MAX_DIGITS = 12


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate.

    ``operator`` is the relation that must hold (``>=`` for a minimum, ``<=`` for a maximum).
    ``threshold`` is ``None`` only for the line stating that no robustness gate is configured.
    ``value`` is ``None`` when the metric is undefined (no sentence attacked), which fails the gate.
    """

    metric: str
    value: float | int | None
    threshold: float | int | None
    operator: str
    source: str
    passed: bool
    note: str = ""

    @property
    def line(self) -> str:
        """Return the gate as one line: verdict, metric, value, relation, threshold and its source."""
        if self.threshold is None:
            return f"NONE {self.note}"
        verdict = "PASS" if self.passed else "FAIL"
        if self.value is None:
            threshold_text = _format_number(self.threshold, DIGITS)
            line = f"{verdict} {self.metric} n/a {self.operator} {threshold_text} ({self.source})"
            return f"{line}: {self.note}"
        value_text, threshold_text = _format_pair(self.value, self.threshold)
        relation = self.operator if self.passed else _NEGATED[self.operator]
        line = f"{verdict} {self.metric} {value_text} {relation} {threshold_text} ({self.source})"
        return f"{line}: {self.note}" if self.note else line


_NEGATED = {">=": "<", "<=": ">"}


def evaluate_gates(
    metrics: Mapping[str, Any], config: AttackConfig, sources: Mapping[str, str] | None = None
) -> list[GateResult]:
    """Check ``metrics`` (from ``metrics.summarize``) against the thresholds of ``config``.

    Args:
        metrics: ``f1_under_attack``, ``attack_success_rate`` (``None`` when nothing was attacked)
            and the counts ``successful``, ``failed``, ``skipped`` and ``errored`` (flat or under
            ``counts``).
        config: the thresholds ``min_f1_under_attack``, ``max_attack_success_rate`` and ``max_errors``.
        sources: where each threshold came from, as :func:`pytest_nerrobust.config.resolve` returns;
            default: every threshold is labelled by its flag.

    Returns:
        One result per configured threshold, then the errors gate. Without an F1 or success-rate
        threshold, the first result is a ``NONE`` line saying so, and it passes.

    >>> [gate.line for gate in evaluate_gates({"errored": 0}, AttackConfig())][1]
    'PASS errored 0 <= 0 (--max-attack-errors)'
    """
    labels = dict(sources or {})
    counts = metric_counts(metrics)
    undefined_note = f"no sentence was attacked ({_count_phrase(counts)})"
    gates: list[GateResult] = []

    if config.min_f1_under_attack is not None:
        value = metrics.get("f1_under_attack")
        gates.append(
            _threshold_gate(
                "f1_under_attack", value, config.min_f1_under_attack, ">=",
                _source(labels, "min_f1_under_attack"),
                note="" if value is not None else "no sentence was scored",
            )
        )
    if config.max_attack_success_rate is not None:
        value = metrics.get("attack_success_rate")
        gates.append(
            _threshold_gate(
                "attack_success_rate", value, config.max_attack_success_rate, "<=",
                _source(labels, "max_attack_success_rate"),
                note="" if value is not None else undefined_note,
            )
        )
    if not gates:
        gates.append(
            GateResult(
                metric="robustness", value=None, threshold=None, operator="", source="", passed=True,
                note="no robustness gate is configured: set --min-f1-under-attack or "
                "--max-attack-success-rate (ini min_f1_under_attack, max_attack_success_rate) to fail on it",
            )
        )

    errored = counts["errored"]
    gates.append(
        _threshold_gate("errored", errored, config.max_errors, "<=", _source(labels, "max_errors"))
    )
    return gates


def gates_passed(gates: Sequence[GateResult]) -> bool:
    """Return whether every gate passed (a ``NONE`` line counts as passed)."""
    return all(gate.passed for gate in gates)


def format_gate_block(gates: Sequence[GateResult], metrics: Mapping[str, Any]) -> str:
    """Return the gate lines under a header with the attacked, skipped and errored counts.

    This block is the failure message of a test whose gates fail.
    """
    counts = metric_counts(metrics)
    verdict = "passed" if gates_passed(gates) else "failed"
    header = f"nerrobust gates {verdict} ({_count_phrase(counts)}):"
    return "\n".join([header, *(gate.line for gate in gates)])


def metric_counts(metrics: Mapping[str, Any]) -> dict[str, int]:
    """Return the sentence counts of ``metrics``, flat (as ``summarize`` returns them) or under ``counts``."""
    nested = metrics.get("counts")
    source = nested if isinstance(nested, Mapping) else metrics
    return {name: int(source.get(name) or 0) for name in COUNT_NAMES}


def _threshold_gate(
    metric: str, value: Any, threshold: float, operator: str, source: str, note: str = ""
) -> GateResult:
    if value is None:
        passed = False
    elif operator == ">=":
        passed = value >= threshold
    else:
        passed = value <= threshold
    return GateResult(metric, value, threshold, operator, source, passed, note)


def _source(labels: Mapping[str, str], name: str) -> str:
    flag = SETTINGS_BY_NAME[name].flag
    label = labels.get(name, flag)
    return f"{flag} default" if label == "default" else label


def _count_phrase(counts: Mapping[str, int]) -> str:
    attacked = counts["successful"] + counts["failed"]
    return f"{attacked} attacked, {counts['skipped']} skipped, {counts['errored']} errored"


def _format_number(number: float, digits: int) -> str:
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    return f"{number:.{digits}f}"


def _format_pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers with 4 decimals, or more when 4 would show two different numbers as equal."""
    if isinstance(value, int) and isinstance(threshold, int):
        return str(value), str(threshold)
    for digits in range(DIGITS, MAX_DIGITS + 1):
        value_text, threshold_text = _format_number(value, digits), _format_number(threshold, digits)
        if value == threshold or value_text != threshold_text:
            return value_text, threshold_text
    return repr(float(value)), repr(float(threshold))
