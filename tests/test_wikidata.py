"""The Wikidata entity source against a real HTTP server on 127.0.0.1 that responds like Wikidata."""

from __future__ import annotations

import logging

import pytest
from servers import MALFORMED, WikidataServer, forbid_remote_hosts, slow_fault, status_fault

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.substitution.entities import ChainEntitySource, CorpusEntitySource
from pytest_nerrobust.substitution.http import HttpClient, RetryPolicy
from pytest_nerrobust.substitution.types import TypeMapping
from pytest_nerrobust.substitution.wikidata import WikidataEntitySource

CLUBS = {("Arsenal", "F.C."), ("Liverpool", "F.C."), ("Chelsea", "F.C."), ("Manchester", "City", "F.C.")}
CITIES = {("London",), ("Berlin",), ("Tokyo",), ("Manchester",), ("Prague",)}
PEOPLE = {("Douglas", "Adams"), ("Charles", "Darwin"), ("Marie", "Curie")}
# A search, the P31 claims of the hits, the type check and the instance query.
REQUESTS_PER_LOOKUP = 4


@pytest.fixture(autouse=True)
def no_remote_hosts(monkeypatch):
    forbid_remote_hosts(monkeypatch)


@pytest.fixture
def server():
    with WikidataServer() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_source(server: WikidataServer, cache: Cache, sleeps: list[float] | None = None, *, offline: bool = False,
                user_agent: str | None = None, read_timeout: float = 5.0, type_classes=None) -> WikidataEntitySource:
    settings = {} if user_agent is None else {"user_agent": user_agent}
    client = HttpClient(offline=offline, read_timeout=read_timeout, retry=RetryPolicy(max_retries=2, backoff_seconds=0.01),
                        sleep=(sleeps.append if sleeps is not None else lambda seconds: None), **settings)
    classes = type_classes if type_classes is not None else TypeMapping.conll().wikidata_class_map()
    return WikidataEntitySource(client, cache, classes, api_url=server.api_url, sparql_url=server.sparql_url)


def words_of(candidates) -> set[tuple[str, ...]]:
    return {candidate.words for candidate in candidates}


