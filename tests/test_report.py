"""Tests of the JSON report, the terminal summary table and the Markdown summary."""

from __future__ import annotations

import importlib.metadata
import json
import platform

import pytest

import pytest_nerrobust
from pytest_nerrobust.config import resolve
from pytest_nerrobust.errors import NerRobustError
from pytest_nerrobust.gates import evaluate_gates
from pytest_nerrobust.metrics import summarize
from pytest_nerrobust.report import (
    build_report,
    format_markdown,
    format_summary,
    write_json_report,
    write_markdown_report,
)
from pytest_nerrobust.results import AttackRun, Change, SentenceResult, Status


def _run() -> AttackRun:
    """Four sentences, one per status. Clean F1 is 3/4 and F1 under attack 4/7 (worked out in the tests)."""
    successful = SentenceResult(
        index=0,
        origin="data.conll:1",
        status=Status.SUCCESSFUL,
        words=["John", "lives", "in", "Paris", "."],
        gold_tags=["B-PER", "O", "O", "B-LOC", "O"],
        predicted_tags=["B-PER", "O", "O", "B-LOC", "O"],
        adversarial_words=["Peter", "lives", "in", "Paris", "."],
        adversarial_tags=["B-PER", "O", "O", "B-LOC", "O"],
        adversarial_predicted_tags=["O", "O", "O", "B-LOC", "O"],
        changes=[Change(0, ("John",), ("Peter",), "entity", "reference")],
        selected_positions=[0],
        similarity=0.9,
        modification_rate=0.2,
        queries=3,
        seconds=0.5,
    )
    failed = SentenceResult(
        index=1,
        origin="data.conll:7",
        status=Status.FAILED,
        words=["Mary", "smiled", "."],
        gold_tags=["B-PER", "O", "O"],
        predicted_tags=["B-PER", "O", "O"],
        adversarial_words=["Mary", "laughed", "."],
        adversarial_tags=["B-PER", "O", "O"],
        adversarial_predicted_tags=["B-PER", "O", "O"],
        changes=[Change(1, ("smiled",), ("laughed",), "context", "local-lm")],
        queries=6,
        candidates_tried=5,
        seconds=1.5,
    )
    skipped = SentenceResult(
        index=2,
        origin="data.conll:11",
        status=Status.SKIPPED,
        words=["Rome", "is", "old"],
        gold_tags=["B-LOC", "O", "O"],
        predicted_tags=["B-PER", "O", "O"],
        skip_reason="clean prediction misclassifies an entity",
        queries=1,
    )
    errored = SentenceResult(
        index=3,
        origin="data.conll:15",
        status=Status.ERRORED,
        words=["Oslo"],
        gold_tags=["B-LOC"],
        error="boom",
    )
    return AttackRun(
        results=[successful, failed, skipped, errored],
        settings={},
        seconds=12.5,
        attribution_seconds=2.0,
        cache_stats={"infill": {"hits": 1, "misses": 2}},
        selection_stats={"context_base_rate": 0.6, "selected_context_share": 0.5},
        coverage={"PER": {"share": 1.0}},
        timings={"query": 3.0},
    )


@pytest.fixture
def report() -> dict:
    config, sources = resolve(cli={"k": "3", "min_f1_under_attack": "0.6"}, env={})
    run = _run()
    metrics = summarize(run)
    return build_report(run, metrics, config, sources, gates=evaluate_gates(metrics, config, sources))


def test_report_headline_metrics_unrounded(report: dict) -> None:
    assert report["original_f1"] == pytest.approx(3 / 4, abs=1e-12)
    assert report["f1_under_attack"] == pytest.approx(4 / 7, abs=1e-12)
    assert report["attack_success_rate"] == 0.5
    assert report["modification_rate"] == pytest.approx(0.2, abs=1e-12)
    assert report["similarity"] == 0.9
    assert report["avg_queries"] == 4.5


def test_report_counts(report: dict) -> None:
    assert report["counts"] == {"sentences": 4, "successful": 1, "failed": 1, "skipped": 1, "errored": 1, "no_candidates": 0}


def test_report_per_type(report: dict) -> None:
    assert report["per_type"]["PER"]["f1_under_attack"] == pytest.approx(0.5, abs=1e-12)
    assert report["per_type"]["LOC"]["support"] == 2


