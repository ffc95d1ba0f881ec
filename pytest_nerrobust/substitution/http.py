"""One HTTP client for the remote substitution backends (Wikidata, OpenAI-compatible LLM endpoints).

The client sets a descriptive User-Agent, a connect and a read timeout, and retries with exponential backoff
on connection errors, timeouts and the statuses 429, 500, 502, 503 and 504. On 429 and 503 it waits for the
server's ``Retry-After`` (seconds or an HTTP date) when one is given. In offline mode every request raises
:class:`OfflineModeError` before a socket opens.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util import SKIP_HEADER

from pytest_nerrobust.errors import BackendError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})


def _package_version() -> str:
    try:
        return importlib.metadata.version("pytest-nerrobust")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


# Wikimedia rejects requests whose User-Agent is missing or generic, so the default names the client.
DEFAULT_USER_AGENT = (
    f"pytest-nerrobust/{_package_version()} (adversarial robustness tests for NER models) "
    f"python-requests/{requests.__version__}"
)


class OfflineModeError(BackendError):
    """An HTTP request was attempted while offline mode forbids all HTTP."""


class HttpError(BackendError):
    """An HTTP request failed for good: an error status, a timeout, or a response that is not JSON."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BackendDisabledError(BackendError):
    """A backend was turned off for the rest of the run after repeated failures, so no request was sent."""


class MalformedResponseError(BackendError):
    """A service returned JSON of an unexpected shape, or an error object in a successful response."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed request.

    ``max_retries`` counts the requests after the first one. Waits start at ``backoff_seconds`` and double
    each time. A ``Retry-After`` longer than ``max_wait_seconds`` ends the retries at once, because waiting
    that long would stall the attack.
    """

    max_retries: int = 3
    backoff_seconds: float = 0.5
    max_wait_seconds: float = 30.0


class FailureTracker:
    """Logs the failed lookups of one backend and turns the backend off after too many in a row.

    Every failure is logged as a warning until ``max_consecutive`` failures in a row. Then one more warning
    logs that the backend is skipped for the rest of the run, and :meth:`check` raises
    :class:`BackendDisabledError` before each later request, so cached lookups still work. Lookups blocked by
    offline mode are logged once.
    """

    def __init__(self, backend: str, fallback: str, max_consecutive: int = 3) -> None:
        self.backend = backend
        self.fallback = fallback
        self.max_consecutive = max_consecutive
        self.failures = 0
        self.offline_misses = 0
        self.disabled = False
        self._consecutive = 0

    def check(self) -> None:
        """Raise :class:`BackendDisabledError` when the backend is turned off; call it before each request."""
        if self.disabled:
            raise BackendDisabledError(f"{self.backend} is skipped for the rest of this run")

    def succeeded(self) -> None:
        """Reset the run of consecutive failures."""
        self._consecutive = 0

    def failed(self, lookup: str, error: BackendError) -> None:
        """Record a failed ``lookup`` (a description for the log) and log it."""
        if isinstance(error, BackendDisabledError):
            return
        if isinstance(error, OfflineModeError):
            self.offline_misses += 1
            if self.offline_misses == 1:
                logger.warning("offline mode: %s lookups missing from the cache (first: %s) are skipped, so %s",
                               self.backend, lookup, self.fallback)
            return
        self.failures += 1
        self._consecutive += 1
        logger.warning("%s lookup of %s failed, so %s: %s", self.backend, lookup, self.fallback, error)
        if self._consecutive >= self.max_consecutive and not self.disabled:
            self.disabled = True
            logger.warning("%s failed %d lookups in a row; it is skipped for the rest of this run",
                           self.backend, self._consecutive)


