"""Measure how many CoNLL-2003 test entities the offline entity sources can replace, per entity type.

Reads the first sentences of the CoNLL-2003 test file and prints a Markdown table with, per type, the share
of entities that get at least one candidate from:

* the gazetteer alone (a mention it does not know gets the type's categories mixed);
* the gazetteer for known mentions only (the share of mentions it recognises as a city, country, ...);
* the training file as the reference corpus;
* Faker and the gazetteer making up names (people, companies, clubs, nationalities, events);
* the earlier ``offline`` chain: the gazetteer for known mentions, then the reference corpus;
* the ``offline`` chain: the gazetteer for known mentions, then made-up names, then the reference corpus,
  with entities of the training file ranked last.

A second table counts only candidates that do not occur in the training file, because the model has
learnt those that do.

Usage::

    python benchmarks/coverage.py [--data-dir DIR] [--sentences 500] [--limit 10]

``DIR`` contains ``conll2003/train.txt`` and ``conll2003/test.txt`` (default ``$NERROBUST_DATA_DIR``, else the
``shared/data`` folder beside the repository).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_nerrobust.corpus import read_corpus
from pytest_nerrobust.substitution.base import EntityCandidate, EntitySource
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
    coverage,
    entity_strings,
)
from pytest_nerrobust.substitution.synthetic import FakerEntitySource

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


class UnseenOnly:
    """Wrap an entity source and drop the candidates whose lowercased text is in ``seen``."""

    def __init__(self, source: EntitySource, seen: frozenset[str]) -> None:
        self.source = source
        self.seen = seen
        self.name = source.name

    def fingerprint(self) -> str:
        """Return the wrapped source's fingerprint."""
        return self.source.fingerprint()

    def candidates(self, mention: Sequence[str], entity_type: str, limit: int) -> list[EntityCandidate]:
        """Return the wrapped source's candidates that are not in ``seen``."""
        found = self.source.candidates(mention, entity_type, limit)
        return [candidate for candidate in found if " ".join(candidate.words).lower() not in self.seen]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure coverage and print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("NERROBUST_DATA_DIR", DEFAULT_DATA_DIR)),
                        help="folder with conll2003/train.txt and conll2003/test.txt")
    parser.add_argument("--sentences", type=int, default=500,
                        help="number of test sentences to look up, from the start (default 500)")
    parser.add_argument("--limit", type=int, default=10, help="candidates requested per entity (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidate order (default 0)")
    arguments = parser.parse_args(argv)

    test_path = arguments.data_dir / "conll2003" / "test.txt"
    train_path = arguments.data_dir / "conll2003" / "train.txt"
    for path in (test_path, train_path):
        if not path.is_file():
            print(f"error: {path} not found; pass --data-dir with a folder that contains conll2003/",
                  file=sys.stderr)
            return 2

    test = read_corpus(test_path).sentences[:arguments.sentences]
    train = read_corpus(train_path).sentences
    gazetteer = GazetteerEntitySource(seed=arguments.seed)
    known_only = GazetteerEntitySource(seed=arguments.seed, mixed_fallback=False, name="gazetteer-known")
    reference = CorpusEntitySource(train, seed=arguments.seed)
    faker = FakerEntitySource(seed=arguments.seed)
    seen = entity_strings(train)
    earlier_chain = ChainEntitySource([known_only, reference], name="offline-before")
    chain = ChainEntitySource([known_only, faker, reference], name="offline", demote=seen)
    sources: list[tuple[str, EntitySource]] = [
        ("gazetteer", gazetteer), ("gazetteer, known mentions", known_only), ("reference (train)", reference),
        ("faker", faker), ("chain before: known, reference", earlier_chain),
        ("chain: known, faker, reference", chain),
    ]

    columns: dict[str, dict[str, Any]] = {}
    unseen_columns: dict[str, dict[str, Any]] = {}
    seconds = {}
    for label, source in sources:
        started = time.perf_counter()
        columns[label] = coverage(source, test, limit=arguments.limit)
        seconds[label] = time.perf_counter() - started
        unseen_columns[label] = coverage(UnseenOnly(source, seen), test, limit=arguments.limit)

    print(f"Coverage of the first {len(test)} sentences of {test_path.name} "
          f"(limit {arguments.limit}, seed {arguments.seed}): the share of entities with at least one "
          "candidate.\n")
    _print_table(columns)
    print(f"\nThe same, counting only candidates that do not occur in {train_path.name}.\n")
    _print_table(unseen_columns)

    for label in ("chain before: known, reference", "chain: known, faker, reference"):
        print(f"\n{label}: entities served per source {columns[label]['total']['sources']}.")
    print("Seconds per column: " + ", ".join(f"{label} {value:.1f}" for label, value in seconds.items()))
    return 0


def _print_table(columns: dict[str, dict[str, Any]]) -> None:
    types = sorted(next(iter(columns.values()))["types"])
    print("| type | entities | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for entity_type in [*types, "total"]:
        stats = [report["total"] if entity_type == "total" else report["types"][entity_type]
                 for report in columns.values()]
        shares = " | ".join(f"{item['share']:.1%} ({item['covered']})" for item in stats)
        print(f"| {entity_type} | {stats[0]['entities']} | {shares} |")


if __name__ == "__main__":
    sys.exit(main())