def test_report_settings_with_sources(report: dict) -> None:
    assert report["settings"]["k"] == {"value": 3, "source": "--attack-k"}
    assert report["settings"]["seed"] == {"value": 0, "source": "default"}
    assert report["settings"]["ae_hidden"] == {"value": [64, 10], "source": "default"}


def test_report_command_line(report: dict) -> None:
    assert report["command_line"] == (
        "pytest --attack-seed=0 --attack-k=3 --attack-max-candidates=10 --attack-min-similarity=0.6 "
        "--attack-selector=ig --attack-ig-steps=16 --kb=offline --infill=local-lm "
        "--nerrobust-cache-dir=.nerrobust-cache"
    )


def test_report_gates(report: dict) -> None:
    assert report["passed"] is False
    assert [gate["line"] for gate in report["gates"]] == [
        "FAIL f1_under_attack 0.5714 < 0.6000 (--min-f1-under-attack)",
        "FAIL errored 1 > 0 (--max-attack-errors default)",
    ]


def test_report_versions(report: dict) -> None:
    assert report["versions"]["python"] == platform.python_version()
    assert report["versions"]["torch"] == importlib.metadata.version("torch")
    assert report["versions"]["transformers"] == importlib.metadata.version("transformers")
    assert report["versions"]["pytest-nerrobust"] == pytest_nerrobust.__version__


def test_report_timings_cache_selection(report: dict) -> None:
    assert report["timings"] == {
        "total_seconds": 12.5,
        "attribution_seconds": 2.0,
        "mean_sentence_seconds": 0.5,
        "steps": {"query": 3.0},
    }
    assert report["cache"] == {
        "enabled": True,
        "directory": ".nerrobust-cache",
        "namespaces": {"infill": {"hits": 1, "misses": 2}},
    }
    assert report["selection"] == {"context_base_rate": 0.6, "selected_context_share": 0.5}
    assert report["coverage"] == {"PER": {"share": 1.0}}


def test_report_sentence_records(report: dict) -> None:
    statuses = [record["status"] for record in report["sentences"]]
    assert statuses == ["successful", "failed", "skipped", "errored"]
    assert report["sentences"][0]["changed_words"][0]["replacement"] == ["Peter"]
    assert report["sentences"][3]["error"] == "boom"


def test_report_without_gates_has_no_verdict() -> None:
    config, sources = resolve(env={})
    run = _run()
    report = build_report(run, summarize(run), config, sources)
    assert "gates" not in report
    assert "passed" not in report


def test_json_report_round_trip(tmp_path, report: dict) -> None:
    path = tmp_path / "out" / "nested" / "report.json"
    assert write_json_report(path, report) == path
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    assert [item.name for item in path.parent.iterdir()] == ["report.json"]


def test_json_report_replaces_file(tmp_path, report: dict) -> None:
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")
    write_json_report(path, report)
    assert json.loads(path.read_text(encoding="utf-8"))["original_f1"] == report["original_f1"]


def test_json_report_non_finite_becomes_null(tmp_path) -> None:
    path = write_json_report(
        tmp_path / "report.json", {"similarity": float("nan"), "per_type": {"X": [float("inf")]}}
    )
    assert json.loads(path.read_text(encoding="utf-8")) == {"similarity": None, "per_type": {"X": [None]}}


def test_json_report_unwritable_names_path(tmp_path, report: dict) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    target = blocker / "report.json"
    with pytest.raises(NerRobustError) as caught:
        write_json_report(target, report)
    message = str(caught.value)
    assert message.startswith(f"report file {str(target)!r} could not be written (")
    assert message.endswith("). Pass a writable --nerrobust-report path")


def test_format_summary_lines(report: dict) -> None:
    assert format_summary(report, "out/report.json") == [
        "metric               value",
        "original F1          0.7500",
        "F1 under attack      0.5714",
        "attack success rate  0.5000",
        "modification rate    0.2000",
        "similarity           0.9000",
        "average queries      4.50",
        "sentences            4: 2 attacked (1 successful, 1 failed), 1 skipped, 1 errored",
        "",
        "entity type  support  F1 clean  F1 under attack",
        "LOC          2        0.6667    0.6667",
        "PER          2        0.8000    0.5000",
        "",
        "report: out/report.json",
    ]


