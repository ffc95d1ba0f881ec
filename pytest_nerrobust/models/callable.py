"""Adapters for any Python callable given as ``module:attr``, and for relabelling a model's types."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_nerrobust.errors import LabelMismatchError, ModelLoadError


class CallableModel:
    """Wrap ``predict(sentences) -> tags`` as a :class:`~pytest_nerrobust.models.base.NERModel`.

    ``labels`` comes from the ``labels`` argument, else from the callable's ``labels`` attribute. Without
    either it is empty, and the label check against the data is skipped.
    """

    def __init__(
        self,
        function: Callable[[list[list[str]]], Sequence[Sequence[str]]],
        spec: str,
        labels: Sequence[str] | None = None,
    ) -> None:
        self._function = function
        self.spec = spec
        self.labels = list(labels if labels is not None else getattr(function, "labels", []) or [])
        self.fingerprint = getattr(function, "fingerprint", None) or _fingerprint_callable(function, spec)

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        batch = [list(words) for words in sentences]
        output = self._function(batch)
        tags = [list(row) for row in output]
        if len(tags) != len(batch):
            raise ModelLoadError(
                f"model {self.spec!r} returned {len(tags)} tag lists for {len(batch)} sentences; return one list "
                "per sentence"
            )
        for words, row in zip(batch, tags):
            if len(row) != len(words):
                raise ModelLoadError(
                    f"model {self.spec!r} returned {len(row)} tags for a sentence of {len(words)} words "
                    f"({' '.join(words)[:60]!r}); return one tag per word"
                )
        return tags


class RelabelledModel:
    """Present a model's entity types under the data's names, with ``mapping`` {data type: model type}."""

    def __init__(self, model: Any, mapping: dict[str, str]) -> None:
        known = set(getattr(model, "labels", None) or [])
        unknown = sorted(f"{data_type}={model_type}" for data_type, model_type in mapping.items() if model_type not in known)
        if known and unknown:
            raise LabelMismatchError(
                f"--ner-label-map entries {', '.join(unknown)} name types the model never predicts; the model's "
                f"types are {sorted(model.labels)}, so write DATA_TYPE=MODEL_TYPE with one of them on the right"
            )
        self.model = model
        self.mapping = dict(mapping)
        self._to_data = {model_type: data_type for data_type, model_type in mapping.items()}
        self.labels = sorted({self._to_data.get(label, label) for label in model.labels})
        self.fingerprint = f"{model.fingerprint}+map:{sorted(mapping.items())}"

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[self._rename(tag) for tag in row] for row in self.model.predict(sentences)]

    @property
    def tag_names(self) -> list[str]:
        """Tag names of a gradient-capable model under the data's names, in the model's order.

        Attribution looks up the renamed predictions here, so the names must match :meth:`predict`.
        Raises AttributeError when the wrapped model has no ``tag_names``.
        """
        return [self._rename(tag) for tag in self.model.tag_names]

    def _rename(self, tag: str) -> str:
        if tag == "O" or "-" not in tag:
            return tag
        prefix, entity_type = tag.split("-", 1)
        return f"{prefix}-{self._to_data.get(entity_type, entity_type)}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def import_callable(spec: str) -> Any:
    """Import ``module:attr`` (dotted attributes allowed), looking in the working directory too."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelLoadError(f"model spec {spec!r} is not module:attr; write it like mypackage.models:tagger")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelLoadError(
            f"model spec {spec!r}: module {module_name!r} cannot be imported ({error}); check the module name "
            "and that it is on PYTHONPATH"
        ) from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as error:
            raise ModelLoadError(
                f"model spec {spec!r}: {module_name!r} has no attribute {attribute!r}; check the name after the colon"
            ) from error
    return target


def model_from_object(target: Any, spec: str) -> Any:
    """Turn an imported object into a model: an object with ``predict``, a factory, or a plain function."""
    if hasattr(target, "predict") and not inspect.isclass(target):
        if not hasattr(target, "fingerprint"):
            # A bound method does not expose its instance's attributes, so the labels are passed on here.
            return CallableModel(target.predict, spec, labels=getattr(target, "labels", None))
        if not hasattr(target, "labels"):
            target.labels = []
        return target
    if inspect.isclass(target) or (callable(target) and _takes_no_arguments(target)):
        return model_from_object(target(), spec)
    if callable(target):
        return CallableModel(target, spec)
    raise ModelLoadError(
        f"model spec {spec!r} names a {type(target).__name__}, not a model; give an object with predict(), a "
        "factory that returns one, or a function from word lists to tag lists"
    )


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def _fingerprint_callable(function: Any, spec: str) -> str:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = ""
    return hashlib.sha256(f"{spec}\n{source}".encode()).hexdigest()[:16]
