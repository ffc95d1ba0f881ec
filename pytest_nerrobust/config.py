"""Attack settings: one table of settings, the frozen :class:`AttackConfig`, and resolution by precedence.

:data:`SETTINGS` is the single source for the pytest option group, the ini keys, the environment
variables, the keywords the ``ner_robustness`` marker accepts and the settings reference in the docs.
:func:`resolve` merges the layers in this order, first wins: command line, ``ner_attack()`` keywords,
marker, ini file, environment (``NERROBUST_*``), default. It records where each value came from.

This module imports nothing heavy and never imports pytest, so the engine and the CLI can use it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytest_nerrobust.errors import ConfigError

MARKER_NAME = "ner_robustness"
SELECTORS = ("ig", "ig-raw", "random", "tfidf", "kernel-shap", "occlusion")
KB_SOURCES = ("offline", "pools", "wikidata")
INFILLERS = ("local-lm", "masked-lm", "llm-http")
DEFAULT_CACHE_DIR = ".nerrobust-cache"


@dataclass(frozen=True)
class Setting:
    """One attack setting: its field name, command-line flag, ini key, value type, default and help.

    ``type`` is one of ``str``, ``path``, ``url``, ``int``, ``float``, ``fraction`` (a float in 0..1),
    ``bool``, ``choice``, ``chain`` (comma-separated choices), ``label_map`` and ``int_list``.
    ``minimum`` bounds ``int`` and ``float`` values (exclusive when ``exclusive_minimum``).
    ``default_text`` describes a ``None`` default in the help text.
    """

    name: str
    flag: str
    ini: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False
    default_text: str = ""
    metavar: str = ""

    @property
    def env(self) -> str:
        """Environment variable: ``NERROBUST_`` plus the ini key without a ``nerrobust_`` prefix."""
        key = self.ini.removeprefix("nerrobust_")
        return f"NERROBUST_{key.upper()}"

    @property
    def dest(self) -> str:
        """Attribute name of the parsed command-line option."""
        return f"nerrobust_{self.name}"

    @property
    def optional(self) -> bool:
        """Whether ``None`` is a valid value (the setting is off or automatic when unset)."""
        return self.default is None

    def describe_default(self) -> str:
        """Return the default as the help text shows it."""
        if self.default is None:
            return self.default_text or "none"
        if self.type == "bool":
            return "off" if not self.default else "on"
        return format_value(self.default)

    def help_text(self) -> str:
        """Return the help line of the option and of the ini key: what it sets, choices and default."""
        text = self.help
        if self.choices:
            text += f", from: {', '.join(self.choices)}"
        return f"{text} (default: {self.describe_default()})"


def _setting(
    name: str,
    flag: str,
    type: str,
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    exclusive_minimum: bool = False,
    default_text: str = "",
    metavar: str = "",
) -> Setting:
    ini = flag.lstrip("-").replace("-", "_")
    return Setting(
        name, flag, ini, type, default, help, choices, minimum, exclusive_minimum, default_text,
        metavar or _METAVARS.get(type, "VALUE"),
    )


_METAVARS = {
    "str": "SPEC",
    "path": "PATH",
    "url": "URL",
    "int": "N",
    "float": "X",
    "fraction": "FRACTION",
    "choice": "NAME",
    "chain": "SOURCES",
    "label_map": "DATA=MODEL,...",
    "int_list": "N,N,...",
}

SETTINGS: tuple[Setting, ...] = (
    _setting("model", "--ner-model", "str", None,
             "NER model to attack: a local model directory, or a Python object given as module:attr",
             default_text="none, so no attack test is generated"),
    _setting("data", "--ner-data", "path", None,
             "labelled sentences to attack: a CoNLL or JSON lines file"),
    _setting("reference_data", "--ner-reference-data", "path", None,
             "labelled training file whose entities serve as substitution candidates"),
    _setting("label_map", "--ner-label-map", "label_map", None,
             "entity type renames from the data to the model, as comma-separated DATA=MODEL pairs "
             "(PER=PERSON,LOC=GPE)", default_text="types used as they are"),
    _setting("k", "--attack-k", "int", 1,
             "number of words substituted per sentence, where an entity word brings its whole entity",
             minimum=1, metavar="K"),
    _setting("max_candidates", "--attack-max-candidates", "int", 10,
             "maximum number of candidate sentences queried per attacked sentence", minimum=1),
    _setting("min_similarity", "--attack-min-similarity", "fraction", 0.6,
             "minimum cosine similarity (0 to 1) of a candidate sentence to the original"),
    _setting("sample", "--attack-sample", "int", None,
             "number of sentences drawn from the data with --attack-seed", minimum=1,
             default_text="all sentences"),
    _setting("seed", "--attack-seed", "int", 0,
             "random seed for sampling sentences and for every random choice of the attack", minimum=0),
    _setting("selector", "--attack-selector", "choice", "ig",
             "method that ranks the words to substitute (ig: integrated gradients on disentangled "
             "features, ig-raw: on the model's own features)", choices=SELECTORS),
    _setting("ig_steps", "--attack-ig-steps", "int", 16,
             "number of integration steps of integrated gradients", minimum=1),
    _setting("batch_size", "--attack-batch-size", "int", 32,
             "number of sentences per model call", minimum=1),
    _setting("min_f1_under_attack", "--min-f1-under-attack", "fraction", None,
             "fail when the entity F1 under attack (0 to 1) is below this value, or none for no gate",
             default_text="no gate"),
    _setting("max_attack_success_rate", "--max-attack-success-rate", "fraction", None,
             "fail when the share of attacked sentences that the attack breaks (0 to 1) is above this "
             "value, or none for no gate", default_text="no gate"),
    _setting("max_errors", "--max-attack-errors", "int", 0,
             "fail when more than this number of sentences end with an error", minimum=0),
    _setting("report", "--nerrobust-report", "path", None,
             "write the JSON report to this file", default_text="no report"),
    _setting("markdown_report", "--nerrobust-markdown", "path", None,
             "write a Markdown summary for a pull request comment to this file", default_text="no summary"),
    _setting("cache_dir", "--nerrobust-cache-dir", "path", DEFAULT_CACHE_DIR,
             "directory of the persistent cache, relative to the working directory"),
    _setting("no_cache", "--nerrobust-no-cache", "bool", False,
             "compute everything without reading or writing the cache"),
    _setting("offline", "--nerrobust-offline", "bool", False,
             "forbid all HTTP requests and serve lookups from the cache and offline sources"),
    _setting("kb", "--kb", "chain", "offline",
             "entity sources tried in order, separated by commas", choices=KB_SOURCES),
    _setting("kb_pools", "--kb-pools", "path", None,
             "directory of typed entity pool files (JSON lines) used by --kb=pools"),
    _setting("wikidata_api_url", "--wikidata-api-url", "url", "https://www.wikidata.org/w/api.php",
             "Wikidata API endpoint used by --kb=wikidata"),
    _setting("wikidata_sparql_url", "--wikidata-sparql-url", "url", "https://query.wikidata.org/sparql",
             "Wikidata SPARQL endpoint used by --kb=wikidata"),
    _setting("infill", "--infill", "choice", "local-lm",
             "language model that proposes substitutes for context words", choices=INFILLERS),
    _setting("infill_model", "--infill-model", "path", None,
             "local model directory for --infill=local-lm or --infill=masked-lm",
             default_text="the bundled SmolLM2-135M-Instruct for local-lm"),
    _setting("llm_url", "--llm-url", "url", None,
             "base URL of an OpenAI-compatible server for --infill=llm-http, with the API key read from "
             "NERROBUST_LLM_API_KEY"),
    _setting("llm_model", "--llm-model", "str", None,
             "model name sent to --llm-url", default_text="the server's default", metavar="NAME"),
    _setting("encoder", "--attack-encoder", "path", None,
             "local sentence-transformers model that scores similarity",
             default_text="the bundled all-MiniLM-L6-v2"),
    _setting("ae_hidden", "--ae-hidden", "int_list", (64, 10),
             "hidden layer sizes of the disentangling autoencoder, separated by commas", minimum=1),
    _setting("ae_beta", "--ae-beta", "float", 0.5,
             "weight of the adversarial term in the disentangler loss", minimum=0.0),
    _setting("ae_lr", "--ae-lr", "float", 1e-3,
             "SGD learning rate of the disentangler", minimum=0.0, exclusive_minimum=True),
    _setting("ae_weight_decay", "--ae-weight-decay", "float", 1e-5,
             "SGD weight decay of the disentangler", minimum=0.0),
    _setting("ae_epochs", "--ae-epochs", "int", 25,
             "training epochs of the disentangler", minimum=1),
)

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def marker_keywords() -> tuple[str, ...]:
    """Return the keywords that the ``ner_robustness`` marker and ``ner_attack()`` accept."""
    return tuple(setting.name for setting in SETTINGS)


def add_options(add_option: Callable[..., Any]) -> None:
    """Register one option per setting through ``add_option``.

    ``add_option`` is argparse's ``add_argument`` or pytest's ``addoption``, so the plugin and a command
    line share the flags. Options keep raw strings, and ``None`` when absent, so that :func:`resolve`
    names the flag in its errors.
    """
    for setting in SETTINGS:
        if setting.type == "bool":
            add_option(
                setting.flag, action="store_true", dest=setting.dest, default=None, help=setting.help_text()
            )
        else:
            add_option(
                setting.flag, action="store", dest=setting.dest, default=None, metavar=setting.metavar,
                help=setting.help_text(),
            )


def option_values(options: Any) -> dict[str, Any]:
    """Return the values that :func:`add_options` parsed into ``options``, for ``resolve(cli=...)``."""
    return {setting.name: getattr(options, setting.dest, None) for setting in SETTINGS}


def format_value(value: Any) -> str:
    """Format a setting value the way a user writes it on the command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={target}" for key, target in value.items())
    return str(value)


