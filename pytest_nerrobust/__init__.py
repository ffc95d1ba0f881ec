"""pytest-nerrobust: adversarial robustness tests for named entity recognition models.

The package is both a pytest plugin (``pytest_nerrobust.plugin``, loaded through the ``pytest11`` entry
point) and a library. Importing it stays light: the engine entry points ``run_attack``, ``summarize`` and
``load_model`` import torch and transformers only when first accessed.

>>> from pytest_nerrobust import AttackConfig
>>> AttackConfig(k=3).k
3
"""

from __future__ import annotations

import importlib
from typing import Any

from pytest_nerrobust.config import AttackConfig, Resolved, resolve
from pytest_nerrobust.corpus import Corpus, Sentence, Span, read_corpus
from pytest_nerrobust.errors import (
    BackendError,
    CacheError,
    ConfigError,
    CorpusError,
    LabelMismatchError,
    ModelLoadError,
    NerRobustError,
)
from pytest_nerrobust.results import AttackRun, Change, SentenceResult, Status

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "run_attack": "pytest_nerrobust.attack",
    "summarize": "pytest_nerrobust.metrics",
    "load_model": "pytest_nerrobust.models.loading",
}

__all__ = [
    "AttackConfig",
    "AttackRun",
    "BackendError",
    "CacheError",
    "Change",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "LabelMismatchError",
    "ModelLoadError",
    "NerRobustError",
    "Resolved",
    "Sentence",
    "SentenceResult",
    "Span",
    "Status",
    "__version__",
    "load_model",
    "read_corpus",
    "resolve",
    "run_attack",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """Import the engine entry points on first access, keeping ``import pytest_nerrobust`` light."""
    module_name = _LAZY_ATTRIBUTES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_nerrobust' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
