"""Tests of the settings table, value conversion, validation messages and precedence."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_nerrobust.config import (
    SETTINGS,
    SETTINGS_BY_NAME,
    AttackConfig,
    add_options,
    command_line_flags,
    convert_value,
    marker_keywords,
    option_values,
    resolve,
    settings_markdown,
)
from pytest_nerrobust.errors import ConfigError


def test_config_fields_match_table() -> None:
    names = [field.name for field in dataclasses.fields(AttackConfig)]
    assert names == [setting.name for setting in SETTINGS]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_config_default_matches_table(setting) -> None:
    assert getattr(AttackConfig(), setting.name) == setting.default


@pytest.mark.parametrize(
    ("name", "flag", "ini", "env"),
    [
        ("model", "--ner-model", "ner_model", "NERROBUST_NER_MODEL"),
        ("k", "--attack-k", "attack_k", "NERROBUST_ATTACK_K"),
        ("max_errors", "--max-attack-errors", "max_attack_errors", "NERROBUST_MAX_ATTACK_ERRORS"),
        ("cache_dir", "--nerrobust-cache-dir", "nerrobust_cache_dir", "NERROBUST_CACHE_DIR"),
        ("kb", "--kb", "kb", "NERROBUST_KB"),
        ("ae_weight_decay", "--ae-weight-decay", "ae_weight_decay", "NERROBUST_AE_WEIGHT_DECAY"),
    ],
)
def test_setting_names_derive_from_flag(name: str, flag: str, ini: str, env: str) -> None:
    setting = SETTINGS_BY_NAME[name]
    assert setting.flag == flag
    assert setting.ini == ini
    assert setting.env == env


def test_marker_keywords_are_setting_names() -> None:
    keywords = marker_keywords()
    assert keywords[:5] == ("model", "data", "reference_data", "label_map", "k")
    assert len(keywords) == 34


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "k",
            "number of words substituted per sentence, where an entity word brings its whole entity (default: 1)",
        ),
        ("sample", "number of sentences drawn from the data with --attack-seed (default: all sentences)"),
        ("no_cache", "compute everything without reading or writing the cache (default: off)"),
        (
            "kb",
            (
                "entity sources tried in order, separated by commas, from: offline, pools, wikidata "
                "(default: offline)"
            ),
        ),
        (
            "ae_hidden",
            "hidden layer sizes of the disentangling autoencoder, separated by commas (default: 64,10)",
        ),
    ],
)
def test_help_text_states_default(name: str, expected: str) -> None:
    assert SETTINGS_BY_NAME[name].help_text() == expected


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("k", "3", 3),
        ("k", 4, 4),
        ("seed", " 7 ", 7),
        ("min_similarity", "0.75", 0.75),
        ("min_f1_under_attack", 1, 1.0),
        ("min_f1_under_attack", "none", None),
        ("sample", "None", None),
        ("no_cache", "yes", True),
        ("offline", "0", False),
        ("offline", True, True),
        ("selector", "kernel-shap", "kernel-shap"),
        ("kb", " pools , wikidata", "pools,wikidata"),
        ("kb", ["wikidata", "offline"], "wikidata,offline"),
        ("label_map", "PER=PERSON, LOC=GPE", {"PER": "PERSON", "LOC": "GPE"}),
        ("label_map", {"MISC": "NORP"}, {"MISC": "NORP"}),
        ("ae_hidden", "32,8", (32, 8)),
        ("ae_hidden", [16], (16,)),
        ("ae_lr", "2e-4", 0.0002),
        ("llm_url", "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_convert_value_accepts(name: str, raw, expected) -> None:
    assert convert_value(SETTINGS_BY_NAME[name], raw, "test") == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("k", "0", "invalid k value '0' from --attack-k: expected an integer >= 1"),
        ("k", "abc", "invalid k value 'abc' from --attack-k: expected an integer >= 1"),
        ("k", "2.5", "invalid k value '2.5' from --attack-k: expected an integer >= 1"),
        ("k", True, "invalid k value True from --attack-k: expected an integer >= 1"),
        ("k", None, "invalid k value None from --attack-k: expected an integer >= 1, not none"),
        ("sample", "0", "invalid sample value '0' from --attack-sample: expected an integer >= 1"),
        (
            "max_errors",
            "-1",
            "invalid max_errors value '-1' from --max-attack-errors: expected an integer >= 0",
        ),
        (
            "min_f1_under_attack",
            "85",
            (
                "invalid min_f1_under_attack value '85' from --min-f1-under-attack: expected a fraction between 0 "
                "and 1 (write 0.85 for 85%)"
            ),
        ),
        (
            "max_attack_success_rate",
            "-0.1",
            (
                "invalid max_attack_success_rate value '-0.1' from --max-attack-success-rate: expected a fraction "
                "between 0 and 1"
            ),
        ),
        (
            "min_similarity",
            "nan",
            "invalid min_similarity value 'nan' from --attack-min-similarity: expected a fraction between 0 and 1",
        ),
        (
            "selector",
            "foo",
            (
                "invalid selector value 'foo' from --attack-selector: expected one of ig, ig-raw, random, tfidf, "
                "kernel-shap, occlusion"
            ),
        ),
        (
            "kb",
            "offline,foo",
            (
                "invalid kb value 'offline,foo' from --kb: expected one or more of offline, pools, wikidata, "
                "separated by commas"
            ),
        ),
        (
            "kb",
            "pools,pools",
            (
                "invalid kb value 'pools,pools' from --kb: expected one or more of offline, pools, wikidata, "
                "separated by commas, each at most once"
            ),
        ),
        (
            "label_map",
            "PER",
            (
                "invalid label_map value 'PER' from --ner-label-map: expected comma-separated DATA=MODEL pairs such "
                "as PER=PERSON,LOC=GPE"
            ),
        ),
        (
            "label_map",
            "PER=",
            (
                "invalid label_map value 'PER=' from --ner-label-map: expected comma-separated DATA=MODEL pairs such "
                "as PER=PERSON,LOC=GPE"
            ),
        ),
        (
            "ae_hidden",
            "64,0",
            (
                "invalid ae_hidden value '64,0' from --ae-hidden: expected positive integers separated by commas "
                "such as 64,10"
            ),
        ),
        ("ae_lr", "0", "invalid ae_lr value '0' from --ae-lr: expected a number > 0"),
        (
            "no_cache",
            "maybe",
            (
                "invalid no_cache value 'maybe' from --nerrobust-no-cache: expected a boolean (1, true, yes, on or "
                "0, false, no, off)"
            ),
        ),
        (
            "llm_url",
            "ftp://host",
            ("invalid llm_url value 'ftp://host' from --llm-url: expected an http:// or https:// URL"),
        ),
        ("data", " ", "invalid data value ' ' from --ner-data: expected a non-empty path"),
    ],
)
def test_convert_value_rejects(name: str, raw, message: str) -> None:
    setting = SETTINGS_BY_NAME[name]
    with pytest.raises(ConfigError) as caught:
        convert_value(setting, raw, setting.flag)
    assert str(caught.value) == message


def test_resolve_defaults_without_layers() -> None:
    config, sources = resolve(env={})
    assert config == AttackConfig()
    assert set(sources.values()) == {"default"}


@pytest.mark.parametrize(
    ("layers", "expected_k", "expected_source"),
    [
        ({"cli": {"k": "2"}, "overrides": {"k": 3}, "marker": {"k": 4}, "ini": {"k": "5"}}, 2, "--attack-k"),
        ({"overrides": {"k": 3}, "marker": {"k": 4}, "ini": {"k": "5"}}, 3, "ner_attack(k=...)"),
        ({"marker": {"k": 4}, "ini": {"k": "5"}}, 4, "marker ner_robustness"),
        ({"ini": {"k": "5"}}, 5, "ini attack_k"),
        ({"ini": {"k": ""}}, 6, "env NERROBUST_ATTACK_K"),
        ({"cli": {"k": None}}, 6, "env NERROBUST_ATTACK_K"),
    ],
)
def test_resolve_precedence(layers: dict, expected_k: int, expected_source: str) -> None:
    config, sources = resolve(env={"NERROBUST_ATTACK_K": "6"}, **layers)
    assert config.k == expected_k
    assert sources["k"] == expected_source


def test_resolve_marker_none_turns_gate_off() -> None:
    config, sources = resolve(
        marker={"min_f1_under_attack": None}, ini={"min_f1_under_attack": "0.8"}, env={}
    )
    assert config.min_f1_under_attack is None
    assert sources["min_f1_under_attack"] == "marker ner_robustness"


def test_resolve_bad_env_names_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(env={"NERROBUST_ATTACK_SEED": "-3"})
    assert (
        str(caught.value)
        == "invalid seed value '-3' from env NERROBUST_ATTACK_SEED: expected an integer >= 0"
    )


def test_resolve_bad_ini_names_key() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(ini={"max_attack_success_rate": "30"}, env={})
    assert str(caught.value) == (
        "invalid max_attack_success_rate value '30' from ini max_attack_success_rate: expected a fraction "
        "between 0 and 1 (write 0.3 for 30%)"
    )


def test_resolve_unknown_marker_keyword() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(marker={"kk": 3}, env={})
    message = str(caught.value)
    assert message.startswith(
        "marker ner_robustness got an unknown keyword 'kk'. Accepted keywords: model, data, reference_data, "
    )
    assert message.endswith(", ae_weight_decay, ae_epochs")


def test_resolve_unknown_override_keyword() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(overrides={"top_k": 3}, env={})
    assert str(caught.value).startswith(
        "ner_attack() got an unknown keyword 'top_k'. Accepted keywords: model, "
    )


def test_llm_http_requires_url() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(cli={"infill": "llm-http"}, env={})
    assert str(caught.value) == (
        "invalid infill value 'llm-http': it needs a server URL, so pass --llm-url (ini llm_url), or choose "
        "--infill=local-lm"
    )


def test_config_constructor_validates() -> None:
    with pytest.raises(ConfigError) as caught:
        AttackConfig(k=0)
    assert str(caught.value) == "invalid k value 0 from AttackConfig(k=...): expected an integer >= 1"


def test_config_replace_validates() -> None:
    with pytest.raises(ConfigError):
        AttackConfig().replace(min_similarity=2.0)


def test_config_replace_converts() -> None:
    assert AttackConfig().replace(ae_hidden="8,4").ae_hidden == (8, 4)


def test_kb_chain_splits_sources() -> None:
    assert AttackConfig(kb="pools,wikidata,offline").kb_chain == ("pools", "wikidata", "offline")


def test_to_dict_is_json() -> None:
    config = AttackConfig(label_map={"PER": "PERSON"}, ae_hidden=(8, 4))
    values = json.loads(json.dumps(config.to_dict()))
    assert values["ae_hidden"] == [8, 4]
    assert values["label_map"] == {"PER": "PERSON"}
    assert values["min_f1_under_attack"] is None
    assert len(values) == len(SETTINGS)


def test_command_line_flags_default() -> None:
    assert command_line_flags(AttackConfig()) == [
        "--attack-seed=0",
        "--attack-k=1",
        "--attack-max-candidates=10",
        "--attack-min-similarity=0.6",
        "--attack-selector=ig",
        "--attack-ig-steps=16",
        "--kb=offline",
        "--infill=local-lm",
        "--nerrobust-cache-dir=.nerrobust-cache",
    ]


def test_command_line_flags_sample_and_no_cache() -> None:
    flags = command_line_flags(AttackConfig(sample=50, seed=3, no_cache=True, cache_dir="my cache"))
    assert flags == [
        "--attack-seed=3",
        "--attack-k=1",
        "--attack-max-candidates=10",
        "--attack-min-similarity=0.6",
        "--attack-selector=ig",
        "--attack-ig-steps=16",
        "--kb=offline",
        "--infill=local-lm",
        "--attack-sample=50",
        "--nerrobust-no-cache",
    ]


def test_command_line_flags_quote_paths() -> None:
    assert command_line_flags(AttackConfig(cache_dir="my cache"))[-1] == "--nerrobust-cache-dir='my cache'"


def test_settings_markdown_row_per_setting() -> None:
    lines = settings_markdown().splitlines()
    assert len(lines) == len(SETTINGS) + 2
    assert lines[6] == (
        "| `--attack-k=K` | `attack_k` | `NERROBUST_ATTACK_K` | 1 | number of words substituted per sentence, "
        "where an entity word brings its whole entity |"
    )


@pytest.mark.parametrize(
    "module", ["pytest_nerrobust.config", "pytest_nerrobust.gates", "pytest_nerrobust.report"]
)
def test_library_modules_skip_pytest(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('pytest', 'torch', 'transformers') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_add_options_with_argparse() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser.add_argument)
    options = parser.parse_args(["--attack-k", "3", "--nerrobust-offline"])
    config, sources = resolve(cli=option_values(options), env={})
    assert config.k == 3
    assert config.offline is True
    assert sources["offline"] == "--nerrobust-offline"
    assert sources["seed"] == "default"


def test_usage_doc_settings_table_current() -> None:
    usage = Path(__file__).resolve().parents[1] / "docs" / "usage.md"
    text = usage.read_text(encoding="utf-8")
    begin = "<!-- settings table: begin (generated by scripts/settings_table.py) -->\n"
    end = "<!-- settings table: end -->"

    table = text.partition(begin)[2].partition(end)[0]

    assert table, f"{usage} lacks the settings table markers"
    assert table == settings_markdown(), "docs/usage.md has a stale settings table; run scripts/settings_table.py"
