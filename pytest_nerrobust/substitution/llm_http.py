"""Context substitutes from an OpenAI-compatible chat or completions endpoint.

The model gets the sentence with the chosen word replaced by ``[BLANK]`` and is asked for single-word
replacements as a JSON array. Responses are parsed leniently (a JSON array, a numbered or bulleted list, or a
comma-separated line) because instruction-tuned models often ignore the requested format. The API key is
read from ``NERROBUST_LLM_API_KEY`` for each request; it is never stored, logged or made part of a cache key.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Collection, Sequence
from typing import Any

from pytest_nerrobust.cache import Cache
from pytest_nerrobust.errors import BackendError, ConfigError
from pytest_nerrobust.substitution.filters import filter_context_candidates
from pytest_nerrobust.substitution.http import FailureTracker, HttpClient, MalformedResponseError

logger = logging.getLogger(__name__)

API_KEY_ENV = "NERROBUST_LLM_API_KEY"
BLANK = "[BLANK]"
CACHE_NAMESPACE = "llm-http"
PROMPT_VERSION = 1
SYSTEM_PROMPT = "You suggest replacement words for a blank in a sentence. You answer with JSON only."
PROMPT_TEMPLATE = (
    "Sentence: {sentence}\n\n"
    "Give {count} different single words that could replace {blank} so that the sentence stays fluent and "
    "keeps its meaning as far as possible. Do not use the word {original!r}, and do not use names of "
    "people, places or organisations. Answer with a JSON array of {count} strings and nothing else."
)
_CODE_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\(?\d+[.)]|[a-z][.)])\s+")
_EDGE_PUNCTUATION = "\"'`\u201c\u201d\u2018\u2019.,;:!?*"


def build_prompt(words: Sequence[str], position: int, count: int) -> str:
    """Write the user prompt for replacing ``words[position]`` with ``count`` candidates."""
    sentence = " ".join(BLANK if index == position else word for index, word in enumerate(words))
    return PROMPT_TEMPLATE.format(sentence=sentence, count=count, blank=BLANK, original=words[position])


def parse_candidates(text: str) -> list[str]:
    """Extract single-word candidates from a model response, in response order and without repeats.

    Accepts a JSON array (also inside a code fence or after other text), a numbered or bulleted list, or one
    comma- or semicolon-separated line. Explanations after a dash, colon or bracket are dropped, and so
    is any item with more than one word.

    >>> parse_candidates('Sure! ["quickly", "slowly"]')
    ['quickly', 'slowly']
    >>> parse_candidates("1. quickly - fast\\n2. **slowly**")
    ['quickly', 'slowly']
    """
    text = _THINKING.sub("", text)
    fenced = _CODE_FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    items = _json_items(text)
    if items is None:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) == 1:
            lines = re.split(r"[,;]", lines[0])
        items = [_LIST_MARKER.sub("", line) for line in lines]
    candidates: list[str] = []
    for item in items:
        word = _clean_item(item)
        if word and word not in candidates:
            candidates.append(word)
    return candidates


def _json_items(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    return [str(item) for item in value if isinstance(item, (str, int, float))]


def _clean_item(item: str) -> str:
    text = item.strip()
    text = re.split(r"\s+[-\u2013\u2014]\s+|:\s|\s\(", text, maxsplit=1)[0]
    text = text.strip().strip(_EDGE_PUNCTUATION).strip()
    if not text or any(character.isspace() for character in text) or BLANK in text:
        return ""
    return text


def endpoint_url(base_url: str) -> tuple[str, str]:
    """Return the request URL and the API style ("chat" or "completions") for a base or full URL.

    >>> endpoint_url("http://127.0.0.1:8000/v1")
    ('http://127.0.0.1:8000/v1/chat/completions', 'chat')
    """
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url, "chat"
    if url.endswith("/completions"):
        return url, "completions"
    return f"{url}/chat/completions", "chat"


class LLMHttpInfiller:
    """A :class:`~pytest_nerrobust.substitution.base.ContextInfiller` over an OpenAI-compatible endpoint.

    Args:
        client: the :class:`HttpClient` (its offline flag, timeouts and retries apply).
        cache: the persistent cache for every response.
        url: the server's base URL (``http://host:port/v1``), or a full ``.../chat/completions`` or
            ``.../completions`` URL.
        model: the model name sent with each request (default ``None``: the field is left out, so the
            server uses its default model).
        temperature: the sampling temperature (default 0.0, so responses repeat).
        count: candidates requested per blank (default 5).
        max_tokens: the response length limit in tokens (default 64).
        max_consecutive_failures: failed requests in a row after which the endpoint is skipped for the
            rest of the run (default 3).
        lexicon: lowercased entity names that a candidate must not be (default ``None``: the gazetteer
            lexicon of :func:`~pytest_nerrobust.substitution.entities.entity_lexicon`).

    Candidates pass :func:`~pytest_nerrobust.substitution.filters.filter_context_candidates`, so the
    original word, non-words and words that would create an entity are dropped.
    """

    name = "llm-http"

    def __init__(self, client: HttpClient, cache: Cache, url: str, *, model: str | None = None,
                 temperature: float = 0.0, count: int = 5, max_tokens: int = 64,
                 max_consecutive_failures: int = 3, lexicon: Collection[str] | None = None) -> None:
        if not re.match(r"^https?://", url):
            raise ConfigError(f"--llm-url {url!r} is not an http:// or https:// URL; pass the server's base URL, "
                              "for example http://127.0.0.1:8000/v1")
        self.client = client
        self.cache = cache
        self.url, self.api = endpoint_url(url)
        self.model = model
        self.temperature = temperature
        self.count = count
        self.max_tokens = max_tokens
        self.tracker = FailureTracker("LLM endpoint", "the word gets no context candidates",
                                      max_consecutive_failures)
        self.lexicon = lexicon

    def fingerprint(self) -> str:
        """Identify the endpoint, model, prompt version and sampling settings."""
        return (f"llm-http:{self.url}:{self.model or 'default'}:prompt-v{PROMPT_VERSION}:"
                f"t{self.temperature}:n{self.count}")

    def candidates(self, words: Sequence[str], position: int, limit: int) -> list[str]:
        """Return at most ``limit`` single-word replacements for ``words[position]``, or ``[]`` on failure."""
        if limit <= 0 or not 0 <= position < len(words):
            return []
        prompt = build_prompt(words, position, self.count)
        parts = (self.url, self.model, PROMPT_VERSION, SYSTEM_PROMPT, prompt, self.temperature, self.max_tokens,
                 list(words), position)
        try:
            text = self.cache.get_or_compute(CACHE_NAMESPACE, parts, lambda: self._complete(prompt))
        except BackendError as error:
            self.tracker.failed(f"position {position} of {' '.join(words)[:60]!r}", error)
            return []
        self.tracker.succeeded()
        return filter_context_candidates(parse_candidates(text), words, position, self.lexicon)[:limit]

    def _complete(self, prompt: str) -> str:
        self.tracker.check()
        body: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.model:
            body["model"] = self.model
        if self.api == "chat":
            body["messages"] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        else:
            body["prompt"] = f"{SYSTEM_PROMPT}\n\n{prompt}\nAnswer: "
        headers = {}
        api_key = os.environ.get(API_KEY_ENV)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        response = self.client.post_json(self.url, body, headers)
        return _response_text(response, self.api)


def _response_text(response: Any, api: str) -> str:
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        error = response.get("error") if isinstance(response, dict) else None
        detail = f": {error}" if error else ""
        raise MalformedResponseError(f"the LLM response has no 'choices' list{detail}")
    choice = choices[0]
    if api == "chat":
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    if not isinstance(text, str):
        raise MalformedResponseError(f"the LLM response's first choice has no {'message content' if api == 'chat' else 'text'}")
    return text
