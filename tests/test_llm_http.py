"""The OpenAI-compatible infiller against a real HTTP server on 127.0.0.1, and its response parser."""

from __future__ import annotations

import json
import logging

import pytest
from servers import MALFORMED, LLMServer, forbid_remote_hosts, slow_fault, status_fault

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import ConfigError
from pytest_nerrobust.substitution.http import HttpClient, RetryPolicy
from pytest_nerrobust.substitution.llm_http import (
    API_KEY_ENV,
    LLMHttpInfiller,
    build_prompt,
    endpoint_url,
    parse_candidates,
)

SENTENCE = ["The", "dog", "ran", "home", "."]
DEFAULT_WORDS = ["quickly", "slowly", "happily", "sadly", "loudly"]
SECRET = "sk-test-5b1e0d7c"


@pytest.fixture(autouse=True)
def no_remote_hosts(monkeypatch):
    forbid_remote_hosts(monkeypatch)
    monkeypatch.delenv(API_KEY_ENV, raising=False)


@pytest.fixture
def server():
    with LLMServer() as running:
        yield running


def make_infiller(url: str, cache: Cache, *, offline: bool = False, user_agent: str | None = None,
                  read_timeout: float = 5.0, **settings) -> LLMHttpInfiller:
    agent = {} if user_agent is None else {"user_agent": user_agent}
    client = HttpClient(offline=offline, read_timeout=read_timeout, sleep=lambda seconds: None,
                        retry=RetryPolicy(max_retries=2, backoff_seconds=0.01), **agent)
    return LLMHttpInfiller(client, cache, url, lexicon={"paris"}, **settings)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ('["quickly", "slowly", "happily"]', ["quickly", "slowly", "happily"]),
        ('Sure! Here they are:\n["quickly", "slowly"]', ["quickly", "slowly"]),
        ('```json\n["fast", "swiftly"]\n```', ["fast", "swiftly"]),
        ("1. quickly - at speed\n2) slowly\n3. **happily**", ["quickly", "slowly", "happily"]),
        ("- fast\n* swiftly\n\u2022 rapidly", ["fast", "swiftly", "rapidly"]),
        ("quickly, slowly; happily.", ["quickly", "slowly", "happily"]),
        ("<think>maybe run?</think>[\"walked\"]", ["walked"]),
        ('["went home", "walked", "walked", "café"]', ["walked", "café"]),
        ("1. quickly: at speed\n2. slowly (calmly)", ["quickly", "slowly"]),
        ('["[BLANK]", "ran"]', ["ran"]),
        ("", []),
    ],
)
def test_parse_candidates_forms(response, expected):
    assert parse_candidates(response) == expected


def test_build_prompt_blank():
    prompt = build_prompt(SENTENCE, 1, 5)

    assert prompt.startswith("Sentence: The [BLANK] ran home .\n")
    assert "Give 5 different single words" in prompt
    assert "Do not use the word 'dog'" in prompt


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/v1", ("http://127.0.0.1:8000/v1/chat/completions", "chat")),
        ("http://127.0.0.1:8000/v1/", ("http://127.0.0.1:8000/v1/chat/completions", "chat")),
        ("http://127.0.0.1:8000/v1/chat/completions", ("http://127.0.0.1:8000/v1/chat/completions", "chat")),
        ("http://127.0.0.1:8000/v1/completions", ("http://127.0.0.1:8000/v1/completions", "completions")),
    ],
)
def test_endpoint_url_forms(url, expected):
    assert endpoint_url(url) == expected


def test_invalid_url_rejected():
    with pytest.raises(ConfigError, match=r"--llm-url 'localhost:8000' is not an http:// or https:// URL"):
        LLMHttpInfiller(HttpClient(), Cache(None), "localhost:8000")


def test_chat_candidates(server):
    infiller = make_infiller(server.url, Cache(None), model="tiny-chat")

    found = infiller.candidates(SENTENCE, 1, 3)

    assert found == DEFAULT_WORDS[:3]
    request = server.requests[0]
    body = json.loads(request.body)
    assert request.path == "/v1/chat/completions"
    assert body["model"] == "tiny-chat"
    assert body["temperature"] == 0.0
    assert body["messages"][1]["content"] == build_prompt(SENTENCE, 1, 5)


def test_completions_candidates(server):
    infiller = make_infiller(f"{server.url}/completions", Cache(None))

    found = infiller.candidates(SENTENCE, 1, 5)

    body = json.loads(server.requests[0].body)
    assert found == DEFAULT_WORDS
    assert server.requests[0].path == "/v1/completions"
    assert "model" not in body
    assert build_prompt(SENTENCE, 1, 5) in body["prompt"]


def test_filters_applied(server):
    infiller = make_infiller(server.url, Cache(None))
    server.replies.append('["dog", "Paris", "paris", "cat", "two words", "3", "puppy"]')

    found = infiller.candidates(SENTENCE, 1, 5)

    assert found == ["cat", "puppy"]


