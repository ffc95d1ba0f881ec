"""Exceptions that the engine raises for bad input; the plugin and the CLI print them as one line."""

from __future__ import annotations


class NerRobustError(Exception):
    """Base class for every error that names a bad value, where it came from, and the fix."""


class CorpusError(NerRobustError):
    """A data file is missing, empty, or has a malformed line."""


class ModelLoadError(NerRobustError):
    """A model path or spec does not give a usable NER model."""


class LabelMismatchError(NerRobustError):
    """The data's entity labels and the model's labels differ."""


class ConfigError(NerRobustError):
    """A setting has an invalid value."""


class BackendError(NerRobustError):
    """A substitution backend (knowledge base, language model, HTTP service) failed."""


class CacheError(NerRobustError):
    """The persistent cache is unreadable or was written by an incompatible version."""
