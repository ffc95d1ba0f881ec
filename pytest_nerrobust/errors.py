"""Exceptions that the engine raises for bad input; the plugin and the CLI print them as one line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class NerRobustError(Exception):
    """Base class for every error that names a bad value, where it came from, and the fix.

    ``setting`` names the setting whose value caused the error (``"model"``, ``"data"``), when known.
    :func:`describe` then adds where that value came from.
    """

    setting: str | None = None


@contextmanager
def about_setting(setting: str) -> Iterator[None]:
    """Tag any :class:`NerRobustError` raised inside the block with ``setting``, unless it has one."""
    try:
        yield
    except NerRobustError as error:
        if error.setting is None:
            error.setting = setting
        raise


def describe(error: NerRobustError, sources: Mapping[str, str] | None = None) -> str:
    """Return the one-line message of ``error``, with the origin of the value that caused it.

    ``sources`` maps setting names to where their values came from, as
    :func:`pytest_nerrobust.config.resolve` reports them (``"--ner-model"``, ``"ini ner_model"``).
    """
    message = str(error)
    source = (sources or {}).get(error.setting or "")
    if source is None:
        return message
    if source == "default":
        from pytest_nerrobust.config import SETTINGS_BY_NAME

        setting = SETTINGS_BY_NAME.get(error.setting or "")
        return f"{message} (value from the default of {setting.flag if setting else error.setting})"
    return f"{message} (value from {source})"


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


def with_origin(error: NerRobustError, sources: Mapping[str, str] | None) -> NerRobustError:
    """Return a copy of ``error`` whose message ends with where the offending value came from."""
    described = type(error)(describe(error, sources))
    described.setting = None
    return described
