"""Tests of the pytest plugin through pytester: options, ini keys, the marker, fixtures, the generated
attack test, gates, exit codes, the header and the summary.

Tests that run the attack engine start pytest in a subprocess, so torch is imported there and never
reloaded in this process. Their model is a pure-Python tagger written by the test.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

# Imported here so that pytester's sys.modules snapshot keeps them between in-process runs. A module
# first imported inside an in-process run is dropped after it and imported again later, and importing
# compiled extensions (torch, captum's scipy and scikit-learn) twice corrupts the process.
import pytest_nerrobust.attack
import pytest_nerrobust.attribution.ig
import pytest_nerrobust.attribution.selectors
import pytest_nerrobust.metrics
import pytest_nerrobust.models.hf
import pytest_nerrobust.similarity
import pytest_nerrobust.substitution.backends  # noqa: F401

# The entry point loads the plugin when the package is installed; otherwise load it by module name.
PLUGIN_ARGS: tuple[str, ...] = (
    ()
    if importlib.metadata.entry_points(group="pytest11", name="nerrobust")
    else ("-p", "pytest_nerrobust.plugin")
)
ENGINE_TIMEOUT = 600

# Tags every run of capitalised words as one PER entity, so a location is predicted as a person.
CAPITALISED_TAGGER = """
class CapitalisedTagger:
    labels = ["LOC", "PER"]
    fingerprint = "capitalised-per-v1"

    def predict(self, sentences):
        batch = []
        for words in sentences:
            tags, previous = [], False
            for word in words:
                capitalised = word[:1].isupper()
                if not capitalised:
                    tags.append("O")
                elif previous:
                    tags.append("I-PER")
                else:
                    tags.append("B-PER")
                previous = capitalised
            batch.append(tags)
        return batch


tagger = CapitalisedTagger()
"""

# Every sentence has a location that the tagger calls a person, so every sentence is skipped:
# clean F1 = F1 under attack = 2 correct of 4 predicted and 4 gold entities = 0.5.
SKIPPED_DATA = "John B-PER\nlives O\nin O\nParis B-LOC\n. O\n\nMary B-PER\nvisited O\nRome B-LOC\n. O\n"

# Knows only two names, so replacing a name with any other person breaks it.
LEXICON_TAGGER = """
NAMES = {"John", "Mary"}


class LexiconTagger:
    labels = ["PER"]
    fingerprint = "lexicon-v1"

    def predict(self, sentences):
        return [["B-PER" if word in NAMES else "O" for word in words] for words in sentences]


tagger = LexiconTagger()
"""

SKIPPED_SUMMARY = [
    "metric               value",
    "original F1          0.5000",
    "F1 under attack      0.5000",
    "attack success rate  n/a",
    "modification rate    n/a",
    "similarity           n/a",
    "average queries      n/a",
    "sentences            2: 0 attacked (0 successful, 0 failed), 2 skipped, 0 errored",
    "",
    "entity type  support  F1 clean  F1 under attack",
    "LOC          2        0.0000    0.0000",
    "PER          2        0.6667    0.6667",
]
DEFAULT_HEADER = (
    "nerrobust: --attack-seed=0 --attack-k=1 --attack-max-candidates=10 --attack-min-similarity=0.6 "
    "--attack-selector=ig --attack-ig-steps=16 --kb=offline --infill=local-lm "
    "--nerrobust-cache-dir=.nerrobust-cache"
)
MODEL_ARGS = ("--ner-model=mymodule:tagger", "--ner-data=data.conll", "--attack-selector=random")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("NERROBUST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with the capitalised tagger, all-skipped data and one passing test."""
    pytester.makepyfile(mymodule=CAPITALISED_TAGGER)
    pytester.makefile(".conll", data=SKIPPED_DATA)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.syspathinsert()
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*PLUGIN_ARGS, "-p", "no:cacheprovider", *args)


def lines_after(result: pytest.RunResult, title: str, count: int) -> list[str]:
    """Return the ``count`` output lines after the first line that contains ``title``."""
    for index, line in enumerate(result.outlines):
        if title in line:
            return result.outlines[index + 1 : index + 1 + count]
    raise AssertionError(f"no output line contains {title!r}")


def run_engine(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *PLUGIN_ARGS, "-p", "no:cacheprovider", *args, timeout=ENGINE_TIMEOUT
    )