def test_sentence_initial_capitalised(server):
    infiller = make_infiller(server.url, Cache(None))
    server.replies.append('["a", "every"]')

    found = infiller.candidates(SENTENCE, 0, 5)

    assert found == ["A", "Every"]


def test_second_run_zero_requests(server, tmp_path):
    first_cache = Cache(tmp_path / "cache")
    expected = make_infiller(server.url, first_cache).candidates(SENTENCE, 1, 5)
    first_cache.close()

    again = make_infiller(server.url, Cache(tmp_path / "cache")).candidates(SENTENCE, 1, 5)

    assert again == expected
    assert server.count == 1


def test_temperature_in_cache_key(server, tmp_path):
    cache = Cache(tmp_path / "cache")
    make_infiller(server.url, cache).candidates(SENTENCE, 1, 5)

    make_infiller(server.url, cache, temperature=0.7).candidates(SENTENCE, 1, 5)

    assert server.count == 2


def test_model_in_cache_key(server, tmp_path):
    cache = Cache(tmp_path / "cache")
    make_infiller(server.url, cache, model="a").candidates(SENTENCE, 1, 5)

    make_infiller(server.url, cache, model="b").candidates(SENTENCE, 1, 5)

    assert server.count == 2


def test_offline_serves_cache(server, tmp_path):
    cache = Cache(tmp_path / "cache")
    expected = make_infiller(server.url, cache).candidates(SENTENCE, 1, 5)

    offline = make_infiller(server.url, cache, offline=True).candidates(SENTENCE, 1, 5)

    assert offline == expected
    assert server.count == 1


def test_offline_miss_no_request(server, tmp_path, caplog):
    infiller = make_infiller(server.url, Cache(tmp_path / "cache"), offline=True)

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert server.count == 0
    assert "offline mode: LLM endpoint lookups missing from the cache" in caplog.text


def test_api_key_sent_not_stored(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(API_KEY_ENV, SECRET)
    server.api_key = SECRET
    cache = Cache(tmp_path / "cache")
    infiller = make_infiller(server.url, cache)

    with caplog.at_level(logging.DEBUG):
        found = infiller.candidates(SENTENCE, 1, 5)
    cache.close()

    stored = b"".join(path.read_bytes() for path in (tmp_path / "cache").rglob("*") if path.is_file())
    assert found == DEFAULT_WORDS
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET.encode() not in stored
    assert SECRET not in caplog.text
    assert SECRET not in infiller.fingerprint()


def test_missing_api_key_falls_back(server, caplog):
    server.api_key = SECRET
    infiller = make_infiller(server.url, Cache(None))

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert server.count == 1
    assert "returned HTTP 401 Unauthorized; check the endpoint's access rules and credentials" in caplog.text


def test_cached_responses_after_stop(server, tmp_path, caplog):
    cache = Cache(tmp_path / "cache")
    expected = make_infiller(server.url, cache).candidates(SENTENCE, 1, 5)
    infiller = make_infiller(server.url, cache)
    server.api_key = SECRET
    with caplog.at_level(logging.WARNING):
        for position in (0, 2, 3):
            infiller.candidates(SENTENCE, position, 5)

    assert infiller.candidates(SENTENCE, 1, 5) == expected
    assert infiller.candidates(["A", "cat", "sat"], 1, 5) == []
    assert server.count == 4
    assert "LLM endpoint failed 3 lookups in a row; it is skipped for the rest of this run" in caplog.text


def test_rate_limit_retried(server, caplog):
    infiller = make_infiller(server.url, Cache(None))
    server.inject(status_fault(429, retry_after="0"))

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == DEFAULT_WORDS
    assert server.count == 2
    assert "returned HTTP 429; retrying in 0.0 s (attempt 2 of 3)" in caplog.text


def test_server_error_falls_back(server, caplog):
    infiller = make_infiller(server.url, Cache(None))
    server.inject(status_fault(503), status_fault(500), status_fault(502))

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert server.count == 3
    assert "LLM endpoint lookup of position 1 of 'The dog ran home .' failed, so the word gets no context" in caplog.text


def test_timeout_retried(server, caplog):
    infiller = make_infiller(server.url, Cache(None), read_timeout=0.3)
    server.inject(slow_fault(2.0))

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == DEFAULT_WORDS
    assert "timed out; retrying" in caplog.text


def test_malformed_json_falls_back(server, caplog):
    infiller = make_infiller(server.url, Cache(None))
    server.inject(MALFORMED)

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert "returned malformed JSON" in caplog.text


def test_missing_user_agent_rejected(server, caplog):
    infiller = make_infiller(server.url, Cache(None), user_agent="")

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert server.count == 1
    assert "HTTP 403 Forbidden; the request had no User-Agent" in caplog.text


def test_response_without_choices(server, caplog):
    infiller = make_infiller(server.url, Cache(None))
    server.respond = lambda request: (200, {"error": {"message": "model not loaded"}})

    with caplog.at_level(logging.WARNING):
        found = infiller.candidates(SENTENCE, 1, 5)

    assert found == []
    assert "the LLM response has no 'choices' list: {'message': 'model not loaded'}" in caplog.text
