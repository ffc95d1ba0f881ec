"""Build the entity source (``--kb``) and the context infiller (``--infill``) that a configuration names.

``--kb`` is one source or a comma-separated chain tried in order, each filling the candidates the earlier
ones left open:

- ``offline``: the gazetteers of installed packages for mentions they know (a city by other cities), then
  names made up with Faker for people, organizations, nationalities and events, then other entities of the
  same type from the reference corpus. Entities of the reference corpus come after all others, because
  the model has learnt them;
- ``pools``: typed pool files under ``--kb-pools``;
- ``wikidata``: the Wikidata API and query service at ``--wikidata-api-url`` and ``--wikidata-sparql-url``.

``--infill`` is ``local-lm`` (a local causal LM), ``masked-lm`` (a local fill-mask model under
``--infill-model``) or ``llm-http`` (an OpenAI-compatible endpoint at ``--llm-url``). The remote
backends share one HTTP client per offline setting, so ``--nerrobust-offline`` blocks them all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_nerrobust.errors import ConfigError, about_setting
from pytest_nerrobust.substitution.http import HttpClient

if TYPE_CHECKING:
    from pytest_nerrobust.cache import Cache
    from pytest_nerrobust.config import AttackConfig
    from pytest_nerrobust.corpus import Sentence
    from pytest_nerrobust.substitution.base import ContextInfiller, EntitySource
    from pytest_nerrobust.substitution.types import TypeMapping

logger = logging.getLogger(__name__)

_CLIENTS: dict[bool, HttpClient] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_http_client(offline: bool) -> HttpClient:
    """Return the process-wide HTTP client for ``offline``, creating it on first use."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(offline)
        if client is None:
            client = HttpClient(offline=offline)
            _CLIENTS[offline] = client
        return client


def build_entity_source(config: AttackConfig, cache: Cache, reference_sentences: Sequence[Sentence]) -> EntitySource:
    """Build the entity source chain of ``config.kb`` (see the module docstring).

    Args:
        config: the settings (``kb``, ``kb_pools``, ``wikidata_api_url``, ``wikidata_sparql_url``,
            ``offline``, ``seed``).
        cache: the persistent cache for Wikidata responses.
        reference_sentences: labelled sentences whose entities serve the ``offline`` source and whose
            entity types choose the CoNLL or OntoNotes type mapping.

    Raises:
        ConfigError: ``pools`` is chosen without ``--kb-pools``, or a chain names an unknown source.
    """
    from pytest_nerrobust.substitution.entities import ChainEntitySource
    from pytest_nerrobust.substitution.types import TypeMapping

    labels = sorted({span.label for sentence in reference_sentences for span in sentence.spans})
    mapping = TypeMapping.for_labels(labels)
    sources: list[EntitySource] = []
    for name in config.kb_chain:
        sources.extend(_entity_sources(name, config, cache, reference_sentences, mapping, labels))
    if len(sources) == 1:
        return sources[0]
    return ChainEntitySource(sources, name=config.kb)


def _entity_sources(name: str, config: AttackConfig, cache: Cache, reference_sentences: Sequence[Sentence],
                    mapping: TypeMapping, labels: Sequence[str]) -> list[EntitySource]:
    from pytest_nerrobust.substitution.entities import (
        ChainEntitySource,
        CorpusEntitySource,
        GazetteerEntitySource,
        entity_strings,
    )

    if name == "offline":
        from pytest_nerrobust.substitution.synthetic import FakerEntitySource

        # The gazetteer gives same-category names only for mentions it lists, Faker makes up names for the
        # types it serves, and the corpus fills the rest with same-type entities. The offline sources form
        # one chain, so the demotion of reference entities applies to them and not to other --kb sources.
        sources: list[EntitySource] = [
            GazetteerEntitySource(seed=config.seed, mapping=mapping, mixed_fallback=False),
            FakerEntitySource(seed=config.seed, mapping=mapping),
            CorpusEntitySource(reference_sentences, seed=config.seed),
        ]
        return [ChainEntitySource(sources, name="offline", demote=entity_strings(reference_sentences))]
    if name == "pools":
        from pytest_nerrobust.substitution.pools import PoolEntitySource, pool_types_for_labels

        if not config.kb_pools:
            raise ConfigError("invalid kb value 'pools': it needs a pool directory, so pass --kb-pools DIR "
                              "(ini kb_pools), or drop 'pools' from --kb")
        with about_setting("kb_pools"):
            return [PoolEntitySource(config.kb_pools, pool_types=pool_types_for_labels(labels), seed=config.seed)]
    if name == "wikidata":
        from pytest_nerrobust.substitution.wikidata import WikidataEntitySource

        return [WikidataEntitySource(
            shared_http_client(config.offline), cache, mapping.wikidata_class_map(),
            api_url=config.wikidata_api_url, sparql_url=config.wikidata_sparql_url, seed=config.seed,
        )]
    raise ConfigError(f"invalid kb source {name!r} in --kb {config.kb!r}; use offline, pools or wikidata, or a "
                      "comma-separated chain of them")


def build_infiller(config: AttackConfig, cache: Cache) -> ContextInfiller:
    """Build the context infiller of ``config.infill`` (see the module docstring).

    Raises:
        ConfigError: ``masked-lm`` without ``--infill-model``, ``llm-http`` without ``--llm-url``, or an
            unknown backend.
    """
    if config.infill == "local-lm":
        from pytest_nerrobust.substitution.context import LocalLMInfiller

        with about_setting("infill_model"):
            return LocalLMInfiller(model_path=config.infill_model, cache=cache)
    if config.infill == "masked-lm":
        from pytest_nerrobust.substitution.masked_lm import MaskedLMInfiller

        if not config.infill_model:
            raise ConfigError("invalid infill value 'masked-lm': it needs a model directory, so pass "
                              "--infill-model DIR (ini infill_model), or choose --infill=local-lm")
        with about_setting("infill_model"):
            return MaskedLMInfiller(config.infill_model, cache)
    if config.infill == "llm-http":
        from pytest_nerrobust.substitution.llm_http import LLMHttpInfiller

        if not config.llm_url:
            raise ConfigError("invalid infill value 'llm-http': it needs a server URL, so pass --llm-url "
                              "(ini llm_url), or choose --infill=local-lm")
        return LLMHttpInfiller(shared_http_client(config.offline), cache, config.llm_url, model=config.llm_model)
    raise ConfigError(f"invalid infill value {config.infill!r}; use local-lm, masked-lm or llm-http")