def test_candidates_same_class(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert words_of(found) == CLUBS
    assert {candidate.source for candidate in found} == {"wikidata"}
    assert {candidate.category for candidate in found} == {"association football club"}


def test_candidates_request_count(server):
    source = make_source(server, Cache(None))

    source.candidates(["Manchester", "United"], "ORG", 10)

    assert server.count == REQUESTS_PER_LOOKUP


def test_candidates_subclass_walk(server):
    source = make_source(server, Cache(None), type_classes={"ORG": ["Q43229"]})

    found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert words_of(found) == CLUBS


def test_type_guides_link_location(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["Paris"], "LOC", 10)

    assert words_of(found) == CITIES
    assert {candidate.category for candidate in found} == {"city / capital"}


def test_type_guides_link_person(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["Paris"], "PER", 10)

    assert words_of(found) == PEOPLE


def test_capitals_mention_capitals(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["MANCHESTER", "UNITED"], "ORG", 10)

    assert words_of(found) == {tuple(word.upper() for word in words) for words in CLUBS}


def test_unknown_type_no_request(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["Manchester", "United"], "DATE", 10)

    assert found == []
    assert server.count == 0


def test_no_fitting_item(server):
    source = make_source(server, Cache(None))

    found = source.candidates(["Douglas", "Adams"], "LOC", 10)

    assert found == []


def test_limit_smaller_than_pool(server):
    source = make_source(server, Cache(None))

    first = source.candidates(["Paris"], "LOC", 2)
    second = source.candidates(["Paris"], "LOC", 2)

    assert len(first) == 2
    assert words_of(first) <= CITIES
    assert first == second


def test_second_run_zero_requests(server, tmp_path):
    first_cache = Cache(tmp_path / "cache")
    expected = make_source(server, first_cache).candidates(["Manchester", "United"], "ORG", 10)
    first_cache.close()
    sent = server.count

    again = make_source(server, Cache(tmp_path / "cache")).candidates(["Manchester", "United"], "ORG", 10)

    assert again == expected
    assert server.count == sent


def test_offline_serves_cache(server, tmp_path):
    cache = Cache(tmp_path / "cache")
    expected = make_source(server, cache).candidates(["Paris"], "PER", 10)
    sent = server.count

    offline = make_source(server, cache, offline=True).candidates(["Paris"], "PER", 10)

    assert offline == expected
    assert server.count == sent


def test_offline_miss_warns(server, tmp_path, caplog):
    source = make_source(server, Cache(tmp_path / "cache"), offline=True)

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert found == []
    assert server.count == 0
    assert "offline mode: Wikidata lookups missing from the cache" in caplog.text


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_honoured(server, sleeps, caplog, status):
    source = make_source(server, Cache(None), sleeps)
    server.inject(status_fault(status, retry_after="1"))

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert words_of(found) == CLUBS
    assert sleeps == [1.0]
    assert server.count == REQUESTS_PER_LOOKUP + 1
    assert f"returned HTTP {status}; retrying in 1.0 s (attempt 2 of 3)" in caplog.text


def test_retry_after_too_long(server, sleeps, caplog):
    source = make_source(server, Cache(None), sleeps)
    server.inject(status_fault(429, retry_after="3600"))

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert found == []
    assert sleeps == []
    assert "asked to retry after 3600 s, more than the 30 s limit" in caplog.text


def test_server_error_retried(server, sleeps, caplog):
    source = make_source(server, Cache(None), sleeps)
    server.inject(status_fault(500), status_fault(502))

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert words_of(found) == CLUBS
    assert sleeps == [0.01, 0.02]
    assert "returned HTTP 500; retrying" in caplog.text


def test_server_error_falls_back(server, caplog):
    source = make_source(server, Cache(None))
    server.inject(status_fault(500), status_fault(500), status_fault(500))

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert found == []
    assert server.count == 3
    assert "Wikidata lookup of 'Manchester United' (ORG) failed, so the next entity source" in caplog.text


def test_timeout_retried(server, caplog):
    source = make_source(server, Cache(None), read_timeout=0.3)
    server.inject(slow_fault(2.0))

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert words_of(found) == CLUBS
    assert "timed out; retrying" in caplog.text


def test_malformed_json_not_cached(server, tmp_path, caplog):
    cache = Cache(tmp_path / "cache")
    source = make_source(server, cache)
    server.inject(MALFORMED)

    with caplog.at_level(logging.WARNING):
        failed = source.candidates(["Manchester", "United"], "ORG", 10)
    recovered = source.candidates(["Manchester", "United"], "ORG", 10)

    assert failed == []
    assert "returned malformed JSON" in caplog.text
    assert words_of(recovered) == CLUBS


def test_missing_user_agent_rejected(server, caplog):
    source = make_source(server, Cache(None), user_agent="")

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert found == []
    assert server.count == 1
    assert "returned HTTP 403 Forbidden; the request had no User-Agent, so set one" in caplog.text


def test_default_user_agent_sent(server):
    make_source(server, Cache(None)).candidates(["Paris"], "LOC", 1)

    assert server.requests[0].headers["User-Agent"].startswith("pytest-nerrobust/")


def test_repeated_failures_stop_requests(server, caplog):
    source = make_source(server, Cache(None), user_agent="")
    with caplog.at_level(logging.WARNING):
        for mention in (["Paris"], ["London"], ["Berlin"]):
            source.candidates(mention, "LOC", 5)
    sent = server.count

    found = source.candidates(["Tokyo"], "LOC", 5)

    assert found == []
    assert server.count == sent
    assert "Wikidata failed 3 lookups in a row; it is skipped for the rest of this run" in caplog.text


def test_cached_lookups_after_stop(server, tmp_path):
    cache = Cache(tmp_path / "cache")
    expected = make_source(server, cache).candidates(["Paris"], "LOC", 5)
    source = make_source(server, cache)
    server.inject(*[status_fault(403)] * 3)
    for mention in (["London"], ["Berlin"], ["Tokyo"]):
        source.candidates(mention, "LOC", 5)
    sent = server.count

    assert source.candidates(["Paris"], "LOC", 5) == expected
    assert source.candidates(["Prague"], "LOC", 5) == []
    assert server.count == sent


def test_chain_falls_back_to_corpus(server, caplog):
    reference = [Sentence(("Ajax", "beat", "Feyenoord"), ("B-ORG", "O", "B-ORG"))]
    chain = ChainEntitySource([make_source(server, Cache(None)), CorpusEntitySource(reference)])
    server.inject(*[status_fault(503)] * 3)

    with caplog.at_level(logging.WARNING):
        found = chain.candidates(["Manchester", "United"], "ORG", 3)

    assert words_of(found) == {("Ajax",), ("Feyenoord",)}
    assert {candidate.source for candidate in found} == {"reference"}
    assert "Wikidata lookup of 'Manchester United' (ORG) failed" in caplog.text
