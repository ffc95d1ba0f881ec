"""Measure how many CoNLL-2003 test entities the typed pool files can replace, beside the offline sources.

Reads the first sentences of the CoNLL-2003 test file and prints a Markdown table with, per type, the share
of entities that get at least one candidate from:

* the gazetteer for known mentions only (same category: a city by cities);
* the ``offline`` chain: the gazetteer for known mentions, then the training file as reference corpus;
* the pool files alone (same Wikidata class as the mention);
* the same-category chain: the gazetteer for known mentions, then the pool files;
* the ``pools,offline`` chain that ``--kb=pools,offline`` builds.

Usage::

    python benchmarks/coverage_pools.py [--data-dir DIR] [--pools DIR] [--sentences 500] [--limit 10]

``--data-dir`` contains ``conll2003/train.txt`` and ``conll2003/test.txt`` (default
``$NERROBUST_DATA_DIR``, else the data folder beside the repository). ``--pools`` is a pool directory
(default ``wikidata_ontonotes_pools/test`` under the data directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from pytest_nerrobust.corpus import read_corpus
from pytest_nerrobust.substitution.entities import (
    ChainEntitySource,
    CorpusEntitySource,
    GazetteerEntitySource,
    coverage,
)
from pytest_nerrobust.substitution.pools import PoolEntitySource, pool_types_for_labels

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure coverage and print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("NERROBUST_DATA_DIR", DEFAULT_DATA_DIR)),
                        help="folder with conll2003/train.txt and conll2003/test.txt")
    parser.add_argument("--pools", type=Path, default=None,
                        help="pool directory (default DATA_DIR/wikidata_ontonotes_pools/test)")
    parser.add_argument("--sentences", type=int, default=500,
                        help="number of test sentences to look up, from the start (default 500)")
    parser.add_argument("--limit", type=int, default=10, help="candidates requested per entity (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidate order (default 0)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    test_path = arguments.data_dir / "conll2003" / "test.txt"
    train_path = arguments.data_dir / "conll2003" / "train.txt"
    pools_dir = arguments.pools or arguments.data_dir / "wikidata_ontonotes_pools" / "test"
    for path in (test_path, train_path, pools_dir):
        if not path.exists():
            print(f"error: {path} not found; pass --data-dir with a folder that contains conll2003/, or --pools",
                  file=sys.stderr)
            return 2

    test = read_corpus(test_path).sentences[: arguments.sentences]
    train = read_corpus(train_path).sentences
    labels = sorted({span.label for sentence in test for span in sentence.spans})
    known = GazetteerEntitySource(seed=arguments.seed, mixed_fallback=False)
    reference = CorpusEntitySource(train, seed=arguments.seed)
    pools = PoolEntitySource(pools_dir, pool_types=pool_types_for_labels(labels), seed=arguments.seed)
    sources = {
        "gazetteer, known mentions": known,
        "offline (gazetteer, reference)": ChainEntitySource([known, reference], name="offline"),
        "pools": pools,
        "gazetteer, then pools": ChainEntitySource([known, pools], name="same-category"),
        "pools, then offline": ChainEntitySource([pools, known, reference], name="pools,offline"),
    }

    columns = {}
    seconds = {}
    for label, source in sources.items():
        started = time.perf_counter()
        columns[label] = coverage(source, test, limit=arguments.limit)
        seconds[label] = time.perf_counter() - started

    print(f"Coverage of the first {len(test)} sentences of {test_path.name} (limit {arguments.limit}, seed "
          f"{arguments.seed}, pools {pools_dir.name}): the share of entities with at least one candidate.\n")
    types = sorted(next(iter(columns.values()))["types"])
    print("| type | entities | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for entity_type in [*types, "total"]:
        stats = [report["total"] if entity_type == "total" else report["types"][entity_type]
                 for report in columns.values()]
        shares = " | ".join(f"{item['share']:.1%} ({item['covered']})" for item in stats)
        print(f"| {entity_type} | {stats[0]['entities']} | {shares} |")

    for label in ("gazetteer, then pools", "pools, then offline"):
        print(f"\n{label}: entities served per source {columns[label]['total']['sources']}.")
    print("Seconds per column: " + ", ".join(f"{label} {value:.1f}" for label, value in seconds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
