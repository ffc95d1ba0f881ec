"""Typed pool files as an offline knowledge base: layout, linking, class filtering and sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from pytest_nerrobust.errors import ConfigError
from pytest_nerrobust.substitution.pools import (
    CONLL_POOL_TYPES,
    DEFAULT_CLASS_FILTERS,
    ClassFilter,
    PoolEntitySource,
    discover_pool_files,
    label_words,
    pool_types_for_labels,
)

REAL_POOLS = SHARED_DATA / "wikidata_ontonotes_pools" / "test"


def write_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture
def pool_dir(tmp_path) -> Path:
    """Write a pool export: classes with noise, a flat person pool and mention links in a subfolder."""
    root = tmp_path / "pools"
    write_lines(root / "class_instances" / "GPE.jsonl", [
        {"class_id": "Q515", "class_title": "city", "instance_num": 5,
         "instances": {"Q90": "Paris", "Q84": "London", "Q64": "Berlin", "Q220": "Rome", "Q956": "Beijing"}},
        {"class_id": "Q16521", "class_title": "taxon", "instance_num": 2,
         "instances": {"Q77777": "Berlin", "Q140": "lion"}},
        {"class_id": "Q3624078", "class_title": "sovereign state", "instance_num": 3,
         "instances": {"Q142": "France", "Q183": "Germany", "Q17": "Japan"}},
        {"class_id": "Q6256", "class_title": "country", "instance_num": 3,
         "instances": {"Q183": "Germany", "Q17": "Japan", "Q21": "England"}},
        {"class_id": "Q63183471", "class_title": "Q63183471", "instance_num": 1, "instances": {"Q1": "Nowhere"}},
    ])
    write_lines(root / "filtered" / "GPE.jsonl", [
        {"class_id": "Q515", "class_title": "city", "instance_num": 1, "instances": {"Q1085": "Prague"}},
    ])
    write_lines(root / "filtered" / "PERSON.jsonl", [
        {"instance_id": 1, "instance_title": "Ada Lovelace"},
        {"instance_id": 2, "instance_title": "Alan Turing"},
    ])
    write_lines(root / "class_data" / "GPE.ent_classes.jsonl", [
        {"entity": [0, 0, 1, "GPE"], "ent_text": "Beijing Municipality", "linked_title": "Beijing",
         "ent_id": "Q956", "classes": {"Q515": "city"}},
        {"entity": [1, 3, 4, "GPE"], "ent_text": "Moscow", "linked_title": "Moscow", "ent_id": "Q649",
         "classes": {"Q515": "city", "Q16521": "taxon"}},
    ])
    return root


def words_of(candidates) -> list[tuple[str, ...]]:
    return [candidate.words for candidate in candidates]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Washington, D.C.", ("Washington", ",", "D.C.")),
        ("Paris (Texas)", ("Paris",)),
        ("Manchester United F.C.", ("Manchester", "United", "F.C.")),
        ('"Weird Al" Yankovic', ('"', "Weird", "Al", '"', "Yankovic")),
        ("São Paulo", ("São", "Paulo")),
        ("  ", ()),
    ],
)
def test_label_words_forms(label, expected):
    assert label_words(label) == expected


@pytest.mark.parametrize(
    ("pool_type", "title", "expected"),
    [
        ("GPE", "city", True),
        ("GPE", "comune of Italy", True),
        ("GPE", "sovereign state", True),
        ("GPE", "city council", False),
        ("GPE", "airport", False),
        ("GPE", "manga series", False),
        ("LOC", "mountain range", True),
        ("LOC", "fictional city", False),
        ("ORG", "association football club", True),
        ("ORG", "law firm", True),
        ("ORG", "ethnic group", False),
        ("ORG", "chemical compound", False),
        ("NORP", "ethnic group", True),
        ("NORP", "mythological Greek character", False),
        ("LANGUAGE", "modern language", True),
        ("LANGUAGE", "academic discipline", False),
    ],
)
def test_class_filter_titles(pool_type, title, expected):
    assert DEFAULT_CLASS_FILTERS[pool_type].accepts(title) is expected


def test_class_filter_empty_allow():
    assert ClassFilter(deny=("taxon",)).accepts("anything at all") is True


def test_discover_nested_layout(pool_dir):
    pools, links = discover_pool_files(pool_dir)

    assert sorted(pools) == ["GPE", "PERSON"]
    assert len(pools["GPE"]) == 2
    assert sorted(links) == ["GPE"]


def test_discover_missing_directory(tmp_path):
    missing = tmp_path / "absent"

    with pytest.raises(ConfigError, match=r"--kb-pools directory '.*absent' was not found; pass a directory"):
        discover_pool_files(missing)


def test_discover_empty_directory(tmp_path):
    with pytest.raises(ConfigError, match=r"contains no TYPE.jsonl pool files"):
        discover_pool_files(tmp_path)


def test_instance_mention_same_class(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["Paris"], "LOC", 10)

    assert sorted(words_of(found)) == [("Beijing",), ("Berlin",), ("London",), ("Prague",), ("Rome",)]
    assert {candidate.category for candidate in found} == {"city"}
    assert {candidate.source for candidate in found} == {"pools"}


def test_noise_class_filtered(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["Moscow"], "LOC", 10)

    assert ("lion",) not in words_of(found)
    assert len(found) == 6


def test_linked_title_excluded(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["Beijing", "Municipality"], "LOC", 10)

    assert ("Beijing",) not in words_of(found)
    assert len(found) == 5


def test_more_shared_classes_first(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["Germany"], "LOC", 10)

    assert words_of(found)[0] == ("Japan",)
    assert sorted(words_of(found)[1:]) == [("England",), ("France",)]


def test_unlinked_mention_empty(pool_dir):
    source = PoolEntitySource(pool_dir)

    assert source.candidates(["Atlantis"], "LOC", 10) == []


def test_unlinked_mention_type_fallback(pool_dir):
    source = PoolEntitySource(pool_dir, fallback_to_type=True)

    found = source.candidates(["Atlantis"], "LOC", 100)

    assert len(found) == 10
    assert ("Nowhere",) not in words_of(found)


def test_flat_pool_person(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["Grace", "Hopper"], "PER", 10)

    assert sorted(words_of(found)) == [("Ada", "Lovelace"), ("Alan", "Turing")]
    assert {candidate.category for candidate in found} == {"person"}


def test_pool_smaller_than_limit(pool_dir):
    source = PoolEntitySource(pool_dir)

    assert len(source.candidates(["Alan", "Turing"], "PER", 10)) == 1


def test_type_without_pool(pool_dir):
    source = PoolEntitySource(pool_dir)

    assert source.candidates(["Acme"], "ORG", 10) == []


def test_limit_and_seed_repeat(pool_dir):
    first = PoolEntitySource(pool_dir, seed=3).candidates(["Paris"], "LOC", 2)
    second = PoolEntitySource(pool_dir, seed=3).candidates(["Paris"], "LOC", 2)

    assert len(first) == 2
    assert first == second


def test_ontonotes_types_own_pools(pool_dir):
    source = PoolEntitySource(pool_dir, pool_types=pool_types_for_labels(["GPE", "PERSON", "DATE"]))

    assert len(source.candidates(["Paris"], "GPE", 10)) == 5
    assert len(source.candidates(["Ada", "Lovelace"], "PERSON", 10)) == 1
    assert source.candidates(["Paris"], "LOC", 10) == []


def test_conll_labels_mapping():
    assert pool_types_for_labels(["LOC", "MISC", "ORG", "PER"]) == CONLL_POOL_TYPES


def test_invalid_json_line(tmp_path):
    write_lines(tmp_path / "GPE.jsonl", [{"class_id": "Q515", "class_title": "city", "instances": {}}])
    with (tmp_path / "GPE.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    source = PoolEntitySource(tmp_path)

    with pytest.raises(ConfigError, match=r"GPE.jsonl:2: invalid JSON in a pool file"):
        source.candidates(["Paris"], "LOC", 5)


def test_line_without_class_or_instance(tmp_path):
    write_lines(tmp_path / "GPE.jsonl", [{"name": "Paris"}])
    source = PoolEntitySource(tmp_path)

    with pytest.raises(ConfigError, match=r"GPE.jsonl:1: a pool line needs 'class_id' and 'instances'"):
        source.candidates(["Paris"], "LOC", 5)


def test_fingerprint_changes_with_files(pool_dir):
    before = PoolEntitySource(pool_dir).fingerprint()
    write_lines(pool_dir / "filtered" / "LOC.jsonl", [{"class_id": "Q8502", "class_title": "mountain",
                                                      "instances": {"Q513": "Mount Everest"}}])

    assert PoolEntitySource(pool_dir).fingerprint() != before


def test_real_pools_no_noise_class():
    if not REAL_POOLS.is_dir():
        pytest.skip(f"real Wikidata pools {REAL_POOLS} are absent; they are only present beside a development checkout")
    source = PoolEntitySource(REAL_POOLS)

    found = source.candidates(["Germany"], "LOC", 10)

    assert len(found) == 10
    assert {candidate.category for candidate in found} <= {"sovereign state", "country", "federation",
                                                           "historical country"}
    assert "taxon" not in {candidate.category for candidate in found}


def test_capitals_mention_capitals(pool_dir):
    source = PoolEntitySource(pool_dir)

    found = source.candidates(["PARIS"], "LOC", 10)

    assert sorted(words_of(found)) == [("BEIJING",), ("BERLIN",), ("LONDON",), ("PRAGUE",), ("ROME",)]


def test_punctuated_label_mention(tmp_path):
    write_lines(tmp_path / "GPE.jsonl", [{"class_id": "Q1093829", "class_title": "city of the United States",
                                         "instances": {"Q61": "Washington, D.C.", "Q60": "New York City"}}])
    source = PoolEntitySource(tmp_path)

    found = source.candidates(["Washington", ",", "D.C."], "LOC", 5)

    assert words_of(found) == [("New", "York", "City")]
