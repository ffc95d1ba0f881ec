"""A persistent, namespaced and versioned cache on top of diskcache.

Every entry lives under one directory. A key is the namespace, the key scheme version and a SHA-256 of the
parts that change a result (model fingerprint, backend, prompt, settings, input), so two runs share an
entry only when they would compute the same value. diskcache keeps its index in SQLite with its own
locking, so several processes (pytest-xdist workers) can share one directory. Opening and rebuilding take
an exclusive file lock, so two processes never rebuild the same directory at once.

A cache index that SQLite cannot read (``cache.db`` overwritten or truncated) is rebuilt empty with a
warning. A fault while the cache is in use (an unreadable entry, a busy database) costs that entry only:
the value is recomputed and the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pytest_nerrobust.errors import CacheError

logger = logging.getLogger(__name__)

KEY_SCHEME_VERSION = 1
DEFAULT_CACHE_DIR = ".nerrobust-cache"
SIZE_LIMIT_BYTES = 8 * 2**30
LOCK_FILE = "nerrobust-open.lock"
T = TypeVar("T")

# Errors that diskcache raises for an entry it cannot read back: a broken index row, a damaged or missing
# value file, or a pickle from an incompatible Python.
_ENTRY_ERRORS = (sqlite3.DatabaseError, pickle.UnpicklingError, EOFError, ValueError, OSError, AttributeError,
                 ImportError)
# diskcache keeps large values in files under two-level hexadecimal folders next to cache.db.
_VALUE_FOLDER = re.compile(r"^[0-9a-f]{2}$")


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

    ``Cache(None)`` is a disabled cache that computes every value and stores nothing. Raises
    :class:`CacheError` when the directory cannot be created or stays unreadable after a rebuild.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self.errors = 0
        self.rebuilt = False
        self._store: Any = None
        if self.directory is not None:
            self._store = self._open(self.directory)

    def _open(self, directory: Path) -> Any:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CacheError(
                f"cache directory {str(directory)!r} cannot be created ({error}); pass a writable "
                "--nerrobust-cache-dir"
            ) from error
        with _exclusive_lock(directory):
            try:
                return _open_store(directory)
            except sqlite3.OperationalError as error:
                # Locked, busy or read-only: the files may be fine, so they are never deleted for this.
                raise CacheError(
                    f"cache directory {str(directory)!r} cannot be opened ({error}); check its permissions, "
                    "or pass another --nerrobust-cache-dir"
                ) from error
            except sqlite3.DatabaseError as error:
                logger.warning("cache index %s is corrupted (%s); rebuilding an empty cache there",
                               directory / "cache.db", error)
                _remove_cache_files(directory)
                self.rebuilt = True
            try:
                return _open_store(directory)
            except sqlite3.DatabaseError as error:
                raise CacheError(
                    f"cache directory {str(directory)!r} is unreadable even after a rebuild ({error}); delete "
                    "it or pass another --nerrobust-cache-dir"
                ) from error

    @property
    def enabled(self) -> bool:
        """Whether values are stored (``False`` for ``Cache(None)`` and after a fatal fault)."""
        return self._store is not None

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored under ``key``, or ``default`` when it is missing or unreadable."""
        if self._store is None:
            return default
        try:
            return self._store.get(key, default)
        except _ENTRY_ERRORS as error:
            self._fault("read", key, error)
            self._discard(key)
            return default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; a write that fails is logged and skipped."""
        if self._store is None:
            return
        try:
            self._store.set(key, value)
        except (sqlite3.DatabaseError, OSError, pickle.PicklingError) as error:
            self._fault("write", key, error)

    def get_or_compute(self, namespace: str, parts: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Return the cached value for ``parts`` in ``namespace``, computing and storing it on a miss.

        An exception from ``compute`` propagates and nothing is stored, so a failed lookup is retried on
        the next call.
        """
        key = make_key(namespace, *parts)
        missing = object()
        value = self.get(key, missing)
        if value is not missing:
            self.hits[namespace] = self.hits.get(namespace, 0) + 1
            return value  # type: ignore[no-any-return]
        self.misses[namespace] = self.misses.get(namespace, 0) + 1
        value = compute()
        self.set(key, value)
        return value

    def lookup(self, namespace: str, parts: tuple[Any, ...]) -> tuple[bool, Any]:
        """Return ``(True, value)`` for a stored entry and ``(False, None)`` otherwise, counting the hit or miss."""
        missing = object()
        value = self.get(make_key(namespace, *parts), missing)
        if value is missing:
            self.misses[namespace] = self.misses.get(namespace, 0) + 1
            return False, None
        self.hits[namespace] = self.hits.get(namespace, 0) + 1
        return True, value

    def store(self, namespace: str, parts: tuple[Any, ...], value: Any) -> None:
        """Store ``value`` under the key of ``parts`` in ``namespace``."""
        self.set(make_key(namespace, *parts), value)

    def stats(self) -> dict[str, dict[str, int]]:
        """Return ``{namespace: {"hits": n, "misses": n}}`` for this process."""
        names = sorted(set(self.hits) | set(self.misses))
        return {name: {"hits": self.hits.get(name, 0), "misses": self.misses.get(name, 0)} for name in names}

    def close(self) -> None:
        """Close the SQLite connection; the entries stay on disk."""
        if self._store is not None:
            self._store.close()

    def _fault(self, operation: str, key: str, error: Exception) -> None:
        self.errors += 1
        if self.errors == 1:
            logger.warning("cache %s of entry %s in %s failed (%s: %s); the value is recomputed and the run "
                           "goes on", operation, key, self.directory, type(error).__name__, error)
        else:
            logger.debug("cache %s of entry %s failed (%s); %d cache faults so far", operation, key, error,
                         self.errors)
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            # The index itself is damaged: every later call would fail the same way.
            logger.warning("cache index in %s is corrupted (%s); caching is off for the rest of this run and "
                           "the next run rebuilds it", self.directory, error)
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None

    def _discard(self, key: str) -> None:
        if self._store is None:
            return
        with contextlib.suppress(*_ENTRY_ERRORS):
            self._store.delete(key)


def _open_store(directory: Path) -> Any:
    import diskcache

    store = diskcache.Cache(str(directory), size_limit=SIZE_LIMIT_BYTES, eviction_policy="least-recently-used")
    # A read of one key checks the index beyond the pages that the constructor's own queries touch.
    store.get("nerrobust:probe")
    return store


@contextlib.contextmanager
def _exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file in ``directory`` (POSIX ``flock``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(directory / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_cache_files(directory: Path) -> None:
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        (directory / name).unlink(missing_ok=True)
    for child in directory.iterdir():
        if child.is_dir() and _VALUE_FOLDER.match(child.name):
            shutil.rmtree(child, ignore_errors=True)
