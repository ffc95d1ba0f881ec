"""The pytest layer of pytest-nerrobust: options, ini keys, the marker, fixtures, the generated attack
test, the report header, progress lines and the terminal summary.

Only this module talks to pytest and writes to the terminal. It imports nothing heavy at load time: the
engine (torch, transformers) is imported when a test first runs an attack, so ``pytest --help`` stays
fast. Settings are resolved once per session in ``pytest_configure`` and kept in the config stash. Under
pytest-xdist the generated test runs on one worker, and its metrics reach the controller through the
report's ``user_properties``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_nerrobust.config import (
    MARKER_NAME,
    SETTINGS,
    SETTINGS_BY_NAME,
    AttackConfig,
    Resolved,
    add_options,
    command_line_flags,
    marker_keywords,
    option_values,
    resolve,
    unknown_environment_warning,
)
from pytest_nerrobust.errors import ConfigError, NerRobustError, about_setting, with_origin
from pytest_nerrobust.gates import GateResult, evaluate_gates, format_gate_block, gates_passed
from pytest_nerrobust.report import build_report, format_summary, write_json_report, write_markdown_report

if TYPE_CHECKING:
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.corpus import Corpus
    from pytest_nerrobust.models.base import NERModel
    from pytest_nerrobust.results import AttackRun

PROPERTY_NAME = "nerrobust"
STATE_PLUGIN_NAME = "nerrobust-session"
COLLECTOR_NAME = "nerrobust"
PROGRESS_STEPS = 10
PROGRESS_SECONDS = 30.0


# --- options, ini keys and the marker ---------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register one option group and one ini key per setting, both with the same help text."""
    group = parser.getgroup("nerrobust", "adversarial robustness of NER models (pytest-nerrobust)")
    add_options(group.addoption)
    ini_type = _ini_value_type()
    for setting in SETTINGS:
        parser.addini(setting.ini, help=setting.help_text(), type=ini_type, default=None)


