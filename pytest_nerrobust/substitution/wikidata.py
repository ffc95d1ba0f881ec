"""Entity substitutes from Wikidata: link the mention, take its classes, sample other instances of them.

For a mention of entity type T the source

1. searches items by label (``wbsearchentities``),
2. reads the ``instance of`` (P31) classes of the hits (``wbgetentities``),
3. checks with the query service which of those classes are subclasses (P279*) of T's classes, and links the
   mention to the first hit, in search order, that has such a class,
4. queries the query service for other instances of the linked item's fitting classes that have an English
   label, and samples at most ``limit`` of them with a seed derived from the mention.

So a mention of a football club gets other football clubs, not just other organisations. Every response is
stored in the persistent cache, keyed by the request and not by the endpoint URL, so a mirror shares
entries with the public service, a second run sends no request, and offline mode serves what is cached.
A failed lookup (after the HTTP client's retries) logs a warning and returns no candidates, so a chain of
sources falls back to the next one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import BackendError
from pytest_nerrobust.substitution.base import EntityCandidate
from pytest_nerrobust.substitution.entities import match_case
from pytest_nerrobust.substitution.http import FailureTracker, HttpClient, MalformedResponseError
from pytest_nerrobust.substitution.pools import label_words

logger = logging.getLogger(__name__)

# NOTE: the request and query shapes are tested against a local server that imitates the Wikidata API and
# query service, never against these public endpoints.
DEFAULT_API_URL = "https://www.wikidata.org/w/api.php"
DEFAULT_SPARQL_URL = "https://query.wikidata.org/sparql"
CACHE_NAMESPACE = "wikidata"
ENTITY_ID = re.compile(r"^Q[1-9][0-9]*$")
# Longer queries go as a POST form, because some proxies cut long GET URLs.
MAX_GET_QUERY_CHARS = 1500


@dataclass(frozen=True)
class LinkedItem:
    """The item a mention was linked to, and those of its classes that fit the entity type."""

    item_id: str
    classes: tuple[str, ...]
    class_labels: tuple[str, ...]


class WikidataEntitySource:
    """An :class:`~pytest_nerrobust.substitution.base.EntitySource` over the Wikidata API and query service.

    Args:
        client: the :class:`HttpClient` (its offline flag, timeouts and retries apply).
        cache: the persistent cache for every response.
        type_classes: entity type -> Wikidata class ids whose subclasses fit that type, for example
            ``{"PER": ["Q5"]}``. A type that is missing here gets no candidates.
        api_url: the MediaWiki API endpoint (default the public Wikidata API).
        sparql_url: the SPARQL endpoint (default the public Wikidata Query Service).
        search_limit: search hits to consider when linking (default 7).
        pool_size: instances to request per linked mention before sampling (default 50).
        seed: seed for sampling, mixed with the mention and type (default 0).
        max_consecutive_failures: failed lookups in a row after which the source stops sending requests
            for the rest of the run (default 3).
    """

    name = "wikidata"

    def __init__(
        self,
        client: HttpClient,
        cache: Cache,
        type_classes: Mapping[str, Sequence[str]],
        *,
        api_url: str = DEFAULT_API_URL,
        sparql_url: str = DEFAULT_SPARQL_URL,
        search_limit: int = 7,
        pool_size: int = 50,
        seed: int = 0,
        max_consecutive_failures: int = 3,
    ) -> None:
        self.client = client
        self.cache = cache
        self.type_classes = {entity_type: tuple(classes) for entity_type, classes in type_classes.items()}
        self.api_url = api_url
        self.sparql_url = sparql_url
        self.search_limit = search_limit
        self.pool_size = pool_size
        self.seed = seed
        self.tracker = FailureTracker("Wikidata", "the next entity source in the chain is used",
                                      max_consecutive_failures)

    def fingerprint(self) -> str:
        """Identify the type mapping and sampling settings (the endpoint URLs are left out on purpose)."""
        settings = json.dumps([sorted(self.type_classes.items()), self.search_limit, self.pool_size, self.seed])
        return f"wikidata:{hashlib.sha256(settings.encode('utf-8')).hexdigest()[:16]}"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` other instances of the mention's classes, or ``[]`` when lookup fails."""
        roots = self.type_classes.get(entity_type)
        if not roots or limit <= 0 or not mention:
            return []
        text = " ".join(mention)
        try:
            linked = self.link(text, roots)
            instances = self._instances(linked.classes) if linked is not None else []
        except BackendError as error:
            self.tracker.failed(f"{text!r} ({entity_type})", error)
            return []
        self.tracker.succeeded()
        if linked is None:
            logger.debug("no Wikidata item of type %s matches %r", entity_type, text)
            return []
        return self._sample(mention, entity_type, linked, instances, limit)

    def link(self, text: str, roots: Sequence[str]) -> LinkedItem | None:
        """Link ``text`` to the first search hit with a class under ``roots``; raise :class:`BackendError`."""
        hits = self._search(text)
        if not hits:
            return None
        classes_by_item = self._instance_of(hits)
        all_classes = sorted({class_id for classes in classes_by_item.values() for class_id in classes})
        if not all_classes:
            return None
        fitting = self._fitting_classes(all_classes, roots)
        for item_id in hits:
            chosen = tuple(class_id for class_id in classes_by_item.get(item_id, ()) if class_id in fitting)
            if chosen:
                return LinkedItem(item_id, chosen, tuple(fitting[class_id] for class_id in chosen))
        return None

    def _search(self, text: str) -> list[str]:
        params = {"action": "wbsearchentities", "search": text, "language": "en", "uselang": "en",
                  "type": "item", "limit": str(self.search_limit), "format": "json"}

        def fetch() -> list[str]:
            self.tracker.check()
            response = _object(self.client.get_json(self.api_url, params), "wbsearchentities")
            hits = response.get("search")
            if not isinstance(hits, list):
                raise MalformedResponseError(f"wbsearchentities response for {text!r} has no 'search' list")
            identifiers = [str(hit.get("id")) for hit in hits if isinstance(hit, dict)]
            return [identifier for identifier in identifiers if ENTITY_ID.match(identifier)]

        return self.cache.get_or_compute(CACHE_NAMESPACE, ("wbsearchentities", params), fetch)

    def _instance_of(self, item_ids: Sequence[str]) -> dict[str, list[str]]:
        params = {"action": "wbgetentities", "ids": "|".join(item_ids), "props": "claims", "format": "json"}

        def fetch() -> dict[str, list[str]]:
            self.tracker.check()
            response = _object(self.client.get_json(self.api_url, params), "wbgetentities")
            entities = response.get("entities")
            if not isinstance(entities, dict):
                raise MalformedResponseError("wbgetentities response has no 'entities' object")
            return {item_id: _claim_targets(entity, "P31") for item_id, entity in entities.items()
                    if isinstance(entity, dict)}

        return self.cache.get_or_compute(CACHE_NAMESPACE, ("wbgetentities", params), fetch)

    def _fitting_classes(self, classes: Sequence[str], roots: Sequence[str]) -> dict[str, str]:
        """Return the classes that are subclasses of a root (or a root), with their English labels."""
        query = (
            "SELECT DISTINCT ?class ?classLabel WHERE {\n"
            f"  VALUES ?class {{ {' '.join('wd:' + class_id for class_id in classes)} }}\n"
            f"  VALUES ?root {{ {' '.join('wd:' + root for root in sorted(roots))} }}\n"
            "  ?class wdt:P279* ?root .\n"
            '  OPTIONAL { ?class rdfs:label ?classLabel . FILTER(LANG(?classLabel) = "en") }\n'
            "}"
        )
        rows = self._sparql(query)
        fitting: dict[str, str] = {}
        for row in rows:
            class_id = _entity_id(row.get("class"))
            if class_id is not None:
                fitting[class_id] = _literal(row.get("classLabel")) or class_id
        return fitting

    def _instances(self, classes: Sequence[str]) -> list[tuple[str, str]]:
        query = (
            "SELECT DISTINCT ?item ?itemLabel WHERE {\n"
            f"  VALUES ?class {{ {' '.join('wd:' + class_id for class_id in classes)} }}\n"
            "  ?item wdt:P31 ?class .\n"
            '  ?item rdfs:label ?itemLabel . FILTER(LANG(?itemLabel) = "en")\n'
            f"}} LIMIT {self.pool_size}"
        )
        instances = []
        for row in self._sparql(query):
            item_id = _entity_id(row.get("item"))
            label = _literal(row.get("itemLabel"))
            # The label service and some mirrors return the id itself when an item has no English label.
            if item_id is not None and label and not ENTITY_ID.match(label):
                instances.append((item_id, label))
        return instances

    def _sparql(self, query: str) -> list[dict[str, Any]]:
        headers = {"Accept": "application/sparql-results+json"}

        def fetch() -> list[dict[str, Any]]:
            self.tracker.check()
            if len(query) > MAX_GET_QUERY_CHARS:
                response = self.client.post_form(self.sparql_url, {"query": query, "format": "json"}, headers)
            else:
                response = self.client.get_json(self.sparql_url, {"query": query, "format": "json"}, headers)
            results = _object(response, "SPARQL").get("results")
            bindings = results.get("bindings") if isinstance(results, dict) else None
            if not isinstance(bindings, list):
                raise MalformedResponseError("SPARQL response has no results.bindings list")
            return [row for row in bindings if isinstance(row, dict)]

        return self.cache.get_or_compute(CACHE_NAMESPACE, ("sparql", query), fetch)

    def _sample(self, mention: Sequence[str], entity_type: str, linked: LinkedItem,
                instances: Sequence[tuple[str, str]], limit: int) -> list[EntityCandidate]:
        original = " ".join(mention).casefold()
        seen: set[str] = set()
        pool: list[tuple[str, ...]] = []
        for item_id, label in sorted(instances, key=lambda pair: int(pair[0][1:])):
            words = label_words(label)
            key = " ".join(words).casefold()
            if item_id == linked.item_id or key == original or key in seen or not words:
                continue
            seen.add(key)
            pool.append(words)
        rng = random.Random(f"{self.seed}:{entity_type}:{original}")
        chosen = rng.sample(pool, limit) if len(pool) > limit else pool
        category = " / ".join(linked.class_labels)
        # A headline mention in capitals gets candidates in capitals, like the offline sources give.
        return [EntityCandidate(match_case(words, mention), self.name, category) for words in chosen]