# --- conversion and validation of one value ---------------------------------------------------------


_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def convert_value(setting: Setting, raw: Any, source: str) -> Any:
    """Convert ``raw`` (a string or a typed value) to the setting's type and check its range.

    Raises:
        ConfigError: naming the value, the setting, ``source`` and the accepted values.
    """
    if raw is None or (isinstance(raw, str) and raw.strip().lower() == "none" and setting.optional):
        if setting.optional:
            return None
        raise _invalid(setting, raw, source, f"{_expectation(setting)}, not none")
    converter = _CONVERTERS[setting.type]
    return converter(setting, raw, source)


def _invalid(setting: Setting, raw: Any, source: str, expected: str) -> ConfigError:
    return ConfigError(f"invalid {setting.name} value {raw!r} from {source}: expected {expected}")


def _expectation(setting: Setting) -> str:
    if setting.type in ("int", "float"):
        kind = "an integer" if setting.type == "int" else "a number"
        if setting.minimum is None:
            return kind
        relation = ">" if setting.exclusive_minimum else ">="
        return f"{kind} {relation} {setting.minimum:g}"
    if setting.type == "fraction":
        return "a fraction between 0 and 1"
    if setting.type == "choice":
        return f"one of {', '.join(setting.choices)}"
    if setting.type == "chain":
        return f"one or more of {', '.join(setting.choices)}, separated by commas"
    return {
        "str": "a non-empty string",
        "path": "a non-empty path",
        "url": "an http:// or https:// URL",
        "bool": f"a boolean ({', '.join(_TRUE_WORDS)} or {', '.join(_FALSE_WORDS)})",
        "label_map": "comma-separated DATA=MODEL pairs such as PER=PERSON,LOC=GPE",
        "int_list": "positive integers separated by commas such as 64,10",
    }[setting.type]


