"""Building the --kb and --infill backends from a configuration, the masked LM infiller, and whole attacks
that use the HTTP backends against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from servers import LLMServer, WikidataServer, forbid_remote_hosts, status_fault

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.config import AttackConfig
from pytest_nerrobust.corpus import Sentence
from pytest_nerrobust.errors import ConfigError, ModelLoadError
from pytest_nerrobust.substitution.backends import build_entity_source, build_infiller
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
    entity_strings,
)
from pytest_nerrobust.substitution.llm_http import LLMHttpInfiller
from pytest_nerrobust.substitution.masked_lm import MaskedLMInfiller
from pytest_nerrobust.substitution.pools import PoolEntitySource
from pytest_nerrobust.substitution.synthetic import FakerEntitySource
from pytest_nerrobust.substitution.wikidata import WikidataEntitySource

REFERENCE = [
    Sentence(("Ajax", "beat", "Feyenoord", "in", "Amsterdam", "."), ("B-ORG", "O", "B-ORG", "O", "B-LOC", "O")),
    Sentence(("Jan", "Smit", "of", "PSV", "scored", "."), ("B-PER", "I-PER", "O", "B-ORG", "O", "O")),
]
# Vocabulary of the tiny masked LM, with the output bias that fixes its ranking: highest first.
MLM_BIAS = {"dog": 10.0, "cat": 9.0, "##s": 8.0, ".": 7.0, "paris": 6.0, "big": 5.0, "small": 4.0, "red": 3.0}
MLM_WORDS = ["the", "sat", "on", "mat"]


@pytest.fixture(autouse=True)
def no_remote_hosts(monkeypatch):
    forbid_remote_hosts(monkeypatch)


@pytest.fixture
def wikidata():
    with WikidataServer() as running:
        yield running


@pytest.fixture(scope="module")
def tiny_mlm_dir(write_tiny_mlm) -> Path:
    """Write a tiny masked LM that ranks the ``MLM_BIAS`` words by their bias, so the ranking is known."""
    return write_tiny_mlm(MLM_WORDS, MLM_BIAS)


def make_config(**settings) -> AttackConfig:
    return AttackConfig(**settings)


def test_offline_chain(tmp_path):
    source = build_entity_source(make_config(kb="offline"), Cache(None), REFERENCE)

    assert isinstance(source, ChainEntitySource)
    assert [type(part) for part in source.sources] == [GazetteerEntitySource, FakerEntitySource, CorpusEntitySource]
    assert source.demote == entity_strings(REFERENCE)


def test_offline_same_type(tmp_path):
    source = build_entity_source(make_config(kb="offline"), Cache(None), REFERENCE)

    found = source.candidates(["Ajax"], "ORG", 5)

    assert len(found) == 5
    assert {candidate.source for candidate in found} == {"faker"}


def test_offline_reference_fills_unknown_type(tmp_path):
    source = build_entity_source(make_config(kb="offline"), Cache(None), REFERENCE)

    found = source.candidates(["Zyxland"], "LOC", 10)

    assert ("Amsterdam",) in {candidate.words for candidate in found}


def test_pools_need_directory():
    with pytest.raises(ConfigError, match=r"^invalid kb value 'pools': it needs a pool directory, so pass "
                                          r"--kb-pools DIR \(ini kb_pools\), or drop 'pools' from --kb$"):
        build_entity_source(make_config(kb="pools"), Cache(None), REFERENCE)


def test_pools_chain_order(tmp_path):
    (tmp_path / "ORG.jsonl").write_text(json.dumps({"class_id": "Q476028", "class_title": "association football club",
                                                    "instances": {"Q1": "Ajax", "Q2": "Celtic", "Q3": "Benfica"}})
                                        + "\n", encoding="utf-8")
    config = make_config(kb="pools,offline", kb_pools=str(tmp_path))
    source = build_entity_source(config, Cache(None), REFERENCE)

    found = source.candidates(["Ajax"], "ORG", 4)

    assert isinstance(source.sources[0], PoolEntitySource)
    assert sorted(candidate.words for candidate in found[:2]) == [("Benfica",), ("Celtic",)]
    assert {candidate.source for candidate in found[:2]} == {"pools"}
    assert {candidate.source for candidate in found[2:]} == {"faker"}


def test_wikidata_source_settings(wikidata, tmp_path):
    config = make_config(kb="wikidata", wikidata_api_url=wikidata.api_url, wikidata_sparql_url=wikidata.sparql_url)
    source = build_entity_source(config, Cache(tmp_path / "cache"), REFERENCE)

    found = source.candidates(["Manchester", "United"], "ORG", 10)

    assert isinstance(source, WikidataEntitySource)
    assert len(found) == 4
    assert wikidata.count == 4


def test_wikidata_offline_no_request(wikidata, tmp_path, caplog):
    config = make_config(kb="wikidata,offline", offline=True, wikidata_api_url=wikidata.api_url,
                         wikidata_sparql_url=wikidata.sparql_url)
    source = build_entity_source(config, Cache(tmp_path / "cache"), REFERENCE)

    with caplog.at_level(logging.WARNING):
        found = source.candidates(["Ajax"], "ORG", 5)

    assert {candidate.source for candidate in found} == {"faker"}
    assert wikidata.count == 0


def test_masked_lm_needs_model():
    with pytest.raises(ConfigError, match=r"^invalid infill value 'masked-lm': it needs a model directory"):
        build_infiller(make_config(infill="masked-lm"), Cache(None))


def test_masked_lm_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match=r"--infill-model '.*absent' is not a model directory \(no config.json\)"):
        MaskedLMInfiller(tmp_path / "absent", Cache(None))


def test_masked_lm_built(tiny_mlm_dir):
    infiller = build_infiller(make_config(infill="masked-lm", infill_model=str(tiny_mlm_dir)), Cache(None))

    assert isinstance(infiller, MaskedLMInfiller)


def test_llm_http_built(tmp_path):
    infiller = build_infiller(make_config(infill="llm-http", llm_url="http://127.0.0.1:9/v1", llm_model="m"),
                              Cache(None))

    assert isinstance(infiller, LLMHttpInfiller)
    assert infiller.url == "http://127.0.0.1:9/v1/chat/completions"
    assert infiller.model == "m"


def test_masked_lm_ranking(tiny_mlm_dir):
    infiller = MaskedLMInfiller(tiny_mlm_dir, Cache(None), lexicon={"paris"})

    assert infiller.candidates(["The", "cat", "sat", "on", "the", "mat"], 1, 3) == ["dog", "big", "small"]


def test_masked_lm_sentence_start(tiny_mlm_dir):
    infiller = MaskedLMInfiller(tiny_mlm_dir, Cache(None), lexicon={"paris"})

    assert infiller.candidates(["The", "cat", "sat"], 0, 2) == ["Dog", "Cat"]


def test_masked_lm_batch_and_cache(tiny_mlm_dir, tmp_path):
    cache = Cache(tmp_path / "cache")
    infiller = MaskedLMInfiller(tiny_mlm_dir, cache, lexicon=set())
    requests = [(["The", "cat", "sat"], 1), (["the", "mat"], 1), (["The", "cat", "sat"], 1)]

    first = infiller.candidates_batch(requests, 2)
    second = MaskedLMInfiller(tiny_mlm_dir, cache, lexicon=set()).candidates_batch(requests, 2)

    assert first == [["dog", "paris"], ["dog", "cat"], ["dog", "paris"]]
    assert second == first
    assert cache.stats()["masked-lm"] == {"hits": 3, "misses": 3}


class LexiconModel:
    """A real if simple NER model: it tags the words it saw inside entities of a training file, with the type
    they had there, and tags every other word O. Unseen substitutes fool it, so attacks succeed."""

    fingerprint = "lexicon-model-v1"

    def __init__(self, path: Path) -> None:
        from pytest_nerrobust.corpus import read_corpus

        self.labels = ["LOC", "MISC", "ORG", "PER"]
        self.types: dict[str, str] = {}
        for sentence in read_corpus(path).sentences:
            for span in sentence.spans:
                for word in sentence.words[span.start : span.end]:
                    self.types.setdefault(word, span.label)

    def predict(self, sentences):
        predictions = []
        for words in sentences:
            tags, previous = [], None
            for word in words:
                label = self.types.get(word)
                if label is None:
                    tags.append("O")
                elif label == previous:
                    tags.append(f"I-{label}")
                else:
                    tags.append(f"B-{label}")
                previous = label
            predictions.append(tags)
        return predictions


def attack_config(demo_files, wikidata: WikidataServer, llm: LLMServer, cache_dir: Path, **settings) -> AttackConfig:
    return make_config(data=str(demo_files["train"]), kb="wikidata,offline", wikidata_api_url=wikidata.api_url,
                       wikidata_sparql_url=wikidata.sparql_url, infill="llm-http", llm_url=llm.url, sample=12,
                       seed=1, selector="random", cache_dir=str(cache_dir), **settings)


def outcome(run) -> list[tuple[str, list[str] | None]]:
    return [(result.status.value, result.adversarial_words) for result in run.results]


@pytest.mark.slow
def test_attack_retries_then_cache(demo_files, tmp_path, caplog):
    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.results import Status

    model = LexiconModel(demo_files["train"])
    with WikidataServer() as wikidata, LLMServer() as llm:
        config = attack_config(demo_files, wikidata, llm, tmp_path / "cache")
        wikidata.inject(status_fault(503, retry_after="0"), status_fault(429, retry_after="0"))
        llm.inject(status_fault(429, retry_after="0"), status_fault(503, retry_after="0"))

        with caplog.at_level(logging.WARNING):
            first = run_attack(config, model=model)
        sent = (wikidata.count, llm.count)
        second = run_attack(config, model=model)
        offline = run_attack(attack_config(demo_files, wikidata, llm, tmp_path / "cache", offline=True),
                             model=model)

    assert Status.ERRORED not in {result.status for result in first.results}
    assert {result.status for result in first.results} & {Status.SUCCESSFUL, Status.FAILED}
    assert "returned HTTP 503; retrying in 0.0 s" in caplog.text
    assert sent[0] > 2
    assert sent[1] > 2
    assert (wikidata.count, llm.count) == sent
    assert outcome(second) == outcome(first)
    assert outcome(offline) == outcome(first)


@pytest.mark.slow
def test_attack_backends_down(demo_files, tmp_path, caplog):
    from pytest_nerrobust.attack import run_attack
    from pytest_nerrobust.results import Status

    model = LexiconModel(demo_files["train"])
    with WikidataServer() as wikidata, LLMServer(api_key="required") as llm:
        config = attack_config(demo_files, wikidata, llm, tmp_path / "cache")
        # Every Wikidata request fails for good: three 403s, one per lookup, stop further requests.
        wikidata.inject(*[status_fault(403)] * 3)

        with caplog.at_level(logging.WARNING):
            run = run_attack(config, model=model)

    statuses = {result.status for result in run.results}
    assert Status.ERRORED not in statuses
    assert statuses & {Status.SUCCESSFUL, Status.FAILED}
    assert wikidata.count == 3
    assert llm.count == 3
    assert "Wikidata failed 3 lookups in a row; it is skipped for the rest of this run" in caplog.text
    assert "LLM endpoint failed 3 lookups in a row; it is skipped for the rest of this run" in caplog.text
