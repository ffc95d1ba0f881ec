"""A persistent, namespaced and versioned cache on top of diskcache.

Every entry lives under one directory. A key is the namespace, the key scheme version and a SHA-256 of the
parts that change a result (model fingerprint, backend, prompt, settings, input), so two runs share an
entry only when they would compute the same value. diskcache uses SQLite with its own locking, so
several processes (pytest-xdist workers) can share one directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, TypeVar

from pytest_nerrobust.errors import CacheError

logger = logging.getLogger(__name__)

KEY_SCHEME_VERSION = 1
DEFAULT_CACHE_DIR = ".nerrobust-cache"
T = TypeVar("T")


def default_cache_dir() -> Path:
    """Return ``$NERROBUST_CACHE_DIR`` or ``.nerrobust-cache`` in the working directory."""
    return Path(os.environ.get("NERROBUST_CACHE_DIR", DEFAULT_CACHE_DIR))


def make_key(namespace: str, *parts: Any) -> str:
    """Build a stable key from JSON-serialisable parts.

    >>> make_key("infill", "model-a", ["The", "cat"], 2)[:14]
    'v1:infill:c8b2'
    """
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return f"v{KEY_SCHEME_VERSION}:{namespace}:{digest}"


class Cache:
    """A diskcache store with hit and miss counters per namespace.

    ``Cache(None)`` is a disabled cache that computes every value and stores nothing.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self._store: Any = None
        if self.directory is not None:
            self._store = self._open(self.directory)

    @staticmethod
    def _open(directory: Path) -> Any:
        import diskcache

        try:
            directory.mkdir(parents=True, exist_ok=True)
            return diskcache.Cache(str(directory), size_limit=8 * 2**30, eviction_policy="least-recently-used")
        except sqlite3.DatabaseError as error:
            logger.warning("cache at %s is corrupted (%s); rebuilding it", directory, error)
            _remove_cache_files(directory)
            try:
                return diskcache.Cache(str(directory), size_limit=8 * 2**30)
            except sqlite3.DatabaseError as second_error:
                raise CacheError(
                    f"cache directory {str(directory)!r} is unreadable ({second_error}); delete it or pass "
                    "another --nerrobust-cache-dir"
                ) from second_error
        except OSError as error:
            raise CacheError(
                f"cache directory {str(directory)!r} cannot be created ({error}); pass a writable "
                "--nerrobust-cache-dir"
            ) from error

    @property
    def enabled(self) -> bool:
        return self._store is not None

    def get(self, key: str, default: Any = None) -> Any:
        if self._store is None:
            return default
        try:
            return self._store.get(key, default)
        except (sqlite3.DatabaseError, EOFError, ValueError, OSError) as error:
            logger.warning("cache entry %s is unreadable (%s); recomputing it", key, error)
            return default

    def set(self, key: str, value: Any) -> None:
        if self._store is None:
            return
        try:
            self._store.set(key, value)
        except (sqlite3.DatabaseError, OSError) as error:
            logger.warning("cache entry %s could not be written (%s); continuing without it", key, error)

    def get_or_compute(self, namespace: str, parts: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Return the cached value for ``parts`` in ``namespace``, computing and storing it on a miss."""
        key = make_key(namespace, *parts)
        missing = object()
        value = self.get(key, missing)
        if value is not missing:
            self.hits[namespace] = self.hits.get(namespace, 0) + 1
            return value  # type: ignore[return-value]
        self.misses[namespace] = self.misses.get(namespace, 0) + 1
        value = compute()
        self.set(key, value)
        return value

    def stats(self) -> dict[str, dict[str, int]]:
        names = sorted(set(self.hits) | set(self.misses))
        return {name: {"hits": self.hits.get(name, 0), "misses": self.misses.get(name, 0)} for name in names}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _remove_cache_files(directory: Path) -> None:
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        (directory / name).unlink(missing_ok=True)
