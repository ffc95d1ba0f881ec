"""Load a model from a spec string, and check its labels against the data's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_nerrobust.errors import ConfigError, LabelMismatchError, ModelLoadError


def load_model(spec: str, label_map: dict[str, str] | None = None, **options: Any) -> Any:
    """Load a model from a local directory or a ``module:attr`` callable.

    Args:
        spec: a Hugging Face token-classification directory (with or without a CRF head written by
            ``nerrobust train``), or ``module:attr`` naming a model object, a factory, or a function.
        label_map: ``{data type: model type}`` renames, applied to predictions (default none).
        options: passed to :class:`~pytest_nerrobust.models.hf.HFTokenClassifier` (``batch_size``,
            ``max_length``, ``device``).
    """
    if not spec:
        raise ModelLoadError("no model given; pass --ner-model PATH or --ner-model module:attr")
    path = Path(spec)
    if ":" in spec and not path.exists() and not _looks_like_windows_path(spec):
        from pytest_nerrobust.models.callable import import_callable, model_from_object

        model = model_from_object(import_callable(spec), spec)
    else:
        from pytest_nerrobust.models.hf import HFTokenClassifier

        model = HFTokenClassifier(path, **options)
    if label_map:
        from pytest_nerrobust.models.callable import RelabelledModel

        model = RelabelledModel(model, label_map)
    return model


def parse_label_map(text: str | None, source: str = "--ner-label-map") -> dict[str, str]:
    """Parse ``DATA=MODEL,DATA=MODEL`` into a dict.

    >>> parse_label_map("PERSON=PER,GPE=LOC")
    {'PERSON': 'PER', 'GPE': 'LOC'}
    """
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for item in text.split(","):
        data_type, separator, model_type = item.strip().partition("=")
        if not separator or not data_type.strip() or not model_type.strip():
            raise ConfigError(
                f"{source}: invalid entry {item.strip()!r} in {text!r}; write DATA_TYPE=MODEL_TYPE pairs separated "
                "by commas, e.g. PERSON=PER,GPE=LOC"
            )
        mapping[data_type.strip()] = model_type.strip()
    return mapping


def check_labels(model: Any, data_types: Iterable[str], data_source: str) -> None:
    """Raise :class:`LabelMismatchError` when the data has entity types the model never predicts."""
    model_types = set(getattr(model, "labels", []) or [])
    data_set = set(data_types)
    if not model_types:
        return
    missing = sorted(data_set - model_types)
    if missing:
        raise LabelMismatchError(
            f"entity types of {data_source} {sorted(data_set)} differ from the model's {sorted(model_types)} "
            f"({', '.join(missing)} not predicted by the model); map them with --ner-label-map "
            f"{','.join(f'{name}=MODEL_TYPE' for name in missing)}"
        )


def _looks_like_windows_path(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[2] in "\\/"