def _convert_text(setting: Setting, raw: Any, source: str) -> str:
    if not isinstance(raw, (str, os.PathLike)) or not str(raw).strip():
        raise _invalid(setting, raw, source, _expectation(setting))
    text = str(raw).strip()
    if setting.type == "url" and not text.startswith(("http://", "https://")):
        raise _invalid(setting, raw, source, _expectation(setting))
    return text


def _convert_number(setting: Setting, raw: Any, source: str) -> float | int:
    if isinstance(raw, bool):
        raise _invalid(setting, raw, source, _expectation(setting))
    try:
        if setting.type == "int":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            value: float | int = int(raw) if not isinstance(raw, str) else int(raw.strip())
        else:
            value = float(raw)
    except (TypeError, ValueError):
        raise _invalid(setting, raw, source, _expectation(setting)) from None
    if math.isnan(value):
        raise _invalid(setting, raw, source, _expectation(setting))
    if setting.type == "fraction":
        if not 0.0 <= value <= 1.0:
            hint = f" (write {value / 100:g} for {value:g}%)" if 1.0 < value <= 100.0 else ""
            raise _invalid(setting, raw, source, _expectation(setting) + hint)
        return value
    if setting.minimum is not None:
        too_small = value <= setting.minimum if setting.exclusive_minimum else value < setting.minimum
        if too_small:
            raise _invalid(setting, raw, source, _expectation(setting))
    return value