def test_format_summary_undefined_values() -> None:
    lines = format_summary({"original_f1": 0.5, "f1_under_attack": 0.5, "sentences": 2, "skipped": 2})
    assert lines[3] == "attack success rate  n/a"
    assert lines[7] == "sentences            2: 0 attacked (0 successful, 0 failed), 2 skipped, 0 errored"
    assert len(lines) == 8


def test_markdown_headline(report: dict) -> None:
    lines = format_markdown(report).splitlines()
    assert lines[0] == "## NER robustness: failed"
    assert "| F1 under attack | 0.5714 |" in lines
    assert "| sentences | 4: 2 attacked (1 successful, 1 failed), 1 skipped, 1 errored |" in lines


def test_markdown_gates_fenced(report: dict) -> None:
    lines = format_markdown(report).splitlines()
    start = lines.index("### Gates")
    assert lines[start + 2 : start + 6] == [
        "```",
        "FAIL f1_under_attack 0.5714 < 0.6000 (--min-f1-under-attack)",
        "FAIL errored 1 > 0 (--max-attack-errors default)",
        "```",
    ]


def test_markdown_per_type_rows(report: dict) -> None:
    lines = format_markdown(report).splitlines()
    assert "| LOC | 2 | 0.6667 | 0.6667 |" in lines
    assert "| PER | 2 | 0.8000 | 0.5000 |" in lines


def test_markdown_example_bolds_replacement(report: dict) -> None:
    lines = format_markdown(report).splitlines()
    assert "- John lives in Paris . → **Peter** lives in Paris ." in lines


def test_markdown_lists_changed_settings(report: dict) -> None:
    lines = format_markdown(report).splitlines()
    assert "| k | `3` | --attack-k |" in lines
    assert "| min_f1_under_attack | `0.6` | --min-f1-under-attack |" in lines
    assert not any(line.startswith("| seed |") for line in lines)


def test_markdown_example_multiword_shift() -> None:
    record = {
        "status": "successful",
        "words": ["Ann", "met", "Bob", "today"],
        "adversarial_words": ["Mary", "Ann", "Smith", "met", "Carl", "today"],
        "changed_words": [
            {"start": 0, "original": ["Ann"], "replacement": ["Mary", "Ann", "Smith"]},
            {"start": 2, "original": ["Bob"], "replacement": ["Carl"]},
        ],
    }
    lines = format_markdown({"sentences": [record]}).splitlines()
    assert "- Ann met Bob today → **Mary** **Ann** **Smith** met **Carl** today" in lines


def test_markdown_report_written(tmp_path, report: dict) -> None:
    path = write_markdown_report(tmp_path / "summary.md", report)
    assert path.read_text(encoding="utf-8") == format_markdown(report)


def test_format_summary_counts_unqueried_failures() -> None:
    metrics = {"sentences": 5, "successful": 1, "failed": 4, "no_candidates": 3}

    lines = format_summary(metrics)

    assert lines[7] == (
        "sentences            5: 5 attacked (1 successful, 4 failed, 3 of them with no candidate), "
        "0 skipped, 0 errored"
    )


def test_format_summary_warns_when_most_had_no_candidate() -> None:
    metrics = {"sentences": 4, "successful": 0, "failed": 4, "no_candidates": 2}

    lines = format_summary(metrics)

    assert lines[8] == (
        "warning: 2 of 4 attacked sentences had no candidate to try, so the success rate understates the "
        "attack; lower --attack-k or --attack-min-similarity"
    )


def test_format_summary_no_warning_below_half() -> None:
    metrics = {"sentences": 4, "successful": 1, "failed": 3, "no_candidates": 1}

    assert not any(line.startswith("warning:") for line in format_summary(metrics))


def test_markdown_warns_when_most_had_no_candidate(report: dict) -> None:
    report["counts"] = {**report["counts"], "failed": 3, "successful": 0, "no_candidates": 3}

    lines = format_markdown(report).splitlines()

    assert "**warning: 3 of 3 attacked sentences had no candidate to try, so the success rate understates " \
        "the attack; lower --attack-k or --attack-min-similarity**" in lines


def test_report_file_mode_follows_umask(tmp_path, report: dict) -> None:
    import os
    import stat

    previous = os.umask(0o022)
    try:
        path = write_json_report(tmp_path / "report.json", report)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o644
