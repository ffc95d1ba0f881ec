"""Reports of an attack: the JSON report, the terminal summary table and the Markdown summary.

Metrics stay unrounded 0..1 floats in the JSON report and are formatted only for the terminal and
Markdown. Nothing here imports torch or transformers: versions are read from package metadata.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import logging
import math
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_nerrobust.config import AttackConfig, command_line_flags
from pytest_nerrobust.errors import NerRobustError
from pytest_nerrobust.files import give_default_mode
from pytest_nerrobust.gates import GateResult, gates_passed, metric_counts
from pytest_nerrobust.results import AttackRun, Status

logger = logging.getLogger(__name__)

REPORT_FORMAT_VERSION = 1
TOP_LEVEL_METRICS = (
    "original_f1",
    "f1_under_attack",
    "attack_success_rate",
    "modification_rate",
    "similarity",
    "avg_queries",
)
MARKDOWN_EXAMPLES = 5

_METRIC_TITLES = {
    "original_f1": "original F1",
    "f1_under_attack": "F1 under attack",
    "attack_success_rate": "attack success rate",
    "modification_rate": "modification rate",
    "similarity": "similarity",
    "avg_queries": "average queries",
}


def build_report(
    run: AttackRun,
    metrics: Mapping[str, Any],
    config: AttackConfig,
    sources: Mapping[str, str] | None = None,
    *,
    gates: Sequence[GateResult] | None = None,
) -> dict[str, Any]:
    """Assemble the JSON report of one attack.

    Args:
        run: the attack results, timings, cache and selection statistics.
        metrics: the output of ``metrics.summarize(run)``.
        config: the settings of the attack.
        sources: where each setting came from; default: every setting is labelled ``default``.
        gates: the evaluated gates; default: the report has no ``gates`` entry.

    Returns:
        A JSON-serialisable dict with the six headline metrics, unrounded, at the top level, beside
        ``counts``, ``per_type``, ``settings``, ``versions``, ``timings``, ``cache``, ``selection``,
        ``coverage`` and one record per sentence in ``sentences``.
    """
    labels = dict(sources or {})
    report: dict[str, Any] = {"format_version": REPORT_FORMAT_VERSION}
    for name in TOP_LEVEL_METRICS:
        report[name] = metrics.get(name)
    report["avg_attribution_passes"] = metrics.get("avg_attribution_passes")
    report["counts"] = metric_counts(metrics)
    report["per_type"] = dict(metrics.get("per_type", {}))
    report["scorer"] = metrics.get("scorer")
    if gates is not None:
        report["passed"] = gates_passed(gates)
        report["gates"] = [_gate_record(gate) for gate in gates]
    report["settings"] = {
        name: {"value": value, "source": labels.get(name, "default")}
        for name, value in config.to_dict().items()
    }
    report["command_line"] = " ".join(["pytest", *command_line_flags(config)])
    report["versions"] = package_versions()
    report["timings"] = _timings(run)
    report["cache"] = {
        "enabled": not config.no_cache,
        "directory": None if config.no_cache else str(config.cache_dir),
        "namespaces": run.cache_stats,
    }
    report["selection"] = {
        "context_base_rate": run.selection_stats.get("context_base_rate"),
        "selected_context_share": run.selection_stats.get("selected_context_share"),
        **run.selection_stats,
    }
    report["coverage"] = run.coverage
    report["sentences"] = [result.to_dict() for result in run.results]
    report["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return report


def package_versions() -> dict[str, str | None]:
    """Return the versions of Python, this package and the libraries that shape the results.

    Versions come from installed package metadata, so torch and transformers are not imported. A
    package that is not installed maps to ``None``.
    """
    from pytest_nerrobust import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "pytest-nerrobust": __version__}
    for package in ("torch", "transformers", "sentence-transformers", "captum", "seqeval"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def write_json_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Write ``report`` as indented JSON to ``path`` atomically and return the path.

    The file is written next to its target and renamed over it, so a reader never sees half a
    report. Non-finite floats (NaN, infinity) are written as ``null`` to keep the file strict JSON.

    Raises:
        NerRobustError: when the file cannot be written, naming the path.
    """
    text = json.dumps(_finite(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return _write_atomic(Path(path), text, "--nerrobust-report")


def write_markdown_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Write :func:`format_markdown` of ``report`` to ``path`` atomically and return the path.

    Raises:
        NerRobustError: when the file cannot be written, naming the path.
    """
    return _write_atomic(Path(path), format_markdown(report), "--nerrobust-markdown")


def format_summary(metrics: Mapping[str, Any], report_path: str | Path | None = None) -> list[str]:
    """Return the terminal summary table: headline metrics, counts, per-type F1 and the report path.

    >>> format_summary({"original_f1": 0.5, "sentences": 1, "skipped": 1})[1]
    'original F1          0.5000'
    """
    rows = [("metric", "value")]
    for name in TOP_LEVEL_METRICS:
        value = metrics.get(name)
        rows.append((_METRIC_TITLES[name], _format_metric(name, value)))
    counts = metric_counts(metrics)
    rows.append(("sentences", _count_text(counts)))
    width = max(len(title) for title, _ in rows) + 2
    lines = [f"{title.ljust(width)}{value}".rstrip() for title, value in rows]
    warning = no_candidate_warning(counts)
    if warning:
        lines.append(warning)

    per_type = metrics.get("per_type", {})
    if per_type:
        lines.append("")
        lines.extend(_per_type_table(per_type))
    if report_path is not None:
        lines.append("")
        lines.append(f"report: {report_path}")
    return lines


def format_markdown(report: Mapping[str, Any]) -> str:
    """Return a Markdown summary of a JSON report, sized for a pull request comment."""
    if "passed" not in report:
        verdict = "not gated"
    else:
        verdict = "passed" if report["passed"] else "failed"
    lines = [f"## NER robustness: {verdict}", "", "| metric | value |", "|---|---|"]
    for name in TOP_LEVEL_METRICS:
        lines.append(f"| {_METRIC_TITLES[name]} | {_format_metric(name, report.get(name))} |")
    counts = metric_counts({"counts": report.get("counts", {})})
    lines.append(f"| sentences | {_count_text(counts)} |")
    warning = no_candidate_warning(counts)
    if warning:
        lines += ["", f"**{warning}**"]

    if report.get("gates"):
        lines += ["", "### Gates", "", "```"]
        lines += [gate["line"] for gate in report["gates"]]
        lines.append("```")

    per_type = report.get("per_type", {})
    if per_type:
        lines += ["", "### Per entity type", ""]
        lines += ["| type | support | F1 clean | F1 under attack |", "|---|---|---|---|"]
        for label in sorted(per_type):
            scores = per_type[label]
            lines.append(
                f"| {label} | {scores.get('support', '')} | {_format_fraction(scores.get('original_f1'))} | "
                f"{_format_fraction(scores.get('f1_under_attack'))} |"
            )

    records = report.get("sentences", [])
    examples = [record for record in records if record.get("status") == Status.SUCCESSFUL.value]
    if examples:
        shown = min(len(examples), MARKDOWN_EXAMPLES)
        lines += ["", f"### Successful attacks (first {shown} of {len(examples)})", ""]
        for record in examples[:MARKDOWN_EXAMPLES]:
            lines.append(f"- {_escape(' '.join(record['words']))} → {_marked_adversarial(record)}")

    lines += ["", "<details><summary>Settings and versions</summary>", ""]
    if report.get("command_line"):
        lines += ["```", str(report["command_line"]), "```", ""]
    changed = {
        name: entry for name, entry in report.get("settings", {}).items() if entry.get("source") != "default"
    }
    if changed:
        lines += ["| setting | value | source |", "|---|---|---|"]
        for name, entry in changed.items():
            lines.append(f"| {name} | `{entry['value']}` | {entry['source']} |")
        lines.append("")
    versions = report.get("versions", {})
    lines.append(", ".join(f"{name} {version}" for name, version in versions.items() if version is not None))
    lines += ["", "</details>", ""]
    return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------------------


def _gate_record(gate: GateResult) -> dict[str, Any]:
    return {
        "metric": gate.metric,
        "value": gate.value,
        "threshold": gate.threshold,
        "operator": gate.operator,
        "source": gate.source,
        "passed": gate.passed,
        "line": gate.line,
    }


def _timings(run: AttackRun) -> dict[str, Any]:
    durations = [result.seconds for result in run.results]
    return {
        "total_seconds": run.seconds,
        "attribution_seconds": run.attribution_seconds,
        "mean_sentence_seconds": sum(durations) / len(durations) if durations else None,
        "steps": dict(run.timings),
    }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _write_atomic(path: Path, text: str, flag: str) -> Path:
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        give_default_mode(temporary)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise NerRobustError(
            f"report file {str(path)!r} could not be written ({error}). Pass a writable {flag} path"
        ) from error
    logger.info("wrote %s", path)
    return path


def _format_fraction(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _format_metric(name: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if name == "avg_queries":
        return f"{value:.2f}"
    return f"{value:.4f}"


def no_candidate_warning(counts: Mapping[str, int]) -> str | None:
    """Return a warning when at least half of the attacked sentences had no candidate to try, else ``None``.

    Such sentences count as failed attacks, so a high share makes the model look more robust than the
    attack measured.
    """
    attacked = counts["successful"] + counts["failed"]
    unqueried = counts.get("no_candidates", 0)
    if not attacked or 2 * unqueried < attacked:
        return None
    return (
        f"warning: {unqueried} of {attacked} attacked sentences had no candidate to try, so the success rate "
        "understates the attack; lower --attack-k or --attack-min-similarity"
    )


def _count_text(counts: Mapping[str, int]) -> str:
    successful, failed = counts["successful"], counts["failed"]
    skipped, errored, total = counts["skipped"], counts["errored"], counts["sentences"]
    unqueried = counts.get("no_candidates", 0)
    failed_text = f"{failed} failed, {unqueried} of them with no candidate" if unqueried else f"{failed} failed"
    return (
        f"{total}: {successful + failed} attacked ({successful} successful, {failed_text}), "
        f"{skipped} skipped, {errored} errored"
    )


def _per_type_table(per_type: Mapping[str, Mapping[str, Any]]) -> list[str]:
    header = ("entity type", "support", "F1 clean", "F1 under attack")
    rows = [header]
    for label in sorted(per_type):
        scores = per_type[label]
        rows.append(
            (
                label,
                str(scores.get("support", "")),
                _format_fraction(scores.get("original_f1")),
                _format_fraction(scores.get("f1_under_attack")),
            )
        )
    widths = [max(len(row[column]) for row in rows) + 2 for column in range(len(header))]
    return ["".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _marked_adversarial(record: Mapping[str, Any]) -> str:
    """Return the adversarial sentence with each replacement in bold.

    ``start`` of a change indexes the original words, so later changes shift by the length
    difference of the earlier ones.
    """
    words = list(record.get("adversarial_words") or [])
    changed: set[int] = set()
    shift = 0
    for change in sorted(record.get("changed_words", []), key=lambda item: item["start"]):
        start = change["start"] + shift
        changed.update(range(start, start + len(change["replacement"])))
        shift += len(change["replacement"]) - len(change["original"])
    marked = []
    for index, word in enumerate(words):
        marked.append(f"**{_escape(word)}**" if index in changed else _escape(word))
    return " ".join(marked)
