"""Made-up entity names: people and companies from Faker; clubs, nationalities and events from the gazetteer.

A model trained on a corpus has learnt that corpus's entities, so replacing a mention by another entity of
the training file rarely tests its robustness. :class:`FakerEntitySource` makes up names the model is
unlikely to have seen, shaped like the mention:

* a person (``PER``, ``PERSON``) gets a Faker name with the same word pattern: a surname for a surname, an
  initial for an initial, a particle surname ("van der Merwe") for one where Faker has it;
* an organization (``ORG``) gets a club name built from another city of the same country when it looks
  like a sports club ("Leeds United" -> "Hull United", "Barcelona" -> "Valencia"), an acronym of the same
  length when it is an acronym ("WTO" -> "KDS"), and a Faker company name otherwise;
* a nationality (``MISC``, ``NORP``) gets other demonyms ("Syrian" -> "Peruvian", "Italians" -> "Kenyans");
* an event (``MISC``, ``EVENT``) keeps its event words and changes the place or nationality in it
  ("Zimbabwe Open" -> "Kenya Open", "Asian Cup" -> "Swedish Cup").

Other mentions of these types, and other types, get no candidates. The output depends only on the settings,
the mention and the installed versions of Faker and the gazetteer packages, because Faker is seeded from a
BLAKE2b hash of the seed, the mention and the locale, never from Python's ``hash``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import random
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from pytest_nerrobust.errors import ConfigError
from pytest_nerrobust.substitution.base import EntityCandidate
from pytest_nerrobust.substitution.entities import DEFAULT_MIN_CITY_POPULATION, match_case, seeded_rank
from pytest_nerrobust.substitution.gazetteer import (
    GazetteerEntry,
    entity_key,
    load_gazetteer,
    pluralize,
    tokenize_name,
)
from pytest_nerrobust.substitution.types import SYNTHETIC_KINDS, TypeMapping

# Locales whose names Faker writes in Latin script, from several European and American countries.
DEFAULT_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR", "tr_TR",
                   "sv_SE", "da_DK", "fi_FI", "cs_CZ")
# A city counts as the place of a club or an event only from this size, because the names of smaller
# towns include words such as "Xinhua" that mean something else in news text.
PLACE_MIN_POPULATION = 50_000
# Faker draws per requested candidate before a source gives up on filling the limit.
_ATTEMPTS_PER_CANDIDATE = 10

# Lowercase words that start a surname ("van der Merwe", "da Silva", "Del Piero").
_SURNAME_PARTICLES = frozenset({
    "al", "bin", "da", "das", "de", "del", "della", "den", "der", "di", "do", "dos", "du", "el", "ibn", "la",
    "le", "ten", "ter", "van", "von",
})
# Lowercase words allowed inside a generated surname or company name.
_CONNECTIVES = _SURNAME_PARTICLES | {"and", "e", "en", "et", "i", "och", "og", "ve", "y", "und"}
_INITIALS = re.compile(r"^(?:[A-Za-z]\.)+$")
_PUNCTUATION_ONLY = re.compile(r"^[\W_]+$")

# Club words, lowercased, with the ISO country whose cities fit them best ("" for any country).
_CLUB_SUFFIXES = {
    "united": "GB", "city": "GB", "town": "GB", "county": "GB", "rovers": "GB", "wanderers": "GB",
    "athletic": "GB", "albion": "GB", "afc": "GB", "hotspur": "GB", "wednesday": "GB", "argyle": "GB",
    "thistle": "GB", "villa": "GB", "palace": "GB", "rangers": "", "fc": "", "sc": "", "cf": "ES",
}
_CLUB_PREFIXES = {
    "fc": "", "sc": "", "ac": "IT", "as": "IT", "ss": "IT", "inter": "IT", "real": "ES", "atletico": "ES",
    "deportivo": "ES", "sporting": "PT", "olympique": "FR", "racing": "", "dynamo": "", "dinamo": "",
    "lokomotiv": "RU", "spartak": "RU", "cska": "", "sparta": "CZ", "slavia": "CZ", "borussia": "DE",
    "eintracht": "DE", "fortuna": "DE", "bayer": "DE", "vfb": "DE", "vfl": "DE", "sv": "DE", "tsv": "DE",
    "werder": "DE", "hertha": "DE", "standard": "BE", "rapid": "",
}
# Words that make an organization with a city in its name something other than a club ("Bank of Tokyo").
_INSTITUTION_WORDS = frozenset({
    "agency", "airlines", "airport", "airways", "authority", "bank", "board", "college", "commission",
    "company", "corp", "corporation", "council", "court", "department", "exchange", "group", "herald",
    "holdings", "hospital", "inc", "institute", "journal", "ltd", "ministry", "museum", "news", "office",
    "party", "plc", "police", "port", "post", "press", "radio", "school", "stock", "telecom", "television",
    "times", "tribune", "university",
})
# Event words ("Cup", "Open", "Grand Prix") that an event keeps when its place or nationality changes.
_EVENT_WORDS = frozenset({
    "award", "awards", "bowl", "challenge", "championship", "championships", "classic", "cup", "derby",
    "festival", "final", "finals", "games", "grand", "invitational", "league", "marathon", "masters",
    "olympics", "open", "prix", "prize", "rally", "series", "shield", "stakes", "tour", "tournament",
    "trophy",
})
# Endings of a one-word nationality or group adjective that countryinfo does not list ("European",
# "Jewish", "Zairean", "Congolese"), with their plurals.
_DEMONYM_ENDINGS = ("ian", "ean", "can", "ese", "ish", "i", "ians", "eans", "cans")
# Categories a place inside an event or club name may have, most specific first.
_PLACE_CATEGORIES = ("demonym", "country", "capital", "city", "us_state", "continent")

# Faker instances are shared by all sources of a process and reseeded for each mention, so one thread at a
# time may draw from them.
_FAKER_LOCK = threading.Lock()


class FakerEntitySource:
    """An entity source of made-up names shaped like the mention (see the module docstring).

    Args:
        seed: the seed of every draw (default 0).
        locales: Faker locales whose people and companies are drawn, in a seeded order (default
            :data:`DEFAULT_LOCALES`). Each must be a Faker locale that writes names in Latin script.
        mapping: entity type -> kinds of name (default :meth:`TypeMapping.default`; see
            :meth:`TypeMapping.synthetic_kinds`).
        name: the source name recorded on each candidate (default ``"faker"``).

    Raises:
        ConfigError: ``locales`` is empty, or names a locale Faker lacks or one it writes in another script.

    The candidate's ``category`` is ``person``, ``company``, ``sports_club``, ``acronym``, ``demonym`` or
    ``event``.
    """

    def __init__(self, seed: int = 0, locales: Sequence[str] = DEFAULT_LOCALES,
                 mapping: TypeMapping | None = None, name: str = "faker") -> None:
        self.seed = seed
        self.locales = tuple(locales)
        self.mapping = mapping if mapping is not None else TypeMapping.default()
        self.name = name
        with _FAKER_LOCK:
            _check_locales(self.locales)

    def fingerprint(self) -> str:
        """Identify the seed, locales, type mapping and the versions of Faker and the gazetteer packages."""
        settings = [self.seed, self.locales, self.mapping.fingerprint(), sorted(SYNTHETIC_KINDS.items())]
        versions = [importlib.metadata.version("faker"), load_gazetteer().versions]
        payload = json.dumps([settings, versions], sort_keys=True)
        return f"{self.name}:faker:{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return at most ``limit`` made-up names for ``mention``, never the mention itself.

        A type without synthetic kinds, or a mention of no kind the type has (a ``MISC`` mention that is
        neither a nationality nor an event), returns ``[]``. A smaller ``limit`` returns a prefix of the
        candidates of a larger one.
        """
        kinds = self.mapping.synthetic_kinds(entity_type)
        words = tuple(mention)
        if not kinds or limit <= 0 or not words:
            return []

        generators: list[Iterator[tuple[str, tuple[str, ...]]]] = []
        if "person" in kinds:
            generators.append(self._people(words))
        if "organization" in kinds:
            generators.append(self._organizations(words))
        if "nationality" in kinds and _is_demonym(words):
            generators.append(self._demonyms(words))
        if "event" in kinds and _event_slot(words) is not None:
            generators.append(self._events(words))

        chosen: list[EntityCandidate] = []
        seen = {entity_key(words)}
        attempts = _ATTEMPTS_PER_CANDIDATE * limit + 20
        with _FAKER_LOCK:
            for generator in generators:
                for category, candidate in generator:
                    attempts -= 1
                    if attempts < 0:
                        return chosen
                    candidate = match_case(candidate, words)
                    if entity_key(candidate) in seen:
                        continue
                    seen.add(entity_key(candidate))
                    chosen.append(EntityCandidate(candidate, self.name, category))
                    if len(chosen) == limit:
                        return chosen
        return chosen

    # People, companies and acronyms come from Faker.

    def _draws(self, words: tuple[str, ...]) -> Iterator[Any]:
        """Yield seeded Faker generators of the locales in a seeded order, one per candidate."""
        mention_key = entity_key(words)
        order = random.Random(_stable_seed(self.seed, mention_key, "locales"))
        seeded: set[str] = set()
        while True:
            locale = self.locales[order.randrange(len(self.locales))]
            fake = _faker(locale)
            if locale not in seeded:
                fake.seed_instance(_stable_seed(self.seed, mention_key, locale))
                seeded.add(locale)
            yield fake

    def _people(self, words: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        given_shape, surname_start = _person_shape(words)
        for fake in self._draws(words):
            given_names = [_initials(fake, slot) if slot else _single_word(fake.first_name())
                           for slot in given_shape]
            surname = _surname(fake, words[surname_start:])
            if surname is None or None in given_names:
                continue
            yield "person", (*(word for word in given_names if word is not None), *surname)

    def _organizations(self, words: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        club = _club_shape(words)
        if club is not None:
            yield from (("sports_club", name) for name in _with_other_cities(self.seed, words, *club))
            return
        acronym_letters = _acronym_length(words)
        for fake in self._draws(words):
            if acronym_letters:
                drawn = (_initial_letter(fake.last_name()) for _ in range(acronym_letters))
                letters = [letter for letter in drawn if letter is not None]
                if len(letters) < acronym_letters:
                    continue
                separator = "." if "." in words[0] else ""
                acronym = separator.join(letters) + separator
                if entity_key((acronym,)) not in load_gazetteer().index:
                    yield "acronym", (acronym,)
                continue
            company = _company(fake.company())
            if company:
                yield "company", company

    # Nationalities and events come from the gazetteer.

    def _demonyms(self, words: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        plural = _is_plural_demonym(words)
        for entry in _ranked_entries(self.seed, words, "demonym", _own_keys(words)):
            yield "demonym", pluralize(entry.words) if plural else entry.words

    def _events(self, words: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        slot = _event_slot(words)
        if slot is None:
            return
        start, end = slot
        place = words[start:end]
        categories = _place_categories(place)
        city = _city_at(place) if place else None
        # A city that is not also a country ("Sheffield Shield", unlike "Singapore Open") gets other cities of
        # its country, as a club does.
        if city is not None and city[1] - city[0] == len(place) and "country" not in categories:
            for name in _with_other_cities(self.seed, words, start, end, city[2].country, city[2].key):
                yield "event", name
            return

        # A place of no known category ("World" in "World Cup") gets countries, cities and demonyms in turn.
        categories = categories or ["country", "city", "demonym"]
        own = _own_keys(place) if start < end else set()
        ranked = [_ranked_entries(self.seed, words, category, own) for category in categories]
        for position in range(max(len(entries) for entries in ranked)):
            for entries in ranked:
                if position < len(entries):
                    yield "event", (*words[:start], *entries[position].words, *words[end:])


def _check_locales(locales: tuple[str, ...]) -> None:
    from faker.config import AVAILABLE_LOCALES

    if not locales:
        raise ConfigError("FakerEntitySource got an empty list of locales; "
                          "give at least one, such as 'en_US'")
    for locale in locales:
        if locale not in AVAILABLE_LOCALES:
            raise ConfigError(f"invalid Faker locale {locale!r} in locales; use locales that Faker "
                              f"{importlib.metadata.version('faker')} provides, such as en_US or de_DE")
        fake = _faker(locale)
        fake.seed_instance(0)
        if not any(_is_latin(fake.last_name()) for _ in range(5)):
            raise ConfigError(f"invalid Faker locale {locale!r} in locales: it writes names in a script "
                              "other than Latin; use a locale such as en_US, de_DE or pl_PL")


@functools.cache
def _faker(locale: str) -> Any:
    from faker import Faker

    return Faker(locale)


def _stable_seed(*parts: object) -> int:
    payload = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def _is_latin(text: str) -> bool:
    """Tell whether every letter of ``text`` is a Latin letter. Spaces, hyphens, apostrophes and periods
    pass.
    """
    return bool(text) and all(character in " -'." or (character.isalpha()
                                                      and unicodedata.name(character, "").startswith("LATIN"))
                              for character in text)


def _single_word(name: str) -> str | None:
    words = tokenize_name(name)
    return words[0] if len(words) == 1 and _is_latin(words[0]) else None


def _person_shape(words: tuple[str, ...]) -> tuple[list[int], int]:
    """Split a person mention into given-name slots and the position where the surname starts.

    A given-name slot is the number of initials it contains ("K.J." -> 2), or 0 for a full name. The surname
    starts at the first particle ("Schalk van der Merwe" -> ``([0], 1)``) and is the last word otherwise.
    A one-word mention is a surname.
    """
    start = len(words) - 1
    for position, word in enumerate(words[:-1]):
        if word.lower() in _SURNAME_PARTICLES:
            start = position
            break
    given_slots = [word.count(".") if _INITIALS.match(word) else 0 for word in words[:start]]
    return given_slots, start


def _initials(fake: Any, count: int) -> str | None:
    letters = [_initial_letter(fake.first_name()) for _ in range(count)]
    return None if None in letters else "".join(f"{letter}." for letter in letters)


def _initial_letter(name: str) -> str | None:
    letter = name[:1].upper()
    return letter if letter.isascii() and letter.isalpha() else None


def _surname(fake: Any, template: tuple[str, ...]) -> tuple[str, ...] | None:
    """Draw a surname with as many words as ``template``, the mention's surname.

    A surname with particles ("van der Merwe") takes a few draws, because only some locales have such
    names. After those, the template's particles are kept and each other word is drawn.
    """
    for _ in range(8 if len(template) > 1 else 1):
        words = tokenize_name(fake.last_name())
        if len(words) == len(template) and _is_name_words(words):
            return words
    if len(template) == 1:
        return None
    drawn = [word if word.lower() in _SURNAME_PARTICLES else _single_word(fake.last_name())
             for word in template]
    return None if None in drawn else tuple(word for word in drawn if word is not None)


def _is_name_words(words: Sequence[str]) -> bool:
    return all(_is_latin(word) and (word[:1].isupper() or word in _CONNECTIVES) for word in words)


def _company(name: str) -> tuple[str, ...] | None:
    """Tokenize a Faker company name, drop punctuation-only words ("&", ",", "-"), and keep it if it reads
    as a name: Latin letters, no digits, at most five words.
    """
    words = tuple(word for word in tokenize_name(name) if not _PUNCTUATION_ONLY.match(word))
    if not words or len(words) > 5 or any(character.isdigit() for word in words for character in word):
        return None
    return words if all(_is_latin(word) for word in words) and words[0][:1].isupper() else None


def _acronym_length(words: tuple[str, ...]) -> int:
    """Return the letter count of a one-word acronym of two to four capitals ("WTO", "U.N."), else 0."""
    if len(words) != 1:
        return 0
    letters = words[0].replace(".", "")
    if 2 <= len(letters) <= 4 and letters.isalpha() and letters.isupper():
        return len(letters)
    return 0


# Sports clubs


@functools.lru_cache(maxsize=1)
def _cities_by_key() -> dict[str, GazetteerEntry]:
    return {entry.key: entry for entry in load_gazetteer().pools.get("city", ())}


def _city_at(words: tuple[str, ...]) -> tuple[int, int, GazetteerEntry] | None:
    """Find the longest run of up to three words that names a city of 50,000 people or more.

    Words of up to three letters never count ("SLA" names a city too). When a name fits several cities,
    the one whose main name it is wins, then the most populous.
    """
    cities = _cities_by_key()
    index = load_gazetteer().index
    for length in (3, 2, 1):
        for start in range(len(words) - length + 1):
            part = words[start:start + length]
            if length == 1 and len(part[0]) <= 3:
                continue
            key = entity_key(part)
            found = [cities[entry_key] for category, entry_key in index.get(key, ())
                     if category == "city" and entry_key in cities]
            found = [entry for entry in found if entry.population >= PLACE_MIN_POPULATION]
            if found:
                best = max(found, key=lambda entry: (entity_key(entry.words) == key, entry.population))
                return start, start + length, best
    return None


def _club_shape(words: tuple[str, ...]) -> tuple[int, int, str, str] | None:
    """Return ``(start, end, country, own key)`` of the place slot of a club-shaped mention, else ``None``.

    A mention is club-shaped when it contains a city and no institution word ("Bank", "Times"), or when it
    has two or more words and starts or ends with a club word ("Real", "FC", "United"). The place slot is
    the city, else the words that are not club words.
    """
    lowered = [word.lower().strip(".") for word in words]
    if _INSTITUTION_WORDS.intersection(lowered) or _acronym_length(words):
        return None
    city = _city_at(words)
    if city is not None:
        start, end, entry = city
        return start, end, entry.country, entry.key

    has_prefix = len(words) >= 2 and lowered[0] in _CLUB_PREFIXES
    has_suffix = len(words) >= 2 and lowered[-1] in _CLUB_SUFFIXES
    if not has_prefix and not has_suffix:
        return None
    country = _CLUB_PREFIXES[lowered[0]] if has_prefix else _CLUB_SUFFIXES[lowered[-1]]
    start = 1 if has_prefix else 0
    end = len(words) - 1 if has_suffix and len(words) - 1 > start else len(words)
    return start, end, country, ""


def _with_other_cities(seed: int, words: tuple[str, ...], start: int, end: int, country: str,
                       own_key: str) -> Iterator[tuple[str, ...]]:
    """Yield ``words`` with ``words[start:end]`` replaced by cities of 200,000 people or more, those of
    ``country`` first, never the city ``own_key``.
    """
    mention_key = entity_key(words)
    cities = [entry for entry in _cities_by_key().values()
              if entry.key != own_key and entry.population >= DEFAULT_MIN_CITY_POPULATION]
    local = [entry for entry in cities if country and entry.country == country]
    others = [entry for entry in cities if not country or entry.country != country]
    for group in (local, others):
        group.sort(key=lambda entry: seeded_rank(seed, mention_key, entity_key(entry.words)))
        for entry in group:
            yield (*words[:start], *entry.words, *words[end:])


# Nationalities and events


def _place_categories(words: Sequence[str]) -> list[str]:
    """Return the place categories of ``words`` (a city only from 50,000 people), most specific first."""
    if not words:
        return []
    found = {category for category, _ in load_gazetteer().index.get(entity_key(words), ())}
    if "city" in found and _city_at(tuple(words)) is None:
        found.discard("city")
    if "language" in found or _looks_like_demonym(words):
        found.add("demonym")
    return [category for category in _PLACE_CATEGORIES if category in found]


def _looks_like_demonym(words: Sequence[str]) -> bool:
    word = words[0] if len(words) == 1 else ""
    return len(word) >= 4 and word.isalpha() and word[0].isupper() and word.lower().endswith(_DEMONYM_ENDINGS)


def _is_demonym(words: Sequence[str]) -> bool:
    """Tell whether the whole mention is a nationality, a language name used as one, or an adjective shaped
    like one ("Jewish", "European").
    """
    key = entity_key(words)
    gazetteer = load_gazetteer()
    if key in gazetteer.plural_demonyms:
        return True
    categories = {category for category, _ in gazetteer.index.get(key, ())}
    return bool(categories & {"demonym", "language"}) or _looks_like_demonym(words)


def _is_plural_demonym(words: Sequence[str]) -> bool:
    key = entity_key(words)
    if key in load_gazetteer().plural_demonyms:
        return True
    return key.endswith("s") and not key.endswith(("ese", "ss", "sh")) and _is_demonym([words[-1][:-1]])


def _own_keys(words: Sequence[str]) -> set[str]:
    """Return the gazetteer keys of the entities ``words`` names, so their other names are not offered."""
    key = entity_key(words)
    own = {entry_key for _, entry_key in load_gazetteer().index.get(key, ())}
    own.add(f"demonym:{key}")
    if key.endswith("s"):
        own.add(f"demonym:{key[:-1]}")
    return own


def _ranked_entries(seed: int, words: tuple[str, ...], category: str, own: set[str]) -> list[GazetteerEntry]:
    pool = load_gazetteer().pools.get(category, [])
    if category == "city":
        pool = [entry for entry in pool if entry.population >= DEFAULT_MIN_CITY_POPULATION]
    # Compound names ("Saint Pierre and Miquelon", "Kittian and Nevisian") make unlikely substitutes.
    pool = [entry for entry in pool if "and" not in entry.words]
    mention_key = entity_key(words)
    # Every entry is ranked: the largest pool, cities of 200,000 people or more, has about 3,000 names.
    return sorted((entry for entry in pool if entry.key not in own),
                  key=lambda entry: seeded_rank(seed, mention_key, entity_key(entry.words)))


def _event_slot(words: tuple[str, ...]) -> tuple[int, int] | None:
    """Return the place slot of an event mention, or ``None`` when no word is an event word.

    The slot is the first run of words that are neither event words nor particles ("Zimbabwe" in
    "Zimbabwe Open", "France" in "Tour de France"). An event of event words only ("Olympics") gets an empty
    slot at its start.
    """
    lowered = [word.lower() for word in words]
    if not any(word in _EVENT_WORDS for word in lowered):
        return None
    start = next((position for position, word in enumerate(lowered)
                  if word not in _EVENT_WORDS and word not in _SURNAME_PARTICLES), None)
    if start is None:
        return 0, 0
    end = start
    while end < len(words) and lowered[end] not in _EVENT_WORDS and lowered[end] not in _SURNAME_PARTICLES:
        end += 1
    return start, end