# --- loading and options ----------------------------------------------------------------------------


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, pytest_nerrobust.plugin; "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'seqeval') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_help_lists_option_group(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(
        [
            "adversarial robustness of NER models (pytest-nerrobust):",
            "  --ner-model=SPEC*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "  --attack-k=K          number of words substituted per sentence, where an",
            "                        entity word brings its whole entity (default: 1)",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "  --min-f1-under-attack=FRACTION",
            "                        fail when the entity F1 under attack (0 to 1) is below",
            "                        this value, or none for no gate (default: no gate)",
        ],
        consecutive=True,
    )


def test_help_lists_ini_keys(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["  attack_k (*", "*entity word brings its whole entity (default: 1)"])
    result.stdout.fnmatch_lines(["  max_attack_success_rate (*"])


@pytest.mark.skipif(pytest.version_tuple < (9, 2), reason="native TOML ini values need pytest 9.2 or later")
def test_native_toml_values(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.pytest]\nattack_k = 3\nmin_f1_under_attack = 0.5\nnerrobust_no_cache = true\n"
    )
    pytester.makepyfile(
        test_toml="""
        def test_values(ner_config):
            assert ner_config.k == 3
            assert ner_config.min_f1_under_attack == 0.5
            assert ner_config.no_cache is True
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_markers_lists_signature(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        [
            (
                "@pytest.mark.ner_robustness(**settings): attack settings for the ner_attack, ner_model and "
                "ner_corpus fixtures of this test; keywords: model, data, reference_data, label_map, k, *"
            )
        ]
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--attack-k=0", "ERROR: invalid k value '0' from --attack-k: expected an integer >= 1"),
        (
            "--min-f1-under-attack=85",
            (
                "ERROR: invalid min_f1_under_attack value '85' from --min-f1-under-attack: expected a fraction "
                "between 0 and 1 (write 0.85 for 85%)"
            ),
        ),
        (
            "--attack-selector=foo",
            (
                "ERROR: invalid selector value 'foo' from --attack-selector: expected one of ig, ig-raw, random, "
                "tfidf, kernel-shap, occlusion"
            ),
        ),
    ],
)
def test_usage_error_names_flag(pytester: pytest.Pytester, flag: str, message: str) -> None:
    result = run(pytester, flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.errlines


def test_usage_error_names_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmax_attack_success_rate = 30\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: invalid max_attack_success_rate value '30' from ini max_attack_success_rate: expected a "
        "fraction between 0 and 1 (write 0.3 for 30%)"
    ) in result.errlines


def test_usage_error_names_env_variable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERROBUST_KB", "google")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: invalid kb value 'google' from env NERROBUST_KB: expected one or more of offline, pools, "
        "wikidata, separated by commas"
    ) in result.errlines


def test_header_default_flags(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    assert DEFAULT_HEADER in result.outlines


def test_header_reflects_ini_and_flags(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nattack_k = 3\nattack_sample = 40\n")
    result = run(pytester, "--attack-seed=7", "--nerrobust-no-cache")
    assert (
        "nerrobust: --attack-seed=7 --attack-k=3 --attack-max-candidates=10 --attack-min-similarity=0.6 "
        "--attack-selector=ig --attack-ig-steps=16 --kb=offline --infill=local-lm "
        "--attack-sample=40 --nerrobust-no-cache"
    ) in result.outlines


# --- the marker and ner_config ----------------------------------------------------------------------


MARKER_TESTS = """
import pytest


@pytest.mark.ner_robustness(k=5, selector="tfidf")
def test_marked(ner_config):
    assert ner_config.k == {marked_k}
    assert ner_config.selector == "tfidf"


def test_unmarked(ner_config):
    assert ner_config.k == {unmarked_k}
"""


def test_marker_overrides_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nattack_k = 3\n")
    pytester.makepyfile(MARKER_TESTS.format(marked_k=5, unmarked_k=3))
    result = run(pytester)
    result.assert_outcomes(passed=2)


def test_command_line_overrides_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nattack_k = 3\n")
    pytester.makepyfile(MARKER_TESTS.format(marked_k=2, unmarked_k=2))
    result = run(pytester, "--attack-k=2")
    result.assert_outcomes(passed=2)


def test_marker_on_module_and_function_merge(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.ner_robustness(k=4, seed=9)


        @pytest.mark.ner_robustness(k=6)
        def test_merged(ner_config):
            assert (ner_config.k, ner_config.seed) == (6, 9)
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_marker_unknown_keyword_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.ner_robustness(kk=3)
        def test_typo():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "marker ner_robustness got an unknown keyword 'kk'. Accepted keywords: model, data, reference_data, *"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_marker_positional_argument_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.ner_robustness(3)
        def test_positional():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "marker ner_robustness got positional arguments (3,), but it takes keywords only, such as "
                "@pytest.mark.ner_robustness(k=3)"
            )
        ]
    )


def test_marker_invalid_value_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.ner_robustness(min_f1_under_attack=80)
        def test_percent():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "invalid min_f1_under_attack value 80 from marker ner_robustness: expected a fraction between 0 and "
                "1 (write 0.8 for 80%)"
            )
        ]
    )


# --- ner_model and ner_corpus -----------------------------------------------------------------------


def test_ner_model_fixture_loads_callable(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_model="""
        import pytest


        @pytest.mark.ner_robustness(model="mymodule:tagger")
        def test_predict(ner_model):
            assert ner_model.predict([["John", "met", "Ann", "Lee"]]) == [["B-PER", "O", "B-PER", "I-PER"]]


        @pytest.mark.ner_robustness(model="mymodule:tagger")
        def test_same_object(ner_model):
            import mymodule
            assert ner_model is mymodule.tagger
        """
    )
    run(project).assert_outcomes(passed=3)


def test_ner_corpus_fixture_reads_data(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_user_corpus="""
        def test_sentences(ner_corpus):
            assert [list(sentence.words) for sentence in ner_corpus] == [
                ["John", "lives", "in", "Paris", "."],
                ["Mary", "visited", "Rome", "."],
            ]
        """
    )
    run(project, "--ner-data=data.conll").assert_outcomes(passed=2)


def test_ner_model_fixture_without_model_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_model(ner_model):\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            (
                "no model is configured: pass --ner-model PATH or --ner-model module:attr, set ini ner_model, or give "
                "the marker keyword ner_robustness(model=...)"
            )
        ]
    )


# --- the generated attack test: collection and errors -----------------------------------------------


def test_collect_only_lists_attack_item(project: pytest.Pytester) -> None:
    result = run(project, "--collect-only", "-q", "--ner-model=mymodule:tagger", "--attack-k=3")
    assert result.outlines[:2] == ["test_plain.py::test_plain", "nerrobust::attack[k=3]"]


def test_collect_count_includes_attack_item(project: pytest.Pytester) -> None:
    result = run(project, "--collect-only", "--ner-model=mymodule:tagger")
    result.stdout.fnmatch_lines(["collected 2 items"])


def test_no_attack_item_without_model(project: pytest.Pytester) -> None:
    result = run(project, "--collect-only", "-q")
    assert result.outlines[0] == "test_plain.py::test_plain"
    assert "nerrobust::attack[k=1]" not in result.outlines


def test_attack_item_from_ini_model(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nner_model = mymodule:tagger\n")
    result = run(project, "--collect-only", "-q")
    assert "nerrobust::attack[k=1]" in result.outlines


def test_keyword_deselects_attack_item(project: pytest.Pytester) -> None:
    result = run(project, "--ner-model=mymodule:tagger", "-k", "not nerrobust")
    result.assert_outcomes(passed=1, deselected=1)


def test_missing_data_fails_without_traceback(project: pytest.Pytester) -> None:
    result = run(project, "--ner-model=mymodule:tagger", "--ner-data=missing.conll")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    assert lines_after(result, "_ nerrobust::attack[k=1] _", 2) == [
        (
            "data file 'missing.conll' was not found; pass an existing CoNLL or JSON lines file "
            "(value from --ner-data)"
        ),
        "=========================== short test summary info ============================",
    ]


def test_missing_data_from_ini_names_the_ini_key(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nner_data = missing.conll\n")
    result = run(project, "--ner-model=mymodule:tagger")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["data file '*missing.conll' was not found; * (value from ini ner_data)"])


def test_missing_data_from_environment_names_the_variable(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NERROBUST_NER_DATA", "absent.conll")
    result = run(project, "--ner-model=mymodule:tagger")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["data file 'absent.conll' was not found; * (value from env NERROBUST_NER_DATA)"])


def test_missing_model_from_marker_names_the_marker(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.ner_robustness(model="no/such/model")
        def test_model(ner_model):
            pass
        """
    )
    result = run(project, "test_marked.py")
    result.assert_outcomes(errors=1)
    result.stdout.no_fnmatch_line("During handling*")
    result.stdout.fnmatch_lines(["*model path 'no/such/model' does not exist*(value from marker ner_robustness)"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_missing_data_setting_fails_item(project: pytest.Pytester) -> None:
    result = run(project, "--ner-model=mymodule:tagger")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "no data is configured: pass --ner-data FILE, set ini ner_data, or give the marker keyword "
                "ner_robustness(data=...)"
            )
        ]
    )


