"""Show LocalLMInfiller candidates for context words of CoNLL-2003 and time them cold and warm.

For each of the first sentences with at least 6 words, the position is the O-tagged word of letters
nearest the middle of the sentence (never the first word). The cold pass starts from an empty result
cache and the warm pass repeats the same requests on it. The converted SmolLM2 copy is kept in
``--model-cache-dir`` so that later runs skip the conversion.

    python benchmarks/infill_quality.py --data ../shared/data/conll2003/test.txt --positions 20 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pick_positions(sentences: list, count: int) -> list[tuple[list[str], int]]:
    """Pick one context position per sentence, as the module docstring describes."""
    requests = []
    for sentence in sentences:
        if len(sentence.words) < 6:
            continue
        context = [
            index
            for index, (word, tag) in enumerate(zip(sentence.words, sentence.tags))
            if tag == "O" and word.isalpha() and index > 0
        ]
        if not context:
            continue
        middle = len(sentence.words) / 2
        position = min(context, key=lambda index: (abs(index - middle), index))
        requests.append((list(sentence.words), position))
        if len(requests) == count:
            break
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/conll2003/test.txt", help="CoNLL file (IOB2)")
    parser.add_argument("--positions", type=int, default=20, help="context positions to infill (default 20)")
    parser.add_argument("--limit", type=int, default=5, help="candidates shown per position (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--pool-size", type=int, default=30, help="proposals per prompt (default 30)")
    parser.add_argument("--model-cache-dir", default=None,
                        help="where the converted SmolLM2 copy lives "
                             "(default: $NERROBUST_CACHE_DIR or .nerrobust-cache)")
    args = parser.parse_args()

    if not Path(args.data).is_file():
        sys.exit(f"data file {args.data!r} not found; pass --data with a CoNLL-2003 file")

    import torch

    from pytest_nerrobust.cache import Cache, default_cache_dir
    from pytest_nerrobust.corpus import read_corpus
    from pytest_nerrobust.similarity import detokenize
    from pytest_nerrobust.substitution.context import INFILL_NAMESPACE, LocalLMInfiller
    from pytest_nerrobust.substitution.prompts import BLANK

    torch.set_num_threads(args.threads)
    requests = pick_positions(read_corpus(args.data, "IOB2", "conll").sentences, args.positions)
    model_cache_dir = Path(args.model_cache_dir) if args.model_cache_dir else default_cache_dir()

    with tempfile.TemporaryDirectory(prefix="infill-bench-") as results_dir:
        cache = Cache(results_dir)
        infiller = LocalLMInfiller(cache=cache, cache_dir=model_cache_dir, pool_size=args.pool_size,
                                   num_threads=args.threads)
        started = time.perf_counter()
        infiller.fingerprint()
        infiller.load()
        load_seconds = time.perf_counter() - started

        timings: dict[str, tuple[float, float]] = {}
        results: list[list[str]] = []
        for run in ("cold", "warm"):
            wall, cpu = time.perf_counter(), time.process_time()
            results = [infiller.candidates(words, position, args.limit) for words, position in requests]
            timings[run] = (time.perf_counter() - wall, time.process_time() - cpu)
        stats = cache.stats()[INFILL_NAMESPACE]
        cache.close()

    print(f"# Infilling candidates, {len(requests)} positions of {args.data}\n")
    print("| sentence | original | candidates |")
    print("|---|---|---|")
    for (words, position), candidates in zip(requests, results):
        blanked = detokenize([*words[:position], BLANK, *words[position + 1:]])
        print(f"| {blanked} | {words[position]} | {', '.join(candidates)} |")

    count = len(requests)
    print(f"\nmodel: {infiller.fingerprint()}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"fingerprint + model load: {load_seconds:.1f} s; result cache {stats}\n")
    print("| pass | wall s / position | CPU s / position |")
    print("|---|---|---|")
    for run, (wall, cpu) in timings.items():
        print(f"| {run} | {wall / count:.3f} | {cpu / count:.3f} |")


if __name__ == "__main__":
    main()
