"""Real HTTP servers on 127.0.0.1 for tests: a small Wikidata-like API and an OpenAI-compatible LLM.

Each server runs in a background thread on a free port and counts the requests it receives. It can inject
faults into its next responses: HTTP 429 or 503 with ``Retry-After``, HTTP 5xx, a slow response that trips
a client's read timeout, and malformed JSON. Both reject a request with HTTP 403 when its User-Agent is
missing or is a library default, as Wikimedia does.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typing_extensions import Self

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ENTITY_URI = "http://www.wikidata.org/entity/"


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` is "status", "slow" or "malformed"."""

    kind: str
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0


def status_fault(status: int, retry_after: str | None = None) -> Fault:
    """Build a fault that responds with ``status``, with a ``Retry-After`` header when one is given."""
    return Fault("status", status=status, retry_after=retry_after)


def slow_fault(delay: float) -> Fault:
    """Build a fault that waits ``delay`` seconds before a normal response."""
    return Fault("slow", delay=delay)


MALFORMED = Fault("malformed")


@dataclass
class RecordedRequest:
    """A request as the server saw it."""

    method: str
    path: str
    params: dict[str, str]
    body: str
    headers: dict[str, str]


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with request counting and fault injection."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def count(self) -> int:
        """Number of requests received, including rejected and faulted ones."""
        with self._lock:
            return len(self.requests)

    def inject(self, *faults: Fault) -> None:
        """Apply ``faults`` to the next requests, one fault per request, in order."""
        with self._lock:
            self.faults.extend(faults)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(self, request: RecordedRequest) -> tuple[int, Any]:
        """Return the status and the JSON-serialisable body for ``request``."""
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    params.update({key: values[-1] for key, values in parse_qs(body).items()})
                request = RecordedRequest(method, parts.path, params, body, dict(self.headers.items()))
                with server._lock:
                    server.requests.append(request)
                    fault = server.faults.popleft() if server.faults else None

                agent = self.headers.get("User-Agent", "")
                if not agent or agent.startswith(("python-requests", "python-urllib3")):
                    self._send(403, {"error": "requests need a descriptive User-Agent"})
                    return
                if fault is not None and fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    self._send(fault.status, {"error": f"injected HTTP {fault.status}"}, headers)
                    return
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.delay)
                status, payload = server.respond(request)
                if fault is not None and fault.kind == "malformed":
                    self._send_raw(200, b'{"search": [{"id": "Q1", "label": ')
                    return
                self._send(status, payload)

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode("utf-8"), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a read timeout); nothing is left to send.
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@dataclass(frozen=True)
class Item:
    """A Wikidata item of the fake knowledge base."""

    label: str | None
    instance_of: tuple[str, ...] = ()
    subclass_of: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""


def default_items() -> dict[str, Item]:
    """Return the fixed items: football clubs, cities, people, their classes and the class hierarchy."""
    return {
        # Classes and the hierarchy that the type check walks with wdt:P279*.
        "Q43229": Item("organization"),
        "Q4438121": Item("sports organization", subclass_of=("Q43229",)),
        "Q476028": Item("association football club", subclass_of=("Q4438121",)),
        "Q618123": Item("geographical feature"),
        "Q486972": Item("human settlement", subclass_of=("Q618123",)),
        "Q515": Item("city", subclass_of=("Q486972",)),
        "Q5119": Item("capital", subclass_of=("Q515",)),
        "Q5": Item("human"),
        "Q16521": Item("taxon"),
        # Football clubs.
        "Q18656": Item("Manchester United F.C.", ("Q476028",), aliases=("Manchester United", "Man Utd")),
        "Q9617": Item("Arsenal F.C.", ("Q476028",), aliases=("Arsenal",)),
        "Q1130849": Item("Liverpool F.C.", ("Q476028",), aliases=("Liverpool FC",)),
        "Q9616": Item("Chelsea F.C.", ("Q476028",)),
        "Q50602": Item("Manchester City F.C.", ("Q476028",)),
        "Q99999001": Item(None, ("Q476028",)),  # an instance without an English label
        # Cities.
        "Q90": Item("Paris", ("Q515", "Q5119"), description="capital of France"),
        "Q84": Item("London", ("Q515", "Q5119")),
        "Q64": Item("Berlin", ("Q515", "Q5119")),
        "Q1490": Item("Tokyo", ("Q515",)),
        "Q18125": Item("Manchester", ("Q515",)),
        "Q1085": Item("Prague", ("Q515", "Q5119")),
        # People; "Paris" also matches a person, so the entity type must guide the choice.
        "Q47899": Item("Paris Hilton", ("Q5",), aliases=("Paris",)),
        "Q42": Item("Douglas Adams", ("Q5",)),
        "Q1035": Item("Charles Darwin", ("Q5",)),
        "Q7186": Item("Marie Curie", ("Q5",)),
        # A taxon named like a city, as entity-linking noise.
        "Q77777": Item("Berlin", ("Q16521",), description="genus of moths"),
    }