def describe_url(url: str) -> str:
    """Shorten ``url`` to scheme, host and path for logs and messages (the query can be long)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Convert a ``Retry-After`` header (delay in seconds or an HTTP date) to seconds, or ``None``.

    >>> parse_retry_after("2")
    2.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


class HttpClient:
    """A ``requests`` session with timeouts, retries, a User-Agent, an offline guard and a request counter.

    Args:
        offline: raise :class:`OfflineModeError` on every request instead of sending it (default ``False``).
        user_agent: the ``User-Agent`` header (default :data:`DEFAULT_USER_AGENT`); an empty string sends
            none.
        connect_timeout: seconds to wait for a connection (default 5).
        read_timeout: seconds to wait for the server's response (default 30).
        retry: the :class:`RetryPolicy` (default 3 retries from a 0.5 s wait).
        sleep: the function that waits between attempts (default :func:`time.sleep`).
    """

    def __init__(
        self,
        *,
        offline: bool = False,
        user_agent: str = DEFAULT_USER_AGENT,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.offline = offline
        self.user_agent = user_agent
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry
        self._sleep = sleep
        self._session = requests.Session()
        # An empty user_agent sends no User-Agent at all: SKIP_HEADER also stops urllib3 from adding its own.
        self._session.headers["User-Agent"] = user_agent or SKIP_HEADER
        self._lock = threading.Lock()
        self.requests_sent = 0

    def get_json(self, url: str, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
        """Send a GET request and return the decoded JSON response; raise :class:`HttpError` on failure."""
        return self._request("GET", url, params=params, headers=headers)

    def post_json(self, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Any:
        """Send ``payload`` as a JSON POST body and return the decoded JSON response."""
        return self._request("POST", url, payload=payload, headers=headers)

    def post_form(self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        """Send ``form`` as an urlencoded POST body (the SPARQL protocol form) and return the JSON response."""
        return self._request("POST", url, form=form, headers=headers)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, payload: Any = None,
                 form: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> Any:
        where = f"{method} {describe_url(url)}"
        if self.offline:
            raise OfflineModeError(
                f"{where} was blocked because offline mode is on (--nerrobust-offline); fill the cache with an "
                "online run first, or turn offline mode off"
            )
        attempts = self.retry.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with self._lock:
                    self.requests_sent += 1
                response = self._session.request(
                    method, url, params=params, json=payload, data=form, headers=dict(headers or {}),
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                kind = "timed out" if isinstance(error, requests.Timeout) else "failed to connect"
                if attempt == attempts:
                    raise HttpError(f"{where} {kind} after {attempts} attempts ({error})") from error
                wait = self._backoff(attempt)
                logger.warning("%s %s; retrying in %.1f s (attempt %d of %d)", where, kind, wait, attempt + 1,
                               attempts)
                self._sleep(wait)
                continue

            if response.status_code in RETRY_STATUSES:
                retry_wait = self._wait_before_retry(response, attempt)
                if attempt == attempts or retry_wait is None:
                    raise HttpError(self._status_message(where, response, attempt), response.status_code)
                logger.warning("%s returned HTTP %d; retrying in %.1f s (attempt %d of %d)", where,
                               response.status_code, retry_wait, attempt + 1, attempts)
                self._sleep(retry_wait)
                continue
            if response.status_code >= 400:
                raise HttpError(self._status_message(where, response, attempt), response.status_code)
            return _decode_json(where, response)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(self.retry.max_wait_seconds, self.retry.backoff_seconds * 2 ** (attempt - 1))

    def _wait_before_retry(self, response: requests.Response, attempt: int) -> float | None:
        """Return the seconds to wait before the next attempt, or ``None`` when the server requests too long a wait."""
        if response.status_code in RETRY_AFTER_STATUSES:
            requested = parse_retry_after(response.headers.get("Retry-After"))
            if requested is not None:
                return requested if requested <= self.retry.max_wait_seconds else None
        return self._backoff(attempt)

    def _status_message(self, where: str, response: requests.Response, attempt: int) -> str:
        status = response.status_code
        message = f"{where} returned HTTP {status} {response.reason or ''}".rstrip()
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status in RETRY_AFTER_STATUSES and retry_after is not None and retry_after > self.retry.max_wait_seconds:
            return (f"{message} and asked to retry after {retry_after:.0f} s, more than the "
                    f"{self.retry.max_wait_seconds:.0f} s limit; try again later")
        if status in RETRY_STATUSES:
            return f"{message} on all {attempt} attempts; try again later or use another endpoint"
        if status == 403 and not self.user_agent:
            return f"{message}; the request had no User-Agent, so set one"
        if status in (401, 403):
            return f"{message}; check the endpoint's access rules and credentials"
        return message


def _decode_json(where: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError) as error:
        excerpt = response.text[:80]
        raise HttpError(f"{where} returned malformed JSON ({error}); the response began with {excerpt!r}",
                        response.status_code) from error