def _convert_bool(setting: Setting, raw: Any, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE_WORDS:
        return True
    if isinstance(raw, str) and raw.strip().lower() in _FALSE_WORDS:
        return False
    raise _invalid(setting, raw, source, _expectation(setting))


def _convert_choice(setting: Setting, raw: Any, source: str) -> str:
    if not isinstance(raw, str) or raw.strip() not in setting.choices:
        raise _invalid(setting, raw, source, _expectation(setting))
    return raw.strip()


def _convert_chain(setting: Setting, raw: Any, source: str) -> str:
    items = list(raw) if isinstance(raw, (list, tuple)) else str(raw).split(",")
    names = [str(item).strip() for item in items]
    if not names or any(name not in setting.choices for name in names):
        raise _invalid(setting, raw, source, _expectation(setting))
    if len(set(names)) != len(names):
        raise _invalid(setting, raw, source, _expectation(setting) + ", each at most once")
    return ",".join(names)


def _convert_label_map(setting: Setting, raw: Any, source: str) -> dict[str, str]:
    if isinstance(raw, Mapping):
        pairs = [(str(key), str(value)) for key, value in raw.items()]
    elif isinstance(raw, str):
        pairs = []
        for item in raw.split(","):
            data_label, equals, model_label = item.partition("=")
            if not equals:
                raise _invalid(setting, raw, source, _expectation(setting))
            pairs.append((data_label, model_label))
    else:
        raise _invalid(setting, raw, source, _expectation(setting))
    mapping = {data_label.strip(): model_label.strip() for data_label, model_label in pairs}
    if not mapping or any(not key or not value for key, value in mapping.items()):
        raise _invalid(setting, raw, source, _expectation(setting))
    return mapping


def _convert_int_list(setting: Setting, raw: Any, source: str) -> tuple[int, ...]:
    items = list(raw) if isinstance(raw, (list, tuple)) else str(raw).split(",")
    try:
        sizes = tuple(int(str(item).strip()) for item in items)
    except ValueError:
        raise _invalid(setting, raw, source, _expectation(setting)) from None
    if not sizes or any(size < 1 for size in sizes):
        raise _invalid(setting, raw, source, _expectation(setting))
    return sizes


_CONVERTERS: dict[str, Callable[[Setting, Any, str], Any]] = {
    "str": _convert_text,
    "path": _convert_text,
    "url": _convert_text,
    "int": _convert_number,
    "float": _convert_number,
    "fraction": _convert_number,
    "bool": _convert_bool,
    "choice": _convert_choice,
    "chain": _convert_chain,
    "label_map": _convert_label_map,
    "int_list": _convert_int_list,
}


# --- the frozen settings object -------------------------------------------------------------------


@dataclass(frozen=True)
class AttackConfig:
    """Every setting of one attack, converted and validated. Field docs live in :data:`SETTINGS`.

    Constructing it directly validates each field as well: ``AttackConfig(k=0)`` raises
    :class:`ConfigError`. Use :func:`resolve` to merge the command line, marker, ini and environment.

    >>> AttackConfig(k=3, selector="random").k
    3
    """

    model: str | None = None
    data: str | None = None
    reference_data: str | None = None
    label_map: dict[str, str] | None = None
    k: int = 1
    max_candidates: int = 10
    min_similarity: float = 0.6
    sample: int | None = None
    seed: int = 0
    selector: str = "ig"
    ig_steps: int = 16
    batch_size: int = 32
    min_f1_under_attack: float | None = None
    max_attack_success_rate: float | None = None
    max_errors: int = 0
    report: str | None = None
    markdown_report: str | None = None
    cache_dir: str = DEFAULT_CACHE_DIR
    no_cache: bool = False
    offline: bool = False
    kb: str = "offline"
    kb_pools: str | None = None
    wikidata_api_url: str = "https://www.wikidata.org/w/api.php"
    wikidata_sparql_url: str = "https://query.wikidata.org/sparql"
    infill: str = "local-lm"
    infill_model: str | None = None
    llm_url: str | None = None
    llm_model: str | None = None
    encoder: str | None = None
    ae_hidden: tuple[int, ...] = (64, 10)
    ae_beta: float = 0.5
    ae_lr: float = 1e-3
    ae_weight_decay: float = 1e-5
    ae_epochs: int = 25

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            raw = getattr(self, setting.name)
            value = convert_value(setting, raw, f"AttackConfig({setting.name}=...)")
            object.__setattr__(self, setting.name, value)
        if self.infill == "llm-http" and self.llm_url is None:
            raise ConfigError(
                "invalid infill value 'llm-http': it needs a server URL, so pass --llm-url "
                "(ini llm_url), or choose --infill=local-lm"
            )

    @property
    def kb_chain(self) -> tuple[str, ...]:
        """Entity sources of ``kb`` in the order they are tried."""
        return tuple(self.kb.split(","))

    def to_dict(self) -> dict[str, Any]:
        """Return every setting as JSON-serialisable values (tuples become lists)."""
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            values[setting.name] = value
        return values

    def replace(self, **changes: Any) -> AttackConfig:
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)