def _object(response: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(response, dict):
        raise MalformedResponseError(f"{endpoint} response is a {type(response).__name__}, not a JSON object")
    error = response.get("error")
    if error is not None:
        # The MediaWiki API reports errors with HTTP 200 and an "error" object.
        detail = error.get("info") or error.get("code") if isinstance(error, dict) else error
        raise MalformedResponseError(f"{endpoint} returned an error: {detail}")
    return response


def _claim_targets(entity: Mapping[str, Any], prop: str) -> list[str]:
    """Return the item ids that ``prop`` claims of ``entity`` point to, leaving out deprecated ones."""
    claims = entity.get("claims")
    statements = claims.get(prop) if isinstance(claims, dict) else None
    targets = []
    for claim in statements if isinstance(statements, list) else []:
        if not isinstance(claim, dict) or claim.get("rank") == "deprecated":
            continue
        value = _path(claim, "mainsnak", "datavalue", "value")
        if isinstance(value, dict) and ENTITY_ID.match(str(value.get("id"))):
            targets.append(str(value["id"]))
    return targets


def _path(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _entity_id(binding: Any) -> str | None:
    if not isinstance(binding, dict):
        return None
    identifier = str(binding.get("value", "")).rsplit("/", 1)[-1]
    return identifier if ENTITY_ID.match(identifier) else None


def _literal(binding: Any) -> str:
    return str(binding.get("value", "")) if isinstance(binding, dict) else ""