def test_gradient_selector_on_callable_names_default(project: pytest.Pytester) -> None:
    result = run(project, "--ner-model=mymodule:tagger", "--ner-data=data.conll")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["selector ig needs a model with word features and gradients, * (value from the default of --attack-selector)"]
    )


def test_bad_model_spec_fails_without_traceback(project: pytest.Pytester) -> None:
    result = run(project, "--ner-model=nosuchmodule:tagger", "--ner-data=data.conll")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["model spec 'nosuchmodule:tagger': module 'nosuchmodule' cannot be imported *"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


# --- the generated attack test: gates, exit codes, summary and reports (run the engine) -------------


def test_attack_item_passes_gate(project: pytest.Pytester) -> None:
    result = run_engine(
        project, *MODEL_ARGS, "--min-f1-under-attack=0.4", "--nerrobust-report=out/report.json"
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    assert lines_after(result, "- nerrobust: nerrobust::attack[k=1] -", 17) == [
        "PASS f1_under_attack 0.5000 >= 0.4000 (--min-f1-under-attack)",
        "PASS errored 0 <= 0 (--max-attack-errors default)",
        "",
        *SKIPPED_SUMMARY,
        "",
        "report: out/report.json",
    ]


def test_attack_item_writes_json_report(project: pytest.Pytester) -> None:
    run_engine(project, *MODEL_ARGS, "--attack-k=2", "--nerrobust-report=out/report.json")
    report = json.loads((project.path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["original_f1"] == 0.5
    assert report["attack_success_rate"] is None
    assert report["counts"] == {"sentences": 2, "successful": 0, "failed": 0, "skipped": 2, "errored": 0, "no_candidates": 0}
    assert report["settings"]["k"] == {"value": 2, "source": "--attack-k"}
    assert report["settings"]["seed"] == {"value": 0, "source": "default"}
    assert [record["status"] for record in report["sentences"]] == ["skipped", "skipped"]


def test_attack_item_fails_gate(project: pytest.Pytester) -> None:
    result = run_engine(project, *MODEL_ARGS, "--min-f1-under-attack=0.6")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    assert lines_after(result, "_ nerrobust::attack[k=1] _", 3) == [
        "nerrobust gates failed (0 attacked, 2 skipped, 0 errored):",
        "FAIL f1_under_attack 0.5000 < 0.6000 (--min-f1-under-attack)",
        "PASS errored 0 <= 0 (--max-attack-errors default)",
    ]
    short_summary = [line for line in result.outlines if line.startswith("FAILED ")]
    assert short_summary[0].startswith("FAILED nerrobust::attack[k=1] - nerrobust gates failed (0 attacked")
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*GateFailure*")


def test_undefined_success_rate_fails_gate(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmax_attack_success_rate = 0.3\n")
    result = run_engine(project, *MODEL_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            (
                "FAIL attack_success_rate n/a <= 0.3000 (ini max_attack_success_rate): no sentence was attacked "
                "(0 attacked, 2 skipped, 0 errored)"
            )
        ]
    )


def test_success_rate_gate_fails_broken_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(lexicon=LEXICON_TAGGER)
    pytester.makefile(".conll", data="John B-PER\n\nMary B-PER\n", reference="Peter B-PER\n\nAnna B-PER\n")
    result = run_engine(
        pytester,
        "--ner-model=lexicon:tagger",
        "--ner-data=data.conll",
        "--ner-reference-data=reference.conll",
        "--attack-selector=random",
        "--attack-min-similarity=0",
        "--max-attack-success-rate=0.5",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "nerrobust gates failed (2 attacked, 0 skipped, 0 errored):",
            "FAIL attack_success_rate 1.0000 > 0.5000 (--max-attack-success-rate)",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["F1 under attack      0.0000"])


def test_ner_attack_fixture_check_fails(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_attack="""
        import pytest


        @pytest.mark.ner_robustness(model="mymodule:tagger", data="data.conll", selector="random",
                                    min_f1_under_attack=0.6)
        def test_robust(ner_attack):
            outcome = ner_attack(k=2)
            assert outcome.config.k == 2
            assert outcome.sources["k"] == "ner_attack(k=...)"
            assert outcome.metrics["original_f1"] == 0.5
            assert not outcome.passed
            outcome.check()
        """
    )
    result = run_engine(project)
    result.assert_outcomes(passed=1, failed=1)
    assert lines_after(result, "_ test_robust _", 3) == [
        "nerrobust gates failed (0 attacked, 2 skipped, 0 errored):",
        "FAIL f1_under_attack 0.5000 < 0.6000 (marker ner_robustness)",
        "PASS errored 0 <= 0 (--max-attack-errors default)",
    ]
    assert lines_after(result, "- nerrobust: test_attack.py::test_robust -", 1) == [
        "FAIL f1_under_attack 0.5000 < 0.6000 (marker ner_robustness)"
    ]


def test_xdist_summary_reaches_controller(project: pytest.Pytester) -> None:
    result = run_engine(project, "-n", "2", *MODEL_ARGS)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    assert lines_after(result, "- nerrobust: nerrobust::attack[k=1] -", 15) == [
        (
            "NONE no robustness gate is configured: set --min-f1-under-attack or --max-attack-success-rate "
            "(ini min_f1_under_attack, max_attack_success_rate) to fail on it"
        ),
        "PASS errored 0 <= 0 (--max-attack-errors default)",
        "",
        *SKIPPED_SUMMARY,
    ]


def test_ini_paths_relative_to_ini_file(pytester: pytest.Pytester) -> None:
    pytester.mkdir("config")
    pytester.path.joinpath("config", "pytest.ini").write_text(
        "[pytest]\nner_data = data/sentences.conll\nner_model = mymodule:tagger\n", encoding="utf-8"
    )
    pytester.makepyfile(
        test_paths="""
        def test_paths(ner_config, pytestconfig):
            assert ner_config.data == str(pytestconfig.inipath.parent / "data" / "sentences.conll")
            assert ner_config.model == "mymodule:tagger"
        """
    )
    result = run(pytester, "-c", "config/pytest.ini", "--rootdir", str(pytester.path), "-k", "not nerrobust")
    result.assert_outcomes(passed=1, deselected=1)


def test_unknown_environment_variable_warns(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERROBUST_K", "0")
    result = run(project, "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            ("*PytestConfigWarning: ignoring unknown environment variable NERROBUST_K; a setting's variable is "
            "NERROBUST_ plus its ini key without a nerrobust_ prefix, such as NERROBUST_ATTACK_K")
        ]
    )


def test_known_environment_variables_do_not_warn(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERROBUST_ATTACK_K", "2")
    monkeypatch.setenv("NERROBUST_LLM_API_KEY", "secret")
    monkeypatch.setenv("NERROBUST_VENV", ".venv")
    monkeypatch.setenv("NERROBUST_REPORT", "out/report.json")
    result = run(project, "-q")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*PytestConfigWarning*")


def test_each_attack_writes_its_own_report(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_attack="""
        def test_twice(ner_attack):
            ner_attack(k=1)
            ner_attack(k=2)
        """
    )
    result = run_engine(project, *MODEL_ARGS, "--nerrobust-report=out/report.json", "--nerrobust-markdown=out/report.md")
    result.assert_outcomes(passed=3)
    written = sorted(path.name for path in (project.path / "out").iterdir())
    assert written == [
        "report.json",
        "report.md",
        "report.test_attack-test_twice-2.json",
        "report.test_attack-test_twice-2.md",
        "report.test_attack-test_twice.json",
        "report.test_attack-test_twice.md",
    ]
    second = json.loads((project.path / "out" / "report.test_attack-test_twice-2.json").read_text(encoding="utf-8"))
    assert second["settings"]["k"]["value"] == 2
    result.stdout.fnmatch_lines(["report: out/report.test_attack-test_twice-2.json"])