class Resolved(NamedTuple):
    """A resolved configuration and, per setting name, where its value came from."""

    config: AttackConfig
    sources: dict[str, str]


def source_label(setting: Setting, layer: str) -> str:
    """Return how reports and errors name ``layer`` as the origin of ``setting``'s value."""
    return {
        "cli": setting.flag,
        "overrides": f"ner_attack({setting.name}=...)",
        "marker": f"marker {MARKER_NAME}",
        "ini": f"ini {setting.ini}",
        "env": f"env {setting.env}",
        "default": "default",
    }[layer]


def resolve(
    *,
    cli: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    marker: Mapping[str, Any] | None = None,
    ini: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Merge the settings layers into one validated :class:`AttackConfig`.

    Args:
        cli: parsed command-line values by setting name; ``None`` means the flag was not given.
        overrides: keywords passed to ``ner_attack()``; every key given counts, ``None`` included.
        marker: keywords of the ``ner_robustness`` marker; every key given counts.
        ini: ini values by setting name; ``None`` and empty strings mean unset.
        env: the environment; default ``os.environ``. Only ``NERROBUST_*`` names of settings are read.

    Returns:
        The config and ``sources``, e.g. ``{"k": "--attack-k", "seed": "default"}``.

    Raises:
        ConfigError: for an unknown marker or ``ner_attack()`` keyword, or an invalid value, naming
            the value, its source and the accepted values.
    """
    environment = os.environ if env is None else env
    for layer, values in (("overrides", overrides), ("marker", marker)):
        if values:
            check_keywords(values, _layer_owner(layer))
    values_by_name: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        layer, raw = _pick_layer(setting, cli, overrides, marker, ini, environment)
        label = source_label(setting, layer)
        values_by_name[setting.name] = setting.default if layer == "default" else convert_value(
            setting, raw, label
        )
        sources[setting.name] = label
    return Resolved(AttackConfig(**values_by_name), sources)


# Environment variables read outside the settings table: the LLM API key, and those of the install and
# demo scripts and the example CI workflow.
OTHER_ENVIRONMENT = ("NERROBUST_LLM_API_KEY", "NERROBUST_VENV", "NERROBUST_REINSTALL", "NERROBUST_PACKAGE")


def unknown_environment(env: Mapping[str, str]) -> list[str]:
    """Return the ``NERROBUST_*`` names in ``env`` that no setting reads, such as a misspelt variable."""
    known = {setting.env for setting in SETTINGS} | set(OTHER_ENVIRONMENT)
    return sorted(name for name in env if name.startswith("NERROBUST_") and name not in known)


def unknown_environment_warning(env: Mapping[str, str]) -> str | None:
    """Return a one-line warning naming the unknown ``NERROBUST_*`` variables of ``env``, or ``None``."""
    unknown = unknown_environment(env)
    if not unknown:
        return None
    return (
        f"ignoring unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
        "a setting's variable is NERROBUST_ plus its ini key without a nerrobust_ prefix, such as "
        "NERROBUST_ATTACK_K"
    )


def check_keywords(keywords: Mapping[str, Any], owner: str) -> None:
    """Raise :class:`ConfigError` for a keyword that is not a setting name, listing the accepted ones."""
    accepted = marker_keywords()
    for keyword in keywords:
        if keyword not in SETTINGS_BY_NAME:
            raise ConfigError(
                f"{owner} got an unknown keyword {keyword!r}. Accepted keywords: {', '.join(accepted)}"
            )


def _layer_owner(layer: str) -> str:
    return f"marker {MARKER_NAME}" if layer == "marker" else "ner_attack()"


def _pick_layer(
    setting: Setting,
    cli: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    marker: Mapping[str, Any] | None,
    ini: Mapping[str, Any] | None,
    environment: Mapping[str, str],
) -> tuple[str, Any]:
    if cli is not None and cli.get(setting.name) is not None:
        return "cli", cli[setting.name]
    if overrides is not None and setting.name in overrides:
        return "overrides", overrides[setting.name]
    if marker is not None and setting.name in marker:
        return "marker", marker[setting.name]
    if ini is not None and ini.get(setting.name) not in (None, ""):
        return "ini", ini[setting.name]
    if environment.get(setting.env, "") != "":
        return "env", environment[setting.env]
    return "default", setting.default


def command_line_flags(config: AttackConfig) -> list[str]:
    """Return the flags that reproduce the sampling and search of ``config``, ready to paste back.

    >>> command_line_flags(AttackConfig(k=3))[:2]
    ['--attack-seed=0', '--attack-k=3']
    """
    names = ["seed", "k", "max_candidates", "min_similarity", "selector", "ig_steps", "kb", "infill"]
    if config.sample is not None:
        names.append("sample")
    flags = []
    for name in names:
        value = shlex.quote(format_value(getattr(config, name)))
        flags.append(f"{SETTINGS_BY_NAME[name].flag}={value}")
    if config.no_cache:
        flags.append(SETTINGS_BY_NAME["no_cache"].flag)
    else:
        flags.append(f"{SETTINGS_BY_NAME['cache_dir'].flag}={shlex.quote(config.cache_dir)}")
    return flags


def settings_markdown() -> str:
    """Return the settings reference as a Markdown table (flag, ini key, environment, default, help)."""
    lines = [
        "| flag | ini key | environment | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        meaning = setting.help
        if setting.choices:
            meaning += f", from: {', '.join(setting.choices)}"
        meaning = meaning.replace("|", "\\|")
        lines.append(
            f"| `{setting.flag}={setting.metavar}` | `{setting.ini}` | `{setting.env}` | "
            f"{setting.describe_default()} | {meaning} |"
        )
    return "\n".join(lines) + "\n"