class WikidataServer(FakeServer):
    """Responds like the Wikidata API (``wbsearchentities``, ``wbgetentities``, ``Special:EntityData``) and
    the query service (SPARQL JSON results) for a fixed set of items.

    URLs: ``api_url`` (``/w/api.php``) and ``sparql_url`` (``/sparql``).
    """

    def __init__(self, items: dict[str, Item] | None = None) -> None:
        super().__init__()
        self.items = default_items() if items is None else items

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/w/api.php"

    @property
    def sparql_url(self) -> str:
        return f"{self.base_url}/sparql"

    def respond(self, request: RecordedRequest) -> tuple[int, Any]:
        if request.path == "/w/api.php":
            action = request.params.get("action")
            if action == "wbsearchentities":
                return 200, self._search(request.params)
            if action == "wbgetentities":
                ids = [item_id for item_id in request.params.get("ids", "").split("|") if item_id]
                return 200, {"entities": {item_id: self._entity(item_id) for item_id in ids}, "success": 1}
            return 400, {"error": {"code": "badvalue", "info": f"unknown action {action!r}"}}
        match = re.fullmatch(r"/wiki/Special:EntityData/(Q\d+)\.json", request.path)
        if match:
            return 200, {"entities": {match.group(1): self._entity(match.group(1))}}
        if request.path == "/sparql":
            return 200, self._sparql(request.params.get("query", ""))
        return 404, {"error": f"no route {request.path}"}

    def _search(self, params: dict[str, str]) -> dict[str, Any]:
        text = params.get("search", "").casefold()
        limit = int(params.get("limit", "7"))
        hits = []
        for item_id, item in self.items.items():
            names = [name for name in (item.label, *item.aliases) if name]
            if item.instance_of and any(name.casefold().startswith(text) for name in names):
                hits.append({"id": item_id, "label": item.label, "description": item.description,
                             "concepturi": ENTITY_URI + item_id})
        return {"searchinfo": {"search": params.get("search", "")}, "search": hits[:limit], "success": 1}

    def _entity(self, item_id: str) -> dict[str, Any]:
        item = self.items.get(item_id)
        if item is None:
            return {"id": item_id, "missing": ""}
        labels = {"en": {"language": "en", "value": item.label}} if item.label else {}
        claims = {
            prop: [{"mainsnak": {"snaktype": "value", "property": prop,
                                 "datavalue": {"type": "wikibase-entityid",
                                               "value": {"entity-type": "item", "id": target}}},
                    "rank": "normal"} for target in targets]
            for prop, targets in (("P31", item.instance_of), ("P279", item.subclass_of)) if targets
        }
        return {"id": item_id, "type": "item", "labels": labels, "claims": claims}

    def _ancestors(self, class_id: str) -> set[str]:
        seen = {class_id}
        stack = [class_id]
        while stack:
            for parent in self.items.get(stack.pop(), Item(None)).subclass_of:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def _sparql(self, query: str) -> dict[str, Any]:
        values = {name: re.findall(r"wd:(Q\d+)", body)
                  for name, body in re.findall(r"VALUES\s+\?(\w+)\s*\{([^}]*)\}", query)}
        if "wdt:P279*" in query:
            roots = set(values.get("root", []))
            rows = []
            for class_id in values.get("class", []):
                label = self.items.get(class_id, Item(None)).label
                if self._ancestors(class_id) & roots:
                    row = {"class": {"type": "uri", "value": ENTITY_URI + class_id}}
                    if label:
                        row["classLabel"] = {"type": "literal", "xml:lang": "en", "value": label}
                    rows.append(row)
            return {"head": {"vars": ["class", "classLabel"]}, "results": {"bindings": rows}}
        classes = set(values.get("class", []))
        limit_match = re.search(r"LIMIT\s+(\d+)", query)
        limit = int(limit_match.group(1)) if limit_match else 10**6
        rows = []
        for item_id, item in self.items.items():
            if item.label and classes & set(item.instance_of):
                rows.append({"item": {"type": "uri", "value": ENTITY_URI + item_id},
                             "itemLabel": {"type": "literal", "xml:lang": "en", "value": item.label}})
        return {"head": {"vars": ["item", "itemLabel"]}, "results": {"bindings": rows[:limit]}}


class LLMServer(FakeServer):
    """Responds like an OpenAI-compatible API at ``/v1/chat/completions`` and ``/v1/completions``.

    ``replies`` is a queue of response texts, and ``default_reply`` is used when it is empty. When ``api_key`` is
    set, a request without ``Authorization: Bearer <api_key>`` gets HTTP 401.
    """

    def __init__(self, default_reply: str = "1. quickly\n2. slowly\n3. happily\n4. sadly\n5. loudly",
                 api_key: str | None = None) -> None:
        super().__init__()
        self.replies: deque[str] = deque()
        self.default_reply = default_reply
        self.api_key = api_key

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def respond(self, request: RecordedRequest) -> tuple[int, Any]:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "invalid API key", "type": "invalid_request_error"}}
        try:
            body = json.loads(request.body or "{}")
        except json.JSONDecodeError:
            return 400, {"error": {"message": "body is not JSON"}}
        with self._lock:
            text = self.replies.popleft() if self.replies else self.default_reply
        if request.path == "/v1/chat/completions":
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return 200, {"id": "chatcmpl-test", "object": "chat.completion", "model": body.get("model"),
                         "choices": [choice]}
        if request.path == "/v1/completions":
            return 200, {"id": "cmpl-test", "object": "text_completion", "model": body.get("model"),
                         "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}
        return 404, {"error": {"message": f"no route {request.path}"}}


def forbid_remote_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every connection to a host other than 127.0.0.1 raise, so no test reaches the network."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in LOOPBACK_HOSTS:
            raise AssertionError(f"a test tried to resolve the remote host {host!r}; tests may only use 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and str(address[0]) not in LOOPBACK_HOSTS:
            raise AssertionError(f"a test tried to connect to {address!r}; tests may only use 127.0.0.1")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