def _ini_value_type() -> Any:
    """Return the ini type: strings, plus native TOML numbers and booleans where pytest accepts a union."""
    # pytest 9.2 added type expressions to addini. Earlier versions take only the "string" tag, so a
    # native TOML table ([tool.pytest]) needs quoted numbers there.
    if pytest.version_tuple >= (9, 2):
        return str | int | float | bool
    return "string"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and resolve the session settings, turning a bad value into a usage error."""
    config.addinivalue_line(
        "markers",
        f"{MARKER_NAME}(**settings): attack settings for the ner_attack, ner_model and ner_corpus fixtures "
        f"of this test; keywords: {', '.join(marker_keywords())}",
    )
    if config.option.help or config.option.version:
        return
    state = _SessionState(
        cli=option_values(config.option),
        ini={setting.name: config.getini(setting.ini) for setting in SETTINGS},
        env=dict(os.environ),
        ini_dir=config.inipath.parent if config.inipath is not None else None,
    )
    try:
        state.base = state.resolve()
    except ConfigError as error:
        raise pytest.UsageError(str(error)) from None
    warning = unknown_environment_warning(state.env)
    if warning:
        config.issue_config_time_warning(pytest.PytestConfigWarning(warning), stacklevel=2)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, STATE_PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the caches opened during the session."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()
        config.pluginmanager.unregister(state)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the sampling and search settings as flags that reproduce this run."""
    state = config.stash.get(_STATE, None)
    if state is None:
        return []
    return [f"nerrobust: {' '.join(command_line_flags(state.base.config))}"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test whose ``ner_robustness`` marker has an unknown keyword or an invalid value."""
    if item.get_closest_marker(MARKER_NAME) is None:
        return
    try:
        _resolve_for(item)
        return
    except ConfigError as error:
        failure = str(error)
    pytest.fail(failure, pytrace=False)


# --- the generated attack test ----------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append the attack test when a model comes from the command line, the ini file or the environment.

    It runs before ``-k`` and ``-m`` deselection, so ``-k "not nerrobust"`` leaves it out.
    """
    state = config.stash.get(_STATE, None)
    if state is None or state.base.config.model is None:
        return
    collector = AttackCollector.from_parent(session, name=COLLECTOR_NAME, nodeid=COLLECTOR_NAME)
    item = AttackItem.from_parent(collector, name=f"attack[k={state.base.config.k}]")
    items.append(item)
    # Reporting the collection keeps the "collected N items" count and the -k/-m deselection counts true.
    config.hook.pytest_collectreport(report=pytest.CollectReport(collector.nodeid, "passed", None, [item]))


class AttackCollector(pytest.Collector):
    """The ``nerrobust`` node that contains the generated attack test."""

    def collect(self) -> list[pytest.Item]:
        return []


class GateFailure(Exception):
    """A robustness gate failed; the message is the gate block."""


class AttackItem(pytest.Item):
    """Runs the attack with the session settings and fails with the gate block when a gate fails."""

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        outcome = _run_attack(self.config, state.base, self.nodeid)
        self.user_properties.append((PROPERTY_NAME, outcome.summary_record(self.nodeid)))
        if not outcome.passed:
            raise GateFailure(outcome.gate_block)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (GateFailure, NerRobustError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.nodeid


# --- fixtures -----------------------------------------------------------------------------------------


@dataclass
class AttackOutcome:
    """Result of ``ner_attack()``: the run, its metrics, the evaluated gates and the report."""

    run: AttackRun
    metrics: dict[str, Any]
    gates: list[GateResult]
    config: AttackConfig
    sources: dict[str, str]
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return gates_passed(self.gates)

    @property
    def gate_block(self) -> str:
        """The gate lines under a header with the attacked, skipped and errored counts."""
        return format_gate_block(self.gates, self.metrics)

    def check(self) -> None:
        """Fail the calling test with the gate block when a gate failed."""
        if not self.passed:
            pytest.fail(self.gate_block, pytrace=False)

    def summary_record(self, label: str) -> dict[str, Any]:
        """Return what the terminal summary shows, as plain data that pytest-xdist can send."""
        return {
            "label": label,
            "gates": [gate.line for gate in self.gates],
            "metrics": _plain(self.metrics),
            "report": self.config.report,
            "markdown_report": self.config.markdown_report,
        }


@pytest.fixture
def ner_config(request: pytest.FixtureRequest) -> AttackConfig:
    """Return the settings of this test: command line, marker, ini, environment, then defaults."""
    try:
        return _resolve_for(request.node).config
    except ConfigError as error:
        failure = str(error)
    pytest.fail(failure, pytrace=False)


@pytest.fixture
def ner_model(request: pytest.FixtureRequest, ner_config: AttackConfig) -> NERModel:
    """Return the model of ``--ner-model`` (or the marker's ``model``), loaded once per session."""
    return _load_or_fail(request, lambda state: state.model(ner_config))


@pytest.fixture
def ner_corpus(request: pytest.FixtureRequest, ner_config: AttackConfig) -> Corpus:
    """Return the sentences of ``--ner-data`` (or the marker's ``data``), read once per session."""
    return _load_or_fail(request, lambda state: state.corpus(ner_config))


def _load_or_fail(request: pytest.FixtureRequest, load: Callable[[_SessionState], Any]) -> Any:
    """Return ``load(session state)``, or fail the test with the error and where its value came from."""
    try:
        return load(request.config.stash[_STATE])
    except NerRobustError as error:
        failure = str(with_origin(error, _resolve_for(request.node).sources))
    pytest.fail(failure, pytrace=False)


@pytest.fixture
def ner_attack(request: pytest.FixtureRequest) -> Callable[..., AttackOutcome]:
    """Return ``ner_attack(**overrides)``, which attacks the model and evaluates the gates.

    Keywords are setting names (``k=3``, ``selector="random"``). They override the marker, and the
    command line overrides both. Each call writes the configured reports and adds its metrics to the
    terminal summary. It returns an :class:`AttackOutcome`, whose ``.check()`` fails the test when a
    gate fails.
    """

    def attack(**overrides: Any) -> AttackOutcome:
        try:
            resolved = _resolve_for(request.node, overrides)
            outcome = _run_attack(request.config, resolved, request.node.nodeid, own_reports=True)
        except NerRobustError as error:
            failure = str(error)
        else:
            request.node.user_properties.append((PROPERTY_NAME, outcome.summary_record(request.node.nodeid)))
            return outcome
        pytest.fail(failure, pytrace=False)

    return attack


# --- internals ----------------------------------------------------------------------------------------


@dataclass
class _SessionState:
    """Settings, loaded models, corpora, caches and attack summaries of one session.

    It is registered as a plugin, so its hooks collect summaries from test reports (which also carry
    them from xdist workers) and print them at the end.
    """

    cli: dict[str, Any]
    ini: dict[str, Any]
    env: dict[str, str]
    ini_dir: Path | None
    base: Resolved = field(init=False)
    models: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = field(default_factory=dict)
    corpora: dict[str, Any] = field(default_factory=dict)
    caches: dict[str | None, Any] = field(default_factory=dict)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    # ner_attack() calls made so far per test, which number the report files of a test's later calls.
    attack_calls: dict[str, int] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == PROPERTY_NAME and isinstance(value, dict):
                self.summaries.append(value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for record in self.summaries:
            terminalreporter.write_sep("-", f"nerrobust: {record['label']}")
            for line in record["gates"]:
                terminalreporter.write_line(line)
            terminalreporter.write_line("")
            for line in format_summary(record["metrics"], record.get("report")):
                terminalreporter.write_line(line)
            if record.get("markdown_report"):
                terminalreporter.write_line(f"markdown summary: {record['markdown_report']}")

    def resolve(
        self, marker: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Resolved:
        resolved = resolve(cli=self.cli, overrides=overrides, marker=marker, ini=self.ini, env=self.env)
        return _rebase_ini_paths(resolved, self.ini_dir)

    def model(self, config: AttackConfig) -> Any:
        if config.model is None:
            raise ConfigError(
                "no model is configured: pass --ner-model PATH or --ner-model module:attr, "
                f"set ini ner_model, or give the marker keyword {MARKER_NAME}(model=...)"
            )
        key = (config.model, tuple(sorted((config.label_map or {}).items())))
        if key not in self.models:
            from pytest_nerrobust.models.loading import load_model

            with about_setting("model"):
                self.models[key] = load_model(config.model, config.label_map)
        return self.models[key]

    def corpus(self, config: AttackConfig) -> Any:
        if config.data is None:
            raise ConfigError(
                "no data is configured: pass --ner-data FILE, set ini ner_data, "
                f"or give the marker keyword {MARKER_NAME}(data=...)"
            )
        if config.data not in self.corpora:
            from pytest_nerrobust.corpus import read_corpus

            with about_setting("data"):
                self.corpora[config.data] = read_corpus(config.data)
        return self.corpora[config.data]

    def cache(self, config: AttackConfig) -> Cache:
        directory = None if config.no_cache else config.cache_dir
        if directory not in self.caches:
            from pytest_nerrobust.cache import Cache

            self.caches[directory] = Cache(directory)
        return self.caches[directory]

    def close(self) -> None:
        for cache in self.caches.values():
            cache.close()
        self.caches.clear()


_STATE = pytest.StashKey[_SessionState]()


def _resolve_for(item: pytest.Item, overrides: Mapping[str, Any] | None = None) -> Resolved:
    """Resolve the settings of one test, merging its ``ner_robustness`` markers closest last."""
    keywords: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER_NAME))):
        if mark.args:
            raise ConfigError(
                f"marker {MARKER_NAME} got positional arguments {mark.args!r}, but it takes keywords only, "
                f"such as @pytest.mark.{MARKER_NAME}(k=3)"
            )
        keywords.update(mark.kwargs)
    return item.config.stash[_STATE].resolve(marker=keywords, overrides=overrides)


def _rebase_ini_paths(resolved: Resolved, ini_dir: Path | None) -> Resolved:
    """Make relative paths read from the ini file relative to that file's directory, as pytest does."""
    if ini_dir is None:
        return resolved
    changes: dict[str, str] = {}
    for name, source in resolved.sources.items():
        value = getattr(resolved.config, name)
        if not source.startswith("ini ") or not isinstance(value, str) or Path(value).is_absolute():
            continue
        candidate = ini_dir / value
        if SETTINGS_BY_NAME[name].type == "path":
            changes[name] = str(candidate)
        elif name == "model" and candidate.exists():
            # A model spec that names no existing path is module:attr, which stays as it is.
            changes[name] = str(candidate)
    if not changes:
        return resolved
    return Resolved(resolved.config.replace(**changes), resolved.sources)


def _run_attack(config: pytest.Config, resolved: Resolved, label: str, own_reports: bool = False) -> AttackOutcome:
    """Run the engine, compute the metrics, evaluate the gates and write the configured reports.

    The generated attack test writes the configured report paths. With ``own_reports`` (a
    ``ner_attack()`` call), each path gets the test's name before its suffix, so that no attack of the
    session overwrites another's report.
    """
    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.metrics import summarize

    state = config.stash[_STATE]
    settings = resolved.config
    if own_reports and (settings.report or settings.markdown_report):
        call = state.attack_calls.get(label, 0) + 1
        state.attack_calls[label] = call
        settings = settings.replace(
            report=_report_path_for(settings.report, label, call),
            markdown_report=_report_path_for(settings.markdown_report, label, call),
        )
    try:
        corpus = state.corpus(settings)
        model = state.model(settings)
        cache = state.cache(settings)
        run = run_attack(settings, model=model, corpus=corpus, cache=cache, progress=_Progress(config, label))
    except NerRobustError as error:
        raise with_origin(error, resolved.sources) from None
    metrics = summarize(run)
    gates = evaluate_gates(metrics, settings, resolved.sources)
    report = build_report(run, metrics, settings, resolved.sources, gates=gates)
    if settings.report is not None:
        write_json_report(settings.report, report)
    if settings.markdown_report is not None:
        write_markdown_report(settings.markdown_report, report)
    return AttackOutcome(run, metrics, gates, settings, dict(resolved.sources), report)


def _report_path_for(path: str | None, nodeid: str, call: int) -> str | None:
    """Return ``path`` with the test of ``nodeid`` (and the call number after the first) before its suffix.

    >>> _report_path_for("out/report.json", "tests/test_ner.py::test_people[k1]", 2)
    'out/report.test_ner-test_people-k1-2.json'
    """
    if path is None:
        return None
    module, _, name = nodeid.partition("::")
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{Path(module).stem}-{name}").strip("-.")
    if call > 1:
        slug = f"{slug}-{call}"
    original = Path(path)
    return str(original.with_name(f"{original.stem}.{slug}{original.suffix}"))


class _Progress:
    """Progress callback that writes lines through the terminal reporter.

    With ``-v`` a line comes at every tenth of the sentences. Without it, a line comes only when 30
    seconds have passed since the last one, so short runs stay quiet. ``-q`` prints nothing, and
    neither do xdist workers, because they have no terminal.
    """

    def __init__(self, config: pytest.Config, label: str) -> None:
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capture = config.pluginmanager.get_plugin("capturemanager")
        self.verbosity = config.get_verbosity()
        self.label = label
        self.started = self.last_line = time.monotonic()
        self.last_step = 0

    def __call__(self, done: int, total: int) -> None:
        if self.reporter is None or self.verbosity < 0 or total <= 0:
            return
        now = time.monotonic()
        step = done * PROGRESS_STEPS // total
        due = (self.verbosity >= 1 and step > self.last_step) or now - self.last_line >= PROGRESS_SECONDS
        if not due:
            return
        self.last_step, self.last_line = step, now
        line = f"nerrobust: {self.label}: {done}/{total} sentences attacked ({now - self.started:.0f} s)"
        with self._terminal():
            self.reporter.write_line(line)

    def _terminal(self) -> Any:
        if self.capture is None:
            return nullcontext()
        return self.capture.global_and_fixture_disabled()


def _plain(value: Any) -> Any:
    """Copy ``value`` into dicts, lists, strings, numbers and ``None`` only, so execnet can send it."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
