"""The persistent cache: versioned keys, corruption handling and sharing between processes."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from pytest_nerrobust import cache as cache_module
from pytest_nerrobust.cache import KEY_SCHEME_VERSION, Cache, make_key
from pytest_nerrobust.errors import CacheError

GARBAGE = b"this is not an SQLite database\x00" * 64


def integrity(directory: Path) -> str:
    with sqlite3.connect(directory / "cache.db") as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def test_key_has_version_and_namespace():
    key = make_key("infill", "model-a", ["The", "cat"], 2)

    assert key.startswith(f"v{KEY_SCHEME_VERSION}:infill:")
    assert len(key.rsplit(":", 1)[1]) == 64


def test_key_depends_on_parts():
    assert make_key("infill", "model-a", 1) != make_key("infill", "model-b", 1)


def test_get_or_compute_hit_and_miss(tmp_path):
    cache = Cache(tmp_path / "cache")
    calls = []

    first = cache.get_or_compute("ns", ("a", 1), lambda: calls.append(1) or {"value": 1})
    second = cache.get_or_compute("ns", ("a", 1), lambda: calls.append(1) or {"value": 2})

    assert first == second == {"value": 1}
    assert calls == [1]
    assert cache.stats() == {"ns": {"hits": 1, "misses": 1}}


def test_failed_compute_not_stored(tmp_path):
    cache = Cache(tmp_path / "cache")

    def fail() -> int:
        raise RuntimeError("service down")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("ns", ("a",), fail)

    assert cache.get_or_compute("ns", ("a",), lambda: 7) == 7


def test_persists_across_instances(tmp_path):
    first = Cache(tmp_path / "cache")
    first.get_or_compute("ns", ("a",), lambda: "stored")
    first.close()

    value = Cache(tmp_path / "cache").get_or_compute("ns", ("a",), lambda: "recomputed")

    assert value == "stored"


def test_other_key_version_is_miss(tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    cache.get_or_compute("ns", ("a",), lambda: "old scheme")
    monkeypatch.setattr(cache_module, "KEY_SCHEME_VERSION", KEY_SCHEME_VERSION + 1)

    assert cache.get_or_compute("ns", ("a",), lambda: "new scheme") == "new scheme"


def test_disabled_cache_stores_nothing():
    cache = Cache(None)
    cache.set("k", 1)

    assert cache.enabled is False
    assert cache.get("k", "missing") == "missing"


def test_garbage_index_rebuilt(tmp_path, caplog):
    directory = tmp_path / "cache"
    old = Cache(directory)
    old.get_or_compute("ns", ("a",), lambda: "old")
    old.close()
    (directory / "cache.db").write_bytes(GARBAGE)

    with caplog.at_level(logging.WARNING):
        cache = Cache(directory)
    value = cache.get_or_compute("ns", ("a",), lambda: "recomputed")

    assert cache.rebuilt is True
    assert value == "recomputed"
    assert f"cache index {directory / 'cache.db'} is corrupted (file is not a database); rebuilding" in caplog.text
    assert integrity(directory) == "ok"


def test_rebuild_removes_value_files(tmp_path):
    directory = tmp_path / "cache"
    old = Cache(directory)
    old.set("big", {"payload": "x" * 100_000})
    old.close()
    assert [path for path in directory.rglob("*.val")]
    (directory / "cache.db").write_bytes(GARBAGE)

    Cache(directory)

    assert [path for path in directory.rglob("*.val")] == []


def test_damaged_pages_rebuilt(tmp_path, caplog):
    directory = tmp_path / "cache"
    old = Cache(directory)
    for index in range(3000):
        old.set(make_key("ns", index), "v" * 50)
    old.close()
    data = bytearray((directory / "cache.db").read_bytes())
    # Overwrite the body of every page in the second half, keeping the header page intact.
    for offset in range(len(data) // 2, len(data), 4096):
        data[offset + 8 : offset + 200] = b"\xff" * 192
    (directory / "cache.db").write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        cache = Cache(directory)

    assert cache.rebuilt is True
    assert "is corrupted (database disk image is malformed); rebuilding an empty cache there" in caplog.text
    assert cache.get(make_key("ns", 0), "missing") == "missing"


def test_index_fault_while_open(tmp_path, caplog, monkeypatch):
    cache = Cache(tmp_path / "cache")

    def malformed(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(cache._store, "get", malformed)
    with caplog.at_level(logging.WARNING):
        first = cache.get_or_compute("ns", ("a",), lambda: "computed")
        second = cache.get_or_compute("ns", ("b",), lambda: "computed too")

    assert (first, second) == ("computed", "computed too")
    assert cache.enabled is False
    assert "caching is off for the rest of this run and the next run rebuilds it" in caplog.text


def test_busy_index_keeps_cache(tmp_path, caplog, monkeypatch):
    cache = Cache(tmp_path / "cache")
    cache.set("k", "v")

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(cache._store, "set", locked)
    with caplog.at_level(logging.WARNING):
        cache.set("other", "value")

    assert cache.enabled is True
    assert cache.get("k") == "v"
    assert "cache write of entry other" in caplog.text


def test_corrupted_value_file_recomputed(tmp_path, caplog):
    directory = tmp_path / "cache"
    cache = Cache(directory)
    cache.get_or_compute("ns", ("big",), lambda: {"payload": "x" * 100_000})
    for path in directory.rglob("*.val"):
        path.write_bytes(GARBAGE)

    with caplog.at_level(logging.WARNING):
        value = cache.get_or_compute("ns", ("big",), lambda: {"payload": "fresh"})

    assert value == {"payload": "fresh"}
    assert "the value is recomputed and the run goes on" in caplog.text
    assert cache.enabled is True
    assert cache.get_or_compute("ns", ("big",), lambda: "third") == {"payload": "fresh"}


def test_directory_is_a_file(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")

    with pytest.raises(CacheError, match=r"cache directory '.*cache' cannot be created .*; pass a writable "
                                         r"--nerrobust-cache-dir"):
        Cache(blocker)


def test_index_unopenable(tmp_path):
    directory = tmp_path / "cache"
    (directory / "cache.db").mkdir(parents=True)

    with pytest.raises(CacheError, match=r"cannot be opened \(unable to open database file\); check its "
                                         r"permissions, or pass another --nerrobust-cache-dir"):
        Cache(directory)


def _write_entries(directory: str, worker: int, count: int) -> None:
    cache = Cache(directory)
    for index in range(count):
        cache.set(make_key("worker", worker, index), {"worker": worker, "index": index, "pad": "x" * (index % 7) * 9000})
        # Reads of the other worker's entries interleave with the writes.
        cache.get(make_key("worker", 1 - worker, index))
    cache.close()


def _open_and_write(directory: str, worker: int) -> bool:
    cache = Cache(directory)
    cache.set(make_key("opened-by", worker), worker)
    cache.close()
    return cache.rebuilt


def _fork_context():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the fork start method is missing on this platform")
    return multiprocessing.get_context("fork")


def test_two_processes_share(tmp_path):
    directory = tmp_path / "cache"
    context = _fork_context()
    processes = [context.Process(target=_write_entries, args=(str(directory), worker, 150)) for worker in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    cache = Cache(directory)
    stored = [cache.get(make_key("worker", worker, index)) for worker in (0, 1) for index in range(150)]

    assert [process.exitcode for process in processes] == [0, 0]
    assert stored == [{"worker": worker, "index": index, "pad": "x" * (index % 7) * 9000}
                      for worker in (0, 1) for index in range(150)]
    assert integrity(directory) == "ok"


def test_two_processes_rebuild_once(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(GARBAGE)

    with _fork_context().Pool(2) as pool:
        rebuilt = pool.starmap(_open_and_write, [(str(directory), 0), (str(directory), 1)])

    cache = Cache(directory)
    assert sorted(rebuilt) == [False, True]
    assert cache.get(make_key("opened-by", 0)) == 0
    assert cache.get(make_key("opened-by", 1)) == 1


XDIST_MODULE = """
import os

import pytest

from pytest_nerrobust.cache import Cache, make_key

DIRECTORY = {directory!r}


@pytest.mark.parametrize("index", range(40))
def test_shared(index):
    cache = Cache(DIRECTORY)
    item = index % 10
    value = cache.get_or_compute("shared", ("item", item), lambda: {{"item": item, "pad": "x" * 40000 * (item % 2)}})
    cache.set(make_key("ran-on", index), os.environ.get("PYTEST_XDIST_WORKER", "main"))
    cache.close()
    assert value["item"] == item
"""


def test_xdist_workers_share(pytester, tmp_path):
    directory = tmp_path / "shared-cache"
    pytester.makepyfile(test_shared_cache=XDIST_MODULE.format(directory=str(directory)))

    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider", "-q")

    result.assert_outcomes(passed=40)
    cache = Cache(directory)
    workers = {cache.get(make_key("ran-on", index)) for index in range(40)}
    items = [cache.get(make_key("shared", "item", item)) for item in range(10)]
    assert workers == {"gw0", "gw1"}
    assert items == [{"item": item, "pad": "x" * 40000 * (item % 2)} for item in range(10)]
    assert integrity(directory) == "ok"
